"""Swing pivots, support/resistance levels and chart patterns, without look-ahead.

A swing high at bar p is a bar whose high is the highest of the ``order`` bars on each
side. It cannot be known before bar ``p + order`` closes, so every function here reports
a pivot on that CONFIRMATION bar, and anything built from pivots (levels, patterns) uses
only pivots confirmed by the date it is reported on.

Arrays are (dates x tickers) float64, oldest first. Pivots are sparse (about one every
``order`` bars per ticker), so levels and patterns are computed on flat arrays of pivot
events (all tickers together, sorted by ticker then date) with shifted-array logic, and
spread back onto the dates x tickers grid by forward-filling an event index: no Python
loop over tickers or dates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from mltrainer.numerics import rolling as rl

# pattern codes: the sign is the direction of the expected move
DOUBLE_TOP, DOUBLE_BOTTOM = -1, 1
HEAD_SHOULDERS, INVERSE_HEAD_SHOULDERS = -2, 2
PATTERN_NAMES = {
    DOUBLE_TOP: "double top",
    DOUBLE_BOTTOM: "double bottom",
    HEAD_SHOULDERS: "head and shoulders",
    INVERSE_HEAD_SHOULDERS: "inverse head and shoulders",
}


def confirmed_pivots(
    high: np.ndarray, low: np.ndarray, order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (dates x tickers) arrays, True on the bar that CONFIRMS a swing high / low.

    Bar p is a swing high when ``high[p]`` is the maximum of bars p-order..p+order and
    strictly above the ``order`` bars before it (so a flat top counts once, at its first
    bar); swing lows mirror this. The flag is set on bar ``p + order``, the first bar at
    whose close the pivot is known; the pivot's price is ``high[c - order]``. A window
    holding a missing bar gives no pivot.
    """
    t = high.shape[0]
    out = []
    for x, extreme, at_least, beyond in (
        (high, rl.rolling_max, np.greater_equal, np.greater),
        (low, rl.rolling_min, np.less_equal, np.less),
    ):
        flag = np.zeros_like(x, dtype=bool)  # same memory layout as x
        if t > 2 * order:
            cand = x[order : t - order]  # bar p = c - order for c = 2*order .. t-1
            around = extreme(x, 2 * order + 1)[2 * order :]  # c-2*order .. c
            before = extreme(x, order)[order - 1 : t - order - 1]  # p-order..p-1
            with np.errstate(invalid="ignore"):
                hit = at_least(cand, around)
                hit &= beyond(cand, before)
            flag[2 * order :] = hit
        out.append(flag)
    return out[0], out[1]


class PivotEvents(NamedTuple):
    """Confirmed pivots as flat arrays sorted by (ticker, confirmation row, kind)."""

    ticker: np.ndarray  # column index
    row: np.ndarray  # confirmation row
    pivot_row: np.ndarray  # row of the extreme (row - order)
    kind: np.ndarray  # +1 swing high, -1 swing low
    price: np.ndarray


def pivot_events(high: np.ndarray, low: np.ndarray, order: int) -> PivotEvents:
    """The pivots of :func:`confirmed_pivots` as flat events, highs and lows merged."""
    is_high, is_low = confirmed_pivots(high, low, order)
    # nonzero on the transposed flags gives ticker-major order
    th, rh = np.nonzero(is_high.T)
    tl, rl = np.nonzero(is_low.T)
    ticker = np.concatenate([th, tl])
    row = np.concatenate([rh, rl])
    kind = np.concatenate([np.ones(th.size, np.int8), -np.ones(tl.size, np.int8)])
    price = np.concatenate([high[rh - order, th], low[rl - order, tl]])
    # each half is already in (ticker, row) order: a stable sort of one integer key just
    # merges the two runs (lows before highs on a shared bar)
    idx = np.argsort((ticker * high.shape[0] + row) * 2 + (kind > 0), kind="stable")
    return PivotEvents(ticker[idx], row[idx], row[idx] - order, kind[idx], price[idx])


def last_event_index(shape: tuple, ticker: np.ndarray, row: np.ndarray) -> np.ndarray:
    """(dates x tickers) index of the latest event at or before each date, -1 if none.

    Events must be sorted by (ticker, row); several on one (row, ticker) keep the last.
    The result is column-major (each ticker's dates contiguous), so gathers through it
    read each event's data from cache for its run of dates.
    """
    grid = np.full(shape[::-1], -1, dtype=np.int64)  # tickers x dates
    last = last_of_groups(ticker, row)
    grid[ticker[last], row[last]] = last
    return np.maximum.accumulate(grid, axis=1).T


