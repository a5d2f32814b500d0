"""Classic technical indicators over wide panels (dates x tickers), TA-Lib compatible.

Every function takes wide frames (or Series, or arrays shaped dates x tickers) and
returns the same shape, computed for all tickers at once with numpy. Results equal
TA-Lib's (``talib.SMA, EMA, RSI, MACD, STOCH, WILLR, TRANGE, ATR`` with their default
"compatibility" seeding) to floating-point rounding, including TA-Lib's warm-up: the
first ``lookback`` valid rows of each ticker are NaN.

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
Rolling windows use shifted whole-panel numpy operations. The recursive smoothers (EMA,
Wilder) are first-order linear filters ``y[t] = d * y[t-1] + a * u[t]``; they are computed
for all tickers at once by cutting time into blocks of ``_BLOCK`` rows: inside a block
the filter is one matrix product with a lower-triangular matrix of powers of ``d``
(a single BLAS call for the whole panel), and the state carried from one block to the
next is a short recursion over block ends. Each ticker's seed (TA-Lib seeds with the
simple mean of the first ``window`` values) is written into the filter input at that
ticker's own seed row, so tickers with different start dates share one pass.

Public API
----------
``sma, ema, wilder, highest, lowest, rsi, macd, stochastic, williams_r, true_range,
atr``. Inputs of several fields (``high, low, close``) must share index and columns.

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
from scipy.signal import lfilter

from mltrainer.errors import DataError, ParameterError

Panel = TypeVar("Panel", pd.DataFrame, pd.Series, np.ndarray)

__all__ = [
    "MACD",
    "Stochastic",
    "atr",
    "ema",
    "highest",
    "lowest",
    "macd",
    "rsi",
    "sma",
    "stochastic",
    "true_range",
    "wilder",
    "williams_r",
]

# Rows per block of the blocked linear filter: 32 keeps the in-block matrix product
# cheap (32 multiply-adds per value) while the carry recursion has only T/32 steps.
_BLOCK = 32
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
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < low:
        raise ParameterError(f"{name} must be an integer >= {low} (got {value!r})")
    return int(value)


def _to_rows(x, name: str) -> np.ndarray:
    """Values as a C-contiguous float64 array shaped (tickers, dates)."""
    if isinstance(x, (pd.DataFrame, pd.Series)):
        # a plain float64 frame converts without a copy; nullable/object dtypes need na_value
        plain = all(d == np.float64 for d in np.atleast_1d(x.dtypes))
        arr = x.to_numpy() if plain else x.to_numpy(dtype="float64", na_value=np.nan)
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


def _apply(kernel, named: dict, n_out: int):
    """Run ``kernel`` on each ticker's valid rows; return ``n_out`` panels like the input.

    ``kernel(rows, first)`` receives (tickers, dates) arrays whose NaNs lie only before
    ``first`` (each row's first valid index) or after the last valid index, and returns
    a tuple of ``n_out`` arrays of the same shape.
    """
    _check_aligned(named)
    like = next(iter(named.values()))
    arrays = [_to_rows(v, k) for k, v in named.items()]
    n, t = arrays[0].shape
    total = arrays[0] if len(arrays) == 1 else sum(arrays[1:], arrays[0])
    valid = ~np.isnan(total)
    has = valid.any(axis=1)
    first = np.where(has, valid.argmax(axis=1), t)
    last = np.where(has, t - 1 - valid[:, ::-1].argmax(axis=1), -1)
    count = np.count_nonzero(valid, axis=1)
    # Rows whose valid values are not one unbroken run, or where one input has a value
    # just outside the joint run (it would leak into lags and windows), are computed
    # separately on their valid values only.
    special = has & (count != last - first + 1)
    if len(arrays) > 1:
        rows = np.arange(n)
        before, after = np.maximum(first - 1, 0), np.minimum(last + 1, t - 1)
        for a in arrays:
            special |= has & (first > 0) & ~np.isnan(a[rows, before])
            special |= has & (last < t - 1) & ~np.isnan(a[rows, after])
    outs = [np.asarray(o, dtype="float64") for o in kernel(arrays, first)]
    # A loop over tickers, but only over the few with gaps inside their history (5 of
    # the 504 S&P 500 files): each is compressed to its valid rows and run alone.
    for j in np.flatnonzero(special):
        keep = np.flatnonzero(valid[j])
        sub = kernel([a[j, keep][None, :] for a in arrays], np.zeros(1, dtype=np.intp))
        for o, s in zip(outs, sub, strict=True):
            o[j] = np.nan
            o[j, keep] = s[0]
    results = tuple(_from_rows(o, like) for o in outs)
    return results if n_out > 1 else results[0]


# ------------------------------------------------------------ numerical kernels
def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """x shifted ``lag`` dates later along axis 1 (NaN-filled)."""
    out = np.empty_like(x)
    out[:, :lag] = np.nan
    out[:, lag:] = x[:, :-lag]
    return out


def _rolling_extreme(x: np.ndarray, window: int, op) -> np.ndarray:
    """op (np.maximum/np.minimum) over the trailing ``window`` values, NaN if any is NaN.

    Doubling: extremes over 1, 2, 4, ... values are combined from two shifted copies of
    the previous level, then two overlapping power-of-two windows cover ``window``
    (log2(window) + 1 passes instead of ``window``). np.maximum propagates NaN, which
    gives NaN for windows reaching before a ticker's first value.
    """
    cur, width = x, 1
    while 2 * width <= window:
        nxt = np.empty_like(x)
        nxt[:, :width] = np.nan
        op(cur[:, width:], cur[:, :-width], out=nxt[:, width:])
        cur, width = nxt, 2 * width
    rest = window - width
    if rest == 0:
        return cur.copy() if cur is x else cur
    out = np.empty_like(x)
    out[:, :rest] = np.nan
    op(cur[:, rest:], cur[:, :-rest], out=out[:, rest:])
    return out


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the trailing ``window`` values; NaN if any of them is NaN.

    Built like :func:`_rolling_extreme` from power-of-two partial sums (no running total,
    so no drift over long histories).
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
    out = levels[width].copy() if levels[width] is x else levels[width]
    offset = width
    for w in sorted(levels, reverse=True):
        if offset + w <= window:
            out[:, : offset + w - 1] = np.nan
            out[:, offset:] += levels[w][:, : x.shape[1] - offset]
            offset += w
    out[:, : window - 1] = np.nan
    return out


@lru_cache(maxsize=64)
def _block_matrices(decay: float, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    i = np.arange(_BLOCK)
    lag = i[:, None] - i[None, :]
    m = np.where(lag >= 0, scale * decay ** np.maximum(lag, 0), 0.0)
    return np.ascontiguousarray(m.T), decay ** (i + 1.0), decay**_BLOCK


def _linear_filter(u: np.ndarray, decay: float, scale: float) -> np.ndarray:
    """``y[t] = decay * y[t-1] + scale * u[t]`` along axis 1 with ``y[-1] = 0``.

    ``u`` is finite, C-contiguous, with a number of columns divisible by ``_BLOCK``.
    Within a block ``y = M u + decay^(i+1) * carry`` (one matrix product for the whole
    panel); the carries are the block-end states, a recursion over blocks.
    """
    n, t = u.shape
    k = t // _BLOCK
    mt, carry_weight, decay_block = _block_matrices(float(decay), float(scale))
    y = (u.reshape(n * k, _BLOCK) @ mt).reshape(n, k, _BLOCK)
    if k > 1:
        ends = lfilter([1.0], [1.0, -decay_block], y[:, :-1, -1], axis=1)
        y[:, 1:, :] += ends[:, :, None] * carry_weight
    return y.reshape(n, t)


def _smooth(x: np.ndarray, alpha: float, start: np.ndarray, lag: int,
            seed: np.ndarray) -> np.ndarray:
    """Exponential smoothing ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])`` seeded per row.

    Row j is NaN before ``start[j] + lag``; there it equals ``seed[j]``; afterwards the
    recursion runs on ``x``. This is TA-Lib's EMA (alpha = 2/(n+1)) and Wilder smoothing
    (alpha = 1/n) when ``seed`` is the mean of the first n values.
    """
    n, t = x.shape
    seed_row = start + lag
    ok = seed_row < t
    padded = -(-t // _BLOCK) * _BLOCK
    u = np.zeros((n, padded))
    np.copyto(u[:, :t], x)
    np.nan_to_num(u, copy=False, nan=0.0)
    rows = np.flatnonzero(ok)
    if rows.size:
        cols = start[rows, None] + np.arange(lag + 1)
        u[rows[:, None], cols] = 0.0
        u[rows, seed_row[rows]] = seed[rows] / alpha
    y = _linear_filter(u, 1.0 - alpha, alpha)[:, :t]
    bad = np.arange(t)[None, :] < np.where(ok, seed_row, t)[:, None]
    bad |= np.isnan(x)
    np.putmask(y, bad, np.nan)
    return y


def _first_mean(x: np.ndarray, start: np.ndarray, offset: int, window: int) -> np.ndarray:
    """Mean of ``x[j, start+offset-window+1 : start+offset+1]`` per row (NaN if short)."""
    n, t = x.shape
    end = start + offset
    ok = end < t
    out = np.full(n, np.nan)
    rows = np.flatnonzero(ok)
    if rows.size:
        cols = end[rows, None] - window + 1 + np.arange(window)
        # summed in time order, like TA-Lib's seed loop
        vals = x[rows[:, None], cols]
        acc = vals[:, 0].copy()
        for i in range(1, window):
            acc += vals[:, i]
        out[rows] = acc / window
    return out


def _ema_rows(x, start, window, alpha):
    seed = _first_mean(x, start, window - 1, window)
    return _smooth(x, alpha, start, window - 1, seed)


# ------------------------------------------------------------------ public API
def sma(x: Panel, window: int) -> Panel:
    """Simple moving average over the trailing ``window`` valid values (TA-Lib ``SMA``).

    ``SMA_t = (x_{t-n+1} + ... + x_t) / n``; NaN for each ticker's first n-1 values.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f: (_rolling_sum(a[0], window) / window,), {"x": x}, 1)


