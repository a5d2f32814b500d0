"""Stress scenarios of a weighted portfolio: historical replays and hypothetical shocks.

Every function is pure: market data (a :class:`~mltrainer.data.market_data.MarketData`
or a wide frame of daily simple returns) and a weights Series in, a
:class:`ScenarioResult` out. Results carry the P&L by position and by GICS sector, the
portfolio P&L and, for replays, the portfolio path and its maximum drawdown.

Conventions
-----------
- ``return`` and ``pnl`` are signed: a loss is negative. ``pnl`` is in the currency of
  ``portfolio_value`` (default 1.0, i.e. a fraction of the portfolio).
- A position without data where the scenario needs it (not yet listed in a replay
  window, too short a history for a covariance) is *missing*: its return and P&L are
  NaN, never zero, ``ScenarioResult.warnings`` says so, and the portfolio figure proxies the
  missing exposure by the covered positions, pro rata to gross exposure
  (``portfolio_return = sum_covered(w_i r_i) * G / G_covered`` with ``G = sum |w_i|``).
- Parametric figures assume zero-mean normal returns over a short horizon:
  ``VaR_alpha = z_alpha * sqrt(h) * sqrt(w' Sigma w)``, Sigma the sample covariance of
  the complete trailing rows.

References
----------
Jorion, P. (2007). *Value at Risk*, 3rd ed., ch. 14 (stress testing) and ch. 7
(component VaR). Basel Committee (2009), *Principles for sound stress testing*.
Almgren, R., Thum, C., Hauptmann, E., Li, H. (2005). Direct estimation of equity market
impact. Toth, B. et al. (2011). Anomalous price impact and the critical nature of
liquidity in financial markets (the square-root impact law).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.portfolio import (
    covariance,
    max_drawdown,
    portfolio_returns,
    risk_contributions,
    rolling_beta,
)

WEIGHT_TOLERANCE = 1e-6
UNKNOWN_SECTOR = "Unknown"


# --------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class HistoricalScenario:
    """A real market episode, replayed from the close of ``start`` to the close of ``end``.

    When ``start`` is not a trading day (2008-09-01 was Labor Day) the replay starts
    from the last close before it.
    """

    key: str
    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", pd.Timestamp(self.start))
        object.__setattr__(self, "end", pd.Timestamp(self.end))
        if self.start >= self.end:
            raise ParameterError(f"scenario {self.key}: start {self.start} is not before end")

    @property
    def window(self) -> str:
        return f"{self.start.date()}..{self.end.date()}"


HISTORICAL_SCENARIOS: tuple[HistoricalScenario, ...] = (
    HistoricalScenario(
        "dotcom",
        "Dot-com bust",
        "2000-03-24",
        "2002-10-09",
        "S&P 500 peak close of March 2000 to the October 2002 low",
    ),
    HistoricalScenario(
        "gfc_2008",
        "2008 financial crisis",
        "2008-09-01",
        "2009-03-09",
        "Lehman, AIG and the credit freeze to the March 2009 low",
    ),
    HistoricalScenario(
        "lehman_week",
        "Lehman week",
        "2008-09-12",
        "2008-09-19",
        "Last close before Lehman's filing (15 Sep 2008) to the end of that week",
    ),
    HistoricalScenario(
        "aug_2011",
        "August 2011",
        "2011-07-22",
        "2011-08-10",
        "US debt-ceiling stand-off and S&P's downgrade of US debt",
    ),
    HistoricalScenario(
        "aug_2015",
        "August 2015",
        "2015-08-17",
        "2015-08-25",
        "Yuan devaluation and the 24 August 2015 flash crash",
    ),
    HistoricalScenario(
        "q4_2018",
        "Q4 2018 sell-off",
        "2018-10-01",
        "2018-12-24",
        "Rate-hike and trade-war sell-off to the Christmas Eve low",
    ),
    HistoricalScenario(
        "covid_2020",
        "Feb-Mar 2020 (COVID-19)",
        "2020-02-19",
        "2020-03-23",
        "S&P 500 record close to the pandemic low",
    ),
)


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
            "params": {
                k: (
                    _num(v)
                    if isinstance(v, float)
                    else str(v)
                    if isinstance(v, pd.Timestamp)
                    else v
                )
                for k, v in self.params.items()
            },
            "warnings": list(self.warnings),
        }


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# ------------------------------------------------------------------- validation
def validate_weights(weights, tickers, allow_leverage: bool = False) -> pd.Series:
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
    values = pd.to_numeric(pd.Series(weights.to_numpy(), index=index), errors="coerce")
    bad = values.isna() & pd.Series(weights.to_numpy(), index=index).notna()
    if bad.any():
        raise DataError(f"non-numeric weight for {', '.join(index[bad.to_numpy()])}")
    if values.isna().any():
        raise DataError(
            f"NaN weight for {', '.join(index[values.isna().to_numpy()])}; "
            "every position needs a number (use 0 to hold none)"
        )
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise DataError("infinite weight; weights are fractions of portfolio value")
    known = set(map(str, tickers))
    unknown = [t for t in index if t not in known]
    if unknown:
        sample = ", ".join(list(map(str, tickers))[:5])
        raise DataError(
            f"unknown ticker(s) {', '.join(unknown)}: not in the data "
            f"({len(known)} tickers, e.g. {sample})"
        )
    total = float(values.sum())
    if not allow_leverage and abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise DataError(
            f"weights sum to {total:.8g}; they must sum to 1 (within "
            f"{WEIGHT_TOLERANCE:g}): divide them by their sum if they are relative "
            "sizes (a leveraged book needs allow_leverage=True in Python)"
        )
    if not np.abs(values).sum() > 0:
        raise DataError("every weight is zero; the portfolio holds nothing")
    return values.astype("float64")


def _as_frame(data, what: str) -> pd.DataFrame:
    if isinstance(data, MarketData):
        return data.returns() if what == "returns" else data.adj_close
    if isinstance(data, pd.DataFrame):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise DataError("a returns frame needs a DatetimeIndex of trading dates")
        if not data.index.is_monotonic_increasing or data.index.has_duplicates:
            raise DataError("a returns frame's dates must be sorted and unique")
        frame = data.astype("float64")
        return frame if what == "returns" else price_index_from_returns(frame)
    raise DataError(f"expected MarketData or a returns DataFrame (got {type(data).__name__})")


def price_index_from_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """A price index (1.0 the day before each ticker's first return) from simple returns.

    NaN before that day; a NaN return after the first one keeps the price unchanged.
    """
    seen = returns.notna().cummax()
    listed = seen | seen.shift(-1, fill_value=False)
    # returns before the first one are filled with 0, so the index is exactly 1.0 there
    return (1.0 + returns.fillna(0.0)).cumprod().where(listed)


def _sectors(data, tickers, sectors) -> pd.Series:
    known = dict(getattr(data, "sectors", {}) or {})
    known.update(sectors or {})
    return pd.Series({t: known.get(t) or UNKNOWN_SECTOR for t in tickers}, dtype="object")


# -------------------------------------------------------------------- aggregation
def _finish(
    key,
    name,
    kind,
    description,
    w,
    positions,
    value,
    sectors,
    params,
    warns,
    path=None,
    max_drawdown=float("nan"),
) -> ScenarioResult:
    """Add the common columns, the portfolio figure and the sector table."""
    positions.insert(0, "weight", w)
    positions.insert(1, "sector", sectors.reindex(w.index))
    positions.insert(2, "value", value * w)
    covered = positions["return"].notna()
    if not covered.any():
        raise DataError(
            f"scenario '{name}': no position has the data it needs "
            f"({'; '.join(positions['status'])})"
        )
    gross, gross_cov = np.abs(w).sum(), np.abs(w[covered]).sum()
    scale = gross / gross_cov
    if "pnl" not in positions:
        positions["pnl"] = value * w * positions["return"]
    port_ret = float((w[covered] * positions.loc[covered, "return"]).sum() * scale)
    if not covered.all():
        miss = list(w.index[~covered])
        warns = list(warns) + [
            f"{name}: {len(miss)} position(s) missing ({', '.join(miss)}); "
            f"their {1 - gross_cov / gross:.1%} of gross exposure is proxied "
            "by the covered positions"
        ]
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
    by_sector = by_sector.sort_values("pnl", na_position="last")
    return ScenarioResult(
        key=key,
        name=name,
        kind=kind,
        description=description,
        portfolio_return=port_ret,
        pnl=value * port_ret,
        positions=positions,
        by_sector=by_sector,
        max_drawdown=max_drawdown,
        path=path,
        covered_weight=float(gross_cov / gross),
        params=params,
        warnings=tuple(warns),
    )


def _max_drawdown(path):
    """Largest peak-to-trough fall as a positive fraction (NaN if the path goes <= 0)."""
    try:
        return max_drawdown(path)
    except DataError:  # a leveraged book can lose more than its value: no drawdown ratio
        return np.nan if isinstance(path, pd.Series) else pd.Series(np.nan, path.columns)


# ---------------------------------------------------------------- historical replay
def replay_window(
    data,
    weights,
    scenario: HistoricalScenario,
    *,
    portfolio_value: float = 1.0,
    sectors: dict | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """Replay a real episode on today's positions, held without trading.

    Parameters
    ----------
    data : MarketData or DataFrame
        Adjusted closes are used (dividends reinvested, splits neutral); a returns frame
        is compounded into a price index.
    weights : Series
        Ticker -> weight at the start of the window.
    scenario : HistoricalScenario
    portfolio_value : float
        Portfolio value at the start; P&L is in its currency.
    sectors : dict, optional
        Ticker -> GICS sector (added to ``data.sectors``).

    Returns
    -------
    ScenarioResult
        Per position ``return = P_end / P_base - 1`` (adjusted close, base the last
        close on or before ``start``), ``pnl = value * w * return`` and the position's
        ``max_drawdown`` in the window (positive fraction); the portfolio path
        ``V_t = 1 + sum_i w_i (P_i,t / P_i,base - 1)`` (buy and hold) and its maximum
        drawdown.

    Raises
    ------
    DataError
        The window is not inside the data's dates (names the scenario and the data's
        range), or bad weights.
    """
    prices = _as_frame(data, "prices")
    w = validate_weights(weights, prices.columns, allow_leverage)
    idx = prices.index
    if len(idx) == 0 or idx[0] > scenario.start or idx[-1] < scenario.end:
        covers = f"{idx[0].date()} to {idx[-1].date()}" if len(idx) else "no dates"
        raise DataError(
            f"scenario '{scenario.name}' ({scenario.window}) is outside the data, "
            f"which covers {covers}"
        )
    lo = idx.searchsorted(scenario.start, side="right") - 1
    hi = idx.searchsorted(scenario.end, side="right") - 1
    window = prices.iloc[lo : hi + 1][w.index]
    base = window.iloc[0]
    missing = base.isna()
    gaps = window.isna().sum().where(~missing, 0)
    rel = window.ffill() / base
    warns = [
        f"{t}: {int(n)} missing price(s) in the {scenario.name} window, last price carried forward"
        for t, n in gaps.items()
        if n > 0
    ]
    status = pd.Series("ok", index=w.index, dtype="object")
    if missing.any():
        listed = prices[w.index[missing.to_numpy()]].notna().to_numpy()
        for t, has, pos in zip(
            status.index[missing.to_numpy()], listed.any(axis=0), listed.argmax(axis=0), strict=True
        ):
            status[t] = (
                f"missing: not listed until {idx[pos].date()}"
                if has and pos > lo
                else f"missing: no price on {idx[lo].date()}"
            )
    positions = pd.DataFrame(
        {
            "return": rel.iloc[-1] - 1.0,
            "max_drawdown": _max_drawdown(rel),
            "status": status,
        }
    )
    cov = ~missing
    scale = np.abs(w).sum() / np.abs(w[cov]).sum()
    path = 1.0 + ((rel.loc[:, cov] - 1.0) * w[cov]).sum(axis=1) * scale
    path.name = scenario.key
    params = {
        "start": scenario.start.date().isoformat(),
        "end": scenario.end.date().isoformat(),
        "base_date": idx[lo].date().isoformat(),
        "end_date": idx[hi].date().isoformat(),
        "n_days": int(hi - lo),
    }
    return _finish(
        scenario.key,
        scenario.name,
        "historical",
        scenario.description,
        w,
        positions,
        portfolio_value,
        _sectors(data, w.index, sectors),
        params,
        warns,
        path=path,
        max_drawdown=float(_max_drawdown(path)),
    )


def replay_all(
    data,
    weights,
    scenarios: tuple[HistoricalScenario, ...] = HISTORICAL_SCENARIOS,
    *,
    skip_outside: bool = True,
    **kwargs,
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Replay several episodes; those outside the data are skipped (or raise).

    Returns the results and ``{scenario key: why it was skipped}``.
    """
    results, skipped = [], {}
    for scenario in scenarios:
        try:
            results.append(replay_window(data, weights, scenario, **kwargs))
        except DataError as exc:
            if not skip_outside or "is outside the data" not in str(exc):
                raise
            skipped[scenario.key] = str(exc)
    return results, skipped


