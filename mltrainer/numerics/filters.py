"""Exponential (EMA) and Wilder smoothing of (dates x tickers) arrays.

Both are the first-order linear filter ``y[t] = y[t-1] + alpha (x[t] - y[t-1])``
(``alpha = 2 / (n + 1)`` for an n-day EMA, ``1 / n`` for Wilder's smoothing), run down
every column at once: :func:`scipy.signal.lfilter`, or on a column-major panel the same
recursion in blocks of dates (:func:`first_order`). Each column starts on its own row
from its own seed, TA-Lib's way: the simple mean of the first n values. Rows before a
column's start (a ticker listed mid-sample) and after its stop are NaN.

A NaN inside a column's span would stay in the recursion for good: the caller removes
such gaps first (:mod:`mltrainer.numerics.indicators` runs a ticker with missing bars
on its valid rows only, as TA-Lib would). The recursion reads rows in date order, so
values up to t do not change when later rows are added.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import blas
from scipy.signal import lfilter

# Dates per block of the blocked recursion (_blocked): 16 keeps the in-block product
# cheap (17 multiply-adds per value) while the carried recursion has n / 16 steps.
_STEP = 16

__all__ = [
    "blank_outside",
    "ema",
    "first_order",
    "smooth",
    "valid_span",
    "wilder",
    "window_mean_at",
]


def valid_span(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's first and last True row (``n_rows`` and -1 for a column with none)."""
    n = valid.shape[0]
    has = valid.any(axis=0)
    first = np.where(has, valid.argmax(axis=0), n)
    last = np.where(has, n - 1 - valid[::-1].argmax(axis=0), -1)
    return first, last


def window_mean_at(x: np.ndarray, end: np.ndarray, window: int) -> np.ndarray:
    """Mean of each column's ``window`` values ending at row ``end[j]`` (TA-Lib's seed).

    Summed in date order, like TA-Lib's seed loop; NaN where the window does not fit
    in the rows.
    """
    out = np.full(x.shape[1], np.nan)
    cols = np.flatnonzero((end < x.shape[0]) & (end - window + 1 >= 0))
    if cols.size:
        rows = end[cols] - window + 1
        acc = x[rows, cols]
        for i in range(1, window):
            acc = acc + x[rows + i, cols]
        out[cols] = acc / window
    return out


def blank_outside(y: np.ndarray, start: np.ndarray, stop: np.ndarray) -> None:
    """Set each column of ``y`` to NaN before row ``start[j]`` and after row ``stop[j]``."""
    # per-column slices touch only those cells: cheaper than a full (dates x tickers) mask
    for j in range(y.shape[1]):
        if start[j] <= stop[j]:
            y[: start[j], j] = np.nan
            y[stop[j] + 1 :, j] = np.nan
        else:
            y[:, j] = np.nan


def smooth(
    x: np.ndarray, alpha: float, start: np.ndarray, seed: np.ndarray, stop: np.ndarray
) -> np.ndarray:
    """Exponential smoothing of each column from its own seed row.

    Column j is NaN before ``start[j]``, equals ``seed[j]`` there, then follows
    ``y[t] = (1 - alpha) y[t-1] + alpha x[t]`` up to ``stop[j]`` and is NaN after.
    ``x`` must be finite on ``(start[j], stop[j]]``.

    With ``seed = x[start]`` this is pandas' ``ewm(alpha=alpha, adjust=False).mean()``
    from ``start``; with the mean of the first n values, TA-Lib's EMA and Wilder average.
    """
    blocked = _column_major(x)
    if blocked:  # each ticker's dates as one zero-padded row (see _blocked)
        rows = _padded(x, alpha)
        u = rows[:, : x.shape[0]].T
    else:
        u = np.multiply(x, alpha)
    ok = start <= stop
    for j in range(u.shape[1]):  # zero input outside each span (see blank_outside)
        u[: start[j] + 1 if ok[j] else None, j] = 0.0
        u[stop[j] + 1 :, j] = 0.0
    cols = np.flatnonzero(ok)
    u[start[cols], cols] = seed[cols]
    if blocked:
        y = _blocked(rows, 1.0 - alpha)[:, : x.shape[0]].T
    else:
        y = first_order(u, 1.0 - alpha)
    blank_outside(y, start, stop)
    return y


