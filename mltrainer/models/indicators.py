"""Classic technical indicators over wide panels (dates x tickers), TA-Lib compatible.

Every function takes wide frames (or Series, or arrays shaped dates x tickers) and
returns the same type and shape, computed for all tickers at once with numpy. Results
equal TA-Lib's (``SMA, EMA, MAX, MIN, LINEARREG_SLOPE, RSI, MACD, STOCH, WILLR, TRANGE,
ATR`` with their default seeding) to floating-point rounding, including TA-Lib's warm-up:
the first ``lookback`` valid rows of each ticker are NaN.

>>> from mltrainer.models import indicators as ind
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

Vectorisation
-------------
Rolling windows (sums, extremes, regression sums) are built by doubling from shifted
whole-array operations: about log2(window) passes, and no running total that could
drift. The recursive smoothers (EMA, Wilder) are first-order linear filters
``y[t] = d * y[t-1] + a * u[t]``, computed for many tickers at once by cutting time into
blocks of ``_BLOCK`` dates: inside a block the filter is one matrix product with a
lower-triangular matrix of powers of ``d`` (one BLAS call for all the blocks of all the
tickers at hand), and the state carried from block to block is a short recursion over
block ends. Each ticker's seed (TA-Lib seeds with the simple mean of the first
``window`` values) is written into the filter input on that ticker's own seed date, so
tickers with different start dates share one pass. Tickers are processed in groups of
about a megabyte per array so that the several passes run in cache; BLAS is held to
one thread meanwhile (these products are memory-bound, see ``_apply``).
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

from functools import lru_cache
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd
from scipy.linalg import blas
from scipy.signal import lfilter
from threadpoolctl import ThreadpoolController

from mltrainer.errors import DataError, ParameterError

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

# Dates per block of the blocked linear filter: 16 keeps the in-block matrix product
# cheap (17 multiply-adds per value, and a shape BLAS handles fast) while the carry
# recursion has only T/16 steps.
_BLOCK = 16
# Bytes per input array in one block of tickers (see _apply): small enough that a
# kernel's passes stay in the CPU cache, large enough that numpy calls are not overhead.
_CHUNK_BYTES = 1 << 20
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
def _check_window(name: str, value, low: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= low
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(f"{name} must be an integer >= {low} (got {value!r})")
    return int(value)


def _to_rows(x, name: str) -> np.ndarray:
    """Values as a C-contiguous float64 array shaped (tickers, dates)."""
    if isinstance(x, (pd.DataFrame, pd.Series)):
        try:  # a plain float64 frame converts without a copy
            arr = x.to_numpy(dtype="float64")
        except (TypeError, ValueError):  # nullable dtypes holding pd.NA
            arr = x.to_numpy(dtype="float64", na_value=np.nan)
        arr = arr.T if isinstance(x, pd.DataFrame) else arr[None, :]
    else:
        arr = np.asarray(x, dtype="float64")
        if arr.ndim == 1:
            arr = arr[None, :]
        elif arr.ndim == 2:
            arr = arr.T
        else:
            raise DataError(f"{name} must be 1-D or 2-D (dates x tickers), got {arr.ndim}-D")
    return np.ascontiguousarray(arr)


def _from_rows(rows: np.ndarray, like):
    """Inverse of :func:`_to_rows`: the same type, index and columns as ``like``."""
    if isinstance(like, pd.DataFrame):
        return pd.DataFrame(rows.T, index=like.index, columns=like.columns, copy=False)
    if isinstance(like, pd.Series):
        return pd.Series(rows[0], index=like.index, name=like.name, copy=False)
    like = np.asarray(like)
    return rows[0].copy() if like.ndim == 1 else rows.T


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
        if isinstance(ref, (pd.DataFrame, pd.Series)) and not other.index.equals(ref.index):
            raise DataError(f"{name} and {name0} must share the same dates")
        if isinstance(ref, pd.DataFrame) and not other.columns.equals(ref.columns):
            raise DataError(f"{name} and {name0} must share the same tickers (columns)")


def _valid_runs(arrays: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Joint validity of the inputs: (valid, first, last, special) per ticker row.

    ``special`` marks rows whose valid values are not one unbroken run, or where one
    input has a value just outside the joint run (it would leak into lags and windows);
    those are computed separately on their valid values only.
    """
    n, t = arrays[0].shape
    valid = ~np.isnan(arrays[0])
    for a in arrays[1:]:
        valid &= ~np.isnan(a)
    has = valid.any(axis=1)
    first = np.where(has, valid.argmax(axis=1), t)
    last = np.where(has, t - 1 - valid[:, ::-1].argmax(axis=1), -1)
    special = has & (np.count_nonzero(valid, axis=1) != last - first + 1)
    if len(arrays) > 1:
        rows = np.arange(n)
        before, after = np.maximum(first - 1, 0), np.minimum(last + 1, t - 1)
        for a in arrays:
            special |= has & (first > 0) & ~np.isnan(a[rows, before])
            special |= has & (last < t - 1) & ~np.isnan(a[rows, after])
    return valid, first, last, special


