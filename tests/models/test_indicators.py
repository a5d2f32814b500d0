"""Indicators against TA-Lib on real tickers, and against hand-computed vectors.

TA-Lib is the oracle: each column is run through ``talib`` on its own valid rows (what
our functions promise) and must match to 1e-8 with the same warm-up NaNs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.numerics import indicators as ind

TOL = {"rtol": 1e-8, "atol": 1e-8}


@pytest.fixture(scope="module")
def adj(basket):
    """The basket's OHLC on the adjusted-close scale (AAPL's splits taken out)."""
    return basket.adjusted()


def talib_by_column(func, frames, n_out=1, **kwargs):
    """Run a TA-Lib function on each column's rows where every input is valid."""
    arrays = [f.to_numpy(dtype="float64") for f in frames]
    outs = [np.full(arrays[0].shape, np.nan) for _ in range(n_out)]
    for j in range(arrays[0].shape[1]):
        cols = [a[:, j] for a in arrays]
        keep = np.flatnonzero(np.logical_and.reduce([np.isfinite(c) for c in cols]))
        if keep.size == 0:
            continue
        res = func(*[np.ascontiguousarray(c[keep]) for c in cols], **kwargs)
        for o, r in zip(outs, res if n_out > 1 else (res,), strict=True):
            o[keep, j] = r
    return outs


def assert_same(ours, ref):
    ours = np.asarray(ours, dtype="float64")
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg="warm-up NaNs differ")
    np.testing.assert_allclose(ours, ref, **TOL)


SINGLE = [
    ("sma", lambda c: ind.sma(c, 30), "SMA", {"timeperiod": 30}),
    ("ema", lambda c: ind.ema(c, 20), "EMA", {"timeperiod": 20}),
    ("ema_long", lambda c: ind.ema(c, 200), "EMA", {"timeperiod": 200}),
    ("rsi", lambda c: ind.rsi(c), "RSI", {}),
    ("rsi_2", lambda c: ind.rsi(c, 2), "RSI", {"timeperiod": 2}),
    ("max", lambda c: ind.highest(c, 14), "MAX", {"timeperiod": 14}),
    ("min", lambda c: ind.lowest(c, 9), "MIN", {"timeperiod": 9}),
    ("slope", lambda c: ind.linear_regression_slope(c, 20), "LINEARREG_SLOPE", {"timeperiod": 20}),
]


@pytest.mark.parametrize("name, ours, ref, kwargs", SINGLE, ids=[s[0] for s in SINGLE])
def test_close_indicators_match_talib(talib, adj, name, ours, ref, kwargs):
    (expected,) = talib_by_column(getattr(talib, ref), [adj.close], **kwargs)
    result = ours(adj.close)
    assert isinstance(result, pd.DataFrame) and result.index.equals(adj.dates)
    assert_same(result.to_numpy(), expected)


def test_wilder_is_talib_ema_of_double_length(talib, adj):
    # Wilder's alpha 1/n is an EMA's 2/(m+1) with m = 2n - 1, seeded the same way
    # only if the seed windows match, so compare after both have forgotten their seeds
    ours = ind.wilder(adj.close, 14).to_numpy()
    (ref,) = talib_by_column(talib.EMA, [adj.close], timeperiod=27)
    # 1000 bars after the last ticker's seed both have forgotten it: (13/14)^1000 ~ 1e-32
    late = slice(adj.dates.get_loc(adj.close.apply(pd.Series.first_valid_index).max()) + 1000, None)
    assert np.isfinite(ours[late]).mean() > 0.99
    np.testing.assert_allclose(ours[late], ref[late], rtol=1e-10)


def test_macd_matches_talib(talib, adj):
    line, signal, hist = ind.macd(adj.close)
    refs = talib_by_column(talib.MACD, [adj.close], n_out=3)
    for ours, ref in zip((line, signal, hist), refs, strict=True):
        assert_same(ours.to_numpy(), ref)


def test_macd_other_periods_match_talib(talib, adj):
    ours = ind.macd(adj.close, fast=5, slow=35, signal=5)
    refs = talib_by_column(
        talib.MACD, [adj.close], n_out=3, fastperiod=5, slowperiod=35, signalperiod=5
    )
    for o, r in zip(ours, refs, strict=True):
        assert_same(o.to_numpy(), r)