# ------------------------------------------------------------------ market betas
def equal_weight_market(returns: pd.DataFrame) -> pd.Series:
    """Equal-weight universe proxy: each day the mean return of the tickers trading."""
    if returns.shape[1] < 2:
        raise DataError(
            f"an equal-weight market proxy needs at least 2 tickers (the data has "
            f"{returns.shape[1]}); pass a market index return series instead"
        )
    return portfolio_returns(returns).rename("market")


def market_crash(
    data,
    weights,
    shock: float = -0.20,
    *,
    market: pd.Series | None = None,
    window: int = 252,
    portfolio_value: float = 1.0,
    sectors: dict | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """An index move propagated through each position's trailing beta.

    ``r_i = beta_i * shock`` and ``r_p = sum_i w_i beta_i shock``, with ``beta_i``
    the OLS beta on the market over the last ``window`` days of the data (every one of
    them must have a return, else the position is missing;
    :func:`mltrainer.measures.portfolio.rolling_beta`).

    Parameters
    ----------
    shock : float
        The market's return (``-0.20`` is a 20% fall).
    market : Series, optional
        Daily simple returns of the market index. Default: the equal-weight mean of
        every ticker in ``data`` (a universe proxy; pass a wide universe for a good one).
    """
    rets = _as_frame(data, "returns")
    w = validate_weights(weights, rets.columns, allow_leverage)
    if not -1.0 <= shock <= 1.0:
        raise ParameterError(f"shock must be a return in [-1, 1] (got {shock}); -0.2 is a 20% fall")
    if market is None:
        proxy, source = equal_weight_market(rets), f"equal-weight mean of {rets.shape[1]} tickers"
    else:
        proxy, source = market.astype(float), str(market.name or "given index")
    tail = rets[w.index].iloc[-window:]
    betas = rolling_beta(tail, proxy, window).iloc[-1]
    status = pd.Series("ok", index=w.index, dtype="object")
    status[betas.isna()] = f"missing: too few returns in the {window}-day beta window"
    positions = pd.DataFrame({"beta": betas, "return": betas * shock, "status": status})
    params = {
        "shock": float(shock),
        "beta_window": int(window),
        "market": source,
        "beta_start": tail.index[0].date().isoformat(),
        "beta_end": tail.index[-1].date().isoformat(),
    }
    return _finish(
        "market_crash",
        f"Market crash {shock:+.0%}",
        "hypothetical",
        f"Market falls {abs(shock):.0%} in a day; each position moves by its {window}-day beta",
        w,
        positions,
        portfolio_value,
        _sectors(data, w.index, sectors),
        params,
        [],
    )


# ------------------------------------------------------------- parametric scenarios
def _trailing_cov(rets: pd.DataFrame, w: pd.Series, window: int, min_periods: int | None):
    """Sample covariance of the complete trailing rows of the positions that have data."""
    min_periods = max(20, window // 2) if min_periods is None else min_periods
    tail = rets[w.index].iloc[-window:]
    counts = tail.notna().sum()
    ok = counts >= min_periods
    complete = tail.loc[:, ok].dropna()
    if ok.any() and len(complete) < min_periods:
        raise DataError(
            f"only {len(complete)} days in the last {window} have a return for every "
            f"position; a covariance needs at least {min_periods}"
        )
    if not ok.any():
        return pd.DataFrame(), counts, tail
    cov = covariance(complete, "sample")
    zero = np.diag(cov.to_numpy()) <= 0
    if zero.any():
        names = ", ".join(complete.columns[zero])
        raise DataError(f"{names}: constant price over the last {window} days (zero variance)")
    return cov, counts, tail


def _parametric_positions(w, cov, counts, window, min_periods, z_scale):
    """Euler contributions ``z * w_i (Sigma w)_i / sigma_p`` of the covered positions."""
    min_periods = max(20, window // 2) if min_periods is None else min_periods
    status = pd.Series("ok", index=w.index, dtype="object")
    miss = ~w.index.isin(cov.index)
    for t in w.index[miss]:
        status[t] = f"missing: {int(counts[t])} returns in the last {window} days (< {min_periods})"
    wc = w.reindex(cov.index) * np.abs(w).sum() / np.abs(w.reindex(cov.index)).sum()
    rc = np.asarray(risk_contributions(wc.to_numpy(), cov))  # sums to sqrt(w' S w)
    vol = float(rc.sum())
    contrib = pd.Series(z_scale * rc, index=cov.index)
    ret = -(contrib / wc).reindex(w.index)
    positions = pd.DataFrame(
        {
            "daily_vol": pd.Series(np.sqrt(np.diag(cov)), cov.index).reindex(w.index),
            "return": ret,
            "status": status,
        }
    )
    return positions, vol, contrib


def _check_confidence(confidence: float, horizon: int) -> float:
    if not 0.5 < confidence < 1.0:
        raise ParameterError(f"confidence must be in (0.5, 1) (got {confidence}); e.g. 0.99")
    if horizon < 1:
        raise ParameterError(f"horizon must be at least 1 day (got {horizon})")
    return float(norm.ppf(confidence) * np.sqrt(horizon))


def volatility_spike(
    data,
    weights,
    multiplier: float = 3.0,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    window: int = 252,
    min_periods: int | None = None,
    portfolio_value: float = 1.0,
    sectors: dict | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """Every volatility multiplied by ``k``, correlations unchanged: scaled parametric VaR.

    ``VaR' = k * z_alpha * sqrt(h) * sqrt(w' Sigma w)``; the scenario P&L is ``-VaR'``,
    split over positions by Euler (component VaR) contributions
    ``k z sqrt(h) w_i (Sigma w)_i / sigma_p``, which sum to ``VaR'``.
    """
    if multiplier <= 0:
        raise ParameterError(f"multiplier must be positive (got {multiplier}); 2-5 is typical")
    rets = _as_frame(data, "returns")
    w = validate_weights(weights, rets.columns, allow_leverage)
    zh = _check_confidence(confidence, horizon)
    cov, counts, tail = _trailing_cov(rets, w, window, min_periods)
    if cov.empty:
        raise DataError(f"volatility spike: no position has {window}-day history")
    positions, vol, _ = _parametric_positions(w, cov, counts, window, min_periods, zh * multiplier)
    params = {
        "multiplier": float(multiplier),
        "confidence": float(confidence),
        "horizon_days": int(horizon),
        "window": int(window),
        "base_vol_annual": vol * np.sqrt(252),
        "stressed_vol_annual": multiplier * vol * np.sqrt(252),
        "base_var": zh * vol,
        "stressed_var": multiplier * zh * vol,
        "cov_start": tail.index[0].date().isoformat(),
        "cov_end": tail.index[-1].date().isoformat(),
    }
    return _finish(
        "volatility_spike",
        f"Volatility x{multiplier:g}",
        "hypothetical",
        f"Every volatility multiplied by {multiplier:g}; loss = {confidence:.0%} "
        f"{horizon}-day parametric VaR",
        w,
        positions,
        portfolio_value,
        _sectors(data, w.index, sectors),
        params,
        [],
    )


def stressed_correlation(corr, push: float) -> np.ndarray:
    """Push a correlation matrix toward all-ones: ``C' = (1 - a) C + a 11'``.

    A convex combination of two PSD matrices with unit diagonal, so ``C'`` is a valid
    correlation matrix whenever ``C`` is; checked (smallest eigenvalue >= -1e-10).
    """
    return _stressed_correlation(corr, push)[0]


def _stressed_correlation(corr, push: float) -> tuple[np.ndarray, float]:
    if not 0.0 <= push <= 1.0:
        raise ParameterError(
            f"correlation push must be in [0, 1] (got {push}); 1 makes every correlation one"
        )
    c = np.asarray(corr, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise DataError(f"a correlation matrix must be square (got shape {c.shape})")
    if not np.allclose(c, c.T, atol=1e-12) or not np.allclose(np.diag(c), 1.0, atol=1e-10):
        raise DataError("a correlation matrix must be symmetric with a unit diagonal")
    out = (1.0 - push) * c + push * np.ones_like(c)
    low = float(np.linalg.eigvalsh(out).min())
    if low < -1e-10:
        raise DataError(
            f"stressed correlation matrix is not positive semi-definite (smallest "
            f"eigenvalue {low:.3g}); the input matrix must be PSD (estimate it from "
            "complete rows)"
        )
    return out, low


def correlation_breakdown(
    data,
    weights,
    push: float = 0.5,
    *,
    confidence: float = 0.99,
    horizon: int = 1,
    window: int = 252,
    min_periods: int | None = None,
    portfolio_value: float = 1.0,
    sectors: dict | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """Diversification fails: correlations pushed toward one, volatilities unchanged.

    ``Sigma' = D C' D`` with ``C' = (1 - a) C + a 11'`` (:func:`stressed_correlation`)
    and ``D = diag(sigma)``; ``sigma_p'^2 = w' Sigma' w = (1 - a) w' Sigma w +
    a (sum_i w_i sigma_i)^2``. The P&L is ``-z sqrt(h) sigma_p'``, split by Euler
    contributions under ``Sigma'``.
    """
    rets = _as_frame(data, "returns")
    w = validate_weights(weights, rets.columns, allow_leverage)
    if len(w) < 2:
        raise DataError(
            f"correlation breakdown needs at least two positions (got {len(w)}: "
            f"{', '.join(w.index)}); one asset has no correlation to stress"
        )
    zh = _check_confidence(confidence, horizon)
    cov, counts, tail = _trailing_cov(rets, w, window, min_periods)
    if len(cov) < 2:
        raise DataError(
            f"correlation breakdown: fewer than two positions have {window}-day history"
        )
    sigma = np.sqrt(np.diag(cov.to_numpy()))
    corr = cov.to_numpy() / np.outer(sigma, sigma)
    np.fill_diagonal(corr, 1.0)
    stressed, low = _stressed_correlation(corr, push)
    cov_s = pd.DataFrame(stressed * np.outer(sigma, sigma), index=cov.index, columns=cov.index)
    positions, vol_s, _ = _parametric_positions(w, cov_s, counts, window, min_periods, zh)
    wc = w.reindex(cov.index) * np.abs(w).sum() / np.abs(w.reindex(cov.index)).sum()
    vol0 = float(np.sqrt(wc.to_numpy() @ cov.to_numpy() @ wc.to_numpy()))
    off = ~np.eye(len(corr), dtype=bool)
    params = {
        "push": float(push),
        "confidence": float(confidence),
        "horizon_days": int(horizon),
        "window": int(window),
        "base_vol_annual": vol0 * np.sqrt(252),
        "stressed_vol_annual": vol_s * np.sqrt(252),
        "base_var": zh * vol0,
        "stressed_var": zh * vol_s,
        "mean_corr_before": float(corr[off].mean()),
        "mean_corr_after": float(stressed[off].mean()),
        "min_eigenvalue": low,
        "cov_start": tail.index[0].date().isoformat(),
        "cov_end": tail.index[-1].date().isoformat(),
    }
    return _finish(
        "correlation_breakdown",
        f"Correlations +{push:.0%} toward 1",
        "hypothetical",
        f"Every correlation pushed {push:.0%} of the way to one; loss = "
        f"{confidence:.0%} {horizon}-day parametric VaR",
        w,
        positions,
        portfolio_value,
        _sectors(data, w.index, sectors),
        params,
        [],
    )


# ------------------------------------------------------------------ liquidity crisis
def liquidity_haircut(
    position_value,
    adv_dollars,
    daily_vol,
    *,
    participation: float = 0.10,
    spread_bps: float = 10.0,
    spread_multiplier: float = 5.0,
    impact_coef: float = 1.0,
):
    """Forced-sale cost as a fraction of position value, and the days a sale takes.

    ``days = |value| / (participation * ADV$)`` (ADV$ = average daily dollar volume =
    ADV * price); ``haircut = min(1, spread_bps * m / 2e4 + Y * sigma * sqrt(participation
    * days))``: the stressed half-spread plus the square-root market-impact law
    ``Y sigma sqrt(Q / ADV)`` (Q / ADV = participation * days), which grows with the
    days needed to liquidate.

    Returns
    -------
    (haircut, days) : arrays like the inputs
    """
    if not 0.0 < participation <= 1.0:
        raise ParameterError(
            f"participation must be in (0, 1] (got {participation}); it is the "
            "share of daily volume a forced seller can take, e.g. 0.1"
        )
    if spread_bps < 0 or spread_multiplier < 0 or impact_coef < 0:
        raise ParameterError("spread_bps, spread_multiplier and impact_coef must be >= 0")
    value = np.abs(np.asarray(position_value, dtype=float))
    adv = np.asarray(adv_dollars, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.where(adv > 0, value / (participation * adv), np.where(value > 0, np.inf, 0.0))
    days = np.where(np.isnan(adv) | np.isnan(value), np.nan, days)
    impact = impact_coef * np.asarray(daily_vol, dtype=float) * np.sqrt(participation * days)
    haircut = np.minimum(1.0, spread_bps * spread_multiplier / 2e4 + impact)
    return haircut, days


def liquidity_crisis(
    data: MarketData,
    weights,
    *,
    portfolio_value: float = 1_000_000.0,
    spread_bps: float = 10.0,
    spread_multiplier: float = 5.0,
    participation: float = 0.10,
    impact_coef: float = 1.0,
    adv_window: int = 20,
    vol_window: int = 60,
    sectors: dict | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """Forced liquidation of the whole book with spreads widened ``spread_multiplier`` times.

    Per position: ADV$ = mean(close * volume) over the last ``adv_window`` days (both
    as traded, so splits cancel), daily volatility from the last ``vol_window`` returns,
    then :func:`liquidity_haircut`. P&L ``= -|value| * haircut``. The cost depends on
    the portfolio's size, so ``portfolio_value`` is in currency (default 1,000,000).
    """
    if not isinstance(data, MarketData) or not data.has_volume:
        source = f"source '{data.source}'" if isinstance(data, MarketData) else "a returns frame"
        raise DataError(
            f"the liquidity scenario needs traded volume, which {source} does not "
            "have; use the local or a live source"
        )
    if portfolio_value <= 0:
        raise ParameterError(f"portfolio_value must be positive (got {portfolio_value})")
    w = validate_weights(weights, data.tickers, allow_leverage)
    dollar = (data.close[w.index] * data.volume[w.index]).iloc[-adv_window:]
    adv = dollar.mean().where(dollar.notna().sum() >= max(1, adv_window // 2))
    vol = data.returns()[w.index].iloc[-vol_window:]
    sigma = vol.std(ddof=1).where(vol.notna().sum() >= max(2, vol_window // 2))
    value = portfolio_value * w
    haircut, days = liquidity_haircut(
        value,
        adv,
        sigma,
        participation=participation,
        spread_bps=spread_bps,
        spread_multiplier=spread_multiplier,
        impact_coef=impact_coef,
    )
    normal, _ = liquidity_haircut(
        value,
        adv,
        sigma,
        participation=participation,
        spread_bps=spread_bps,
        spread_multiplier=1.0,
        impact_coef=impact_coef,
    )
    haircut = pd.Series(haircut, index=w.index)
    status = pd.Series("ok", index=w.index, dtype="object")
    status[adv.isna() | sigma.isna()] = (
        f"missing: too little volume/price history in the last {max(adv_window, vol_window)} days"
    )
    ret = (-haircut * np.sign(w)).where(status == "ok")
    warns = [
        f"{t}: no traded volume in the last {adv_window} days; its forced sale is "
        "assumed to lose the whole position"
        for t in w.index[(adv == 0).to_numpy()]
    ]
    positions = pd.DataFrame(
        {
            "adv_dollars": adv,
            "daily_vol": sigma,
            "days_to_liquidate": pd.Series(days, w.index),
            "haircut": haircut.where(status == "ok"),
            "return": ret,
            "status": status,
        }
    )
    covered = status == "ok"
    params = {
        "spread_bps": float(spread_bps),
        "spread_multiplier": float(spread_multiplier),
        "participation": float(participation),
        "impact_coef": float(impact_coef),
        "adv_window": int(adv_window),
        "vol_window": int(vol_window),
        "normal_cost": float(-(np.abs(value) * normal)[covered.to_numpy()].sum()),
        "max_days_to_liquidate": float(positions["days_to_liquidate"].max()),
    }
    return _finish(
        "liquidity_crisis",
        f"Liquidity crisis (spreads x{spread_multiplier:g})",
        "hypothetical",
        f"Forced sale of every position at {participation:.0%} of daily "
        f"volume, spreads x{spread_multiplier:g}, square-root market impact",
        w,
        positions,
        portfolio_value,
        _sectors(data, w.index, sectors),
        params,
        warns,
    )


# ---------------------------------------------------------------------- summaries
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