def _apply(kernel, named: dict, n_out: int):
    """Run ``kernel`` on each ticker's valid rows; return ``n_out`` panels like the input.

    ``kernel(rows, first, last)`` receives (tickers, dates) arrays whose NaNs lie only
    before ``first`` or after ``last`` (each row's first and last valid index) and
    returns a tuple of ``n_out`` arrays of the same shape.

    Tickers are processed in blocks of about ``_CHUNK_BYTES`` per array, so that the
    several passes of a kernel run on data still in cache (the kernels are independent
    per ticker; each block is vectorised over its tickers).
    """
    _check_aligned(named)
    like = next(iter(named.values()))
    arrays = [_to_rows(v, k) for k, v in named.items()]
    n, t = arrays[0].shape
    step = max(1, _CHUNK_BYTES // (8 * max(t, 1)))
    outs = [np.empty((n, t)) for _ in range(n_out)]
    # The recursions' tall, 16-column matrix products are memory-bound: one BLAS thread
    # does them as fast as several, and a threaded BLAS on a busy machine is many times
    # slower (set once here, not per block: switching costs ~0.1 ms).
    with _blas_controller().limit(limits=1, user_api="blas"):
        _apply_blocks(kernel, arrays, outs, step)
    results = tuple(_from_rows(o, like) for o in outs)
    return results if n_out > 1 else results[0]


def _apply_blocks(kernel, arrays: list, outs: list, step: int) -> None:
    n = arrays[0].shape[0]
    for lo in range(0, n, step):
        part = [a[lo: lo + step] for a in arrays]
        valid, first, last, special = _valid_runs(part)
        for o, r in zip(outs, kernel(part, first, last), strict=True):
            o[lo: lo + step] = r
        # A loop over tickers, but only over the few with gaps inside their history (5
        # of the 504 S&P 500 files): each is compressed to its valid rows and run alone.
        for j in np.flatnonzero(special):
            keep = np.flatnonzero(valid[j])
            zero, end = np.zeros(1, dtype=np.intp), np.full(1, keep.size - 1)
            sub = kernel([a[j, keep][None, :] for a in part], zero, end)
            for o, r in zip(outs, sub, strict=True):
                o[lo + j] = np.nan
                o[lo + j, keep] = r[0]


# ------------------------------------------------------------ numerical kernels
def _rolling_extreme(x: np.ndarray, window: int, op) -> np.ndarray:
    """op (np.maximum/np.minimum) over the trailing ``window`` values, NaN if any is NaN.

    Doubling: extremes over 2, 4, 8, ... values are each one pass over two shifted views
    of the previous level; two overlapping power-of-two windows then cover ``window``
    (about log2(window) + 1 passes instead of ``window``). np.maximum propagates NaN,
    which gives NaN for windows reaching before a ticker's first value.
    """
    if window == 1:
        return x.copy()
    bufs = [np.empty_like(x), np.empty_like(x)]  # ping-pong: no allocation per level
    cur, width, k = x, 1, 0
    while 2 * width <= window:
        nxt = bufs[k % 2]
        nxt[:, :width] = np.nan
        op(cur[:, width:], cur[:, :-width], out=nxt[:, width:])
        cur, width, k = nxt, 2 * width, k + 1
    rest = window - width
    if rest == 0:
        return cur
    out = bufs[k % 2]
    out[:, :rest] = np.nan
    op(cur[:, rest:], cur[:, :-rest], out=out[:, rest:])
    return out


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the trailing ``window`` values; NaN if any of them is NaN.

    Built like :func:`_rolling_extreme` from power-of-two partial sums added at the
    offsets of ``window``'s binary digits (no running total, so no drift over long
    histories).
    """
    if window == 1:
        return x.copy()
    levels = {1: x}
    width = 1
    while 2 * width <= window:
        nxt = np.empty_like(x)
        nxt[:, :width] = np.nan
        np.add(levels[width][:, width:], levels[width][:, :-width], out=nxt[:, width:])
        width *= 2
        levels[width] = nxt
    out = levels.pop(width)
    offset = width
    for w in sorted(levels, reverse=True):
        if offset + w <= window:
            out[:, offset:] += levels[w][:, : x.shape[1] - offset]
            offset += w
    out[:, : window - 1] = np.nan
    return out


def _rolling_moments(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``S_t = sum_i x_{t-i}`` and ``W_t = sum_i i x_{t-i}`` over i = 0..window-1.

    Doubling as in :func:`_rolling_sum`; two adjacent windows (a ending at t, b ending
    at t-a) combine as ``S = S_a + S_b(t-a)``, ``W = W_a + W_b(t-a) + a S_b(t-a)``.
    """
    t = x.shape[1]
    levels = {1: (x, np.zeros_like(x))}
    width = 1
    while 2 * width <= window:
        s_prev, w_prev = levels[width]
        s_new, w_new = np.empty_like(x), np.empty_like(x)
        s_new[:, :width] = np.nan
        w_new[:, :width] = np.nan
        np.add(s_prev[:, width:], s_prev[:, :-width], out=s_new[:, width:])
        np.multiply(s_prev[:, :-width], float(width), out=w_new[:, width:])
        w_new[:, width:] += w_prev[:, width:]
        w_new[:, width:] += w_prev[:, :-width]
        width *= 2
        levels[width] = (s_new, w_new)
    s_out, w_out = (a.copy() for a in levels.pop(width))
    offset = width
    for w in sorted(levels, reverse=True):
        if offset + w <= window:
            s_w, w_w = levels[w]
            w_out[:, offset:] += w_w[:, : t - offset]
            w_out[:, offset:] += offset * s_w[:, : t - offset]
            s_out[:, offset:] += s_w[:, : t - offset]
            offset += w
    s_out[:, : window - 1] = np.nan
    w_out[:, : window - 1] = np.nan
    return s_out, w_out


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded BLAS takes ~10 ms: do it once


