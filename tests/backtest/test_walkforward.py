"""Walk-forward validation: purging by hand, the DSR by its formula, no leakage."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from mltrainer.backtest.deflated import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
)
from mltrainer.backtest.metrics import sharpe_ratio
from mltrainer.backtest.splits import purge, purged_kfold_splits, walk_forward_splits
from mltrainer.backtest.walkforward import walk_forward
from mltrainer.errors import DataError, ParameterError
from mltrainer.models.registry import MODELS

MOM = MODELS["momentum/SimpleMomentumModel"]


# ---------------------------------------------------------------------- purging
def test_purge_hand_example_training_before_and_after_the_test_fold():
    # test decisions 20..24 with 3-day labels span dates 20..27
    train = np.r_[0:20, 25:41]
    kept, purged, embargoed = purge(train, np.arange(20, 25), label_horizon=3, embargo=2)
    # before: 17, 18, 19 have labels reaching 20, 21, 22 -> purged
    # after: 25, 26, 27 start inside the test labels' span -> purged; 28, 29 embargoed
    assert purged.tolist() == [17, 18, 19, 25, 26, 27]
    assert embargoed.tolist() == [28, 29]
    assert kept.tolist() == list(range(0, 17)) + list(range(30, 41))
    kept0, purged0, _ = purge(np.arange(20), np.arange(20, 25), label_horizon=0)
    assert purged0.size == 0 and kept0.size == 20


def test_walk_forward_splits_expanding_and_rolling():
    sp = walk_forward_splits(100, train_size=40, test_size=20, mode="expanding", label_horizon=2)
    assert [(s.test[0], s.test[-1]) for s in sp] == [(40, 59), (60, 79), (80, 99)]
    assert sp[0].train.tolist() == list(range(0, 38))  # 38, 39 purged (labels reach 40)
    assert sp[0].purged.tolist() == [38, 39]
    assert sp[2].train.tolist() == list(range(0, 78))
    roll = walk_forward_splits(100, train_size=40, test_size=20, mode="rolling", label_horizon=1)
    assert roll[1].train.tolist() == list(range(20, 59))
    short = walk_forward_splits(95, 40, 20)  # last fold of 15 >= min_test 10 is kept
    assert short[-1].test.tolist() == list(range(80, 95))
    assert len(walk_forward_splits(85, 40, 20)) == 2  # a last fold of 5 is dropped
    with pytest.raises(DataError, match="cannot hold"):
        walk_forward_splits(45, 40, 20)
    with pytest.raises(ParameterError, match="mode"):
        walk_forward_splits(100, 40, 20, mode="sideways")


def test_purged_kfold_embargo():
    folds = purged_kfold_splits(30, 3, label_horizon=1, embargo=2)
    mid = folds[1]  # test 10..19
    assert mid.test.tolist() == list(range(10, 20))
    assert mid.purged.tolist() == [9, 20]
    assert mid.embargoed.tolist() == [21, 22]
    assert mid.train.tolist() == list(range(0, 9)) + list(range(23, 30))


# --------------------------------------------------------------------------- DSR
def test_deflated_sharpe_ratio_by_the_formula():
    sr, n_obs, skew, kurt, n, var = 0.05, 1000, -0.5, 5.0, 10, 0.0004
    z = NormalDist()
    gamma = 0.5772156649015329
    sr0 = math.sqrt(var) * (
        (1 - gamma) * z.inv_cdf(1 - 1 / n) + gamma * z.inv_cdf(1 - 1 / (n * math.e))
    )
    want = z.cdf(
        (sr - sr0) * math.sqrt(n_obs - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )
    assert expected_max_sharpe(var, n) == pytest.approx(sr0, rel=1e-12)
    assert probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurt) == pytest.approx(want, rel=1e-12)
    assert 0.0 < want < 1.0 and sr0 > 0.03  # ten trials raise the bar well above 0


def test_deflated_sharpe_on_real_trials_matches_vectorbt(vectorbt, basket):
    # the vectorbt fixture imports it, which registers the ``.vbt`` accessor used here
    rets = basket.select(start="2015-01-01", end="2019-12-31").returns().iloc[1:]
    rets = rets.drop(columns=["TSLA"]).dropna()
    acc = rets.vbt.returns(freq="1D", year_freq="252D")
    trial = (acc.sharpe_ratio() / np.sqrt(252)).to_numpy()
    best = rets.columns[int(np.argmax(trial))]
    ours = deflated_sharpe_ratio(rets[best].to_numpy(), trial)
    theirs = acc.deflated_sharpe_ratio()[best]
    assert ours["dsr"] == pytest.approx(theirs, rel=1e-9)
    assert ours["n_trials"] == rets.shape[1] and ours["n_obs"] == len(rets)


def test_one_trial_dsr_is_the_psr_against_zero(basket):
    r = basket.returns()["KO"].loc["2010":"2014"].to_numpy()
    out = deflated_sharpe_ratio(r, np.array([0.03]))
    assert out["sr0"] == 0.0 and out["n_trials"] == 1
    sr = r.mean() / r.std(ddof=1)
    s = ((r - r.mean()) ** 3).mean() / r.std() ** 3
    k = ((r - r.mean()) ** 4).mean() / r.var() ** 2
    want = NormalDist().cdf(
        sr * math.sqrt(len(r) - 1) / math.sqrt(1 - s * sr + (k - 1) / 4 * sr**2)
    )
    assert out["dsr"] == pytest.approx(want, rel=1e-10)


# ------------------------------------------------------------------ walk-forward
@pytest.fixture(scope="module")
def wf_data(basket):
    return basket.select(
        tickers=["AAPL", "MSFT", "JPM", "XOM", "KO", "INTC"], start="2004-01-01", end="2016-12-31"
    )


def test_walk_forward_chooses_the_best_training_sharpe(wf_data):
    grid = {"window": [20, 60, 120]}
    res = walk_forward(
        MOM,
        wf_data,
        grid,
        train_size=504,
        test_size=252,
        n_jobs=1,
        backtest_kwargs={"commission_bps": 5},
    )
    assert len(res.folds) == len(res.splits) >= 8
    for sp, (_, row) in zip(res.splits, res.folds.iterrows(), strict=True):
        sharpes = [
            sharpe_ratio(res.trial_returns[j].to_numpy()[sp.train + 1])
            for j in range(len(res.grid))
        ]
        assert row["params"] == {"window": res.grid[int(np.argmax(sharpes))]["window"]}
        assert row["is_sharpe"] == pytest.approx(max(sharpes), rel=1e-12)
        assert row["n_purged"] == 1  # label horizon 1: the day before the test fold
    # the out-of-sample track starts at the first test date and pays the costs
    assert res.oos.equity.index[0] == wf_data.dates[res.splits[0].test[0]]
    assert res.oos.metrics["total_costs"] > 0
    dsr = res.deflated_sharpe["oos"]
    assert dsr["n_trials"] == 3 and dsr["sr0"] > 0 and 0 <= dsr["dsr"] <= 1
    assert set(res.summary()) >= {"folds", "oos_metrics", "deflated_sharpe"}


def test_a_grid_with_one_point_works(wf_data):
    calls = []
    res = walk_forward(
        MOM,
        wf_data,
        {"window": [60]},
        train_size=504,
        test_size=252,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert all(p == {"window": 60} for p in res.folds["params"])
    assert res.deflated_sharpe["oos"]["n_trials"] == 1
    assert res.deflated_sharpe["oos"]["sr0"] == 0.0
    # one grid point, one run of the defaults (window 10) for the baseline, the stitching
    assert calls[-1] == (3, 3) and calls[0] == (1, 3)
    none = walk_forward(MOM, wf_data, None, params={"window": 60}, train_size=504, test_size=252)
    pd.testing.assert_series_equal(none.oos.equity, res.oos.equity)
    instance = walk_forward(MOM(window=60), wf_data, None, train_size=504, test_size=252)
    pd.testing.assert_series_equal(instance.oos.equity, res.oos.equity)


@pytest.mark.parametrize("train,test", [(504, 126), (756, 252), (10, 3), (5, 2)])
def test_min_dates_is_the_bound_of_the_splitter(train, test):
    """``min_dates()`` dates hold one fold; one fewer holds none (the splitter decides)."""
    from mltrainer.backtest.walkforward import WalkForwardSettings

    s = WalkForwardSettings(train_size=train, test_size=test)
    assert len(s.splits(s.min_dates() - 1)) == 1
    with pytest.raises(DataError, match="cannot hold a training window"):
        s.splits(s.min_dates() - 2)


def test_too_few_dates_for_one_fold_are_named_in_trading_days():
    """The splitter's "40 samples cannot hold a training window of 756" reached users;
    the range, its trading days and what one fold needs are named instead."""
    from mltrainer.backtest.walkforward import WalkForwardSettings

    s = WalkForwardSettings(train_size=10, test_size=4)
    dates = pd.bdate_range("2021-03-01", periods=s.min_dates())
    s.check_fits(dates)
    with pytest.raises(DataError) as err:
        s.check_fits(dates[:-1])
    assert str(err.value) == (
        "the range from 2021-03-01 to 2021-03-16 holds 12 trading days; a walk-forward "
        "needs 13 (a 10-day first training window and a test fold of 2 days or more): "
        "widen the dates or shorten the training window"
    )


def test_a_value_given_twice_is_one_setting_tried():
    """``window=60,60.0`` is one setting: one trial for the deflated Sharpe, not two."""
    from mltrainer.backtest.grid import expand_grid

    assert expand_grid(MOM, {"window": [60, 60.0, 20, 60]}) == [{"window": 60}, {"window": 20}]
    points = expand_grid(MOM, {"window": [20, 20], "threshold": [0.0, 0.01, 0.0]})
    assert len(points) == 2 and {p["threshold"] for p in points} == {0.0, 0.01}


def test_future_prices_change_no_earlier_fold(wf_data):
    grid = {"window": [20, 120]}
    kw = dict(train_size=504, test_size=252, backtest_kwargs={"commission_bps": 5})
    base = walk_forward(MOM, wf_data, grid, **kw)
    cut = pd.Timestamp("2012-06-29")
    px = {name: frame.copy() for name, frame in wf_data.frames().items()}
    for name in ("open", "high", "low", "close", "adj_close"):
        px[name].loc[px[name].index > cut] *= np.linspace(0.6, 1.7, px[name].shape[1])
    from dataclasses import replace

    shocked = replace(wf_data, **px)
    other = walk_forward(MOM, shocked, grid, **kw)
    done = base.folds["test_end"].map(pd.Timestamp) < cut - pd.Timedelta(days=7)
    assert done.sum() >= 4
    pd.testing.assert_frame_equal(base.folds[done], other.folds[done])
    pd.testing.assert_series_equal(base.oos.equity.loc[:cut], other.oos.equity.loc[:cut])
    assert not base.folds[~done].equals(other.folds[~done])


def test_parallel_grid_equals_sequential(wf_data):
    grid = {"window": [20, 60, 120]}
    one = walk_forward(MOM, wf_data, grid, train_size=504, test_size=504, n_jobs=1)
    two = walk_forward(MOM, wf_data, grid, train_size=504, test_size=504, n_jobs=2)
    pd.testing.assert_frame_equal(one.folds, two.folds)
    pd.testing.assert_frame_equal(one.trial_returns, two.trial_returns)


def test_bad_grids_raise(wf_data):
    with pytest.raises(ParameterError, match="lookback"):
        walk_forward(MOM, wf_data, {"lookback": [5]})
    with pytest.raises(ParameterError, match="window"):
        walk_forward(MOM, wf_data, {"window": [1000]})
    with pytest.raises(ParameterError, match="non-empty"):
        walk_forward(MOM, wf_data, {"window": []})
    with pytest.raises(ParameterError, match="volatility"):
        walk_forward(MODELS["volatility/SimpleVolatilityModel"], wf_data, None)


def test_grid_table_summarises_each_point(wf_data):
    res = walk_forward(
        MOM,
        wf_data,
        {"window": [20, 120], "mode": ["step", "linear"]},
        train_size=504,
        test_size=252,
    )
    table = res.grid_table()
    assert len(table) == 4 and {"window", "mode", "sharpe", "times_chosen"} <= set(table)
    assert table["times_chosen"].sum() == len(res.folds)
    j = 3
    assert table.loc[j, "sharpe"] == pytest.approx(
        sharpe_ratio(res.trial_returns[j].to_numpy()[1:]), rel=1e-12
    )
