"""Trailing windows against pandas ``rolling`` on small hand vectors.

The columns cover what real panels hold: a full column, a ticker that starts late
(leading NaN), one with a missing bar inside its history, and one that stops early.
pandas' ``rolling(n)`` (``min_periods=n``) is the oracle: a window that is not full or
holds a NaN is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.numerics import rolling as rl

NAN = np.nan
X = np.array(
    [
        [1.0, NAN, 5.0, 2.0],
        [2.0, NAN, 4.0, 3.0],
        [4.0, 10.0, NAN, 1.0],
        [3.0, 11.0, 6.0, 4.0],
        [7.0, 9.0, 7.0, 4.0],
        [6.0, 12.0, 2.0, 5.0],
        [5.0, 14.0, 8.0, NAN],
        [8.0, 13.0, 9.0, NAN],
        [9.5, 12.5, 3.0, NAN],
        [9.0, 15.0, 1.0, NAN],
    ]
)
Y = np.array(
    [
        [0.5, NAN, 1.0, 3.0],
        [1.0, NAN, 2.0, 1.0],
        [0.0, 2.0, 1.0, 2.0],
        [2.0, 1.0, 3.0, 5.0],
        [1.0, 4.0, NAN, 4.0],
        [3.0, 3.0, 2.0, 6.0],
        [2.5, 5.0, 4.0, 7.0],
        [4.0, 4.5, 5.0, NAN],
        [3.0, 6.0, 7.0, NAN],
        [5.0, 5.5, 6.0, NAN],
    ]
)
WINDOWS = (1, 2, 3, 4, 9)


# row-major (short windows add shifted copies) and column-major (bottleneck throughout)
LAYOUTS = pytest.mark.parametrize("layout", ["C", "F"])


def _pandas(method: str, n: int, **kwargs) -> np.ndarray:
    return getattr(pd.DataFrame(X).rolling(n), method)(**kwargs).to_numpy()


def _same(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize(
    "ours, method",
    [
        (rl.rolling_sum, "sum"),
        (rl.rolling_mean, "mean"),
        (rl.rolling_min, "min"),
        (rl.rolling_max, "max"),
    ],
    ids=["sum", "mean", "min", "max"],
)
@LAYOUTS
def test_windows_equal_pandas(ours, method, n, layout):
    _same(ours(np.asarray(X, order=layout), n), _pandas(method, n))


@pytest.mark.parametrize("n", (2, 3, 4))
@LAYOUTS
def test_std_and_mean_std_equal_pandas(n, layout):
    x = np.asarray(X, order=layout)
    _same(rl.rolling_std(x, n), _pandas("std", n))
    _same(rl.rolling_std(x, n, ddof=0), _pandas("std", n, ddof=0))
    mean, std = rl.rolling_mean_std(x, n)
    _same(mean, _pandas("mean", n))
    _same(std, _pandas("std", n))
    lo, hi = rl.rolling_min_max(x, n)
    _same(lo, _pandas("min", n))
    _same(hi, _pandas("max", n))


@pytest.mark.parametrize("n", (3, 4, 9))
@LAYOUTS
def test_corr_equals_pandas(n, layout):
    # pandas needs both values on a row; ours NaN the windows where either is missing
    ref = pd.DataFrame(X).rolling(n).corr(pd.DataFrame(Y)).to_numpy()
    x, y = np.asarray(X, order=layout), np.asarray(Y, order=layout)
    _same(rl.rolling_corr(x, y, n), ref)


def test_corr_of_a_constant_window_is_nan():
    x = np.array([1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0])[:, None]
    y = np.array([2.0, 1.0, 5.0, 4.0, 2.0, 7.0, 1.0])[:, None]
    out = rl.rolling_corr(x, y, 3)[:, 0]
    assert np.isnan(out[4]) and np.isnan(out[5])
    assert np.isfinite(out[2]) and np.isfinite(out[6])


@pytest.mark.parametrize("n", (2, 3, 5))
def test_slope_equals_a_least_squares_fit_per_window(n):
    def fit(w: np.ndarray) -> float:
        return np.polyfit(np.arange(n), w, 1)[0]

    ref = pd.DataFrame(X).rolling(n).apply(fit, raw=True).to_numpy()
    _same(rl.rolling_slope(X, n), ref)
    assert np.isnan(rl.rolling_slope(X, 1)).all()


@pytest.mark.parametrize("n", WINDOWS)
def test_bad_windows_flags_short_and_holed_windows(n):
    valid = np.isfinite(X)
    # the first n-1 rows are not full windows: bad
    ref = pd.DataFrame(~valid, dtype=float).rolling(n).max().fillna(1.0).to_numpy()
    np.testing.assert_array_equal(rl.bad_windows(valid, n), ref.astype(bool))
    # a sum restricted to another series' valid windows
    masked = rl.rolling_sum(np.nan_to_num(X), n, bad=rl.bad_windows(valid, n))
    _same(masked, _pandas("sum", n))


def test_window_longer_than_the_data_is_all_nan():
    for fn in (rl.rolling_sum, rl.rolling_mean, rl.rolling_std, rl.rolling_max, rl.rolling_slope):
        assert np.isnan(fn(X, len(X) + 1)).all(), fn.__name__
    # a window over twice the data (a 63-day window on 21 days): the doubling overran
    for n in (2 * len(X), 63):
        assert np.isnan(rl.rolling_min(X, n)).all() and rl.bad_windows(np.isfinite(X), n).all()
    with pytest.raises(ValueError, match="window"):
        rl.rolling_sum(X, 0)
    with pytest.raises(ValueError, match="ddof"):
        rl.rolling_std(X, 1)


def test_an_infinity_voids_only_the_windows_that_hold_it():
    x = X[:, :1].copy()
    x[3] = np.inf
    ref = X[:, :1].copy()
    ref[3] = NAN
    for fn in (rl.rolling_sum, rl.rolling_mean, rl.rolling_std, rl.rolling_max, rl.rolling_slope):
        _same(fn(x, 3), fn(ref, 3))
    assert np.isfinite(rl.rolling_sum(x, 3)[6:]).all()


@pytest.mark.parametrize(
    "fn",
    [
        rl.rolling_sum,
        rl.rolling_mean,
        rl.rolling_std,
        rl.rolling_min,
        rl.rolling_max,
        rl.rolling_slope,
        lambda x, n: rl.rolling_corr(x, Y[: len(x)], n),
    ],
    ids=["sum", "mean", "std", "min", "max", "slope", "corr"],
)
def test_values_up_to_t_do_not_change_when_rows_are_added(fn):
    full = fn(X, 3)
    for t in range(3, len(X)):
        np.testing.assert_array_equal(fn(X[:t], 3), full[:t])


def test_cumsum_rows_is_numpys_cumsum_in_either_layout():
    for layout in ("C", "F"):
        x = np.asarray(np.nan_to_num(X), order=layout)
        np.testing.assert_array_equal(rl.cumsum_rows(x.copy(order="K")), np.cumsum(x, axis=0))


def test_lag_returns_and_diff_by_hand():
    p = np.array([100.0, 110.0, 99.0, NAN, 120.0])[:, None]
    np.testing.assert_array_equal(rl.lag(p, 2)[:, 0], [NAN, NAN, 100.0, 110.0, 99.0])
    np.testing.assert_allclose(rl.trailing_return(p, 2)[:, 0], [NAN, NAN, -0.01, NAN, 120 / 99 - 1])
    np.testing.assert_allclose(rl.trailing_return(p, 2, skip=1)[:, 0], [NAN, NAN, 0.1, -0.1, NAN])
    np.testing.assert_allclose(rl.diff(p)[:, 0], [NAN, 10.0, -11.0, NAN, NAN])
