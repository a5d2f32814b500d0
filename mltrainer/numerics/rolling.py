"""NaN-aware trailing-window maths on (dates x tickers) float arrays.

Every function here works on a 2-D numpy array whose rows are trading dates (oldest
first) and whose columns are tickers, and returns an array of the same shape. A value
at row t uses rows t-n+1..t only (trailing windows), and a window that is not full or
that holds a NaN (or an infinity) gives NaN: a ticker that starts mid-sample, or has a
missing bar, is undefined there rather than silently computed from fewer points.

Sums, means and standard deviations are bottleneck's moving-window kernels
(``min_count=n``): one pass down each column with a running total, faster than
differences of cumulative sums and more accurate (the running total only ever holds
one window, not the whole history); short sums on a row-major panel add a few shifted
copies instead (faster there, see :func:`_moving`). Extremes and window validity are
built by doubling (:func:`running_extreme`), which on this panel is faster than
bottleneck's ``move_min``/``move_max``. Every kernel walks the rows in date order and reads nothing
after row t, so values up to t are bitwise unchanged when later rows are added (the
causality contract).
"""

from __future__ import annotations

from collections.abc import Callable

import bottleneck as bn
import numpy as np
import pandas as pd
from scipy.ndimage import correlate1d

# One implementation, in frames; re-exported for the callers that still read it here.
from mltrainer.numerics.frames import as_array

__all__ = [
    "as_array",
    "bad_windows",
    "causal_split_volume",
    "cross_sectional_rank",
    "cumsum_rows",
    "daily_returns",
    "diff",
    "lag",
    "rolling_corr",
    "rolling_max",
    "rolling_mean",
    "rolling_mean_std",
    "rolling_min",
    "rolling_min_max",
    "rolling_slope",
    "rolling_std",
    "rolling_sum",
    "row_nanmean",
    "row_nanmedian",
    "running_extreme",
    "signed_step",
    "trailing_return",
]