def last_of_groups(ticker: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Indices of the last item of each run of equal (ticker, row) in sorted arrays."""
    if row.size == 0:
        return np.array([], dtype=np.int64)
    next_differs = np.ones(row.size, dtype=bool)
    next_differs[:-1] = (row[1:] != row[:-1]) | (ticker[1:] != ticker[:-1])
    return np.flatnonzero(next_differs)


# ------------------------------------------------------------ support / resistance
def cluster_levels(
    ev: PivotEvents, n_pivots: int, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Price levels from the ``n_pivots`` latest pivots of the ticker, at each event.

    The pool (highs and lows alike: an old resistance is a support once broken) is
    sorted; neighbours within ``tolerance`` (relative) join one cluster (single
    linkage). Returns (levels, touches), each (events x n_pivots): cluster means and
    member counts, NaN / 0 in unused slots.
    """
    k = n_pivots
    e = ev.price.size
    if e == 0:  # no pivot confirmed yet (a short range, a halted price): no level
        return np.full((0, k), np.nan), np.zeros((0, k), np.int64)
    # row i of the windows: events i-k+1 .. i (views, no copy); other tickers' are NaN
    windows = np.lib.stride_tricks.sliding_window_view
    price = windows(np.concatenate([np.full(k - 1, np.nan), ev.price]), k)
    owner = windows(np.concatenate([np.full(k - 1, -1), ev.ticker]), k)
    pool = np.where(owner == ev.ticker[:, None], price, np.nan)
    pool.sort(axis=1)  # NaN last
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = pool[:, 1:] / pool[:, :-1] - 1.0 > tolerance
    cluster = np.concatenate([np.zeros((e, 1), np.int64), np.cumsum(gap, axis=1)], axis=1)
    valid = np.isfinite(pool)
    slot = (np.arange(e)[:, None] * k + cluster)[valid]  # (event, cluster) as one index
    touches = np.bincount(slot, minlength=e * k).reshape(e, k)
    sums = np.bincount(slot, weights=pool[valid], minlength=e * k).reshape(e, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        levels = np.where(touches > 0, sums / np.maximum(touches, 1), np.nan)
    return levels, touches


def nearest_levels(
    close: np.ndarray,
    event_index: np.ndarray,
    levels: np.ndarray,
    touches: np.ndarray,
    min_touches: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest level above (resistance) and below (support) the close, and their touches.

    ``event_index`` maps each (date, ticker) to the latest pivot event known then.
    Returns four (dates x tickers) arrays: support, resistance, support_touches,
    resistance_touches (NaN where there is no such level).
    """
    # keep levels with enough touches, packed to the left: cluster_levels gives them in
    # ascending order, so packing keeps the order
    keep = (touches >= min_touches) & np.isfinite(levels)
    # the width depends on the data seen, but only pads with NaN slots: results do not
    width = max(int(keep.sum(axis=1).max(initial=0)), 1)
    e = levels.shape[0]
    # slot 0 and slot width+1 stay NaN ("no level below/above"), and the extra last
    # row is for dates before a ticker's first event
    order = np.argsort(~keep, axis=1, kind="stable")[:, :width]  # kept ones first
    lev = np.full((e + 1, width + 2), np.nan)
    cnt = np.full((e + 1, width + 2), np.nan)
    lev[:e, 1:-1] = np.where(
        np.take_along_axis(keep, order, 1), np.take_along_axis(levels, order, 1), np.nan
    )
    cnt[:e, 1:-1] = np.where(np.isnan(lev[:e, 1:-1]), np.nan, np.take_along_axis(touches, order, 1))
    # work ticker-major (each ticker's dates contiguous): consecutive gathers then read
    # the same event's levels, from cache
    close = np.ascontiguousarray(close.T)
    event = np.ascontiguousarray(event_index.T)
    event = np.where(event >= 0, event, e)
    below = np.zeros(close.shape, dtype=np.intp)  # how many levels lie under the close
    level = np.empty_like(close)
    under = np.empty(close.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for k in range(1, width + 1):  # a few 2-D passes, no dates x tickers x levels cube
            np.take(np.ascontiguousarray(lev[:, k]), event, out=level)
            np.less(level, close, out=under)
            below += under
        # ascending levels: support is slot `below`, resistance the next one strictly
        # above the close (a level equal to the close is neither)
        sup_at = event * (width + 2)
        sup_at += below
        res_at = sup_at + 1
        res_at += np.take(lev, res_at) == close
    missing = np.isnan(close)
    outs = []
    for values, at in ((lev, sup_at), (lev, res_at), (cnt, sup_at), (cnt, res_at)):
        out = np.take(values.ravel(), at)
        out[missing] = np.nan
        outs.append(out.T)
    return tuple(outs)


def decaying_events(direction: np.ndarray, strength: np.ndarray, hold: int) -> np.ndarray:
    """Spread signed events over ``hold`` bars, fading linearly.

    ``direction`` (dates x tickers) is +1/-1 on event bars and 0 elsewhere; the value at
    t is ``direction * strength`` of the latest event at or before t times
    ``max(0, 1 - age / hold)`` (age in bars; hold = 1 keeps only the event bar).
    """
    t = direction.shape[0]
    event = direction != 0
    rows = np.arange(t, dtype=np.int64)[:, None]
    last = np.maximum.accumulate(np.where(event, rows, -hold), axis=0)
    with np.errstate(invalid="ignore"):
        value = np.where(event, direction * strength, np.nan)
    if hold > 1:  # forward fill (pandas' 2-D pad loop) no further than the fade lasts
        value = pd.DataFrame(value, copy=False).ffill(limit=hold - 1).to_numpy()
    fade = (rows - last).astype("float64")
    fade *= -1.0 / hold
    fade += 1.0
    value = value * fade  # (pandas hands back a read-only view)
    return np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)


# ---------------------------------------------------------------------- patterns
class Patterns(NamedTuple):
    """Confirmed chart patterns, one entry each (flat arrays)."""

    ticker: np.ndarray
    code: np.ndarray  # see PATTERN_NAMES
    confirm_row: np.ndarray  # neckline break: the bar the pattern is reported on
    first_row: np.ndarray  # the first extreme of the pattern (left peak / shoulder)
    last_row: np.ndarray  # the last extreme (right peak / shoulder)
    strength: np.ndarray  # in (0, 1]
    neckline: np.ndarray  # neckline price at the break


def _same_ticker(ev: PivotEvents, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices k (>= span-1) whose previous span-1 events belong to the same ticker."""
    k = np.arange(span - 1, ev.price.size)
    ok = np.ones(k.size, bool)
    for back in range(1, span):
        ok &= ev.ticker[k - back] == ev.ticker[k]
    return k[ok], ok


def _alternating(ev: PivotEvents, k: np.ndarray, span: int, last_kind: int) -> np.ndarray:
    ok = np.ones(k.size, bool)
    for back in range(span):
        want = last_kind if back % 2 == 0 else -last_kind
        ok &= ev.kind[k - back] == want
    return ok


def _first_break(
    close: np.ndarray,
    ticker,
    start,
    neck0,
    neck_slope,
    invalid_level,
    bearish: np.ndarray,
    max_wait: int,
):
    """First bar in start..start+max_wait whose close breaks the neckline.

    Neckline at bar r is ``neck0 + neck_slope * (r - start)``; a bearish pattern breaks
    on ``close < neckline`` and fails if the close goes above ``invalid_level`` first (a
    bullish one mirrors). Returns (row, ok).
    """
    t = close.shape[0]
    steps = np.arange(max_wait + 1)
    rows = start[:, None] + steps[None, :]
    inside = rows < t
    px = close[np.where(inside, rows, 0), ticker[:, None]]
    px = np.where(inside, px, np.nan)
    neck = neck0[:, None] + neck_slope[:, None] * steps[None, :]
    sign = np.where(bearish, 1.0, -1.0)[:, None]
    with np.errstate(invalid="ignore"):
        broke = sign * (neck - px) > 0
        failed = sign * (px - invalid_level[:, None]) > 0
    any_break = broke.any(axis=1)
    b = broke.argmax(axis=1)
    f = np.where(failed.any(axis=1), failed.argmax(axis=1), max_wait + 1)
    ok = any_break & (f > b)
    return start + b, ok


class _Shape(NamedTuple):
    """Candidate patterns (one entry per last pivot), prices flipped so tops are peaks."""

    ok: np.ndarray  # passes the shape tests
    mismatch: np.ndarray  # relative gap between the two peaks (shoulders)
    height: np.ndarray  # pattern height relative to its extreme
    extreme: np.ndarray  # a close beyond it before the break voids the pattern
    first: np.ndarray  # row of the first extreme
    neck: np.ndarray  # the neckline through (neck_row, neck) with slope ``slope``
    neck_row: np.ndarray
    slope: np.ndarray


def _double(
    price: np.ndarray, prow: np.ndarray, k: np.ndarray, tolerance: float, min_height: float
) -> _Shape:
    """Peak, trough, peak ending at events ``k``: the double top's tests."""
    a, n_, b = price[k - 2], price[k - 1], price[k]
    top = np.maximum(a, b)
    shoulder_lo = np.minimum(a, b)
    mismatch = np.abs(a - b) / np.abs(top)
    height = (shoulder_lo - n_) / np.abs(shoulder_lo)
    ok = (mismatch <= tolerance) & (height >= min_height)
    return _Shape(ok, mismatch, height, top, prow[k - 2], n_, prow[k - 1], np.zeros_like(n_))


def _head_shoulders(
    price: np.ndarray, prow: np.ndarray, k: np.ndarray, tolerance: float, min_height: float
) -> _Shape:
    """Shoulder, trough, head, trough, shoulder ending at events ``k``: the tests."""
    ls, t1, hd, t2, rs = (price[k - i] for i in (4, 3, 2, 1, 0))
    r1, r2 = prow[k - 3], prow[k - 1]
    mismatch = np.abs(ls - rs) / np.abs(np.maximum(ls, rs))
    height = (hd - np.maximum(t1, t2)) / np.abs(hd)
    ok = (hd > np.maximum(ls, rs)) & (mismatch <= tolerance) & (height >= min_height)
    return _Shape(ok, mismatch, height, hd, prow[k - 4], t1, r1, (t2 - t1) / (r2 - r1))


_SHAPES = (
    (3, _double, DOUBLE_TOP, DOUBLE_BOTTOM),
    (5, _head_shoulders, HEAD_SHOULDERS, INVERSE_HEAD_SHOULDERS),
)


def _broken(
    close: np.ndarray,
    ev: PivotEvents,
    k: np.ndarray,
    shape: _Shape,
    s: float,
    code: int,
    tolerance: float,
    full_height: float,
    max_wait: int,
) -> tuple:
    """The candidates that pass their tests and then break the neckline: Patterns' columns."""
    kk = k[shape.ok]
    ok = _Shape(*(f[shape.ok] for f in shape))
    start = ev.row[kk]  # confirmation of the last pivot
    n0 = ok.neck + ok.slope * (start - ok.neck_row)
    bearish = np.full(kk.size, s > 0)
    row, hit = _first_break(
        close, ev.ticker[kk], start, s * n0, s * ok.slope, s * ok.extreme, bearish, max_wait
    )
    strength = np.minimum(1.0, ok.height / full_height) * (
        1.0 - 0.5 * ok.mismatch / max(tolerance, 1e-12)
    )
    neck_at = n0 + ok.slope * (row - start)
    return (
        ev.ticker[kk][hit],
        np.full(hit.sum(), code),
        row[hit],
        ok.first[hit],
        ev.pivot_row[kk][hit],
        strength[hit],
        s * neck_at[hit],
    )


def find_patterns(
    close: np.ndarray,
    ev: PivotEvents,
    tolerance: float,
    min_height: float,
    full_height: float,
    max_wait: int,
) -> Patterns:
    """Double tops/bottoms and (inverse) head and shoulders from confirmed pivots.

    Double top: alternating pivots peak P1, trough N, peak P2 with
    ``|P1 - P2| <= tolerance * max(P1, P2)`` and trough depth
    ``(min(P1, P2) - N) / min(P1, P2) >= min_height``; reported on the first close below
    N at or after P2's confirmation (within ``max_wait`` bars, unless the close first
    rises above max(P1, P2)). Head and shoulders: peaks LS, H, RS with troughs T1, T2,
    ``H > max(LS, RS)``, shoulders within ``tolerance``, ``(H - max(T1, T2)) / H >=
    min_height``; the neckline is the line through T1 and T2 and the pattern is reported
    on the first close below it after RS is confirmed (fails above H). Bottoms mirror.

    Strength: ``min(1, height / full_height) * (1 - 0.5 * mismatch / tolerance)``, with
    height the pattern height relative to its extreme and mismatch the relative gap
    between the two peaks (shoulders).
    """
    parts = []
    for span, shape_of, top_code, bottom_code in _SHAPES:
        k, _ = _same_ticker(ev, span)
        for last_kind in (1, -1):
            k_ok = k[_alternating(ev, k, span, last_kind)]
            if k_ok.size == 0:
                continue
            bearish = last_kind == 1  # tops end on a peak
            s = 1.0 if bearish else -1.0  # flip lows into "peaks" to share the tests
            shape = shape_of(s * ev.price, ev.pivot_row, k_ok, tolerance, min_height)
            code = top_code if bearish else bottom_code
            parts.append(_broken(close, ev, k_ok, shape, s, code, tolerance, full_height, max_wait))
    parts = [p for p in parts if p[0].size]
    if not parts:
        empty = np.array([], dtype=np.int64)
        return Patterns(empty, empty, empty, empty, empty, np.array([]), np.array([]))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.lexsort((cols[5], cols[2], cols[0]))  # ticker, confirm row, strength
    return Patterns(*(c[order] for c in cols))
