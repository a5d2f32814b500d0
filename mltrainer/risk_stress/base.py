"""What every stress scenario shares: the book it stresses and the result it returns.

A scenario reads its inputs through :func:`returns_frame` / :func:`price_frame`, checks
the weights into a :class:`Book` (:func:`validate_weights`), builds one row per position
(``return`` and ``status``, NaN where the position lacks data) and hands them to
:func:`aggregate`, which adds the common columns, the portfolio figure (the missing
exposure proxied pro rata to gross exposure, see :mod:`mltrainer.risk_stress.scenarios`)
and the sector table. :func:`scenario_table` lines several results up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TypeVar

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError

T = TypeVar("T")


class NotCovered(DataError):
    """The data cannot price this scenario for this book: its window lies outside the
    dates, or no position was listed then. A catalogue run skips it and says why."""


WEIGHT_TOLERANCE = 1e-6
UNKNOWN_SECTOR = "Unknown"

ScenarioData = MarketData | pd.DataFrame
"""Market data, or a wide frame of daily simple returns (dates x tickers)."""

Weights = pd.Series | Mapping[str, float]
"""Ticker -> weight (fraction of portfolio value; negative for a short)."""


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario does to the portfolio.

    Attributes
    ----------
    key, name, kind, description : str
        ``kind`` is ``historical`` or ``hypothetical``.
    portfolio_return : float
        Signed portfolio return under the scenario (a loss is negative).
    pnl : float
        ``portfolio_value * portfolio_return``.
    positions : DataFrame
        One row per position: ``weight, sector, value, return, pnl, status`` and
        scenario-specific columns (``beta``, ``max_drawdown``, ``days_to_liquidate``...).
    by_sector : DataFrame
        One row per sector: ``weight, pnl, return, n_positions, n_missing``.
    max_drawdown : float
        Largest peak-to-trough fall of the portfolio inside a replay window, as a
        positive fraction (0.35 = 35 %); NaN for a one-step hypothetical shock.
    path : Series or None
        Portfolio value (1.0 at the start) through a replay window.
    covered_weight : float
        Gross weight of the positions that had data (1.0 when none is missing).
    params : dict
        The inputs and intermediate figures (window dates, VaR before/after...).
    warnings : tuple of str
    """

    key: str
    name: str
    kind: str
    description: str
    portfolio_return: float
    pnl: float
    positions: pd.DataFrame
    by_sector: pd.DataFrame
    max_drawdown: float = float("nan")
    path: pd.Series | None = None
    covered_weight: float = 1.0
    params: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def missing(self) -> list[str]:
        """The positions without the data the scenario needs (NaN return)."""
        return list(self.positions.index[self.positions["return"].isna()])

    def summary(self) -> dict:
        """JSON-ready headline figures."""
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "portfolio_return": _num(self.portfolio_return),
            "pnl": _num(self.pnl),
            "max_drawdown": _num(self.max_drawdown),
            "covered_weight": _num(self.covered_weight),
            "missing": self.missing,
            "params": {k: _json_param(v) for k, v in self.params.items()},
            "warnings": list(self.warnings),
        }


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _json_param(v: object) -> object:
    if isinstance(v, float):
        return _num(v)
    return str(v) if isinstance(v, pd.Timestamp) else v


# ------------------------------------------------------------------- inputs
def validate_weights(
    weights: Weights, tickers: Iterable[str], allow_leverage: bool = False
) -> pd.Series:
    """Check a portfolio's weights against the data's tickers.

    Parameters
    ----------
    weights : Series or dict
        Ticker -> weight (fraction of portfolio value; negative for a short).
    tickers : sequence of str
        The tickers the data has.
    allow_leverage : bool
        Accept weights that do not sum to one (leveraged or market-neutral books).

    Returns
    -------
    Series of float indexed by upper-case ticker, in the given order.

    Raises
    ------
    DataError
        No positions, duplicated, unknown or non-numeric tickers/weights, NaN or infinite
        weights, or (unless ``allow_leverage``) weights not summing to 1 within 1e-6.
    """
    if isinstance(weights, dict):
        weights = pd.Series(weights, dtype="object")
    if not isinstance(weights, pd.Series):
        raise DataError(f"weights must be a Series or dict ticker -> weight (got {type(weights)})")
    if weights.empty:
        raise DataError("the portfolio has no positions; give at least one ticker and weight")
    index = pd.Index([str(t).strip().upper() for t in weights.index])
    if index.has_duplicates:
        dup = sorted(set(index[index.duplicated()]))
        raise DataError(f"ticker(s) {', '.join(dup)} appear more than once in the weights")
    values = _numeric_weights(weights, index)
    tickers = list(map(str, tickers))
    known = set(tickers)
    unknown = [t for t in index if t not in known]
    if unknown:
        raise DataError(
            f"unknown ticker(s) {', '.join(unknown)}: not in the data "
            f"({len(known)} tickers, e.g. {', '.join(tickers[:5])})"
        )
    with np.errstate(over="ignore"):  # finite weights near 1e308 sum to inf: said below
        total = float(values.sum())
        gross = float(np.abs(values).sum())
    if not np.isfinite(gross):
        raise DataError(
            "the weights are too large to add up (their sum overflows); give weights "
            "summing to 1, or relative sizes of ordinary magnitude"
        )
    if not allow_leverage and abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise DataError(
            f"weights sum to {total:.8g}; they must sum to 1 (within "
            f"{WEIGHT_TOLERANCE:g}): divide them by their sum if they are relative "
            "sizes (a leveraged book needs allow_leverage=True in Python)"
        )
    if not gross > 0:
        raise DataError("every weight is zero; the portfolio holds nothing")
    return values.astype("float64")


