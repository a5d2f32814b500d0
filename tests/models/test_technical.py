"""The technical family: references (TA-Lib, hand-built paths), confirmation dates,
causality and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _pivots as pv
from mltrainer.models import technical as tech
from mltrainer.numerics.frames import adjusted_ohlc

MODELS = tech.MODELS


def from_path(points, n, name="X", start="2020-01-01") -> MarketData:
    """A one-ticker MarketData whose bars all equal a piecewise-linear close path."""
    xs, ys = zip(*points, strict=True)
    close = np.interp(np.arange(n), xs, ys)
    frame = pd.DataFrame({name: close}, index=pd.bdate_range(start, periods=n))
    return MarketData(
        open=frame.copy(),
        high=frame.copy(),
        low=frame.copy(),
        close=frame.copy(),
        adj_close=frame.copy(),
        volume=frame * 0 + 1e6,
        source="test",
    )


@pytest.fixture(scope="module")
def small(basket):
    return basket.select(tickers=["AAPL", "TSLA", "KO"], start="2006-01-01", end="2012-12-31")


# ------------------------------------------------------------------------ pivots
def test_pivot_reported_on_confirmation_bar_hand_vector():
    x = np.array([1.0, 2.0, 3.0, 5.0, 3.0, 2.0, 1.0, 2.0, 3.0, 4.0])[:, None]
    highs, lows = pv.confirmed_pivots(x, x, order=2)
    # the peak at index 3 (5 > the two bars either side) is known at index 5, not before
    assert np.flatnonzero(highs[:, 0]).tolist() == [5]
    # the trough at index 6 is known at index 8
    assert np.flatnonzero(lows[:, 0]).tolist() == [8]
    # with data only up to index 4 the peak is not yet a pivot
    early_h, _ = pv.confirmed_pivots(x[:5], x[:5], order=2)
    assert not early_h.any()


def test_pivots_match_brute_force_on_real_series(basket):
    high = basket.adjusted().high["AAPL"].to_numpy()[2000:3000]
    order = 5
    expected = np.zeros(high.size, bool)
    for p in range(order, high.size - order):
        win = high[p - order : p + order + 1]
        if high[p] == win.max() and high[p] > high[p - order : p].max():
            expected[p + order] = True  # known only `order` bars after the peak
    flags, _ = pv.confirmed_pivots(high[:, None], high[:, None], order)
    assert expected.sum() > 20
    np.testing.assert_array_equal(flags[:, 0], expected)
    ev = pv.pivot_events(high[:, None], high[:, None], order)
    highs = ev.kind == 1
    np.testing.assert_array_equal(ev.row[highs] - ev.pivot_row[highs], order)
    np.testing.assert_array_equal(ev.price[highs], high[ev.pivot_row[highs]])


# ---------------------------------------------------------------------- patterns
def test_double_top_detected_on_neckline_break():
    # peaks 10.0 (bar 5) and 10.1 (bar 15), trough 9.0 (bar 10), then a slide
    data = from_path([(0, 8.0), (5, 10.0), (10, 9.0), (15, 10.1), (25, 8.0)], 26)
    out = tech.PatternRecognitionModel(
        order=3, tolerance=0.03, min_height=0.03, full_height=0.1, hold=10
    ).run(data)
    code = out.extras["pattern"]["X"].to_numpy()
    # the second peak is confirmed at bar 18; the close first falls below 9.0 at bar 21
    # (10.1 - 6 * 0.21 = 8.84): reported there, never on the peak bar 15
    assert np.flatnonzero(code).tolist() == [21] and code[21] == pv.DOUBLE_TOP
    height, mismatch = (10.0 - 9.0) / 10.0, 0.1 / 10.1
    strength = min(1.0, height / 0.1) * (1 - 0.5 * mismatch / 0.03)
    signal = out.primary["X"].to_numpy()
    assert np.all(signal[:21] == 0)
    np.testing.assert_allclose(signal[21:], -strength * (1 - np.arange(5) / 10))
    table = out.tables["patterns"]
    assert table["pattern"].tolist() == ["double top"]
    assert table["confirmed"].iloc[0] == data.dates[21]
    assert table["last_extreme"].iloc[0] == data.dates[15]


def test_double_bottom_is_the_mirror():
    data = from_path([(0, 12.0), (5, 10.0), (10, 11.0), (15, 9.9), (25, 12.0)], 26)
    out = tech.PatternRecognitionModel(order=3).run(data)
    code = out.extras["pattern"]["X"].to_numpy()
    # confirmed at 18, close above the 11.0 neckline first at bar 21 (9.9 + 6 * 0.21)
    assert np.flatnonzero(code).tolist() == [21] and code[21] == pv.DOUBLE_BOTTOM
    assert out.primary["X"].iloc[21] > 0


def test_head_and_shoulders_detected_on_neckline_break():
    points = [(0, 8.0), (5, 10.0), (10, 9.0), (15, 11.0), (20, 9.1), (25, 10.05), (35, 7.05)]
    data = from_path(points, 36)
    out = tech.PatternRecognitionModel(order=3).run(data)
    code = out.extras["pattern"]["X"].to_numpy()
    # right shoulder confirmed at bar 28; neckline through (10, 9.0) and (20, 9.1) is
    # 9.18 there and the close is 9.15: the break is that bar
    assert np.flatnonzero(code).tolist() == [28] and code[28] == pv.HEAD_SHOULDERS
    assert out.tables["patterns"]["neckline"].iloc[0] == pytest.approx(9.18)


def test_no_pattern_when_peaks_differ_or_price_recovers():
    unequal = from_path([(0, 8.0), (5, 10.0), (10, 9.0), (15, 10.8), (25, 8.0)], 26)
    assert not tech.PatternRecognitionModel(order=3).run(unequal).extras["pattern"].any().any()
    # a second peak, then a new high before the neckline breaks: the top failed
    failed = from_path(
        [(0, 8.0), (5, 10.0), (10, 9.0), (15, 10.1), (19, 9.5), (24, 10.5), (30, 8.0)], 31
    )
    code = tech.PatternRecognitionModel(order=3).run(failed).extras["pattern"]["X"]
    assert (code != pv.DOUBLE_TOP).all()


# ---------------------------------------------------------- support / resistance
def test_breakout_above_clustered_resistance():
    # two highs 10.0 and 10.05 (one level, 2 touches), lows 9.0 twice, then a rally
    data = from_path([(0, 8.0), (5, 10.0), (10, 9.0), (15, 10.05), (20, 9.0), (25, 11.0)], 26)
    out = tech.SupportResistanceModel(order=3, tolerance=0.015, min_touches=2, hold=5).run(data)
    res = out.extras["resistance"]["X"]
    assert res.iloc[:18].isna().all()  # the second high is only known at bar 18
    assert res.iloc[18:23].tolist() == pytest.approx([10.025] * 5)
    assert (out.extras["resistance_touches"]["X"].iloc[18:23] == 2).all()
    signal = out.primary["X"].to_numpy()
    # close 10.2 at bar 23 crosses the 10.025 resistance of bar 22
    assert np.all(signal[:23] == 0)
    np.testing.assert_allclose(signal[23:], [1.0, 0.8, 0.6])
    # once broken, the old resistance is the nearest support
    assert out.extras["support"]["X"].iloc[24] == pytest.approx(10.025)
    one_bar = tech.SupportResistanceModel(order=3, hold=1).run(data).primary["X"]
    assert np.flatnonzero(one_bar.to_numpy()).tolist() == [23]


def test_levels_bracket_the_close_on_real_data(small):
    out = tech.SupportResistanceModel().run(small)
    close = small.adj_close
    sup, res = out.extras["support"], out.extras["resistance"]
    assert ((sup < close) | sup.isna()).all().all()
    assert ((res > close) | res.isna()).all().all()
    touches = np.concatenate(
        [out.extras["support_touches"].to_numpy(), out.extras["resistance_touches"].to_numpy()]
    )
    assert (touches[np.isfinite(touches)] >= 2).all()
    assert sup.notna().to_numpy().mean() > 0.5 and res.notna().to_numpy().mean() > 0.3
    # every full +1 is a bar where the close crosses the previous bar's resistance
    up = out.primary == 1.0
    assert up.to_numpy().sum() > 10
    assert (close[up] > res.shift(1)[up]).sum().sum() == up.to_numpy().sum()


# -------------------------------------------------------------- against TA-Lib
def test_trend_matches_talib_by_hand(talib, basket):
    data = basket.select(tickers=["MSFT", "TSLA"])
    model = tech.TrendAnalysisModel(
        short_window=20, long_window=50, slope_window=20, slope_threshold=0.0005
    )
    out = model.run(data)
    for ticker in ["MSFT", "TSLA"]:
        c = data.adj_close[ticker].dropna()
        ma_s, ma_l = talib.SMA(c.to_numpy(), 20), talib.SMA(c.to_numpy(), 50)
        slope = np.full(c.size, np.nan)
        slope[49:] = talib.LINEARREG_SLOPE(ma_l[49:], 20) / ma_l[49:]
        with np.errstate(invalid="ignore"):
            expected = ((slope > 0.0005) & (ma_s > ma_l)).astype(float) - (
                (slope < -0.0005) & (ma_s < ma_l)
            )
        expected[np.isnan(slope)] = np.nan
        got = out.primary[ticker].loc[c.index].to_numpy()
        np.testing.assert_allclose(
            out.extras["slope"][ticker].loc[c.index], slope, rtol=1e-7, atol=1e-12
        )
        near = np.abs(np.abs(slope) - 0.0005) < 1e-9  # rounding could tip these
        np.testing.assert_array_equal(got[~near], expected[~near])
        assert np.nanmin(got) == -1 and np.nanmax(got) == 1


def test_oscillator_matches_talib_mapping(talib, basket):
    adj = basket.adjusted()
    out = tech.OscillatorModel().run(basket.select(tickers=["AAPL", "JPM"]))
    for ticker in ["AAPL", "JPM"]:
        h, lo, c = (
            adj.high[ticker].to_numpy(),
            adj.low[ticker].to_numpy(),
            adj.close[ticker].to_numpy(),
        )
        rsi = (50 - talib.RSI(c, 14)) / 50
        hist = talib.MACD(c, 12, 26, 9)[2]
        macd = np.tanh(hist / (0.5 * talib.ATR(h, lo, c, 14)))
        stoch = (50 - talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)[0]) / 50
        willr = (-50 - talib.WILLR(h, lo, c, 14)) / 50
        for name, ref in (
            ("rsi", rsi),
            ("macd", macd),
            ("stochastic", stoch),
            ("williams_r", willr),
        ):
            np.testing.assert_allclose(out.extras[name][ticker], ref, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(
            out.primary[ticker], (rsi + macd + stoch + willr) / 4, rtol=1e-8, atol=1e-8
        )
    momentum = tech.OscillatorModel(mode="momentum", macd_weight=0.0).run(
        basket.select(tickers=["AAPL"])
    )
    np.testing.assert_allclose(momentum.extras["rsi"]["AAPL"], -out.extras["rsi"]["AAPL"])


# ------------------------------------------------------------ causality, input
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_truncation_does_not_change_the_past(cls, small):
    full = cls().run(small)
    part = cls().run(small.truncate("2009-06-30"))
    n = len(part.primary)
    pd.testing.assert_frame_equal(full.primary.iloc[:n], part.primary)
    for name, frame in part.extras.items():
        pd.testing.assert_frame_equal(full.extras[name].iloc[:n], frame, obj=name)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_single_ticker_and_all_nan_column(cls, small):
    full = cls().run(small)
    alone = cls().run(small.select(tickers=["KO"]))
    pd.testing.assert_series_equal(alone.primary["KO"], full.primary["KO"])
    frames = {
        name: small.frames()[name].assign(EMPTY=np.nan)
        for name in ("open", "high", "low", "close", "adj_close", "volume")
    }
    with_empty = cls().run(MarketData(**frames, source="test"))
    assert with_empty.primary["EMPTY"].isna().all()
    pd.testing.assert_frame_equal(with_empty.primary[small.tickers], full.primary)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_too_little_history_raises(cls, small):
    with pytest.raises(DataError, match="at least"):
        cls().run(small.select(end=small.dates[5]))


def test_support_resistance_before_any_pivot_is_quiet(basket):
    """AAPL's 12 real bars from 2014-10-10 (exactly min_history) hold no confirmed swing
    pivot: the level clustering crashed in numpy's sliding_window_view on zero events.
    No level yet means no breakout: a signal of 0 and NaN levels."""
    aapl = basket.select(tickers=["AAPL"], start="2014-10-10")
    days = aapl.select(end=aapl.dates[11])
    model = tech.SupportResistanceModel()
    assert len(days.dates) == model.min_history()
    out = model.run(days)
    assert (out.primary["AAPL"] == 0).all()
    assert out.extras["support"].isna().all().all() and out.extras["resistance"].isna().all().all()


def test_close_only_data(small):
    """A bundled-like source (adjusted close only): models needing high/low say so."""
    close_only = MarketData.from_close(small.adj_close, source="bundled")
    for cls in (tech.SupportResistanceModel, tech.OscillatorModel):
        with pytest.raises(DataError, match="high/low"):
            cls().run(close_only)
    for cls in (tech.TrendAnalysisModel, tech.PatternRecognitionModel):
        out = cls().run(close_only)
        pd.testing.assert_frame_equal(out.primary, cls().run(small).primary)


def test_cross_parameter_rules():
    with pytest.raises(ParameterError, match="short_window"):
        tech.TrendAnalysisModel(short_window=60, long_window=50).fit(None)
    with pytest.raises(ParameterError, match="macd_fast"):
        tech.OscillatorModel(macd_fast=30, macd_slow=26).fit(None)
    with pytest.raises(ParameterError, match="weights"):
        tech.OscillatorModel(
            rsi_weight=0.0, macd_weight=0.0, stoch_weight=0.0, willr_weight=0.0
        ).fit(None)


def test_bundled_source(bundled):
    """The bundled data (skfolio's adjusted closes) has no high/low."""
    data = bundled.select(start="2015-01-01")
    for cls in (tech.SupportResistanceModel, tech.OscillatorModel):
        with pytest.raises(DataError, match="high/low"):
            cls().run(data)
    for cls in (tech.TrendAnalysisModel, tech.PatternRecognitionModel):
        values = cls().run(data).primary.to_numpy()
        assert np.isfinite(values).mean() > 0.9


def test_adjusted_fields_equal_marketdata_adjusted(basket):
    """The high/low/close the models read are MarketData.adjusted()'s."""
    adj = basket.adjusted()
    high, low, close = adjusted_ohlc(basket)
    np.testing.assert_array_equal(high, adj.high.to_numpy())
    np.testing.assert_array_equal(low, adj.low.to_numpy())
    np.testing.assert_array_equal(close, adj.close.to_numpy())