def ema(x: Panel, window: int) -> Panel:
    """Exponential moving average, TA-Lib ``EMA`` seeding.

    ``k = 2 / (n + 1)``; the first value (at each ticker's n-th valid value) is the SMA
    of the first n values, then ``EMA_t = EMA_{t-1} + k (x_t - EMA_{t-1})``.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f: (_ema_rows(a[0], f, window, 2.0 / (window + 1)),), {"x": x}, 1)


def wilder(x: Panel, window: int) -> Panel:
    """Wilder's smoothing (RMA, SMMA): an EMA with ``alpha = 1/n`` seeded by the first SMA.

    ``W_t = W_{t-1} + (x_t - W_{t-1}) / n = ((n - 1) W_{t-1} + x_t) / n``. This is the
    average inside TA-Lib's ``RSI`` and ``ATR``.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f: (_ema_rows(a[0], f, window, 1.0 / window),), {"x": x}, 1)


def highest(x: Panel, window: int) -> Panel:
    """Maximum of the trailing ``window`` valid values (TA-Lib ``MAX``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f: (_rolling_extreme(a[0], window, np.maximum),), {"x": x}, 1)


def lowest(x: Panel, window: int) -> Panel:
    """Minimum of the trailing ``window`` valid values (TA-Lib ``MIN``)."""
    window = _check_window("window", window)
    return _apply(lambda a, f: (_rolling_extreme(a[0], window, np.minimum),), {"x": x}, 1)


def _rsi_rows(a, first, window):
    close = a[0]
    n, t = close.shape
    move = np.empty((2 * n, t))
    move[:, 0] = np.nan
    diff = close[:, 1:] - close[:, :-1]
    np.maximum(diff, 0.0, out=move[:n, 1:])
    np.maximum(-diff, 0.0, out=move[n:, 1:])
    start = np.concatenate([first, first]) + 1
    avg = _ema_rows(move, start, window, 1.0 / window)
    gain, total = avg[:n], avg[:n] + avg[n:]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * (gain / total)
    out[np.abs(total) < _TA_ZERO] = 0.0
    np.putmask(out, np.isnan(total), np.nan)
    return (out,)


def rsi(close: Panel, window: int = 14) -> Panel:
    """Relative Strength Index (Wilder), TA-Lib ``RSI``.

    With ``d_t = c_t - c_{t-1}``, ``G`` and ``L`` the Wilder averages of ``max(d, 0)``
    and ``max(-d, 0)`` (seeded by the simple means of the first n moves):
    ``RSI = 100 G / (G + L)``, 0 when ``G + L`` is 0 (a flat window). First value at each
    ticker's (n+1)-th price.
    """
    window = _check_window("window", window)
    return _apply(lambda a, f: _rsi_rows(a, f, window), {"close": close}, 1)


def _macd_rows(a, first, fast, slow, signal):
    x = a[0]
    # TA-Lib seeds BOTH averages on the slow one's first date: the fast EMA starts from
    # the mean of the `fast` values ending there, not from its own first window.
    fast_seed = _first_mean(x, first, slow - 1, fast)
    slow_seed = _first_mean(x, first, slow - 1, slow)
    fast_ema = _smooth(x, 2.0 / (fast + 1), first, slow - 1, fast_seed)
    slow_ema = _smooth(x, 2.0 / (slow + 1), first, slow - 1, slow_seed)
    line = fast_ema - slow_ema
    sig = _ema_rows(line, first + slow - 1, signal, 2.0 / (signal + 1))
    line[np.isnan(sig)] = np.nan
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
    return MACD(*_apply(lambda a, f: _macd_rows(a, f, fast, slow, signal), {"close": close}, 3))


def _stoch_rows(a, first, fastk, slowk, slowd):
    high, low, close = a
    hh = _rolling_extreme(high, fastk, np.maximum)
    ll = _rolling_extreme(low, fastk, np.minimum)
    rng = hh - ll
    with np.errstate(invalid="ignore", divide="ignore"):
        fast_k = (close - ll) / (rng / 100.0)
    fast_k[rng == 0.0] = 0.0
    k = _rolling_sum(fast_k, slowk) / slowk
    d = _rolling_sum(k, slowd) / slowd
    k[np.isnan(d)] = np.nan
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
    return Stochastic(*_apply(lambda a, f: _stoch_rows(a, f, fastk, slowk, slowd), named, 2))


def _willr_rows(a, first, window):
    high, low, close = a
    hh = _rolling_extreme(high, window, np.maximum)
    ll = _rolling_extreme(low, window, np.minimum)
    rng = hh - ll
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (hh - close) / (rng / -100.0)
    out[rng == 0.0] = 0.0
    return (out,)


def williams_r(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Williams %R, TA-Lib ``WILLR``: ``-100 (HH_n - c) / (HH_n - LL_n)``, in [-100, 0].

    0 when the n-bar range is 0.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f: _willr_rows(a, f, window), named, 1)


def _tr_rows(a):
    high, low, close = a
    out = np.empty_like(close)
    out[:, 0] = np.nan
    prev = close[:, :-1]
    # max(h, c_prev) - min(l, c_prev) is the largest of h - l, |h - c_prev|,
    # |l - c_prev| and is computed by the same single subtraction TA-Lib picks.
    np.maximum(high[:, 1:], prev, out=out[:, 1:])
    out[:, 1:] -= np.minimum(low[:, 1:], prev)
    return out


def true_range(high: Panel, low: Panel, close: Panel) -> Panel:
    """True range, TA-Lib ``TRANGE``: ``max(h, c_prev) - min(l, c_prev)``.

    NaN on each ticker's first bar (no previous close), as in TA-Lib.
    """
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f: (_tr_rows(a),), named, 1)


def _atr_rows(a, first, window):
    tr = _tr_rows(a)
    return (_ema_rows(tr, first + 1, window, 1.0 / window),)


def atr(high: Panel, low: Panel, close: Panel, window: int = 14) -> Panel:
    """Average true range (Wilder), TA-Lib ``ATR``: Wilder smoothing of the true range.

    Seeded with the mean of the first n true ranges; first value at each ticker's
    (n+1)-th bar.
    """
    window = _check_window("window", window)
    named = {"high": high, "low": low, "close": close}
    return _apply(lambda a, f: _atr_rows(a, f, window), named, 1)
