"""Classic technical indicators over wide panels (dates x tickers), TA-Lib compatible.

Every function takes wide frames (or Series, or arrays shaped dates x tickers) and
returns the same type and shape, computed for all tickers at once with numpy. Results
equal TA-Lib's (``SMA, EMA, MAX, MIN, LINEARREG_SLOPE, RSI, MACD, STOCH, WILLR, TRANGE,
ATR`` with their default seeding) to floating-point rounding, including TA-Lib's warm-up:
the first ``lookback`` valid rows of each ticker are NaN.

>>> from mltrainer.numerics import indicators as ind
>>> adj = data.adjusted()                      # doctest: +SKIP
>>> rsi = ind.rsi(adj.close, 14)               # doctest: +SKIP
>>> line, signal, hist = ind.macd(adj.close)   # doctest: +SKIP
>>> atr = ind.atr(adj.high, adj.low, adj.close, 14)  # doctest: +SKIP

Use adjusted OHLC (``MarketData.adjusted()``) for anything mixing high/low with the
close, or a split looks like a crash.

Missing values
--------------
Each ticker is computed on its own valid rows, exactly as TA-Lib would be if run on that
column with its missing rows removed: a ticker listed mid-sample (TSLA, 2010) starts its
recursions at its first bar, a ticker that stops early stops, and a date missing inside a
history (a few real files skip a day) gives NaN on that date while the recursion carries
on from the previous valid bar. For functions of several inputs a row is valid when every
input is. All-NaN columns give all-NaN output; too short a history gives NaN, not an
error.

Building blocks
---------------
Windows (sums, extremes, the regression slope) are :mod:`mltrainer.numerics.rolling`;
the recursive averages (EMA, Wilder) are :mod:`mltrainer.numerics.filters`, each
ticker seeded on its own date the way TA-Lib seeds (the simple mean of the first
``window`` values), so tickers with different start dates share one pass. They run on
column-major blocks of about a megabyte of tickers (see ``_apply``).
``bench/bench_indicators.py`` times every function against TA-Lib looping over columns.

Public API
----------
``sma, ema, wilder, highest, lowest, linear_regression_slope, rsi, macd, stochastic,
williams_r, true_range, atr``. Inputs of several fields (``high, low, close``) must
share index and columns.

References
----------
.. [1] Welles Wilder, J. (1978). *New Concepts in Technical Trading Systems*. Trend
   Research. (RSI, ATR, true range, Wilder smoothing.)
.. [2] Appel, G. (2005). *Technical Analysis: Power Tools for Active Investors*. (MACD.)
.. [3] Lane, G. C. (1984). Lane's stochastics. *Technical Analysis of Stocks &
   Commodities*, 2(3).
.. [4] Williams, L. (1979). *How I Made One Million Dollars Last Year Trading
   Commodities*. (Williams %R.)
.. [5] TA-Lib, https://ta-lib.org (``ta_RSI.c``, ``ta_MACD.c``, ``ta_STOCH.c``,
   ``ta_ATR.c``: the seeding rules reproduced here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

from mltrainer.errors import DataError, ParameterError
from mltrainer.numerics import filters
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import as_array
from mltrainer.numerics.threads import single_thread

Panel = TypeVar("Panel", pd.DataFrame, pd.Series, np.ndarray)

__all__ = [
    "MACD",
    "Stochastic",
    "atr",
    "ema",
    "highest",
    "linear_regression_slope",
    "lowest",
    "macd",
    "rsi",
    "sma",
    "stochastic",
    "true_range",
    "wilder",
    "williams_r",
]

# Bytes per input array in one block of tickers (see _apply).
_BLOCK_BYTES = 1 << 20
# TA-Lib's TA_IS_ZERO threshold (RSI of a perfectly flat window is 0, not NaN).
_TA_ZERO = 1e-8


class MACD(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal)."""

    line: Panel
    signal: Panel
    hist: Panel


class Stochastic(NamedTuple):
    """Slow stochastic: %K (smoothed fast %K) and %D (smoothed %K), in [0, 100]."""

    k: Panel
    d: Panel