def lag(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` shifted down by ``n`` rows (row t holds row t-n), NaN-filled at the top."""
    out = np.empty_like(x)
    n = min(n, x.shape[0])
    out[:n] = np.nan
    out[n:] = x[: x.shape[0] - n]
    return out


def trailing_return(prices: np.ndarray, window: int, skip: int = 0) -> np.ndarray:
    """Simple return from t-window to t-skip: ``P[t-skip] / P[t-window] - 1``."""
    n = prices.shape[0]
    out = np.full_like(prices, np.nan) if window >= n else np.empty_like(prices)
    if window < n:
        out[:window] = np.nan
        np.divide(prices[window - skip : n - skip], prices[: n - window], out=out[window:])
        out[window:] -= 1.0
    return out


def diff(x: np.ndarray) -> np.ndarray:
    """``x[t] - x[t-1]`` (NaN on the first row), in ``x``'s memory layout.

    Same numbers as ``np.diff(x, axis=0, prepend=np.nan)``, which returns a C-ordered
    array: on a column-major panel every later operation mixing it with the inputs
    would then walk one of them with a stride.
    """
    out = np.empty_like(x)
    out[:1] = np.nan
    np.subtract(x[1:], x[:-1], out=out[1:])
    return out


def daily_returns(prices: np.ndarray) -> np.ndarray:
    """``P[t] / P[t-1] - 1`` (NaN at the first row and around missing bars)."""
    return trailing_return(prices, 1)


def cumsum_rows(x: np.ndarray) -> np.ndarray:
    """Cumulative sum down the rows, in place on ``x`` (a fresh array).

    Either way the additions run in date order, so the result is bitwise what
    ``np.cumsum(x, axis=0)`` gives. A column-major panel is summed by numpy's
    accumulate, which runs down each contiguous column; on a C-ordered one (what
    ``load_local`` gives) adding whole rows is about twice as fast (~40 ms less on the
    full panel) as numpy's strided walk.
    """
    if x.ndim == 2 and x.flags.f_contiguous and not x.flags.c_contiguous:
        return np.add.accumulate(x, axis=0, out=x)
    for i in range(1, x.shape[0]):
        np.add(x[i - 1], x[i], out=x[i])
    return x


def _finite(x: np.ndarray) -> np.ndarray:
    """``x`` as float64 with +-inf made NaN (no copy when there is none).

    The moving-window kernels would carry an infinity's ``inf - inf`` into every later
    window of the column; as NaN it only voids the windows that hold it.
    """
    x = np.asarray(x, dtype="float64")
    return np.where(np.isinf(x), np.nan, x) if np.isinf(x).any() else x


def _moving(kernel: Callable, x: np.ndarray, n: int, **kwargs) -> np.ndarray:
    """A bottleneck moving-window ``kernel`` down the rows; NaN unless the window is full."""
    if n < 1:
        raise ValueError(f"a rolling window needs at least one row (got {n})")
    x = _finite(x)
    if n > x.shape[0]:  # bottleneck refuses windows longer than the data
        return np.full(x.shape, np.nan)
    if _short(x, n) and kernel in (bn.move_sum, bn.move_mean):
        # a short window on a row-major panel (what load_local gives): n shifted
        # additions stream through memory, 13-24 ms less on the full panel for n = 3..8
        # than bottleneck's walk down each (strided) column
        out = x.copy()
        for i in range(1, n):
            out[i:] += x[:-i]
        out[: n - 1] = np.nan
        return out if kernel is bn.move_sum else np.divide(out, n, out=out)
    if x.ndim == 2 and not x.flags.c_contiguous:
        # bottleneck returns a row-major array: run it along the rows of the transposed
        # view so that a column-major panel's result stays column-major (the same sums)
        return kernel(x.T, n, min_count=n, axis=1, **kwargs).T
    return kernel(x, n, min_count=n, axis=0, **kwargs)


def _short(x: np.ndarray, n: int) -> bool:
    return n <= 8 and x.ndim == 2 and x.flags.c_contiguous and x.shape[1] > 1


def rolling_sum(x: np.ndarray, n: int, bad: np.ndarray | None = None) -> np.ndarray:
    """Sum over rows t-n+1..t; NaN unless all n values are finite.

    ``bad``: a :func:`bad_windows` mask of further windows to leave undefined (when
    several sums share the validity of another series).
    """
    out = _moving(bn.move_sum, x, n)
    if bad is not None:
        out[bad] = np.nan
    return out


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean over rows t-n+1..t (NaN unless the window is full and finite)."""
    return _moving(bn.move_mean, x, n)


def rolling_std(x: np.ndarray, n: int, ddof: int = 1) -> np.ndarray:
    """Standard deviation over rows t-n+1..t, ``ddof`` as in numpy (1: sample)."""
    if n - ddof <= 0:
        raise ValueError(f"rolling_std needs a window longer than ddof (got n={n})")
    return _moving(bn.move_std, x, n, ddof=ddof)


def rolling_mean_std(x: np.ndarray, n: int, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (``ddof`` as in numpy) over rows t-n+1..t."""
    return rolling_mean(x, n), rolling_std(x, n, ddof)


def rolling_corr(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlation of x and y over rows t-n+1..t (NaN if either is constant).

    From windowed means, ``cov = mean(xy) - mean(x) mean(y)``: precise for series that
    hover around zero (returns, changes of log volume); centre a series that sits far
    from zero (a price level) before passing it.
    """
    x, y = _finite(x), _finite(y)
    x = np.where(np.isnan(y), np.nan, x)  # a window needs both values on every row
    y = np.where(np.isnan(x), np.nan, y)
    mx, my = rolling_mean(x, n), rolling_mean(y, n)
    vx = rolling_mean(x * x, n)
    vx -= mx * mx
    vy = rolling_mean(y * y, n)
    vy -= my * my
    cov = rolling_mean(x * y, n)
    cov -= mx * my
    with np.errstate(invalid="ignore", divide="ignore"):
        # a constant window (zero variance up to rounding) has no defined correlation
        tiny = (vx <= 1e-14 * mx * mx + 1e-300) | (vy <= 1e-14 * my * my + 1e-300)
        out = cov / np.sqrt(vx * vy)
    out[tiny] = np.nan
    return np.clip(out, -1.0, 1.0, out=out)


def rolling_slope(x: np.ndarray, n: int) -> np.ndarray:
    """Least-squares slope of x against its row number over rows t-n+1..t (per row).

    ``b_t = sum_i c_i x_{t-i} / sum_i c_i^2`` with ``c_i = (n - 1) / 2 - i``: one fixed
    set of weights over each trailing window (``scipy.ndimage.correlate1d``, a C loop
    over the whole panel; scipy's ``lfilter`` runs such a filter column by column), exact
    up to one dot product's rounding and with no running total. NaN unless the window is
    full and finite; NaN for n = 1.
    """
    x = _finite(x)
    if n < 2 or n > x.shape[0]:
        return np.full(x.shape, np.nan)
    c = (n - 1) / 2.0 - np.arange(n)
    # the weights reversed and shifted so that row t reads rows t-n+1..t
    # (along the rows of the transposed view for a column-major panel, as in _moving)
    along = 1 if x.ndim == 2 and not x.flags.c_contiguous else 0
    weights = c[::-1] / (c @ c)
    out = correlate1d(
        x.T if along else x, weights, axis=along, mode="constant", origin=(n - 1) // 2
    )
    out = out.T if along else out
    out[: n - 1] = np.nan  # windows reaching before the first row are not full
    return out


def running_extreme(x: np.ndarray, n: int, op: Callable, fill: float | bool) -> np.ndarray:
    """``op`` (``np.maximum``, ``np.minimum``, ``np.logical_or``...) over rows t-n+1..t.

    Doubling: the window of 2w rows ending at t joins the w-row windows ending at t and
    t-w, so about log2(n) + 1 whole-panel passes, each a contiguous streaming ``op`` in
    the array's own layout, alternating between two work arrays (on the full panel 10-35
    ms faster than bottleneck's ``move_max``, which walks each column with per-element
    branches). Rows before the first full window are ``fill``, and ``op`` must give
    ``fill`` when either side is ``fill`` (NaN for the extremes, which also propagate a
    NaN inside a window; True for ``logical_or``). Extremes are exact, so the result does
    not depend on how the windows are joined.
    """
    if n <= 1:
        return x.copy(order="K")
    if n > x.shape[0]:  # no full window at all (and the doubling would outgrow the rows)
        return np.full_like(x, fill)
    bufs = (np.empty_like(x), np.empty_like(x))
    cur, width, k = x, 1, 0
    while 2 * width <= n:
        nxt = bufs[k % 2]
        nxt[:width] = fill
        op(cur[width:], cur[: x.shape[0] - width], out=nxt[width:])
        cur, width, k = nxt, 2 * width, k + 1
    rest = n - width
    if rest:
        nxt = bufs[k % 2]
        nxt[:rest] = fill
        op(cur[rest:], cur[: x.shape[0] - rest], out=nxt[rest:])
        cur = nxt
    return cur


def bad_windows(valid: np.ndarray, n: int) -> np.ndarray:
    """True where the window of rows t-n+1..t is not full or holds an invalid value.

    A running ``or`` of the invalid mask (:func:`running_extreme` on booleans).
    """
    return running_extreme(np.logical_not(valid), n, np.logical_or, True)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Minimum over rows t-n+1..t (NaN if the window is not full and finite)."""
    return running_extreme(_finite(x), n, np.minimum, np.nan)


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Maximum over rows t-n+1..t (NaN if the window is not full and finite)."""
    return running_extreme(_finite(x), n, np.maximum, np.nan)


def rolling_min_max(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rolling_min` and :func:`rolling_max` of the same array."""
    x = _finite(x)
    return running_extreme(x, n, np.minimum, np.nan), running_extreme(x, n, np.maximum, np.nan)


def signed_step(x: np.ndarray, threshold: float) -> np.ndarray:
    """+1 above ``threshold``, -1 below ``-threshold``, 0 between; NaN stays NaN."""
    out = (x > threshold).astype("float64")
    out -= x < -threshold
    out[np.isnan(x)] = np.nan
    return out


def _row_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share their mean rank) within each row; NaN left out.

    Same numbers as pandas ``rank(axis=1, method="average")``, from one argsort: NaN
    sorts last, runs of equal values get the midpoint of their ordinal ranks (so the
    order of equal values within a run does not matter and the sort need not be stable).
    Returns ``(ranks, count of finite values per row as a column)``.
    """
    finite = np.isfinite(x)
    count = finite.sum(axis=1, keepdims=True)
    if np.isinf(x).any():  # +-inf must stay apart from NaN: the general (slower) sort
        order = np.argsort(x, axis=1, kind="stable")
    else:
        # numpy's SIMD quicksort is several times faster on rows without NaN: sort a
        # row-major copy (rows contiguous) with NaN as +inf, which still sorts last
        keys = np.array(x, order="C")
        keys[np.isnan(keys)] = np.inf
        order = np.argsort(keys, axis=1)
    s = np.take_along_axis(x, order, axis=1)
    m = x.shape[1]
    avg = np.empty_like(s)
    avg[:] = np.arange(1.0, m + 1.0)
    tied = np.zeros_like(s, dtype=bool)
    tied[:, 1:] = s[:, 1:] == s[:, :-1]  # equal to the left neighbour (NaN never is)
    rows = np.flatnonzero(tied.any(axis=1))
    if rows.size:  # ties are rare: give the few rows that have them their mean ranks
        st, tr = s[rows], tied[rows]
        pos = np.broadcast_to(np.arange(m), st.shape)
        start = np.maximum.accumulate(np.where(tr, 0, pos), axis=1)
        last = np.ones(st.shape, dtype=bool)
        last[:, :-1] = ~tr[:, 1:]
        end = np.minimum.accumulate(np.where(last, pos, m - 1)[:, ::-1], axis=1)[:, ::-1]
        avg[rows] = (start + end) / 2.0 + 1.0
    avg[np.isnan(s)] = np.nan
    ranks = np.empty_like(x)
    np.put_along_axis(ranks, order, avg, axis=1)
    return ranks, count


def cross_sectional_rank(x: np.ndarray, min_count: int = 2) -> np.ndarray:
    """Each row's values ranked across columns, mapped linearly onto [-1, 1].

    The lowest value of a row gets -1, the highest +1, ties share their average rank
    (pandas ``rank(method="average")``). NaNs are left out of the ranking and stay NaN;
    rows with fewer than ``min_count`` values are NaN (a rank of one name means nothing).
    """
    ranks, count = _row_ranks(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 2.0 * (ranks - 1.0) / (count - 1.0) - 1.0
    out[(count < max(min_count, 2)).ravel()] = np.nan
    return out


def row_nanmedian(x: np.ndarray) -> np.ndarray:
    """Median of each row over its finite values (NaN for an all-NaN row), shape (n, 1).

    One sort per row (NaN last) and the middle of the k finite values; much faster
    than ``np.nanmedian`` on short rows.
    """
    s = np.sort(x, axis=1)
    k = np.isfinite(x).sum(axis=1)
    rows = np.arange(x.shape[0])
    lo = s[rows, np.maximum((k - 1) // 2, 0)]
    hi = s[rows, np.where(k > 0, k // 2, 0)]
    med = np.where(k > 0, 0.5 * (lo + hi), np.nan)
    return med[:, None]


def row_nanmean(x: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite values (NaN for an all-NaN row), shape (n, 1)."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1, keepdims=True)
    total = np.where(finite, x, 0.0).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def causal_split_volume(volume: pd.DataFrame, splits: pd.DataFrame | None) -> np.ndarray:
    """Volume made split-consistent without looking ahead (shares of the first date).

    ``V[t] / prod(split coefficients on days <= t)``: after a 4:1 split the reported
    volume is divided by 4, so volumes before and after are in the same share units.
    Unlike back-adjustment (multiplying earlier volumes by every *later* split), this
    leaves every value up to t unchanged when later rows are added, so cumulative
    quantities such as OBV are causal. Ratios of volumes (relative volume, VWAP weights,
    correlations of volume changes) are identical under either adjustment; only the unit
    of levels differs (a constant factor per ticker). Without a splits frame the volume
    is taken as already consistent (as Yahoo and Polygon report it).
    """
    vol = as_array(volume).copy(order="K")  # keep pandas' layout
    if splits is None:
        return vol
    coef = as_array(splits)
    events = np.isfinite(coef) & (coef > 0) & (coef != 1.0)
    # a loop over split events (a few hundred in 21 years of the S&P 500), each scaling
    # one column from its split day on: far cheaper than a cumulative product of the panel
    for t, j in zip(*np.nonzero(events), strict=True):
        vol[t:, j] /= coef[t, j]
    return vol
