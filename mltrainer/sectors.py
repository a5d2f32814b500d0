"""Sector baskets, relative strength and the relative rotation graph (RRG).

Pure, vectorised functions over a (dates x tickers) panel: a sector's return is the
(weighted) mean return of its members that have a price that day, computed for every
sector at once as one matrix product with the (tickers x sectors) membership matrix.

Relative rotation graph
-----------------------
Julius de Kempenaer's RRG (RRG Research, 2004-) plots each sector by the trend of its
relative strength against a benchmark (*RS-Ratio*, x axis) and the momentum of that
trend (*RS-Momentum*, y axis), both normalised around 100. The exact JdK formulas are
proprietary; this module uses the usual open approximation, made explicit:

1. relative strength ``rs_t = 100 * P_t / B_t`` (sector level over benchmark level);
2. ``RS-Ratio_t = 100 + (rs_t - mean_w(rs)_t) / std_w(rs)_t``: how many standard
   deviations the relative strength sits above its own ``w``-period moving average;
3. ``roc_t = 100 * (RS-Ratio_t / RS-Ratio_{t-k} - 1)`` (the ratio's rate of change over
   ``k`` periods) and ``RS-Momentum_t = 100 + (roc_t - mean_w(roc)_t) / std_w(roc)_t``.

Means and (sample, ddof=1) standard deviations are trailing, so a point at ``t`` uses
prices up to ``t`` only. Like JdK's published charts the default frequency is weekly
(the last close of each week): daily relative strength is noisy and makes tails that
zig-zag around the centre. A sector is *leading* (ratio > 100, momentum > 100),
*weakening* (> 100, < 100), *lagging* (< 100, < 100) or *improving* (< 100, > 100); a
healthy rotation runs clockwise through those quadrants.

References
----------
J. de Kempenaer, "Relative Rotation Graphs", RRG Research (relativerotationgraphs.com);
the z-score normalisation follows the open re-implementations discussed in
Stocks & Commodities, "Relative Rotation Graphs" (2014).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mltrainer.errors import DataError, ParameterError
from mltrainer.validate import DateLike

UNKNOWN = "Unknown"
QUADRANTS = ("Leading", "Weakening", "Lagging", "Improving")
FREQUENCIES = {"daily": None, "weekly": "W-FRI", "monthly": "M"}


# ------------------------------------------------------------------- sector baskets
def membership_matrix(tickers: Sequence[str] | pd.Index, sectors: Mapping) -> pd.DataFrame:
    """One-hot (tickers x sectors) frame; tickers without a sector go to ``Unknown``."""
    labels = pd.Series([sectors.get(t) or UNKNOWN for t in tickers], index=pd.Index(tickers))
    return pd.get_dummies(labels, dtype="float64").reindex(index=pd.Index(tickers))


def _basket_returns(
    returns: pd.DataFrame, members: pd.DataFrame, weights: pd.Series | None
) -> pd.DataFrame:
    r = returns.to_numpy(dtype="float64", na_value=np.nan)
    alive = np.isfinite(r)
    w = (
        np.ones(r.shape[1])
        if weights is None
        else pd.Series(weights, dtype="float64").reindex(returns.columns).fillna(0.0).to_numpy()
    )
    if np.any(w < 0):
        raise DataError("sector weights must be non-negative (market caps or index weights)")
    m = members.to_numpy(dtype="float64") * w[:, None]
    num = np.where(alive, r, 0.0) @ m
    den = alive.astype("float64") @ m
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return pd.DataFrame(out, index=returns.index, columns=members.columns)


def sector_returns(
    returns: pd.DataFrame, sectors: Mapping, weights: pd.Series | None = None
) -> pd.DataFrame:
    """Daily return of each sector basket (dates x sectors).

    ``r_s,t = Σ_i w_i m_is r_i,t / Σ_i w_i m_is``, the sums over members ``i`` of sector
    ``s`` with a return on ``t`` (a ticker before its first bar or after its last does
    not count, so the basket is rebalanced daily to the live members). ``weights``
    default to equal; pass market caps for a cap-weighted basket. A sector with no live
    member on a date is NaN there.
    """
    if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
        raise DataError(
            "sector_returns needs a (dates x tickers) frame of returns with at least one ticker"
        )
    return _basket_returns(returns, membership_matrix(returns.columns, sectors), weights)


def universe_returns(returns: pd.DataFrame, weights: pd.Series | None = None) -> pd.Series:
    """Daily return of the whole universe (equal- or ``weights``-weighted, live members)."""
    ones = pd.DataFrame(1.0, index=returns.columns, columns=["universe"])
    return _basket_returns(returns, ones, weights)["universe"]


def cumulative_index(
    returns: pd.DataFrame | pd.Series, base: float = 100.0
) -> pd.DataFrame | pd.Series:
    """``base * Π(1 + r)`` from each column's first valid return (NaN before it).

    A missing return inside a column's life counts as 0 (no change), so one gap does
    not cut the rest of the line.
    """
    started = returns.notna().cummax()
    level = base * (1.0 + returns.fillna(0.0)).cumprod()
    return level.where(started)


def period_return(prices: pd.DataFrame, start: DateLike, end: DateLike) -> pd.Series:
    """Each column's return from its last price on or before ``start`` to its last price
    on or before ``end`` (NaN where either is missing)."""
    filled = prices.ffill()
    lo = filled.index.searchsorted(pd.Timestamp(start), side="right") - 1
    hi = filled.index.searchsorted(pd.Timestamp(end), side="right") - 1
    if hi < 0:
        raise DataError(f"no prices on or before {pd.Timestamp(end).date()}")
    first = filled.iloc[max(lo, 0)] if lo >= 0 else pd.Series(np.nan, index=prices.columns)
    return (filled.iloc[hi] / first - 1.0).rename("return")


# ------------------------------------------------------------- relative strength
def relative_strength(
    levels: pd.DataFrame, benchmark: pd.Series, rebase: bool = True
) -> pd.DataFrame:
    """``100 * level / benchmark`` per column; ``rebase`` makes each column start at 100.

    Rising = outperforming the benchmark. The benchmark is aligned on the levels' dates.
    """
    bench = pd.Series(benchmark, dtype="float64").reindex(levels.index)
    rs = 100.0 * levels.div(bench, axis=0)
    if rebase:
        first = rs.apply(lambda c: c.loc[c.first_valid_index()] if c.notna().any() else np.nan)
        rs = 100.0 * rs / first
    return rs


def _zscore(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    roll = frame.rolling(window, min_periods=window)
    sd = roll.std(ddof=1)
    return (frame - roll.mean()) / sd.where(sd > 0)


def _check_windows(window: int, lag: int) -> None:
    if not isinstance(window, (int, np.integer)) or window < 3:
        raise ParameterError(
            f"RRG window must be an integer of at least 3 periods (got "
            f"{window!r}); JdK-style charts use 10-14 weeks"
        )
    if not isinstance(lag, (int, np.integer)) or lag < 1:
        raise ParameterError(f"RRG momentum lag must be a positive integer (got {lag!r})")


def rs_ratio(rs: pd.DataFrame, window: int = 12) -> pd.DataFrame:
    """``100 + (rs - mean_w(rs)) / std_w(rs)`` (trailing ``window`` periods)."""
    _check_windows(window, 1)
    return 100.0 + _zscore(rs, window)


def rs_momentum(ratio: pd.DataFrame, window: int = 12, lag: int = 1) -> pd.DataFrame:
    """``100 + zscore_w(roc_lag(ratio))`` with ``roc = 100 * (ratio / ratio.shift(lag) - 1)``."""
    _check_windows(window, lag)
    roc = 100.0 * (ratio / ratio.shift(lag) - 1.0)
    return 100.0 + _zscore(roc, window)


def resample_levels(levels: pd.DataFrame | pd.Series, freq: str) -> pd.DataFrame | pd.Series:
    """The last row of each period (``freq`` a key of FREQUENCIES), under its real date.

    Points keep the date of the period's last trading day (not the calendar end of the
    period), so the last, possibly partial, week is labelled by the data's last date.
    """
    if freq not in FREQUENCIES:
        raise ParameterError(f"frequency must be one of {', '.join(FREQUENCIES)} (got {freq!r})")
    rule = FREQUENCIES[freq]
    if rule is None:
        return levels
    periods = levels.index.to_period(rule)
    last = ~pd.Index(periods).duplicated(keep="last")
    out = levels.loc[last]
    return out.dropna(how="all") if isinstance(out, pd.DataFrame) else out.dropna()


def quadrant(
    ratio: float | np.ndarray | pd.Series, momentum: float | np.ndarray | pd.Series
) -> np.ndarray:
    """Quadrant name per point (``""`` where either coordinate is NaN)."""
    x = np.asarray(ratio, dtype="float64")
    y = np.asarray(momentum, dtype="float64")
    return np.select(
        [
            (x >= 100) & (y >= 100),
            (x >= 100) & (y < 100),
            (x < 100) & (y < 100),
            (x < 100) & (y >= 100),
        ],
        QUADRANTS,
        default="",
    )


def relative_rotation(
    levels: pd.DataFrame, benchmark: pd.Series, window: int = 12, lag: int = 1, freq: str = "weekly"
) -> pd.DataFrame:
    """RS-Ratio and RS-Momentum of every column against the benchmark (module notes).

    Returns a long frame with columns ``date, sector, rs_ratio, rs_momentum, quadrant``,
    only the points where both coordinates are defined.
    """
    _check_windows(window, lag)
    lv = resample_levels(levels, freq)
    bench = resample_levels(pd.Series(benchmark, dtype="float64"), freq).reindex(lv.index)
    rs = relative_strength(lv, bench, rebase=False)
    ratio = rs_ratio(rs, window)
    mom = rs_momentum(ratio, window, lag)
    long = pd.DataFrame(
        {
            "rs_ratio": ratio.stack(future_stack=True),
            "rs_momentum": mom.stack(future_stack=True),
        }
    ).dropna()
    long.index = long.index.set_names(["date", "sector"])
    long = long.reset_index()
    long["quadrant"] = quadrant(long["rs_ratio"], long["rs_momentum"])
    return long


def rrg_tails(rrg: pd.DataFrame, length: int, end: DateLike | None = None) -> pd.DataFrame:
    """The last ``length`` points of each sector's path up to ``end`` (default: the last)."""
    if length < 1:
        raise ParameterError(f"tail length must be at least 1 point (got {length})")
    frame = rrg if end is None else rrg[rrg["date"] <= pd.Timestamp(end)]
    return (
        frame.sort_values(["sector", "date"])
        .groupby("sector", sort=True)
        .tail(length)
        .reset_index(drop=True)
    )