# ----------------------------------------------------------------- input / output
def _check_window(name: str, value: object, low: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= low
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(f"{name} must be an integer >= {low} (got {value!r})")
    return int(value)


def _to_panel(x: Panel, name: str) -> np.ndarray:
    """Values as a float64 array shaped (dates, tickers), without a copy where possible."""
    if isinstance(x, pd.Series):
        return as_array(x.to_frame())
    arr = as_array(x)
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name} must be 1-D or 2-D (dates x tickers), got {arr.ndim}-D")
    return arr


def _from_panel(values: np.ndarray, like: Panel) -> Panel:
    """Inverse of :func:`_to_panel`: the same type, index and columns as ``like``."""
    if isinstance(like, pd.DataFrame):
        return pd.DataFrame(values, index=like.index, columns=like.columns, copy=False)
    if isinstance(like, pd.Series):
        return pd.Series(values[:, 0], index=like.index, name=like.name, copy=False)
    return values[:, 0] if np.ndim(like) == 1 else values


def _check_aligned(named: dict) -> None:
    items = list(named.items())
    name0, ref = items[0]
    for name, other in items[1:]:
        if type(other) is not type(ref) or np.shape(other) != np.shape(ref):
            raise DataError(
                f"{name} and {name0} must be the same kind of object with the same shape "
                f"(got {type(other).__name__} {np.shape(other)} and "
                f"{type(ref).__name__} {np.shape(ref)})"
            )
        if isinstance(ref, pd.DataFrame | pd.Series) and not other.index.equals(ref.index):
            raise DataError(f"{name} and {name0} must share the same dates")
        if isinstance(ref, pd.DataFrame) and not other.columns.equals(ref.columns):
            raise DataError(f"{name} and {name0} must share the same tickers (columns)")