@lru_cache(maxsize=64)
def _block_matrices(decay: float, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """In-block matrix (transposed), carry weights ``decay^(i+1)`` and ``decay^B``."""
    i = np.arange(_BLOCK)
    lag = i[:, None] - i[None, :]
    local = np.where(lag >= 0, scale * decay ** np.maximum(lag, 0), 0.0)
    return np.ascontiguousarray(local.T), decay ** (i + 1.0), decay**_BLOCK


def _buffer(rows: int, t: int) -> np.ndarray:
    """Work array for :func:`_smooth`: write the series into ``[:, :t]``."""
    return np.empty((rows, -(-t // _BLOCK) * _BLOCK))


def _smooth(u: np.ndarray, t: int, alpha: float, seed_row: np.ndarray, seed: np.ndarray,
            last: np.ndarray) -> np.ndarray:
    """Exponential smoothing ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])`` seeded per row.

    ``u`` is a :func:`_buffer` holding the series ``x`` in ``u[:, :t]`` (it is used as
    scratch). Row j is NaN before ``seed_row[j]``, equals ``seed[j]`` there, then follows
    the recursion up to ``last[j]`` and is NaN after. With ``seed`` the mean of the first
    n values this is TA-Lib's EMA (alpha = 2/(n+1)) and Wilder's smoothing (alpha = 1/n).
    ``x`` must be finite on ``(seed_row, last]``.

    Time is cut into blocks of ``_BLOCK`` dates. With zero input before the seed row and
    ``seed / alpha`` on it, every ticker starts on its own date, and within a block the
    filter is a matrix product with a lower-triangular matrix of powers of ``1 - alpha``:
    one BLAS call for the whole panel. The state carried into each block is a short
    recursion over the block-end values (``lfilter`` over T/B steps), added back as a
    rank-one update (``dger``).
    """
    m, width = u.shape
    blocks = width // _BLOCK
    local_t, carry_weight, decay_block = _block_matrices(1.0 - alpha, alpha)
    ok = seed_row <= last
    # Per-ticker slice writes (O(tickers) Python steps, each touching only the cells it
    # must): cheaper than building and applying a full dates x tickers mask.
    for j in range(m):
        s, e = seed_row[j], last[j]
        if ok[j]:
            u[j, :s] = 0.0
            u[j, s] = seed[j] / alpha
            u[j, e + 1:] = 0.0
        else:
            u[j] = 0.0
    y = u.reshape(m * blocks, _BLOCK) @ local_t  # (single BLAS thread: see _apply)
    if blocks > 1:
        ends = y.reshape(m, blocks, _BLOCK)[:, :-1, -1]
        carry = np.zeros((m, blocks))
        carry[:, 1:] = lfilter([1.0], [1.0, -decay_block], ends, axis=1)
        # y[block, i] += decay^(i+1) * carry[block], in place on y's memory
        y = blas.dger(1.0, carry_weight, carry.ravel(), a=y.T, overwrite_a=1).T
    y = y.reshape(m, width)
    _nan_outside(y, seed_row, last)
    return y[:, :t]


def _nan_outside(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Set ``y[j, :lo[j]]`` and ``y[j, hi[j]+1:]`` to NaN (the whole row if lo > hi).

    Per-ticker slice writes: O(tickers) Python steps touching only those cells, cheaper
    than building and applying a full dates x tickers mask.
    """
    for j in range(y.shape[0]):
        if lo[j] <= hi[j]:
            y[j, : lo[j]] = np.nan
            y[j, hi[j] + 1:] = np.nan
        else:
            y[j] = np.nan


def _first_mean(x: np.ndarray, end: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``x[j, end[j]-window+1 : end[j]+1]`` per row (NaN where out of range)."""
    n, t = x.shape
    out = np.full(n, np.nan)
    rows = np.flatnonzero((end < t) & (end - window + 1 >= 0))
    if rows.size:
        cols = end[rows, None] - window + 1 + np.arange(window)
        vals = x[rows[:, None], cols]
        acc = vals[:, 0].copy()
        for i in range(1, window):  # summed in time order, like TA-Lib's seed loop
            acc += vals[:, i]
        out[rows] = acc / window
    return out


def _ema_rows(x, first, last, window, alpha):
    n, t = x.shape
    u = _buffer(n, t)
    u[:, :t] = x
    seed_row = first + window - 1
    return _smooth(u, t, alpha, seed_row, _first_mean(x, seed_row, window), last)


# ------------------------------------------------------------------ public API
def sma(x: Panel, window: int) -> Panel:
    """Simple moving average over the trailing ``window`` valid values (TA-Lib ``SMA``).

    ``SMA_t = (x_{t-n+1} + ... + x_t) / n``; NaN for each ticker's first n-1 values.
    """
    window = _check_window("window", window)

    def kernel(a, first, last):
        out = _rolling_sum(a[0], window)
        out /= window
        return (out,)

    return _apply(kernel, {"x": x}, 1)


def ema(x: Panel, window: int) -> Panel:
    """Exponential moving average, TA-Lib ``EMA`` seeding.

    ``k = 2 / (n + 1)``; the first value (at each ticker's n-th valid value) is the SMA
    of the first n values, then ``EMA_t = EMA_{t-1} + k (x_t - EMA_{t-1})``.
    """
    window = _check_window("window", window)
    alpha = 2.0 / (window + 1)
    return _apply(lambda a, f, e: (_ema_rows(a[0], f, e, window, alpha),), {"x": x}, 1)


def wilder(x: Panel, window: int) -> Panel:
    """Wilder's smoothing (RMA, SMMA): an EMA with ``alpha = 1/n`` seeded by the first SMA.

    ``W_t = W_{t-1} + (x_t - W_{t-1}) / n = ((n - 1) W_{t-1} + x_t) / n``. This is the
    average inside TA-Lib's ``RSI`` and ``ATR``.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (_ema_rows(a[0], f, e, window, 1.0 / window),), {"x": x}, 1)


def highest(x: Panel, window: int) -> Panel:
    """Maximum of the trailing ``window`` valid values (TA-Lib ``MAX``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (_rolling_extreme(a[0], window, np.maximum),), {"x": x}, 1)


def lowest(x: Panel, window: int) -> Panel:
    """Minimum of the trailing ``window`` valid values (TA-Lib ``MIN``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (_rolling_extreme(a[0], window, np.minimum),), {"x": x}, 1)


def _slope_rows(x, window):
    if window == 1:
        return np.full_like(x, np.nan)
    total, weighted = _rolling_moments(x, window)
    sum_x = window * (window - 1) / 2.0
    sum_xx = window * (window - 1) * (2 * window - 1) / 6.0
    divisor = sum_x * sum_x - window * sum_xx
    # i counts back from t, hence the sign: (n sum(i x) - sum(i) sum(x)) / divisor
    out = np.multiply(weighted, float(window))
    out -= sum_x * total
    out /= divisor
    return out


def linear_regression_slope(x: Panel, window: int) -> Panel:
    """Least-squares slope of the last ``window`` values against time (TA-Lib
    ``LINEARREG_SLOPE``), in units of x per bar.

    ``b_t = sum_k (k - kbar)(x_k - xbar) / sum_k (k - kbar)^2`` over the window's bar
    numbers k; NaN for each ticker's first n-1 values (and for n = 1).
    """
    window = _check_window("window", window)
    return _apply(lambda a, f, e: (_slope_rows(a[0], window),), {"x": x}, 1)


def _rsi_rows(a, first, last, window):
    close = a[0]
    n, t = close.shape
    u = _buffer(2 * n, t)  # rows: gains max(d, 0), then absolute moves |d| = gain + loss
    gains, moves = u[:n, 1:t], u[n:, 1:t]
    np.subtract(close[:, 1:], close[:, :-1], out=gains)
    np.abs(gains, out=moves)
    np.maximum(gains, 0.0, out=gains)
    seed_row = np.concatenate([first, first]) + window
    seed = _first_mean(u, seed_row, window)
    avg = _smooth(u, t, 1.0 / window, seed_row, seed, np.concatenate([last, last]))
    gain, total = avg[:n], avg[n:]  # Wilder is linear: smoothed |d| is G + L
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
    return _apply(lambda a, f, e: _rsi_rows(a, f, e, window), {"close": close}, 1)


def _macd_rows(a, first, last, fast, slow, signal):
    x = a[0]
    n, t = x.shape
    start = first + slow - 1
    # TA-Lib seeds BOTH averages on the slow one's first date: the fast EMA starts from
    # the mean of the `fast` values ending there, not from its own first window.
    emas = []
    for window in (fast, slow):
        u = _buffer(n, t)
        u[:, :t] = x
        emas.append(_smooth(u, t, 2.0 / (window + 1), start, _first_mean(x, start, window),
                            last))
    u = _buffer(n, t)
    line = u[:, :t]
    np.subtract(emas[0], emas[1], out=line)
    seed_row = start + signal - 1
    rows = np.flatnonzero(seed_row <= last)
    at_seed = line[rows, seed_row[rows]]
    sig = _smooth(u, t, 2.0 / (signal + 1), seed_row, _first_mean(line, seed_row, signal), last)
    # _smooth used `u` (the line) as scratch outside the signal's span and on its seed
    # date; TA-Lib starts all three outputs together, so NaN there and restore the seed.
    _nan_outside(line, seed_row, last)
    line[rows, seed_row[rows]] = at_seed
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
    kernel = lambda a, f, e: _macd_rows(a, f, e, fast, slow, signal)  # noqa: E731
    return MACD(*_apply(kernel, {"close": close}, 3))


def _range_position(high, low, close, window, anchor):
    """(close - anchor) / (HH - LL) over ``window`` bars, 0 where the range is 0.

    ``anchor`` is "low" (stochastic) or "high" (Williams %R); NaN in the warm-up.
    """
    hh = _rolling_extreme(high, window, np.maximum)
    ll = _rolling_extreme(low, window, np.minimum)
    num = np.subtract(close, ll if anchor == "low" else hh)
    np.subtract(hh, ll, out=hh)  # the range; NaN stays NaN so where= keeps it
    out = np.zeros_like(num)
    np.divide(num, hh, out=out, where=hh != 0.0)
    return out


def _stoch_rows(a, first, last, fastk, slowk, slowd):
    high, low, close = a
    k = _rolling_sum(_range_position(high, low, close, fastk, "low"), slowk)
    k *= 100.0 / slowk
    d = _rolling_sum(k, slowd)
    d /= slowd
    k[np.isnan(d)] = np.nan  # TA-Lib starts %K with %D
    return k, d


def stochastic(high: Panel, low: Panel, close: Panel, fastk: int = 5, slowk: int = 3,
               slowd: int = 3) -> Stochastic:
    """Slow stochastic oscillator, TA-Lib ``STOCH`` with its default SMA smoothing.

    ``fast %K = 100 (c - LL_n) / (HH_n - LL_n)`` (0 when the range is 0) with HH/LL the
    highest high and lowest low of the last ``fastk`` bars; ``%K = SMA_slowk(fast %K)``;
    ``%D = SMA_slowd(%K)``. Both start at the (fastk + slowk + slowd - 2)-th valid bar.
    """
    fastk = _check_window("fastk", fastk)
    slowk = _check_window("slowk", slowk)
    slowd = _check_window("slowd", slowd)
    named = {"high": high, "low": low, "close": close}
    kernel = lambda a, f, e: _stoch_rows(a, f, e, fastk, slowk, slowd)  # noqa: E731
    return Stochastic(*_apply(kernel, named, 2))


def _willr_rows(a, first, last, window):
    out = _range_position(*a, window, "high")
    out *= 100.0
    return (out,)


def williams_r(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Williams %R, TA-Lib ``WILLR``: ``-100 (HH_n - c) / (HH_n - LL_n)``, in [-100, 0].

    0 when the n-bar range is 0.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f, e: _willr_rows(a, f, e, window), named, 1)


def _true_range_into(out, high, low, close):
    """Write the true range into ``out[:, 1:]`` (column 0, no previous close, is left)."""
    prev = close[:, :-1]
    # max(h, c_prev) - min(l, c_prev) is the largest of h - l, |h - c_prev|,
    # |l - c_prev| and is computed by the same single subtraction TA-Lib picks.
    np.maximum(high[:, 1:], prev, out=out[:, 1:])
    out[:, 1:] -= np.minimum(low[:, 1:], prev)


def true_range(high: Panel, low: Panel, close: Panel) -> Panel:
    """True range, TA-Lib ``TRANGE``: ``max(h, c_prev) - min(l, c_prev)``.

    NaN on each ticker's first bar (no previous close), as in TA-Lib.
    """
    def kernel(a, first, last):
        out = np.empty_like(a[0])
        out[:, 0] = np.nan
        _true_range_into(out, *a)
        return (out,)

    return _apply(kernel, {"high": high, "low": low, "close": close}, 1)


def _atr_rows(a, first, last, window):
    n, t = a[0].shape
    u = _buffer(n, t)
    _true_range_into(u[:, :t], *a)
    seed_row = first + window
    return (_smooth(u, t, 1.0 / window, seed_row, _first_mean(u, seed_row, window), last),)


def atr(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Average true range (Wilder), TA-Lib ``ATR``: Wilder smoothing of the true range.

    Seeded with the mean of the first n true ranges; first value at each ticker's
    (n+1)-th bar.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f, e: _atr_rows(a, f, e, window), named, 1)