def test_stochastic_matches_talib(talib, adj):
    k, d = ind.stochastic(adj.high, adj.low, adj.close)
    ref_k, ref_d = talib_by_column(talib.STOCH, [adj.high, adj.low, adj.close], n_out=2)
    assert_same(k.to_numpy(), ref_k)
    assert_same(d.to_numpy(), ref_d)
    k14, d14 = ind.stochastic(adj.high, adj.low, adj.close, 14, 3, 3)
    ref_k, ref_d = talib_by_column(
        talib.STOCH,
        [adj.high, adj.low, adj.close],
        n_out=2,
        fastk_period=14,
        slowk_period=3,
        slowd_period=3,
    )
    assert_same(k14.to_numpy(), ref_k)
    assert_same(d14.to_numpy(), ref_d)


@pytest.mark.parametrize("name", ["willr", "trange", "atr"])
def test_range_indicators_match_talib(talib, adj, name):
    hlc = [adj.high, adj.low, adj.close]
    ours, ref, kwargs = {
        "willr": (ind.williams_r, "WILLR", {}),
        "trange": (ind.true_range, "TRANGE", {}),
        "atr": (ind.atr, "ATR", {}),
    }[name]
    (expected,) = talib_by_column(getattr(talib, ref), hlc, **kwargs)
    assert_same(ours(*hlc).to_numpy(), expected)


def test_tsla_starts_on_its_own_first_bar(talib, adj):
    """TSLA lists in 2010: its recursions start there, exactly like TA-Lib on TSLA alone."""
    close = adj.close["TSLA"]
    first = close.first_valid_index()
    assert first > adj.dates[0]
    rsi = ind.rsi(adj.close)["TSLA"]
    assert rsi.first_valid_index() == adj.dates[adj.dates.get_loc(first) + 14]
    alone = talib.RSI(close.dropna().to_numpy())
    np.testing.assert_allclose(rsi.dropna().to_numpy(), alone[14:], **TOL)


def test_aapl_uses_adjusted_prices(talib, basket, adj):
    """AAPL's as-traded bars jump at each split; the adjusted ones give TA-Lib's ATR of
    the adjusted series, with no spike on the split days."""
    atr_adj = ind.atr(adj.high, adj.low, adj.close)["AAPL"]
    ref = talib.ATR(*(f["AAPL"].to_numpy() for f in (adj.high, adj.low, adj.close)))
    np.testing.assert_allclose(atr_adj.to_numpy(), ref, **TOL)
    split_days = basket.splits.index[basket.splits["AAPL"].fillna(1.0) != 1.0]
    assert len(split_days) >= 3
    tr_raw = ind.true_range(basket.high, basket.low, basket.close)["AAPL"]
    tr_adj = ind.true_range(adj.high, adj.low, adj.close)["AAPL"]
    rel_raw = (tr_raw / basket.close["AAPL"]).loc[split_days]
    rel_adj = (tr_adj / adj.close["AAPL"]).loc[split_days]
    assert rel_raw.min() > 0.4 and rel_adj.max() < 0.2


def test_missing_bar_inside_history(talib, adj):
    """A missing day inside a history: NaN that day, the recursion carries on over it,
    equal to TA-Lib run on the remaining rows."""
    gap_days = adj.dates[[3000, 3001, 4200]]
    hlc = [f[["AAPL", "JPM"]].copy() for f in (adj.high, adj.low, adj.close)]
    for f in hlc:
        f.loc[gap_days, "AAPL"] = np.nan
    out = ind.atr(*hlc)
    (ref,) = talib_by_column(talib.ATR, hlc)
    assert_same(out.to_numpy(), ref)
    assert out.loc[gap_days, "AAPL"].isna().all()
    assert out["AAPL"].iloc[3002:].notna().sum() == len(out) - 3002 - 1
    (ref_ema,) = talib_by_column(talib.EMA, [hlc[2]], timeperiod=10)
    assert_same(ind.ema(hlc[2], 10).to_numpy(), ref_ema)
    for ours, ref in zip(
        ind.macd(hlc[2]), talib_by_column(talib.MACD, [hlc[2]], n_out=3), strict=True
    ):
        assert_same(ours.to_numpy(), ref)
    for ours, ref in zip(
        ind.stochastic(*hlc), talib_by_column(talib.STOCH, hlc, n_out=2), strict=True
    ):
        assert_same(ours.to_numpy(), ref)