def _numeric_weights(weights: pd.Series, index: pd.Index) -> pd.Series:
    """The weights as numbers on ``index``; a DataError names any that is not a finite one."""
    raw = pd.Series(weights.to_numpy(), index=index)
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        raise DataError(f"non-numeric weight for {', '.join(index[bad.to_numpy()])}")
    if values.isna().any():
        raise DataError(
            f"NaN weight for {', '.join(index[values.isna().to_numpy()])}; "
            "every position needs a number (use 0 to hold none)"
        )
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise DataError("infinite weight; weights are fractions of portfolio value")
    return values


def returns_frame(data: ScenarioData) -> pd.DataFrame:
    """Daily simple returns: ``data.returns()``, or the given returns frame (checked)."""
    if isinstance(data, MarketData):
        return data.returns()
    return _checked_returns(data)


def price_frame(data: ScenarioData) -> pd.DataFrame:
    """Adjusted closes, or the price index compounded from a returns frame."""
    if isinstance(data, MarketData):
        return data.adj_close
    return price_index_from_returns(_checked_returns(data))


def _checked_returns(data: object) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise DataError("a returns frame needs a DatetimeIndex of trading dates")
        if not data.index.is_monotonic_increasing or data.index.has_duplicates:
            raise DataError("a returns frame's dates must be sorted and unique")
        return data.astype("float64")
    raise DataError(f"expected MarketData or a returns DataFrame (got {type(data).__name__})")


def price_index_from_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """A price index (1.0 the day before each ticker's first return) from simple returns.

    NaN before that day; a NaN return after the first one keeps the price unchanged.
    """
    seen = returns.notna().cummax()
    listed = seen | seen.shift(-1, fill_value=False)
    # returns before the first one are filled with 0, so the index is exactly 1.0 there
    return (1.0 + returns.fillna(0.0)).cumprod().where(listed)


def sector_labels(
    data: ScenarioData, tickers: Iterable[str], sectors: Mapping[str, str] | None
) -> pd.Series:
    """Each ticker's GICS sector: ``sectors``, else the data's on its last date (the
    book's: :meth:`MarketData.sectors_on`), else ``Unknown``."""
    on = getattr(data, "sectors_on", None)
    known = dict(on() if callable(on) else getattr(data, "sectors", {}) or {})
    known.update(sectors or {})
    return pd.Series({t: known.get(t) or UNKNOWN_SECTOR for t in tickers}, dtype="object")


def from_options(cls: type[T], options: Mapping[str, object], caller: str) -> T:
    """``cls(**options)`` for a settings dataclass; a TypeError naming ``caller``, the
    unknown options and the fields of ``cls``."""
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{caller}() got unexpected option(s) {', '.join(unknown)}; the "
            f"{cls.__name__} options are {', '.join(allowed)}"
        )
    return cls(**options)


# -------------------------------------------------------------------- the book
@dataclass(frozen=True)
class Book:
    """The portfolio a scenario stresses: checked weights, value in currency, sectors."""

    weights: pd.Series
    value: float
    sectors: pd.Series

    @classmethod
    def of(
        cls,
        data: ScenarioData,
        weights: Weights,
        tickers: Iterable[str],
        portfolio_value: float,
        sectors: Mapping[str, str] | None = None,
        allow_leverage: bool = False,
    ) -> Book:
        """Validate ``weights`` against ``tickers`` (:func:`validate_weights`) and label
        the positions' sectors (:func:`sector_labels`)."""
        w = validate_weights(weights, tickers, allow_leverage)
        return cls(w, portfolio_value, sector_labels(data, w.index, sectors))


