"""Sector baskets, relative strength and the relative rotation graph against pandas
oracles, plain-loop twins and numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.sectors import (
    cumulative_index,
    membership_matrix,
    period_return,
    quadrant,
    relative_rotation,
    relative_strength,
    resample_levels,
    rrg_tails,
    rs_momentum,
    rs_ratio,
    sector_performance,
    sector_returns,
    trailing_returns,
    universe_returns,
)

DATES = pd.bdate_range("2020-01-06", periods=4)


def test_membership_matrix_puts_unknown_tickers_in_their_own_column():
    m = membership_matrix(["A", "B", "C"], {"A": "Energy", "B": "Energy"})
    assert list(m.columns) == ["Energy", "Unknown"]
    assert m.loc["A"].tolist() == [1.0, 0.0] and m.loc["C"].tolist() == [0.0, 1.0]


def test_sector_returns_by_hand_skip_missing_members():
    r = pd.DataFrame(
        {
            "A": [0.01, np.nan, 0.03, np.nan],
            "B": [0.03, 0.02, np.nan, np.nan],
            "C": [-0.02, 0.04, 0.00, 0.05],
        },
        index=DATES,
    )
    out = sector_returns(r, {"A": "X", "B": "X", "C": "Y"})
    # X: mean of the live members that day; no member alive -> NaN
    assert out["X"].iloc[:3].tolist() == pytest.approx([0.02, 0.02, 0.03])
    assert np.isnan(out["X"].iloc[3])
    assert out["Y"].tolist() == pytest.approx([-0.02, 0.04, 0.0, 0.05])
    # cap-weighted: A has 3x B's weight on day 1: (3*0.01 + 1*0.03) / 4
    capw = sector_returns(
        r, {"A": "X", "B": "X", "C": "Y"}, weights=pd.Series({"A": 3.0, "B": 1.0})
    )
    assert capw["X"].iloc[0] == pytest.approx(0.015)
    assert np.isnan(capw["Y"].iloc[0])  # C has no weight


def test_sector_returns_equal_pandas_groupby_on_the_real_basket(basket):
    rets = basket.returns()
    out = sector_returns(rets, basket.sectors)
    oracle = rets.T.groupby(lambda t: basket.sectors.get(t) or "Unknown").mean().T
    pd.testing.assert_frame_equal(out, oracle[out.columns], check_names=False, atol=1e-15)
    uni = universe_returns(rets)
    pd.testing.assert_series_equal(uni, rets.mean(axis=1), check_names=False, atol=1e-15)


def test_sector_returns_reject_negative_weights_and_empty_input():
    r = pd.DataFrame({"A": [0.01]}, index=DATES[:1])
    with pytest.raises(DataError, match="non-negative"):
        sector_returns(r, {"A": "X"}, weights=pd.Series({"A": -1.0}))
    with pytest.raises(DataError, match="at least one ticker"):
        sector_returns(r.iloc[:, :0], {})


def test_cumulative_index_starts_at_the_first_return_and_carries_over_gaps():
    r = pd.Series([np.nan, 0.10, np.nan, -0.5], index=DATES)
    level = cumulative_index(r)
    assert np.isnan(level.iloc[0])
    assert level.iloc[1:].tolist() == pytest.approx([110.0, 110.0, 55.0])


def test_relative_strength_by_hand():
    levels = pd.DataFrame({"S": [100.0, 110.0, 121.0]}, index=DATES[:3])
    bench = pd.Series([50.0, 50.0, 55.0], index=DATES[:3])
    raw = relative_strength(levels, bench, rebase=False)
    assert raw["S"].tolist() == pytest.approx([200.0, 220.0, 220.0])
    assert relative_strength(levels, bench)["S"].tolist() == pytest.approx([100.0, 110.0, 110.0])


def _loop_zscore(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(w - 1, len(x)):
        win = x[t - w + 1 : t + 1]
        if np.isfinite(win).all() and np.std(win, ddof=1) > 0:
            out[t] = (x[t] - win.mean()) / np.std(win, ddof=1)
    return out


@pytest.fixture(scope="module")
def sector_levels(basket):
    daily = sector_returns(basket.returns(), basket.sectors)
    return cumulative_index(daily), cumulative_index(universe_returns(basket.returns()))


def test_rs_ratio_and_momentum_equal_a_plain_loop_twin(sector_levels):
    levels, bench = sector_levels
    weekly = resample_levels(levels, "weekly")
    rs = relative_strength(
        weekly, resample_levels(bench, "weekly").reindex(weekly.index), rebase=False
    )
    ratio = rs_ratio(rs, 12)
    mom = rs_momentum(ratio, 10, 2)
    for col in ("Energy", "Information Technology"):
        x = rs[col].to_numpy()
        want_ratio = 100 + _loop_zscore(x, 12)
        np.testing.assert_allclose(ratio[col].to_numpy(), want_ratio, rtol=0, atol=1e-9)
        roc = np.full(len(x), np.nan)
        roc[2:] = 100 * (want_ratio[2:] / want_ratio[:-2] - 1)
        np.testing.assert_allclose(mom[col].to_numpy(), 100 + _loop_zscore(roc, 10), atol=1e-9)


def test_relative_rotation_is_causal(sector_levels):
    levels, bench = sector_levels
    full = relative_rotation(levels, bench, window=10, freq="weekly")
    cut = pd.Timestamp("2012-06-15")
    part = relative_rotation(levels.loc[:cut], bench.loc[:cut], window=10, freq="weekly")
    # every point of the truncated run is identical to the same point of the full run,
    # except the last (partial) week, which the full run closes later
    last = part["date"].max()
    a = part[part["date"] < last].set_index(["date", "sector"]).sort_index()
    b = full.set_index(["date", "sector"]).loc[a.index]
    pd.testing.assert_frame_equal(a, b)
    assert set(full["quadrant"]) <= {"Leading", "Weakening", "Lagging", "Improving"}


def test_resample_weekly_keeps_the_last_trading_day_of_each_week():
    idx = pd.to_datetime(["2021-04-12", "2021-04-13", "2021-04-16", "2021-04-19", "2021-04-21"])
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=idx)
    weekly = resample_levels(frame, "weekly")
    assert list(weekly.index) == [pd.Timestamp("2021-04-16"), pd.Timestamp("2021-04-21")]
    assert weekly["x"].tolist() == [3.0, 5.0]
    with pytest.raises(ParameterError, match="frequency"):
        resample_levels(frame, "hourly")


def test_quadrants_by_hand():
    got = quadrant([101, 101, 99, 99, np.nan], [101, 99, 99, 101, 100])
    assert got.tolist() == ["Leading", "Weakening", "Lagging", "Improving", ""]


def test_rrg_tails_take_the_last_points_per_sector():
    rrg = pd.DataFrame(
        {
            "date": list(DATES) * 2,
            "sector": ["A"] * 4 + ["B"] * 4,
            "rs_ratio": range(8),
            "rs_momentum": range(8),
        }
    )
    tails = rrg_tails(rrg, 2)
    assert tails.groupby("sector")["rs_ratio"].apply(list).to_dict() == {"A": [2, 3], "B": [6, 7]}
    assert len(rrg_tails(rrg, 3, end=DATES[1])) == 4
    with pytest.raises(ParameterError):
        rrg_tails(rrg, 0)


def test_rrg_window_must_be_sensible(sector_levels):
    levels, bench = sector_levels
    with pytest.raises(ParameterError, match="at least 3"):
        relative_rotation(levels, bench, window=2)
    with pytest.raises(ParameterError, match="lag"):
        relative_rotation(levels, bench, lag=0)


def test_trailing_returns_compound_by_hand():
    daily = pd.DataFrame(
        {
            "S": [0.10, -0.10, np.nan, 0.05],
            "new": [np.nan, np.nan, 0.02, 0.01],  # a basket created on the third day
            "gone": [0.01, 0.02, np.nan, np.nan],  # one that ended on the second
        },
        index=DATES,
    )
    out = trailing_returns(daily, {"2d": 2, "4d": 4})
    assert out.loc["S", "2d"] == pytest.approx(0.05)  # a flat gap, then 0.05
    assert out.loc["S", "4d"] == pytest.approx(1.1 * 0.9 * 1.05 - 1)
    # a two-day return, not a four-day one under the 4d label; none at all when it ended
    assert out.loc["new", "2d"] == pytest.approx(1.02 * 1.01 - 1)
    assert np.isnan(out.loc["new", "4d"]) and out.loc["gone"].isna().all()
    # five days of returns are not in four rows: no figure, not the four days' return
    assert trailing_returns(daily, {"5d": 5})["5d"].isna().all()
    with pytest.raises(ParameterError):
        trailing_returns(daily, {"none": 0})


def test_sector_performance_matches_compounded_basket_on_real_data(basket):
    rets = basket.returns()
    perf = sector_performance(rets, basket.sectors, {"1M": 21})
    energy = rets[[t for t in basket.tickers if basket.sectors.get(t) == "Energy"]]
    want = (1 + energy.iloc[-21:].mean(axis=1)).prod() - 1
    assert perf.loc["Energy", "1M"] == pytest.approx(want, rel=1e-12)


def test_period_return_uses_the_last_price_on_or_before_each_date(basket):
    close = basket.adj_close[["AAPL", "TSLA"]]
    out = period_return(close, "2012-12-25", "2013-06-30")  # a holiday and a Sunday
    a = close["AAPL"]
    assert out["AAPL"] == pytest.approx(a.loc["2013-06-28"] / a.loc["2012-12-24"] - 1)
    early = period_return(close, "2005-01-03", "2006-01-03")
    assert np.isnan(early["TSLA"])  # TSLA listed in 2010
