"""The momentum family against hand computation on real S&P 500 bars.

Every reference here is computed independently of the model code: pandas on the
adjusted-close frame (``shift``, ``rank``, ``median``, ``groupby``), ``math`` on single
values, or a plain loop.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _momentum_math as mm
from mltrainer.models.momentum import (
    CrossSectionalMomentumModel,
    DualMomentumModel,
    EnsembleMomentumModel,
    RiskAdjustedMomentumModel,
    SectorRotationMomentumModel,
    SimpleMomentumModel,
    TimeSeriesMomentumModel,
    VolumeConfirmedMomentumModel,
)

DATES = ("2003-03-11", "2008-10-09", "2020-09-03")


def _pos(data, date) -> int:
    return data.dates.get_loc(pd.Timestamp(date))


def _ret(series: pd.Series, t: int, back: int, skip: int = 0) -> float:
    return series.iloc[t - skip] / series.iloc[t - back] - 1.0


def _step(x: float, c: float) -> float:
    return 1.0 if x > c else (-1.0 if x < -c else 0.0)


# ------------------------------------------------------------------- simple / TSM


def test_simple_momentum_by_hand_on_aapl(basket):
    out = SimpleMomentumModel(window=10, threshold=0.02).run(basket)
    lin = SimpleMomentumModel(window=10, threshold=0.05, mode="linear").run(basket)
    aapl = basket.adj_close["AAPL"]
    seen = set()
    for date in DATES:
        t = _pos(basket, date)
        r = _ret(aapl, t, 10)
        assert out.extras["momentum"]["AAPL"].iloc[t] == pytest.approx(r, rel=1e-12)
        assert out.primary["AAPL"].iloc[t] == _step(r, 0.02)
        assert lin.primary["AAPL"].iloc[t] == pytest.approx(max(-1.0, min(1.0, r / 0.05)))
        seen.add(_step(r, 0.02))
    assert seen == {-1.0, 1.0}, "the dates should show both signs"
    # the first 10 rows have no 10-day return
    assert out.primary["AAPL"].iloc[:10].isna().all()
    assert out.primary["AAPL"].iloc[10:].notna().all()


def test_time_series_momentum_by_hand(basket):
    model = TimeSeriesMomentumModel(short_window=10, long_window=60, short_weight=0.3)
    out = model.run(basket)
    for ticker in ("AAPL", "XOM", "TSLA"):
        px = basket.adj_close[ticker]
        for date in DATES:
            t = _pos(basket, date)
            if ticker == "TSLA" and date < "2010-09-30":
                assert np.isnan(out.primary[ticker].iloc[t])
                continue
            expect = 0.3 * np.sign(_ret(px, t, 10)) + 0.7 * np.sign(_ret(px, t, 60))
            assert out.primary[ticker].iloc[t] == pytest.approx(expect, abs=1e-15)


def test_time_series_short_must_be_shorter(basket):
    with pytest.raises(ParameterError, match="short_window"):
        TimeSeriesMomentumModel(short_window=30, long_window=30).fit(basket)


# ---------------------------------------------------------------------------- dual


def test_dual_momentum_by_hand(basket):
    model = DualMomentumModel(window=126, abs_threshold=0.05, rel_threshold=0.02)
    out = model.run(basket)
    avg = DualMomentumModel(
        window=126, abs_threshold=0.05, rel_threshold=0.02, benchmark="mean", combine="average"
    ).run(basket)
    px = basket.adj_close
    for date in DATES:
        t = _pos(basket, date)
        r = px.iloc[t] / px.iloc[t - 126] - 1.0
        med, mean = r.median(), r.mean()  # pandas skips NaN (TSLA before its listing)
        for ticker in basket.tickers:
            got = out.primary[ticker].iloc[t]
            if np.isnan(r[ticker]):
                assert np.isnan(got)
                continue
            a, rel = _step(r[ticker], 0.05), _step(r[ticker] - med, 0.02)
            assert out.extras["absolute"][ticker].iloc[t] == a
            assert out.extras["relative"][ticker].iloc[t] == rel
            assert got == (a if a == rel else 0.0)
            rel_mean = _step(r[ticker] - mean, 0.02)
            assert avg.primary[ticker].iloc[t] == pytest.approx(0.5 * (a + rel_mean))


def test_dual_momentum_single_ticker_has_no_relative_part(basket):
    one = basket.select(tickers=["AAPL"])
    out = DualMomentumModel().run(one)
    assert out.extras["absolute"]["AAPL"].notna().sum() > 4000
    assert out.extras["relative"]["AAPL"].isna().all()  # median of one name: undefined
    assert out.primary["AAPL"].isna().all()
    assert (
        len(out.warnings) == 1
        and "prices for two tickers (1 ticker in the data): the" in out.warnings[0]
    )


@pytest.mark.parametrize(
    "cls", [DualMomentumModel, CrossSectionalMomentumModel, SectorRotationMomentumModel]
)
def test_a_ranking_of_tickers_that_never_trade_together_says_why_it_is_empty(basket, cls):
    """AAPL's real bars until 2010-05-28, TSLA's from its listing (2010-06-29): no date to
    rank one against the other, so the signal was NaN throughout without a word."""
    both = basket.select(tickers=["AAPL", "TSLA"], start="2007-01-01", end="2013-12-31")
    gone = both.dates >= pd.Timestamp("2010-06-01")
    apart = replace(both, adj_close=both.adj_close.assign(AAPL=both.adj_close["AAPL"].mask(gone)))
    out = cls().run(apart)
    assert out.primary.isna().all().all()
    assert any("prices for two tickers (2 tickers in the data)" in w for w in out.warnings)
    assert not any("for two tickers" in w for w in cls().run(both).warnings)  # they overlap


# ----------------------------------------------------------------- cross-sectional


def test_cross_sectional_rank_matches_pandas_rank(panel):
    model = CrossSectionalMomentumModel(lookback=252, skip=21)
    out = model.run(panel)
    px = panel.adj_close
    for date in ("2009-03-09", "2015-06-30"):
        t = _pos(panel, date)
        mom = px.iloc[t - 21] / px.iloc[t - 252] - 1.0
        mom[px.iloc[t].isna()] = np.nan  # must be trading on the day itself
        n = mom.notna().sum()
        assert 400 < n < 504
        expect = 2.0 * (mom.rank() - 1.0) / (n - 1.0) - 1.0
        got = out.primary.iloc[t]
        pd.testing.assert_series_equal(got, expect, check_names=False, rtol=1e-12)
        assert got.min() == -1.0 and got.max() == 1.0
    # quantile mode: +1 for the top fifth, -1 for the bottom fifth
    q = CrossSectionalMomentumModel(mode="quantile", quantile=0.2).run(panel)
    row = q.primary.iloc[_pos(panel, "2015-06-30")]
    n = row.notna().sum()
    assert (row == 1).sum() == pytest.approx(0.2 * n, abs=2)
    assert (row == -1).sum() == pytest.approx(0.2 * n, abs=2)
    assert set(row.dropna().unique()) == {-1.0, 0.0, 1.0}


def test_cross_sectional_nan_before_listing(basket):
    out = CrossSectionalMomentumModel().run(basket).primary
    first = basket.adj_close["TSLA"].first_valid_index()
    start = basket.dates.get_loc(first)
    assert out["TSLA"].iloc[: start + 252].isna().all()
    assert out["TSLA"].iloc[start + 252 :].notna().all()
    # before TSLA has a 12-1 return the other nine are ranked among themselves
    t = start + 100
    assert out.iloc[t].notna().sum() == 9
    assert out.iloc[t].max() == 1.0 and out.iloc[t].min() == -1.0


def test_cross_sectional_skip_must_leave_a_window(basket):
    with pytest.raises(ParameterError, match="lookback"):
        CrossSectionalMomentumModel(lookback=60, skip=50).fit(basket)


# ------------------------------------------------------------------- risk adjusted


def test_risk_adjusted_by_hand_and_drawdown_guard(basket):
    model = RiskAdjustedMomentumModel(
        window=60, vol_window=40, scale=1.5, drawdown_window=126, max_drawdown=0.25
    )
    out = model.run(basket)
    px = basket.adj_close
    logr = np.log(px).diff()
    checked_guard = checked_free = 0
    for ticker in ("JPM", "AAPL", "XOM"):
        for date in ("2008-10-09", "2012-05-15", "2019-01-02"):
            t = _pos(basket, date)
            sigma = logr[ticker].iloc[t - 39 : t + 1].std(ddof=1)
            z = math.log(px[ticker].iloc[t] / px[ticker].iloc[t - 60]) / (sigma * math.sqrt(60))
            dd = 1.0 - px[ticker].iloc[t] / px[ticker].iloc[t - 125 : t + 1].max()
            assert out.extras["zscore"][ticker].iloc[t] == pytest.approx(z, rel=1e-9)
            assert out.extras["drawdown"][ticker].iloc[t] == pytest.approx(dd, rel=1e-12)
            got = out.primary[ticker].iloc[t]
            if dd > 0.25:
                assert got == 0.0
                checked_guard += 1
            else:
                assert got == pytest.approx(math.tanh(z / 1.5), rel=1e-9)
                checked_free += 1
    assert checked_guard and checked_free, "2008-10 should trip the guard, others not"


# ------------------------------------------------------------------ volume confirmed


def test_volume_confirmed_uses_split_consistent_volume(basket):
    model = VolumeConfirmedMomentumModel(
        window=10, threshold=0.02, confirm_window=5, volume_window=50, volume_ratio=1.2
    )
    out = model.run(basket)
    # reference volume: split-adjusted by the container (pre-split volume scaled up);
    # ratios of volumes do not depend on which end the adjustment is anchored to
    vol = basket.split_adjusted().volume["AAPL"]
    px = basket.adj_close["AAPL"]
    # AAPL split 4:1 on 2020-08-31: these windows straddle it
    for date in ("2020-09-03", "2020-09-25", "2011-08-10"):
        t = _pos(basket, date)
        ratio = vol.iloc[t - 4 : t + 1].mean() / vol.iloc[t - 49 : t + 1].mean()
        assert out.extras["volume_ratio"]["AAPL"].iloc[t] == pytest.approx(ratio, rel=1e-10)
        expect = _step(_ret(px, t, 10), 0.02) if ratio > 1.2 else 0.0
        assert out.primary["AAPL"].iloc[t] == expect
    # as-traded volume would show a fourfold jump at the split
    raw = basket.volume["AAPL"]
    t = _pos(basket, "2020-09-03")
    raw_ratio = raw.iloc[t - 4 : t + 1].mean() / raw.iloc[t - 49 : t + 1].mean()
    assert raw_ratio > 2.0 > out.extras["volume_ratio"]["AAPL"].iloc[t]


# ----------------------------------------------------------------- sector rotation


def test_sector_rotation_by_hand(panel):
    model = SectorRotationMomentumModel(window=126, n_top=3, n_bottom=3, sector_weight=0.6)
    out = model.run(panel)
    t = _pos(panel, "2016-11-30")
    px = panel.adj_close
    mom = px.iloc[t] / px.iloc[t - 126] - 1.0
    sector = pd.Series(panel.sectors).reindex(panel.tickers)
    table = pd.DataFrame({"m": mom, "s": sector}).dropna()
    sec_mean = table.groupby("s")["m"].mean()
    sec_sd = table.groupby("s")["m"].std(ddof=1)
    pd.testing.assert_series_equal(
        out.extras["sector_momentum"].iloc[t],
        sec_mean,
        check_names=False,
        check_index_type=False,
        rtol=1e-12,
    )
    rank = sec_mean.rank(ascending=False)
    pd.testing.assert_series_equal(
        out.extras["sector_rank"].iloc[t], rank, check_names=False, check_index_type=False
    )
    k = len(sec_mean)
    for ticker in ("XOM", "JPM", "AAPL", "NEM", "DUK"):
        s = sector[ticker]
        part = 1.0 if rank[s] <= 3 else (-1.0 if rank[s] > k - 3 else 0.0)
        rel = math.tanh((mom[ticker] - sec_mean[s]) / sec_sd[s])
        assert out.primary[ticker].iloc[t] == pytest.approx(0.6 * part + 0.4 * rel, rel=1e-10)


def test_sector_rotation_ranks_the_sectors_of_each_date(panel, shared_data_dir):
    """It ranked a 'Communication Services' of GOOGL, CMCSA, DIS, VZ and T in 2007, eleven
    years before the sector existed; with the sectors of each date (the data's point-in-
    time periods) GOOGL is Information Technology then, and AMT a Financials REIT."""
    from mltrainer.data.gics import with_sector_periods
    from mltrainer.data.membership import load_membership

    data = with_sector_periods(panel, load_membership(shared_data_dir))
    assert [d.date().isoformat() for d, _ in data.sector_periods] == [
        "1999-11-01",
        "2016-09-01",
        "2018-09-24",
    ]
    out = SectorRotationMomentumModel(window=126).run(data)
    t = _pos(data, "2007-06-29")
    mom = out.extras["sector_momentum"].iloc[t]
    assert np.isnan(mom["Communication Services"]) and np.isnan(mom["Real Estate"])
    then = data.sector_spans()[0][1]
    assert then["GOOGL"] == "Information Technology" and then["AMT"] == "Financials"
    px = data.adj_close
    m = (px.iloc[t] / px.iloc[t - 126] - 1.0).dropna()
    it = [k for k in m.index if then.get(k) == "Information Technology"]
    assert "GOOGL" in it and mom["Information Technology"] == pytest.approx(m[it].mean())
    assert np.isfinite(out.primary["GOOGL"].iloc[t])
    # from 2018-09-24 on, today's sectors: the same figures as the static model there
    static = SectorRotationMomentumModel(window=126).run(panel)
    assert out.warnings == () and static.warnings == (mm.TODAYS_SECTORS,)  # undated: said
    late = data.dates >= "2018-09-24"
    pd.testing.assert_frame_equal(out.primary.loc[late], static.primary.loc[late])
    # a media company the 1999 list cannot place (sub-industry needed) is out, and said
    unmapped = out.tables["unmapped"]
    assert np.isfinite(px["DISH"].iloc[t - 126 : t + 1]).all() and "DISH" in set(unmapped["ticker"])
    assert np.isnan(out.primary["DISH"].iloc[t]) and np.isfinite(static.primary["DISH"].iloc[t])
    assert unmapped["note"].str.contains("from 1999-11-01 to 2016-08-31").any()


def test_sector_rotation_needs_sectors(basket):
    with pytest.raises(DataError, match="sector"):
        SectorRotationMomentumModel().run(replace(basket, sectors={}))


def test_sector_rotation_unmapped_ticker_is_nan(basket):
    sectors = {k: v for k, v in basket.sectors.items() if k != "KO"}
    out = SectorRotationMomentumModel().run(replace(basket, sectors=sectors))
    assert out.primary["KO"].isna().all()
    assert list(out.tables["unmapped"]["ticker"]) == ["KO"]
    # WMT is now the only Consumer Staples name: exactly at its sector mean
    assert out.primary["WMT"].notna().sum() > 4000


def test_sector_rotation_in_one_sector_is_refused_by_name(basket):
    """AAPL and MSFT are both Information Technology: no sector to rank against, so every
    value would be NaN (a backtest of nothing read 0% CAGR). Refused, naming the sector;
    the ensemble skips the member with the same note."""
    two = basket.select(tickers=["AAPL", "MSFT"])
    with pytest.raises(DataError, match="sectors are Information Technology only"):
        SectorRotationMomentumModel().run(two)
    plan = EnsembleMomentumModel().run(two).tables["members"].set_index("member")
    assert "Information Technology only" in plan.loc["SectorRotationMomentumModel", "note"]
    assert (
        SectorRotationMomentumModel()
        .run(basket.select(tickers=["AAPL", "XOM"]))
        .primary.notna()
        .any()
        .all()
    )


# ------------------------------------------------------------------------ ensemble


def test_ensemble_is_the_weighted_mean_of_its_members(basket):
    weights = {
        "w_simple": 0.5,
        "w_dual": 0.0,
        "w_cross_sectional": 0.25,
        "w_risk_adjusted": 1.0,
        "w_time_series": 0.75,
        "w_volume_confirmed": 0.4,
        "w_sector_rotation": 0.3,
    }
    out = EnsembleMomentumModel(**weights).run(basket)
    members = {
        "w_simple": SimpleMomentumModel,
        "w_cross_sectional": CrossSectionalMomentumModel,
        "w_risk_adjusted": RiskAdjustedMomentumModel,
        "w_time_series": TimeSeriesMomentumModel,
        "w_volume_confirmed": VolumeConfirmedMomentumModel,
        "w_sector_rotation": SectorRotationMomentumModel,
    }
    num = 0.0
    den = 0.0
    for name, cls in members.items():
        s = cls().run(basket).primary
        num = num + s.fillna(0.0) * weights[name]
        den = den + s.notna() * weights[name]
    expect = (num / den).where(den > 0)
    pd.testing.assert_frame_equal(out.primary, expect, rtol=1e-14, atol=1e-15)
    # late in the sample every member is defined: a plain weighted mean
    t = _pos(basket, "2019-06-28")
    plain = sum(cls().run(basket).primary.iloc[t] * weights[n] for n, cls in members.items())
    pd.testing.assert_series_equal(
        out.primary.iloc[t], plain / sum(weights[n] for n in members), check_names=False, rtol=1e-14
    )
    plan = out.tables["members"].set_index("member")
    assert not plan.loc["DualMomentumModel", "used"]


def test_ensemble_skips_members_the_data_cannot_feed(basket):
    closes = MarketData.from_close(basket.adj_close, source="bundled")
    out = EnsembleMomentumModel().run(closes)
    plan = out.tables["members"].set_index("member")
    assert not plan.loc["VolumeConfirmedMomentumModel", "used"]
    assert "volume" in plan.loc["VolumeConfirmedMomentumModel", "note"]
    assert not plan.loc["SectorRotationMomentumModel", "used"]
    assert "sectors" in plan.loc["SectorRotationMomentumModel", "note"]
    used = [
        SimpleMomentumModel,
        DualMomentumModel,
        CrossSectionalMomentumModel,
        RiskAdjustedMomentumModel,
        TimeSeriesMomentumModel,
    ]
    frames = [cls().run(closes).primary for cls in used]
    expect = sum(f.fillna(0.0) for f in frames) / sum(f.notna() for f in frames)
    pd.testing.assert_frame_equal(
        out.primary, expect.where(sum(f.notna() for f in frames) > 0), rtol=1e-14, atol=1e-15
    )


def test_ensemble_needs_a_positive_weight(basket):
    zero = {name: 0.0 for name in EnsembleMomentumModel.param_specs}
    with pytest.raises(ParameterError, match="weight"):
        EnsembleMomentumModel(**zero).fit(basket)


def test_ensemble_takes_member_instances(basket):
    """A given member fills its slot (the others stay at their defaults)."""
    only = {name: 0.0 for name in EnsembleMomentumModel.param_specs}
    only.update(w_simple=1.0, w_time_series=0.5)
    members = {"w_simple": SimpleMomentumModel(window=20, mode="linear")}
    out = EnsembleMomentumModel(**only, members=members).run(basket)
    parts = [
        (SimpleMomentumModel(window=20, mode="linear").run(basket).primary, 1.0),
        (TimeSeriesMomentumModel().run(basket).primary, 0.5),
    ]
    num = sum(s.fillna(0.0) * w for s, w in parts)
    den = sum(s.notna() * w for s, w in parts)
    pd.testing.assert_frame_equal(out.primary, (num / den).where(den > 0), rtol=1e-14)
    assert EnsembleMomentumModel(members=members).min_history() == 21  # Simple's 20 + 1
    for bad in ({"w_simple": DualMomentumModel()}, {"w_nope": SimpleMomentumModel()}, [1]):
        with pytest.raises(ParameterError, match="members"):
            EnsembleMomentumModel(members=bad).fit(basket)


# ----------------------------------------------------------------------- bad input


def test_too_little_history_raises(basket):
    short = basket.select(end="1999-11-10")  # 8 trading days
    with pytest.raises(DataError, match="at least 11 trading days"):
        SimpleMomentumModel(window=10).run(short)
    with pytest.raises(DataError, match="253"):
        CrossSectionalMomentumModel().run(basket.select(end="2000-06-30"))


def test_all_nan_column_and_single_ticker(basket):
    px = basket.adj_close.copy()
    px["KO"] = np.nan
    data = replace(basket, adj_close=px)
    for cls in (
        SimpleMomentumModel,
        TimeSeriesMomentumModel,
        RiskAdjustedMomentumModel,
        CrossSectionalMomentumModel,
        DualMomentumModel,
    ):
        out = cls().run(data).primary
        assert out["KO"].isna().all(), cls.__name__
        assert out["AAPL"].notna().sum() > 4000, cls.__name__
    one = basket.select(tickers=["MSFT"])
    simple = SimpleMomentumModel().run(one).primary
    pd.testing.assert_series_equal(
        simple["MSFT"], SimpleMomentumModel().run(basket).primary["MSFT"]
    )
    assert CrossSectionalMomentumModel().run(one).primary["MSFT"].isna().all()


def test_data_without_volume_names_the_field(basket):
    closes = MarketData.from_close(basket.adj_close, source="bundled")
    with pytest.raises(DataError, match="volume"):
        VolumeConfirmedMomentumModel().run(closes)
    # price-only models run on the same data
    assert SimpleMomentumModel().run(closes).primary.notna().any().any()


def test_ensemble_on_the_bundled_source(bundled):
    """skfolio's 20 stocks: adjusted closes and sectors, no volume."""
    out = EnsembleMomentumModel().run(bundled)
    plan = out.tables["members"].set_index("member")
    assert list(plan.index[~plan["used"]]) == ["VolumeConfirmedMomentumModel"]
    assert plan.loc["SectorRotationMomentumModel", "used"]
    values = out.primary.to_numpy()
    assert np.isfinite(values[300:]).all() and np.nanmax(np.abs(values)) <= 1.0
    with pytest.raises(DataError, match="volume"):
        VolumeConfirmedMomentumModel().run(bundled)


def test_loaded_data_dates_its_sectors_on_first_use_and_when_pickled(shared_data_dir):
    """The loaders anchor each key at its last price date and date the sectors only when
    a model asks (the membership files cost ~0.6 s a process); a pickled copy (a Dask
    worker, which may have no membership files) carries them dated."""
    import pickle

    from mltrainer.data.sources import load_market_data

    data = load_market_data("local", tickers=["GOOGL", "AMT", "XOM"], end="2010-12-31")
    assert data.sector_periods is None
    before = data.fingerprint()
    assert str(data.sector_anchors["GOOGL"].date()) == "2021-04-21"  # before the selection
    sent = pickle.loads(pickle.dumps(data))
    assert sent.sector_periods is not None and data.sector_periods == sent.sector_periods
    assert data.fingerprint() == sent.fingerprint() == before  # a run's identity holds
    first = data.sector_spans()[0][1]
    assert first == {"GOOGL": "Information Technology", "AMT": "Financials", "XOM": "Energy"}
    assert [d.date().isoformat() for d, _ in data.sector_periods] == ["1999-11-01"]  # to 2010