def first_order(u: np.ndarray, decay: float) -> np.ndarray:
    """``y[t] = decay * y[t-1] + u[t]`` down the rows from ``y[-1] = 0``:
    ``scipy.signal.lfilter([1], [1, -decay], u, axis=0)``.

    A column-major panel (each ticker's dates contiguous, what the indicators hand over)
    takes the blocked form of :func:`_blocked`: on the full panel about twice as fast as
    lfilter's step-by-step loop (EMA ~20 ms against ~40 ms), equal to it up to rounding
    (1e-15 relative); other layouts go to lfilter.
    """
    if _column_major(u):
        return _blocked(_padded(u, 1.0), decay)[:, : u.shape[0]].T
    return lfilter([1.0], [1.0, -decay], u, axis=0)


def _column_major(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.shape[1] > 1 and x.flags.f_contiguous


def _padded(x: np.ndarray, scale: float) -> np.ndarray:
    """``scale * x`` as (tickers, dates) rows, zero-padded to whole blocks of dates."""
    n, k = x.shape
    rows = np.empty((k, -(-n // _STEP) * _STEP))
    np.multiply(x.T, scale, out=rows[:, :n])
    rows[:, n:] = 0.0
    return rows


def _blocked(rows: np.ndarray, decay: float) -> np.ndarray:
    """:func:`first_order` along the rows of a :func:`_padded` (tickers, dates) buffer,
    time cut into blocks of ``_STEP`` dates; returns a buffer of the same shape.

    Inside a block the recursion from a zero start is a product with the lower
    triangular matrix of powers ``decay^(i-j)`` (one BLAS call for every block of every
    ticker); the state carried into block k is the recursion over block ends with
    ``decay^_STEP`` (lfilter over n / _STEP steps), added back times ``decay^(i+1)``.
    """
    k, width = rows.shape
    local_t, powers = _block_matrices(decay)
    y = rows.reshape(-1, _STEP) @ local_t  # (tickers x blocks, _STEP)
    ends = y[:, -1].reshape(k, -1)  # each block's last value, from a zero start
    carry = np.zeros_like(ends)
    carry[:, 1:] = lfilter([1.0], [1.0, -(decay**_STEP)], ends[:, :-1], axis=1)
    # y[block, i] += decay^(i+1) * carry[block]: a rank-one update in place (BLAS dger)
    blas.dger(1.0, powers, carry.ravel(), a=y.T, overwrite_a=1)
    return y.reshape(k, width)


@lru_cache(maxsize=64)
def _block_matrices(decay: float) -> tuple[np.ndarray, np.ndarray]:
    """The in-block matrix (transposed) ``decay^(i-j)`` for i >= j, and ``decay^(i+1)``."""
    lags = np.subtract.outer(np.arange(_STEP), np.arange(_STEP))
    local = np.where(lags >= 0, decay ** np.maximum(lags, 0), 0.0)
    return np.ascontiguousarray(local.T), decay ** np.arange(1.0, _STEP + 1.0)


def _seeded(x: np.ndarray, window: int, alpha: float, start, stop) -> np.ndarray:
    if start is None or stop is None:
        first, last = valid_span(~np.isnan(x))
        start = first + window - 1 if start is None else start
        stop = last if stop is None else stop
    seed = window_mean_at(x, start, window)
    return smooth(x, alpha, start, seed, stop)


def ema(
    x: np.ndarray,
    window: int,
    start: np.ndarray | None = None,
    stop: np.ndarray | None = None,
) -> np.ndarray:
    """TA-Lib's EMA: ``alpha = 2 / (window + 1)``, seeded by the mean of ``window`` values.

    The seed is the mean of the ``window`` values ending at row ``start[j]`` (default:
    each column's ``window``-th valid value); ``stop`` defaults to each column's last
    valid row.
    """
    return _seeded(x, window, 2.0 / (window + 1), start, stop)


def wilder(
    x: np.ndarray,
    window: int,
    start: np.ndarray | None = None,
    stop: np.ndarray | None = None,
) -> np.ndarray:
    """Wilder's smoothing (RMA): :func:`ema` with ``alpha = 1 / window``, seeded the same way."""
    return _seeded(x, window, 1.0 / window, start, stop)
