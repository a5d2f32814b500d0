"""EMA and Wilder smoothing against pandas ``ewm(adjust=False)`` and by hand.

TA-Lib's seeding (the mean of the first n values) and its real-data checks are in
``tests/models/test_indicators.py``; here the recursion itself, per-column starts and
stops, and causality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from mltrainer.numerics import filters

NAN = np.nan
RNG = np.random.default_rng(7)
X = np.cumsum(RNG.normal(size=(60, 3)), axis=0) + 50.0
X[:9, 1] = NAN  # a ticker listed late
X[45:, 2] = NAN  # one that stops early


@pytest.mark.parametrize("alpha", [2.0 / 21.0, 1.0 / 14.0, 1.0])
def test_smooth_equals_pandas_ewm(alpha):
    first, last = filters.valid_span(~np.isnan(X))
    out = filters.smooth(X, alpha, first, X[first, np.arange(3)], last)
    frame = pd.DataFrame(X)
    # pandas carries the last value over the missing rows after a stop: NaN there
    ref = frame.ewm(alpha=alpha, adjust=False).mean().where(frame.notna()).to_numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out, ref, rtol=1e-13)


def test_ema_and_wilder_seed_with_the_first_mean():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]
    # EMA(3): seed mean(1, 2, 3) = 2 on the third value, then k = 0.5
    np.testing.assert_allclose(filters.ema(x, 3)[:, 0], [NAN, NAN, 2.0, 3.0, 4.0])
    # Wilder(2): seed 1.5, then W += (x - W) / 2
    np.testing.assert_allclose(filters.wilder(x, 2)[:, 0], [NAN, 1.5, 2.25, 3.125, 4.0625])


def test_each_column_starts_on_its_own_row():
    out = filters.ema(X, 5)
    for j in range(3):
        col = X[:, j]
        keep = np.flatnonzero(np.isfinite(col))
        alone = filters.ema(col[keep][:, None], 5)[:, 0]
        np.testing.assert_allclose(out[keep, j], alone, rtol=1e-15)
        assert np.isnan(out[: keep[0] + 4, j]).all() and np.isnan(out[keep[-1] + 1 :, j]).all()


def test_explicit_start_and_stop():
    start = np.array([10, 20, 30])
    stop = np.array([59, 40, 35])
    out = filters.wilder(X, 4, start, stop)
    for j in range(3):
        seed = X[start[j] - 3 : start[j] + 1, j].mean()  # the 4 values ending at the start
        assert out[start[j], j] == pytest.approx(seed, rel=1e-15)
        assert out[start[j] + 1, j] == pytest.approx(seed + (X[start[j] + 1, j] - seed) / 4)
        assert np.isnan(out[: start[j], j]).all() and np.isnan(out[stop[j] + 1 :, j]).all()
        assert np.isfinite(out[start[j] : stop[j] + 1, j]).all()
    too_short = filters.ema(X[:3], 5)  # no column has five values
    assert np.isnan(too_short).all()


def test_window_mean_at_and_valid_span():
    np.testing.assert_allclose(
        filters.window_mean_at(X, np.array([3, 12, 59]), 4),
        [X[0:4, 0].mean(), X[9:13, 1].mean(), NAN],  # column 2 is NaN from row 45
    )
    assert np.isnan(filters.window_mean_at(X, np.array([2, 2, 2]), 4)).all()
    first, last = filters.valid_span(np.isfinite(X))
    np.testing.assert_array_equal(first, [0, 9, 0])
    np.testing.assert_array_equal(last, [59, 59, 44])
    empty_first, empty_last = filters.valid_span(np.zeros((5, 1), dtype=bool))
    assert empty_first[0] == 5 and empty_last[0] == -1


def test_values_up_to_t_do_not_change_when_rows_are_added():
    full = filters.ema(X, 7)
    for t in (12, 30, 44, 50):
        np.testing.assert_array_equal(filters.ema(X[:t], 7), full[:t])


def test_first_order_is_lfilter_in_either_layout():
    """Row-major panels go to lfilter itself; column-major ones to the blocked form
    (products within blocks of 16 dates, a carried recursion across them)."""
    u = RNG.normal(size=(203, 40))  # not a whole number of blocks
    ref = lfilter([1.0], [1.0, -0.9], u, axis=0)
    np.testing.assert_array_equal(filters.first_order(u.copy(), 0.9), ref)
    np.testing.assert_allclose(
        filters.first_order(np.asfortranarray(u), 0.9), ref, rtol=1e-12, atol=1e-12
    )
