"""Historical replays: today's positions held through a real market episode.

Each :class:`HistoricalScenario` is a window of adjusted closes; :func:`replay_window`
holds the book through it without trading (buy and hold from the close of the first
day) and :func:`replay_all` runs the catalogue :data:`HISTORICAL_SCENARIOS`, skipping
the episodes the data does not cover (outside its dates, or before any position was
listed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.portfolio import max_drawdown
from mltrainer.risk_stress.base import (
    Book,
    NotCovered,
    ScenarioData,
    ScenarioResult,
    Weights,
    aggregate,
    price_frame,
)


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
        """``start..end`` as ISO dates."""
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


def replay_window(
    data: ScenarioData,
    weights: Weights,
    scenario: HistoricalScenario,
    *,
    portfolio_value: float = 1.0,
    sectors: Mapping[str, str] | None = None,
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
    allow_leverage : bool
        Accept weights that do not sum to one.

    Returns
    -------
    ScenarioResult
        Per position ``return = P_end / P_base - 1`` (adjusted close, base the last
        close on or before ``start``), ``pnl = value * w * return`` and the position's
        ``max_drawdown`` in the window (positive fraction); the portfolio path
        ``V_t = 1 + sum_i w_i (P_i,t / P_i,base - 1)`` (buy and hold) and its maximum
        drawdown (100% once ``V_t <= 0``, a leveraged or short book that lost it all).

    Raises
    ------
    DataError
        The window is not inside the data's dates (names the scenario and the data's
        range), or bad weights.
    """
    prices = price_frame(data)
    book = Book.of(data, weights, prices.columns, portfolio_value, sectors, allow_leverage)
    w = book.weights
    lo, hi = _window_rows(prices.index, scenario)
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
    positions = pd.DataFrame(
        {
            "return": rel.iloc[-1] - 1.0,
            "max_drawdown": _max_drawdown(rel),
            "status": _status(prices, w.index, missing, lo),
        }
    )
    held = np.abs(w[~missing]).sum() > 0  # else aggregate raises NotCovered
    path = _buy_and_hold_path(rel, w, ~missing, scenario.key) if held else None
    return aggregate(
        book,
        positions,
        key=scenario.key,
        name=scenario.name,
        kind="historical",
        description=scenario.description,
        params=_window_params(scenario, prices.index[lo], prices.index[hi], hi - lo),
        warnings=warns,
        path=path,
        # a path at or below 0 has lost all the book's value: a 100% drawdown, not none
        max_drawdown=float(_max_drawdown(path.clip(lower=0.0))) if path is not None else np.nan,
    )


def _window_rows(idx: pd.DatetimeIndex, scenario: HistoricalScenario) -> tuple[int, int]:
    """Rows of the base close (the last on or before ``start``) and of the last close."""
    if len(idx) == 0 or idx[0] > scenario.start or idx[-1] < scenario.end:
        covers = f"{idx[0].date()} to {idx[-1].date()}" if len(idx) else "no dates"
        if len(idx) == 0 or idx[0] > scenario.end or idx[-1] < scenario.start:
            where = "is outside the data"
        elif idx[-1] < scenario.end:  # part of it is there: the replay needs all of it
            where = "ends after the data (a replay needs the whole window)"
        else:
            where = "starts before the data (a replay needs a close on or before its start)"
        raise NotCovered(
            f"scenario '{scenario.name}' ({scenario.window}) {where}, which covers {covers}"
        )
    lo = idx.searchsorted(scenario.start, side="right") - 1
    hi = idx.searchsorted(scenario.end, side="right") - 1
    return lo, hi


def _window_params(
    scenario: HistoricalScenario, base: pd.Timestamp, last: pd.Timestamp, n_days: int
) -> dict:
    """The scenario's dates, the base and last closes replayed and the days between."""
    return {
        "start": scenario.start.date().isoformat(),
        "end": scenario.end.date().isoformat(),
        "base_date": base.date().isoformat(),
        "end_date": last.date().isoformat(),
        "n_days": int(n_days),
    }


def _status(prices: pd.DataFrame, tickers: pd.Index, missing: pd.Series, lo: int) -> pd.Series:
    """``ok``, or why a position has no base price (not listed yet, or a gap)."""
    status = pd.Series("ok", index=tickers, dtype="object")
    if missing.any():
        idx = prices.index
        listed = prices[tickers[missing.to_numpy()]].notna().to_numpy()
        for t, has, pos in zip(
            status.index[missing.to_numpy()], listed.any(axis=0), listed.argmax(axis=0), strict=True
        ):
            status[t] = (
                f"missing: not listed until {idx[pos].date()}"
                if has and pos > lo
                else f"missing: no price on {idx[lo].date()}"
            )
    return status


def _buy_and_hold_path(rel: pd.DataFrame, w: pd.Series, cov: pd.Series, key: str) -> pd.Series:
    """``1 + sum_i w_i (P_i,t / P_i,base - 1)`` over the covered positions, scaled to the
    whole gross exposure."""
    scale = np.abs(w).sum() / np.abs(w[cov]).sum()
    path = 1.0 + ((rel.loc[:, cov] - 1.0) * w[cov]).sum(axis=1) * scale
    path.name = key
    return path


def _max_drawdown(path: pd.Series | pd.DataFrame) -> float | pd.Series:
    """Largest peak-to-trough fall as a positive fraction (NaN if the path goes <= 0)."""
    try:
        return max_drawdown(path)
    except DataError:  # a leveraged book can lose more than its value: no drawdown ratio
        return np.nan if isinstance(path, pd.Series) else pd.Series(np.nan, path.columns)


def scenario_title(key: str) -> str:
    """A skipped scenario's name for a reader: a historical episode's own ("Dot-com
    bust"), else the shock's key in words ("correlation_breakdown": "Correlation
    breakdown")."""
    names = {s.key: s.name for s in HISTORICAL_SCENARIOS}
    return names.get(key) or key.replace("_", " ").capitalize()


def skipped_reason(key: str, why: str) -> str:
    """``why`` a scenario was skipped, without the name it may start with ("correlation
    breakdown: fewer than two ..." under the title "Correlation breakdown")."""
    head = f"{scenario_title(key).lower()}: "
    return why[len(head) :] if why.lower().startswith(head) else why


def replay_all(
    data: ScenarioData,
    weights: Weights,
    scenarios: tuple[HistoricalScenario, ...] = HISTORICAL_SCENARIOS,
    *,
    skip_outside: bool = True,
    **kwargs: Any,
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Replay several episodes; those the data cannot price for this book (outside its
    dates, or before any position was listed: :class:`NotCovered`) are skipped (or raise).

    ``kwargs`` go to :func:`replay_window` (``portfolio_value``, ``sectors``,
    ``allow_leverage``). Returns the results and ``{scenario key: why it was skipped}``.
    """
    results, skipped = [], {}
    for scenario in scenarios:
        try:
            results.append(replay_window(data, weights, scenario, **kwargs))
        except NotCovered as exc:
            if not skip_outside:
                raise
            skipped[scenario.key] = str(exc)
    return results, skipped
