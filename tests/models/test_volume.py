"""The volume family against TA-Lib, plain loops and hand computation on real bars.

The reference volume is built here with pandas, independently of the model code:
either as-traded volume divided by the cumulative product of split coefficients
(``cumprod``), or the container's ``split_adjusted()`` volume; ratios and weighted
averages are the same under both (they differ by one constant factor per ticker).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.local import load_local
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.models.volume import (
    MODELS,
    VolumeClusteringModel,
    VolumeDivergenceModel,
    VolumeMomentumModel,
    VolumePriceRelationshipModel,
    VolumeWeightedModel,
)

# light but real settings for the walk-forward k-means (the full defaults run in the bench)
FAST_KMEANS = {"refit_every": 126, "min_train": 252, "train_window": 756, "sample_size": 2000}


def _pos(data, date) -> int:
    return data.dates.get_loc(pd.Timestamp(date))


def _forward_volume(data) -> pd.DataFrame:
    """As-traded volume in shares of the first date: divided by all splits so far."""
    return data.volume / data.splits.cumprod()


def _talib_obv(talib, data, ticker) -> pd.Series:
    close = data.adj_close[ticker]
    first = close.first_valid_index()
    vol = _forward_volume(data)[ticker]
    out = talib.OBV(close.loc[first:].to_numpy(), vol.loc[first:].to_numpy())
    return pd.Series(out, index=close.loc[first:].index).reindex(data.dates)


# --------------------------------------------------------------------- OBV / VWAP


@pytest.mark.parametrize("ticker", ["AAPL", "XOM", "TSLA", "BRK.B"])
def test_obv_equals_talib(talib, basket, ticker):
    out = VolumeWeightedModel().run(basket)
    ref = _talib_obv(talib, basket, ticker)
    got = out.extras["obv"][ticker]
    assert got.isna().equals(ref.isna())
    np.testing.assert_allclose(got.dropna(), ref.dropna(), rtol=1e-8, atol=1e-8 * ref.abs().max())
    # the divergence model reports the same OBV
    div = VolumeDivergenceModel().run(basket).extras["obv"][ticker]
    pd.testing.assert_series_equal(div, got)


def test_vwap_and_vwma_equal_a_plain_loop(basket):
    out = VolumeWeightedModel(window=20).run(basket)
    adj = basket.adjusted()
    typical = (adj.high + adj.low + basket.adj_close) / 3.0
    vol = basket.split_adjusted().volume  # back-adjusted: another anchor, same weights
    # AAPL 4:1 split on 2020-08-31 and 7:1 on 2014-06-09 fall inside two of the windows
    for ticker, date in (
        ("AAPL", "2020-09-10"),
        ("AAPL", "2014-06-20"),
        ("JPM", "2008-09-30"),
        ("TSLA", "2010-07-27"),
    ):
        t = _pos(basket, date)
        num = den = num_c = 0.0
        for i in range(t - 19, t + 1):
            num += typical[ticker].iloc[i] * vol[ticker].iloc[i]
            num_c += basket.adj_close[ticker].iloc[i] * vol[ticker].iloc[i]
            den += vol[ticker].iloc[i]
        assert out.extras["vwap"][ticker].iloc[t] == pytest.approx(num / den, rel=1e-12)
        assert out.extras["vwma"][ticker].iloc[t] == pytest.approx(num_c / den, rel=1e-12)
    # TSLA's first 19 bars cannot fill a 20-day window
    first = _pos(basket, basket.adj_close["TSLA"].first_valid_index())
    assert out.extras["vwap"]["TSLA"].iloc[: first + 19].isna().all()
    assert np.isfinite(out.extras["vwap"]["TSLA"].iloc[first + 19])


def test_volume_weighted_signal_by_hand(talib, basket):
    model = VolumeWeightedModel(window=20, obv_window=10, anchor="vwap", price_weight=0.7)
    out = model.run(basket)
    ret = basket.adj_close.pct_change(fill_method=None)
    for ticker in ("AAPL", "KO"):
        obv = _talib_obv(talib, basket, ticker)
        vol = _forward_volume(basket)[ticker]
        for date in ("2008-10-09", "2020-09-10"):
            t = _pos(basket, date)
            sigma = ret[ticker].iloc[t - 19 : t + 1].std(ddof=1)
            vwap = out.extras["vwap"][ticker].iloc[t]
            price = math.tanh((basket.adj_close[ticker].iloc[t] / vwap - 1.0) / sigma)
            trend = (obv.iloc[t] - obv.iloc[t - 10]) / vol.iloc[t - 9 : t + 1].sum()
            assert out.primary[ticker].iloc[t] == pytest.approx(0.7 * price + 0.3 * trend, rel=1e-9)


# ----------------------------------------------------------- price-volume relation


def test_volume_price_relationship_by_hand(basket):
    out = VolumePriceRelationshipModel(corr_window=20, trend_window=15).run(basket)
    absr = VolumePriceRelationshipModel(corr_window=20, trend_window=15, pair="abs_returns").run(
        basket
    )
    ret = basket.adj_close.pct_change(fill_method=None)
    vol = _forward_volume(basket)
    dlv = np.log(vol).diff()
    seen = set()
    for ticker in ("AAPL", "XOM", "WMT"):
        for date in ("2008-10-09", "2014-06-20", "2020-09-10"):
            t = _pos(basket, date)
            x = ret[ticker].iloc[t - 19 : t + 1].to_numpy()
            y = dlv[ticker].iloc[t - 19 : t + 1].to_numpy()
            corr = np.corrcoef(x, y)[0, 1]
            corr_abs = np.corrcoef(np.abs(x), y)[0, 1]
            px = basket.adj_close[ticker]
            d_p = np.sign(px.iloc[t] / px.iloc[t - 15] - 1.0)
            d_v = np.sign(
                vol[ticker].iloc[t - 14 : t + 1].mean() - vol[ticker].iloc[t - 29 : t - 14].mean()
            )
            assert out.extras["correlation"][ticker].iloc[t] == pytest.approx(corr, rel=1e-8)
            assert out.primary[ticker].iloc[t] == pytest.approx(0.5 * (corr + d_p * d_v), rel=1e-8)
            assert absr.primary[ticker].iloc[t] == pytest.approx(
                0.5 * (corr_abs * d_p + d_p * d_v), rel=1e-8
            )
            label = -d_p if d_v < 0 else 0.0
            assert out.extras["divergence"][ticker].iloc[t] == label
            seen.add(label)
    assert len(seen) >= 2


def test_volume_momentum_by_hand(basket):
    out = VolumeMomentumModel(short_window=5, long_window=50, price_window=10, sensitivity=0.3).run(
        basket
    )
    vol = basket.split_adjusted().volume
    for ticker in ("AAPL", "JNJ"):
        px = basket.adj_close[ticker]
        for date in ("2008-10-09", "2020-09-03"):
            t = _pos(basket, date)
            ratio = vol[ticker].iloc[t - 4 : t + 1].mean() / vol[ticker].iloc[t - 49 : t + 1].mean()
            expect = np.sign(px.iloc[t] / px.iloc[t - 10] - 1.0) * math.tanh(math.log(ratio) / 0.3)
            assert out.extras["volume_ratio"][ticker].iloc[t] == pytest.approx(ratio, rel=1e-10)
            assert out.primary[ticker].iloc[t] == pytest.approx(expect, rel=1e-9)


# ------------------------------------------------------------------------ divergence


def _divergence_twin(
    close: np.ndarray, ind: np.ndarray, vol: np.ndarray, n: int, indicator: str, hold: int
):
    """Plain-Python twin of the divergence rules, one ticker, bar by bar."""
    labels = np.full(len(close), np.nan)
    for t in range(n, len(close)):
        prev = close[t - n : t]
        ok = np.isfinite(prev).all() and np.isfinite(close[t])
        if indicator == "obv":
            prev_ind = ind[t - n : t]
            ok = ok and np.isfinite(prev_ind).all()
            weak_low, weak_high = ind[t] > prev_ind.min(), ind[t] < prev_ind.max()
        else:
            prev_v = vol[t - n : t]
            ok = ok and np.isfinite(prev_v).all() and np.isfinite(vol[t])
            weak_low = weak_high = vol[t] < prev_v.mean()
        if not ok:
            continue
        labels[t] = 0.0
        if close[t] < prev.min() and weak_low:
            labels[t] = 1.0
        elif close[t] > prev.max() and weak_high:
            labels[t] = -1.0
    signal = np.full(len(close), np.nan)
    for t in range(len(close)):
        if np.isnan(labels[t]):
            continue
        recent = [x for x in labels[max(0, t - hold + 1) : t + 1] if x == x and x != 0]
        signal[t] = recent[-1] if recent else 0.0
    return labels, signal


@pytest.mark.parametrize("indicator", ["obv", "volume"])
def test_divergence_equals_a_plain_loop(talib, basket, indicator):
    out = VolumeDivergenceModel(lookback=20, indicator=indicator, hold=5).run(basket)
    vol = _forward_volume(basket)
    for ticker in ("AAPL", "TSLA"):
        obv = _talib_obv(talib, basket, ticker).to_numpy()
        labels, signal = _divergence_twin(
            basket.adj_close[ticker].to_numpy(), obv, vol[ticker].to_numpy(), 20, indicator, 5
        )
        got = out.extras["divergence"][ticker].to_numpy()
        np.testing.assert_array_equal(got, labels)
        np.testing.assert_array_equal(out.primary[ticker].to_numpy(), signal)
        assert (labels == 1).sum() > 5 and (labels == -1).sum() > 5


# ------------------------------------------------------------------------ clustering


def test_kmeans_refits_use_only_past_data(basket):
    """Changing every bar from a refit date on leaves that refit and all labels before it."""
    model = VolumeClusteringModel(**FAST_KMEANS)
    base = model.run(basket)
    refits = base.tables["refits"]
    cut = pd.Timestamp(refits["refit_date"].unique()[8])
    after = basket.dates >= cut
    # a deterministic distortion of the real bars from the refit date on
    scale = np.where(after, 1.0 + 0.5 * (np.arange(len(basket.dates)) % 3), 1.0)[:, None]
    changed = replace(
        basket,
        volume=basket.volume * scale,
        adj_close=basket.adj_close * np.where(after, 0.8, 1.0)[:, None],
    )
    other = VolumeClusteringModel(**FAST_KMEANS).run(changed)
    before = basket.dates < cut
    pd.testing.assert_frame_equal(other.primary[before], base.primary[before])
    pd.testing.assert_frame_equal(other.extras["cluster"][before], base.extras["cluster"][before])
    # the refit on the cut date itself learnt only from bars before it
    pd.testing.assert_frame_equal(
        other.tables["refits"].query("refit_date <= @cut").reset_index(drop=True),
        refits.query("refit_date <= @cut").reset_index(drop=True),
    )
    # ... and the distortion does matter afterwards (so the test can fail)
    assert not other.extras["cluster"][after].equals(base.extras["cluster"][after])


def test_kmeans_schedule_labels_and_signal(basket):
    model = VolumeClusteringModel(n_clusters=3, **FAST_KMEANS)
    out = model.run(basket)
    refits = out.tables["refits"]
    dates = list(refits["refit_date"].unique())
    # first refit after min_train bars, then every refit_every bars
    assert dates[0] == basket.dates[252]
    assert all(
        basket.dates.get_loc(b) - basket.dates.get_loc(a) == 126
        for a, b in zip(dates[:-1], dates[1:], strict=True)
    )
    assert out.primary.iloc[:252].isna().all().all()
    assert out.extras["cluster"].iloc[:252].isna().all().all()
    # clusters are ordered by relative volume at every refit: label 0 is the quietest
    for _, grp in refits.groupby("refit_date"):
        assert list(grp["cluster"]) == [0, 1, 2]
        assert grp["log_rel_volume"].is_monotonic_increasing
    # each row's signal is its cluster's score from the latest refit
    for date in ("2003-05-01", "2012-02-15", "2020-03-16"):
        t = _pos(basket, date)
        refit = max(d for d in dates if d <= basket.dates[t])
        scores = refits[refits["refit_date"] == refit].set_index("cluster")["signal"]
        labels = out.extras["cluster"].iloc[t].dropna().astype(int)
        np.testing.assert_allclose(
            out.primary.iloc[t][labels.index],
            scores.loc[labels.to_numpy()].to_numpy(),
            rtol=0,
            atol=0,
        )
    # the score is tanh(t / t_scale) of the cluster's excess next-day return
    np.testing.assert_allclose(refits["signal"], np.tanh(refits["t_stat"] / 2.0))


def test_kmeans_is_seeded(basket):
    a = VolumeClusteringModel(random_state=3, **FAST_KMEANS).run(basket)
    b = VolumeClusteringModel(random_state=3, **FAST_KMEANS).run(basket)
    pd.testing.assert_frame_equal(a.primary, b.primary)
    pd.testing.assert_frame_equal(a.tables["refits"], b.tables["refits"])


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", MODELS)
def test_bundled_like_data_without_volume_names_the_field(basket, cls):
    closes = MarketData.from_close(basket.adj_close, source="bundled")
    with pytest.raises(DataError, match="volume"):
        cls().run(closes)


@pytest.mark.parametrize("cls", MODELS)
def test_too_little_history_raises(basket, cls):
    with pytest.raises(DataError, match="trading days of history") as info:
        cls().run(basket.select(end="1999-11-15"))
    assert str(info.value).endswith("the data has 11, 1999-11-01 to 1999-11-15")


def _fast(cls):
    return cls(**FAST_KMEANS) if cls is VolumeClusteringModel else cls()


@pytest.mark.parametrize("cls", MODELS)
def test_all_nan_column_single_ticker_and_late_listing(basket, cls):
    px = basket.adj_close.copy()
    vol = basket.volume.copy()
    px["KO"] = np.nan
    vol["KO"] = np.nan
    data = replace(basket, adj_close=px, volume=vol)
    out = _fast(cls).run(data).primary
    assert out["KO"].isna().all()
    assert out["AAPL"].notna().sum() > 3000
    # TSLA: nothing before its first bar
    first = basket.adj_close["TSLA"].first_valid_index()
    assert out.loc[: first - pd.Timedelta(days=1), "TSLA"].isna().all()
    assert out.loc[first:, "TSLA"].notna().sum() > 2000
    # one ticker alone: per-ticker models give exactly that ticker's column
    one = _fast(cls).run(basket.select(tickers=["MSFT"])).primary["MSFT"]
    assert one.notna().sum() > 3000
    if cls is not VolumeClusteringModel:  # k-means pools tickers, by design
        pd.testing.assert_series_equal(one, _fast(cls).run(basket).primary["MSFT"])


def test_zero_volume_days_give_no_infinities(sp500_dir):
    data = load_local(sp500_dir, tickers=["ODFL", "MNST", "AAPL"])
    assert (data.volume == 0).sum().sum() > 50  # real zero-volume bars
    for cls in MODELS:
        out = _fast(cls).run(data)
        for frame in [out.primary, *out.extras.values()]:
            values = frame.to_numpy(dtype="float64", na_value=np.nan)
            assert not np.isinf(values).any(), cls.__name__
        p = out.primary.to_numpy()
        assert np.nanmax(np.abs(p)) <= 1.0


@pytest.mark.parametrize("cls", MODELS)
def test_bundled_source_has_no_volume(bundled, cls):
    assert not bundled.has_volume
    with pytest.raises(DataError, match="needs traded volume.*'bundled'"):
        cls().run(bundled)