def test_only_the_joint_valid_rows_count_for_several_inputs(talib, adj):
    """If high is missing where close is not, that row is missing for ATR."""
    high = adj.high[["MSFT"]].copy()
    high.iloc[:40] = np.nan  # close and low still have values there
    out = ind.atr(high, adj.low[["MSFT"]], adj.close[["MSFT"]])
    (ref,) = talib_by_column(talib.ATR, [high, adj.low[["MSFT"]], adj.close[["MSFT"]]])
    assert_same(out.to_numpy(), ref)
    assert out["MSFT"].first_valid_index() == adj.dates[40 + 14]


# ----------------------------------------------------------------- hand vectors
def test_ema_and_wilder_seeding_by_hand():
    x = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])
    # EMA(3): seed mean(1, 2, 3) = 2 on the third value, then k = 0.5
    np.testing.assert_allclose(ind.ema(x, 3).to_numpy(), [np.nan, np.nan, 2.0, 3.0, 4.0])
    # Wilder(2): seed 1.5, then W += (x - W) / 2
    np.testing.assert_allclose(ind.wilder(x, 2).to_numpy(), [np.nan, 1.5, 2.25, 3.125, 4.0625])


def test_rsi_by_hand():
    c = np.array([10.0, 11.0, 10.0, 12.0, 12.0])
    # moves +1, -1, +2, 0; n = 3: G = (1 + 0 + 2)/3 = 1, L = 1/3 -> RSI 75 on bar 3
    # bar 4: G = (2*1 + 0)/3 = 2/3, L = (2/3)/3 = 2/9 -> 100 * (2/3) / (8/9) = 75
    np.testing.assert_allclose(ind.rsi(c, 3), [np.nan, np.nan, np.nan, 75.0, 75.0])
    flat = np.full(30, 5.0)
    assert np.all(ind.rsi(flat, 14)[14:] == 0.0)  # TA-Lib: 0 when there is no move


@pytest.mark.parametrize("n", [15, 16, 17, 31, 32, 33, 100])
def test_lengths_around_block_boundaries(talib, adj, n):
    x = adj.close["KO"].to_numpy()[:n]
    np.testing.assert_allclose(ind.ema(x, 5), talib.EMA(x, 5), **TOL)
    np.testing.assert_allclose(ind.rsi(x, 5), talib.RSI(x, 5), **TOL)


# ------------------------------------------------------------------- bad input
def test_too_short_history_gives_nan(adj):
    short = adj.close.iloc[:10]
    assert ind.rsi(short).isna().all().all()
    assert ind.macd(short).line.isna().all().all()
    assert ind.atr(adj.high.iloc[:14], adj.low.iloc[:14], adj.close.iloc[:14]).isna().all().all()
    assert ind.sma(short, 10).iloc[-1].drop("TSLA").notna().all()  # TSLA: 2010


def test_all_nan_column_and_single_ticker(talib, adj):
    close = adj.close[["MSFT"]].copy()
    close["EMPTY"] = np.nan
    out = ind.rsi(close)
    assert out["EMPTY"].isna().all()
    np.testing.assert_allclose(out["MSFT"], talib.RSI(adj.close["MSFT"].to_numpy()), **TOL)
    series = ind.atr(adj.high["JPM"], adj.low["JPM"], adj.close["JPM"])
    assert isinstance(series, pd.Series) and series.name == "JPM"


def test_bad_arguments_raise(adj):
    with pytest.raises(ParameterError, match="window"):
        ind.rsi(adj.close, 0)
    with pytest.raises(ParameterError, match="fast"):
        ind.macd(adj.close, fast=1)
    with pytest.raises(DataError, match="same tickers"):
        ind.atr(adj.high[["AAPL"]], adj.low[["MSFT"]], adj.close[["AAPL"]])
    with pytest.raises(DataError, match="same dates"):
        ind.williams_r(adj.high.iloc[1:], adj.low.iloc[:-1], adj.close.iloc[1:])