def _valid_runs(arrays: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Joint validity of the inputs: (valid, first, last, special) per ticker column.

    ``special`` marks columns whose valid values are not one unbroken run, or where one
    input has a value just outside the joint run (it would leak into lags and windows);
    those are computed separately on their valid values only.
    """
    n, m = arrays[0].shape
    valid = ~np.isnan(arrays[0])
    for a in arrays[1:]:
        valid &= ~np.isnan(a)
    first, last = filters.valid_span(valid)
    has = last >= 0
    special = has & (np.count_nonzero(valid, axis=0) != last - first + 1)
    if len(arrays) > 1:
        cols = np.arange(m)
        before, after = np.maximum(first - 1, 0), np.minimum(last + 1, n - 1)
        for a in arrays:
            special |= has & (first > 0) & ~np.isnan(a[before, cols])
            special |= has & (last < n - 1) & ~np.isnan(a[after, cols])
    return valid, first, last, special


def _apply(kernel: Callable, named: dict, n_out: int = 1):
    """Run ``kernel`` on each ticker's valid rows; return ``n_out`` panels like the input.

    ``kernel(arrays, first, last)`` receives (dates, tickers) arrays whose NaNs lie only
    before ``first`` or after ``last`` (each column's first and last valid row) and
    returns a tuple of ``n_out`` fresh arrays of the same shape.
    """
    _check_aligned(named)
    like = next(iter(named.values()))
    arrays = [_to_panel(v, k) for k, v in named.items()]
    n, m = arrays[0].shape
    # Blocks of tickers, column-major (each ticker's dates contiguous, as the windows
    # and recursions walk them), small enough that a kernel's several passes stay in
    # the CPU cache: on the full panel RSI and the stochastic take half the time.
    step = max(1, _BLOCK_BYTES // (8 * max(n, 1)))
    outs = [np.empty((n, m), order="F") for _ in range(n_out)]
    with single_thread():  # the small in-block products gain nothing from threads
        for lo in range(0, m, step):
            block = [np.asfortranarray(a[:, lo : lo + step]) for a in arrays]
            for o, r in zip(outs, _run(kernel, block), strict=True):
                o[:, lo : lo + step] = r
    results = tuple(_from_panel(o, like) for o in outs)
    return results if n_out > 1 else results[0]


def _run(kernel: Callable, arrays: list) -> tuple:
    """``kernel`` on some tickers; the few with gaps in their history run again alone."""
    valid, first, last, special = _valid_runs(arrays)
    outs = kernel(arrays, first, last)
    # A loop over tickers, but only over the few with gaps inside their history (5 of
    # the 504 S&P 500 files): each is compressed to its valid rows and run alone.
    for j in np.flatnonzero(special):
        keep = np.flatnonzero(valid[:, j])
        start, end = np.zeros(1, dtype=np.intp), np.full(1, keep.size - 1)
        sub = kernel([a[keep, j][:, None] for a in arrays], start, end)
        for o, r in zip(outs, sub, strict=True):
            o[:, j] = np.nan
            o[keep, j] = r[:, 0]
    return outs


# ------------------------------------------------------------------ public API
def sma(x: Panel, window: int) -> Panel:
    """Simple moving average over the trailing ``window`` valid values (TA-Lib ``SMA``).

    ``SMA_t = (x_{t-n+1} + ... + x_t) / n``; NaN for each ticker's first n-1 values.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (rl.rolling_mean(a[0], window),), {"x": x})


def ema(x: Panel, window: int) -> Panel:
    """Exponential moving average, TA-Lib ``EMA`` seeding.

    ``k = 2 / (n + 1)``; the first value (at each ticker's n-th valid value) is the SMA
    of the first n values, then ``EMA_t = EMA_{t-1} + k (x_t - EMA_{t-1})``.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (filters.ema(a[0], window, f + window - 1, e),), {"x": x})


def wilder(x: Panel, window: int) -> Panel:
    """Wilder's smoothing (RMA, SMMA): an EMA with ``alpha = 1/n`` seeded by the first SMA.

    ``W_t = W_{t-1} + (x_t - W_{t-1}) / n = ((n - 1) W_{t-1} + x_t) / n``. This is the
    average inside TA-Lib's ``RSI`` and ``ATR``.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (filters.wilder(a[0], window, f + window - 1, e),), {"x": x})


def highest(x: Panel, window: int) -> Panel:
    """Maximum of the trailing ``window`` valid values (TA-Lib ``MAX``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (rl.rolling_max(a[0], window),), {"x": x})


def lowest(x: Panel, window: int) -> Panel:
    """Minimum of the trailing ``window`` valid values (TA-Lib ``MIN``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (rl.rolling_min(a[0], window),), {"x": x})


def linear_regression_slope(x: Panel, window: int) -> Panel:
    """Least-squares slope of the last ``window`` values against time (TA-Lib
    ``LINEARREG_SLOPE``), in units of x per bar.

    ``b_t = sum_k (k - kbar)(x_k - xbar) / sum_k (k - kbar)^2`` over the window's bar
    numbers k; NaN for each ticker's first n-1 values (and for n = 1).
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (rl.rolling_slope(a[0], window),), {"x": x})


def _rsi(a: list, first: np.ndarray, last: np.ndarray, window: int) -> tuple:
    move = rl.diff(a[0])
    m = move.shape[1]
    # gains, then absolute moves, side by side in the block's layout: smoothed at once
    both = np.empty((move.shape[0], 2 * m), order="F" if move.flags.f_contiguous else "C")
    np.maximum(move, 0.0, out=both[:, :m])
    np.abs(move, out=both[:, m:])
    start, stop = np.tile(first + window, 2), np.tile(last, 2)  # the first n moves seed
    avg = filters.wilder(both, window, start, stop)
    gain, total = avg[:, :m], avg[:, m:]  # Wilder is linear: smoothed |d| is G + L
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.divide(gain, total)
        out *= 100.0
    # TA-Lib: RSI = 0 where G + L is zero (|G + L| < 1e-8, a flat window)
    out[total < _TA_ZERO] = 0.0
    return (out,)


def rsi(close: Panel, window: int = 14) -> Panel:
    """Relative Strength Index (Wilder), TA-Lib ``RSI``.

    With ``d_t = c_t - c_{t-1}``, ``G`` and ``L`` the Wilder averages of ``max(d, 0)``
    and ``max(-d, 0)`` (seeded by the simple means of the first n moves):
    ``RSI = 100 G / (G + L)``, 0 when ``G + L`` is 0 (a flat window). First value at each
    ticker's (n+1)-th price.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: _rsi(a, f, e, window), {"close": close})


def _macd(a: list, first: np.ndarray, last: np.ndarray, fast: int, slow: int, signal: int):
    start = first + slow - 1
    # TA-Lib seeds BOTH averages on the slow one's first date: the fast EMA starts from
    # the mean of the `fast` values ending there, not from its own first window.
    line = filters.ema(a[0], fast, start, last)
    line -= filters.ema(a[0], slow, start, last)
    seed_row = start + signal - 1
    sig = filters.ema(line, signal, seed_row, last)
    filters.blank_outside(line, seed_row, last)  # TA-Lib starts all three together
    return line, sig, line - sig


def macd(close: Panel, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Moving Average Convergence/Divergence, TA-Lib ``MACD``.

    ``line = EMA_fast(c) - EMA_slow(c)``, ``signal = EMA_signal(line)``,
    ``hist = line - signal``. As in TA-Lib both EMAs are seeded on the slow EMA's first
    date (the fast one with the mean of its last ``fast`` values), the signal with the
    mean of the first ``signal`` line values, and all three start together at each
    ticker's (slow + signal - 1)-th value. ``fast`` and ``slow`` are swapped if given
    the wrong way round, like TA-Lib.
    """
    fast = _check_window("fast", fast, 2)
    slow = _check_window("slow", slow, 2)
    signal = _check_window("signal", signal)
    if slow < fast:
        fast, slow = slow, fast
    return MACD(*_apply(lambda a, f, e: _macd(a, f, e, fast, slow, signal), {"close": close}, 3))


def _range_position(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, anchor: str
) -> np.ndarray:
    """(close - anchor) / (HH - LL) over ``window`` bars, 0 where the range is 0.

    ``anchor`` is "low" (stochastic) or "high" (Williams %R); NaN in the warm-up.
    """
    hh = rl.rolling_max(high, window)
    ll = rl.rolling_min(low, window)
    num = np.subtract(close, ll if anchor == "low" else hh)
    np.subtract(hh, ll, out=hh)  # the range; NaN stays NaN so where= keeps it
    out = np.zeros_like(num)
    np.divide(num, hh, out=out, where=hh != 0.0)
    return out


def _stochastic(a: list, fastk: int, slowk: int, slowd: int) -> tuple:
    k = rl.rolling_sum(_range_position(*a, fastk, "low"), slowk)
    k *= 100.0 / slowk
    d = rl.rolling_mean(k, slowd)
    k[np.isnan(d)] = np.nan  # TA-Lib starts %K with %D
    return k, d


def stochastic(
    high: Panel, low: Panel, close: Panel, fastk: int = 5, slowk: int = 3, slowd: int = 3
) -> Stochastic:
    """Slow stochastic oscillator, TA-Lib ``STOCH`` with its default SMA smoothing.

    ``fast %K = 100 (c - LL_n) / (HH_n - LL_n)`` (0 when the range is 0) with HH/LL the
    highest high and lowest low of the last ``fastk`` bars; ``%K = SMA_slowk(fast %K)``;
    ``%D = SMA_slowd(%K)``. Both start at the (fastk + slowk + slowd - 2)-th valid bar.
    """
    fastk = _check_window("fastk", fastk)
    slowk = _check_window("slowk", slowk)
    slowd = _check_window("slowd", slowd)
    named = {"high": high, "low": low, "close": close}
    return Stochastic(*_apply(lambda a, f, e: _stochastic(a, fastk, slowk, slowd), named, 2))


def williams_r(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Williams %R, TA-Lib ``WILLR``: ``-100 (HH_n - c) / (HH_n - LL_n)``, in [-100, 0].

    0 when the n-bar range is 0.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f, e: (100.0 * _range_position(*a, window, "high"),), named)


def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The true range, NaN on the first row (no previous close)."""
    out = np.empty_like(high)
    out[0] = np.nan
    prev = close[:-1]
    # max(h, c_prev) - min(l, c_prev) is the largest of h - l, |h - c_prev|,
    # |l - c_prev| and is computed by the same single subtraction TA-Lib picks.
    np.maximum(high[1:], prev, out=out[1:])
    out[1:] -= np.minimum(low[1:], prev)
    return out


def true_range(high: Panel, low: Panel, close: Panel) -> Panel:
    """True range, TA-Lib ``TRANGE``: ``max(h, c_prev) - min(l, c_prev)``.

    NaN on each ticker's first bar (no previous close), as in TA-Lib.
    """
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f, e: (_true_range(*a),), named)


def atr(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Average true range (Wilder), TA-Lib ``ATR``: Wilder smoothing of the true range.

    Seeded with the mean of the first n true ranges; first value at each ticker's
    (n+1)-th bar.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    kernel = lambda a, f, e: (filters.wilder(_true_range(*a), window, f + window, e),)  # noqa: E731
    return _apply(kernel, named)
