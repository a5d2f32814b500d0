"""The stress report's VaR part: the book's daily returns, today's VaR/ES by every method
and level, and the backtest of the rolling forecasts over the report's range.

A range too short to test a forecast (fewer than :data:`MIN_BACKTEST_DAYS` scored days,
a month's view, say) keeps its VaR/ES, forecasts and exceptions; the Kupiec,
Christoffersen and Basel figures are left out with a warning, since no test on so few
days can accept or reject a forecast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.measures.backtest_var import (
    christoffersen,
    kupiec_pof,
    traffic_light,
    var_exceptions,
)
from mltrainer.measures.portfolio import equity_curve, portfolio_returns
from mltrainer.measures.var import no_forecast_reason, rolling_var_es, var_es

MIN_BACKTEST_DAYS = 20  # scored days below which a forecast is not tested
BACKTEST_COLUMNS = (
    "method",
    "level",
    "days",
    "exceptions",
    "expected",
    "rate",
    "kupiec_lr",
    "kupiec_p",
    "christoffersen_lr_ind",
    "christoffersen_p_ind",
    "conditional_coverage_p",
    "exceptions (250 d)",
    "zone (250 d)",
    "basel_days",
)


def range_start(port: pd.Series, start: object) -> pd.Timestamp:
    """The first date the report shows and scores: ``start`` (or the first return), a
    DataError when the range holds fewer than two returns (no drawdown to speak of)."""
    valid = port.dropna()
    days = valid.index if start is None else valid.index[valid.index >= pd.Timestamp(start)]
    if len(days) < 2:
        since = "the start" if start is None else fmt.date(start)
        raise DataError(
            f"the report's range from {since} holds {fmt.count(len(days), 'day')} of portfolio "
            "returns; at least 2 are needed: widen the dates"
        )
    return port.index[0] if start is None else days[0]


def range_equity(port: pd.Series, first: pd.Timestamp) -> pd.Series:
    """The book's value over the range from ``first``, 1.0 at the close before it (when
    the history has one): the range's drawdowns count its first day's loss, as a book
    held from that close lost it (a range starting on 2020-02-24 began 4% down)."""
    prior = port.index[port.index < first]
    value = equity_curve(port.loc[first:])
    start = pd.Series(1.0, index=prior[-1:], name=value.name)
    return pd.concat([start, value]) if len(prior) else value


def book_returns(data: MarketData, w: pd.Series, var_window: int) -> pd.Series:
    """Daily returns of the book rebalanced to ``w``; a DataError when too few of them
    are there to estimate and test a VaR over ``var_window`` days."""
    port = portfolio_returns(data.returns(), w)
    n_valid = int(port.notna().sum())
    need = var_window + MIN_BACKTEST_DAYS
    if n_valid < need:
        raise DataError(
            f"VaR backtesting needs at least {need} days of portfolio "
            f"returns (the data has {n_valid}, {data.dates[0].date()} to "
            f"{data.dates[-1].date()}); widen --start/--end"
        )
    return port


@dataclass
class VarFigures:
    """Today's VaR/ES per method and level, their rolling backtest (a row per forecast
    with enough scored days), the forecasts and exceptions of the charted method, and
    what the user must be told."""

    table: pd.DataFrame
    backtest: pd.DataFrame
    forecasts: pd.DataFrame
    exceptions: pd.Series
    warnings: list[str] = field(default_factory=list)


def var_figures(
    port: pd.Series,
    s: object,
    first: pd.Timestamp,
    estimate: Callable[[str], pd.DataFrame] | None = None,
) -> VarFigures:
    """VaR/ES from the last ``var_window`` returns, and the backtest of the rolling
    forecasts (estimated on all history before each day, scored from ``first``), for
    every method and level; ``s`` holds the report's settings (``levels``, ``methods``,
    ``var_window``, ``chart_method``, ``portfolio_value``: a ``StressSettings``).
    ``estimate(method)``, when given, stands for :func:`rolling_forecasts` on these
    returns, levels and window (a cache that keeps them); its answer is checked."""
    levels = tuple(float(x) for x in s.levels)
    var_rows, bt_rows, forecasts, exceptions, short = [], [], {}, None, {}
    gaps: dict[tuple[str, float], int] = {}  # (method, level) -> days without a forecast
    none_now: dict[str, int] = {}  # method -> levels without a figure from the last window
    tail = port.dropna().iloc[-s.var_window :]
    for method in s.methods:
        v, e = var_es(tail, list(levels), method)
        if np.isnan(v).any():
            none_now[method] = int(np.isnan(v).sum())
        if estimate is None:
            estimated = rolling_forecasts(port, method, levels, s.var_window)
        else:
            estimated = _checked(estimate(method), port, levels, method)
        for j, level in enumerate(levels):
            var_rows.append(_var_row(method, level, float(v[j]), float(e[j]), s.portfolio_value))
            forecast = estimated["var"].iloc[:, j]
            exc = var_exceptions(port, forecast).loc[first:]
            scored = int(exc.notna().sum())
            missed = unforecast_days(port, forecast, first)
            if missed:
                gaps[method, level] = missed
            if scored >= MIN_BACKTEST_DAYS:
                bt_rows.append(_backtest_row(method, level, exc))
            elif scored or not missed:  # no forecast at all is the gap note's, not the range's
                short[method] = scored
            if method == s.chart_method:
                forecasts[f"{fmt.level(level)} {method}"] = forecast.shift(1).loc[first:]
                if level == max(levels):
                    exceptions = exc
    return VarFigures(
        table=pd.DataFrame(var_rows),
        backtest=pd.DataFrame(bt_rows, columns=list(BACKTEST_COLUMNS)),
        forecasts=pd.DataFrame(forecasts, index=port.loc[first:].index),
        exceptions=exceptions if exceptions is not None else pd.Series(dtype=float),
        warnings=_short_note(short, first, port.index[-1]) + _gap_note(gaps, none_now),
    )


def unforecast_days(port: pd.Series, forecast: pd.Series, first: pd.Timestamp) -> int:
    """Days of the range with a return but no forecast, after the first forecast (a
    method that can refuse a window: Cornish-Fisher outside its domain)."""
    made = forecast.shift(1)
    start = made.first_valid_index()  # before it, the window is still filling
    if start is None:
        return 0
    start = max(start, pd.Timestamp(first)) if first is not None else start
    made, r = made.loc[start:], port.loc[start:]
    return int((made.isna() & r.notna()).sum())


def _gap_note(gaps: dict[tuple[str, float], int], none_now: dict[str, int]) -> list[str]:
    """What the forecasts left out: the days each method and level has no forecast, and
    the methods with no figure from the last window (Cornish-Fisher outside its domain,
    :func:`mltrainer.measures.var.cornish_fisher_valid`)."""
    if not (gaps or none_now):
        return []
    parts = [f"{m}: no VaR/ES from the last window ({n} level(s))" for m, n in none_now.items()]
    parts += [
        f"{m} {lv:.1%}: {fmt.count(n, 'day')} without a forecast" for (m, lv), n in gaps.items()
    ]
    why = no_forecast_reason({*none_now, *(m for m, _ in gaps)})
    return [
        "; ".join(parts) + f" ({why}; those days are not scored, so the backtest covers "
        "fewer days than the other methods')"
    ]


def rolling_forecasts(port: pd.Series, method: str, levels: tuple, var_window: int) -> pd.DataFrame:
    """The rolling one-day VaR/ES forecasts of ``port`` by ``method`` at every level (a
    ``(measure, level)`` column per forecast): one estimation serves all the levels, so
    a page that charts one level and reports two asks for both at once."""
    return rolling_var_es(port, int(var_window), [float(x) for x in levels], method)


def _checked(rolling: pd.DataFrame, port: pd.Series, levels: tuple, method: str) -> pd.DataFrame:
    """``rolling`` when it holds forecasts of ``port`` at ``levels``; a ValueError for a
    cache that handed over another book's or other levels' forecasts."""
    got = tuple(float(x) for x in rolling["var"].columns) if "var" in rolling else ()
    if got != levels or not rolling.index.equals(port.index):
        raise ValueError(
            f"the {method} forecasts given are not for these returns and levels "
            f"(levels {got}, wanted {levels})"
        )
    return rolling


def _short_note(short: dict[str, int], first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
    if not short:
        return []
    days = sorted(set(short.values()))
    held = fmt.count(days[0], "scored day") if len(days) == 1 else "fewer scored days"
    return [
        f"the VaR backtest of {', '.join(short)} is left out: the range "
        f"({fmt.date_range(first, last)}) holds {held}, and at least {MIN_BACKTEST_DAYS} "
        "are needed to test a forecast (Kupiec, Christoffersen, Basel); widen the dates"
    ]


def _var_row(method: str, level: float, var: float, es: float, value: float) -> dict:
    value = float(value)
    return {
        "method": method,
        "level": level,
        "var": var,
        "es": es,
        "var_value": value * var,
        "es_value": value * es,
    }


def _backtest_row(method: str, level: float, exc: pd.Series) -> dict:
    """Kupiec, Christoffersen and the Basel traffic light (over the last 250 scored days,
    ``basel_days`` of them when the range is shorter) of one forecast's exceptions."""
    kup, chris, light = (
        kupiec_pof(exc, level),
        christoffersen(exc, level),
        traffic_light(exc, level),
    )
    return {
        "method": method,
        "level": level,
        "days": kup["n"],
        "exceptions": kup["exceptions"],
        "expected": kup["expected"],
        "rate": kup["rate"],
        "kupiec_lr": kup["lr"],
        "kupiec_p": kup["p_value"],
        "christoffersen_lr_ind": chris["lr_ind"],
        "christoffersen_p_ind": chris["p_value_ind"],
        "conditional_coverage_p": chris["p_value_cc"],
        "exceptions (250 d)": light["exceptions"],
        "zone (250 d)": light["zone"],
        "basel_days": light["n"],
    }