# ------------------------------------------------------------------ aggregation
def aggregate(
    book: Book,
    positions: pd.DataFrame,
    *,
    key: str,
    name: str,
    kind: str,
    description: str,
    params: dict,
    warnings: Iterable[str] = (),
    path: pd.Series | None = None,
    max_drawdown: float = float("nan"),
) -> ScenarioResult:
    """The scenario's result from its per-position ``return`` and ``status`` columns.

    Adds ``weight, sector, value`` (and ``pnl = value * w * return`` unless given) to
    ``positions`` (in place), the portfolio return with the missing exposure proxied by
    the covered positions, a warning naming the missing ones, and the sector table.

    Raises
    ------
    NotCovered
        No position has the data the scenario needs (the statuses say why).
    """
    w, value = book.weights, book.value
    positions.insert(0, "weight", w)
    positions.insert(1, "sector", book.sectors.reindex(w.index))
    positions.insert(2, "value", value * w)
    covered = positions["return"].notna()
    if not np.abs(w[covered]).sum() > 0:  # no held position has the data
        held = positions.loc[w != 0, "status"]
        why = [f"{t} {s.removeprefix('missing: ')}" for t, s in held.items()]
        more = f"; and {len(why) - 5} more" if len(why) > 5 else ""
        raise NotCovered(
            f"scenario '{name}': no position has the data it needs ({'; '.join(why[:5])}{more})"
        )
    gross, gross_cov = np.abs(w).sum(), np.abs(w[covered]).sum()
    scale = gross / gross_cov
    if "pnl" not in positions:
        positions["pnl"] = value * w * positions["return"]
    port_ret = float((w[covered] * positions.loc[covered, "return"]).sum() * scale)
    warnings = list(warnings)
    if not covered.all():
        miss = list(w.index[~covered])
        warnings.append(
            f"{name}: {len(miss)} position(s) missing ({', '.join(miss)}); "
            f"their {1 - gross_cov / gross:.1%} of gross exposure is proxied "
            "by the covered positions"
        )
    return ScenarioResult(
        key=key,
        name=name,
        kind=kind,
        description=description,
        portfolio_return=port_ret,
        pnl=value * port_ret,
        positions=positions,
        by_sector=_by_sector(positions, covered, value),
        max_drawdown=max_drawdown,
        path=path,
        covered_weight=float(gross_cov / gross),
        params=params,
        warnings=tuple(warnings),
    )


def _by_sector(positions: pd.DataFrame, covered: pd.Series, value: float) -> pd.DataFrame:
    """One row per sector, worst P&L first; ``return`` over the covered weight."""
    pos = positions.assign(missing=~covered)
    grouped = pos.groupby("sector", sort=True)
    by_sector = pd.DataFrame(
        {
            "weight": grouped["weight"].sum(),
            "pnl": grouped["pnl"].sum(min_count=1),
            "n_positions": grouped.size(),
            "n_missing": grouped["missing"].sum().astype(int),
        }
    )
    covered_w = pos.loc[~pos["missing"]].groupby("sector")["weight"].sum()
    by_sector["return"] = by_sector["pnl"] / (value * covered_w.reindex(by_sector.index))
    by_sector = by_sector[["weight", "pnl", "return", "n_positions", "n_missing"]]
    return by_sector.sort_values("pnl", na_position="last")


def scenario_table(results: list[ScenarioResult]) -> pd.DataFrame:
    """One row per scenario: kind, window or description, return, P&L, drawdown, coverage."""
    rows = []
    for r in results:
        window = (
            f"{r.params['base_date']}..{r.params['end_date']}" if r.kind == "historical" else ""
        )
        rows.append(
            {
                "scenario": r.name,
                "kind": r.kind,
                "window": window,
                "portfolio_return": r.portfolio_return,
                "pnl": r.pnl,
                "max_drawdown": r.max_drawdown,
                "covered_weight": r.covered_weight,
                "n_missing": len(r.missing),
                "description": r.description,
            }
        )
    cols = [
        "scenario",
        "kind",
        "window",
        "portfolio_return",
        "pnl",
        "max_drawdown",
        "covered_weight",
        "n_missing",
        "description",
    ]
    return pd.DataFrame(rows, columns=cols, index=pd.Index([r.key for r in results], name="key"))