def trailing_returns(daily: pd.DataFrame, horizons: Mapping) -> pd.DataFrame:
    """Compounded returns over trailing horizons ending on the last date.

    ``horizons`` maps a label to a number of rows (trading days), e.g. ``{"1M": 21}``;
    each cell is ``Π(1 + r) - 1`` over that many last rows of the column. Missing days
    inside the column's life count as flat, but a column that begins inside the span or
    ends before its last row (a sector basket created in 2018-09, or one that ended then)
    would give a shorter return under the horizon's label, so it is NaN. So is a horizon
    longer than ``daily``. Rows = columns of ``daily``, columns = the horizon labels.
    """
    valid = daily.notna().to_numpy()
    n = len(daily)
    began = pd.Series(valid.argmax(axis=0), index=daily.columns)  # row of the first return
    lasts = valid[-1] if n else np.zeros(daily.shape[1], bool)  # a return on the last row
    out = {}
    for label, days in horizons.items():
        if int(days) < 1:
            raise ParameterError(f"horizon {label!r} must be at least one day (got {days})")
        if len(daily) < int(days):
            out[label] = pd.Series(np.nan, index=daily.columns)
            continue
        tail = daily.iloc[-int(days) :]
        growth = (1.0 + tail).prod(min_count=1)
        out[label] = growth.where((began <= n - int(days)) & lasts) - 1.0
    return pd.DataFrame(out)


def sector_performance(returns: pd.DataFrame, sectors: Mapping, horizons: Mapping) -> pd.DataFrame:
    """Equal-weight sector basket returns over trailing horizons (:func:`trailing_returns`
    of :func:`sector_returns`)."""
    return trailing_returns(sector_returns(returns, sectors), horizons)
