"""Naive baselines beside the walk-forward's out-of-sample track, on real prices: the
equal-weight equity by hand, exactly the folds' dates, the default-parameter track equal
to a one-point walk-forward, the index from the bundled S&P 500, the CLI JSON and text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mltrainer.backtest.baselines import (
    ROWS,
    equal_weight_buy_and_hold,
    index_buy_and_hold,
    oos_span,
)
from mltrainer.backtest.walkforward import walk_forward
from mltrainer.cli import main
from mltrainer.data.bundled import sp500_index_close
from mltrainer.models.registry import MODELS

MOM = MODELS["momentum/SimpleMomentumModel"]  # default window 10
FIVE = ["AAPL", "MSFT", "KO", "XOM", "JPM"]
KW = dict(train_size=504, test_size=252, backtest_kwargs={"commission_bps": 5.0}, n_jobs=1)


@pytest.fixture(scope="module")
def data(basket):
    return basket.select(tickers=FIVE, start="2005-01-01", end="2011-12-31")


@pytest.fixture(scope="module")
def wf(data):
    return walk_forward(MOM, data, {"window": [20, 120]}, **KW)


def test_equal_weight_equity_by_hand_on_real_days(data, wf):
    span = oos_span(data.dates, wf.splits)
    ew = equal_weight_buy_and_hold(data, span, commission_bps=5.0)
    px = data.adj_close
    cost = 5.0 / 1e4  # one unit of gross exposure bought at the first close
    # fifths bought at the close of span[0], costs paid from cash (engine convention):
    # V_t = mean_i(P_i,t / P_i,a) - cost until the close-out
    for day in (span[1], pd.Timestamp("2008-10-10"), pd.Timestamp("2009-03-09"), span[-2]):
        by_hand = float((px.loc[day] / px.loc[span[0]]).mean()) - cost
        assert ew.equity.loc[day] == pytest.approx(by_hand, rel=1e-12), day
    assert ew.equity.iloc[0] == pytest.approx(1.0 - cost, rel=1e-15)
    assert ew.turnover.iloc[0] == pytest.approx(1.0, rel=1e-12)
    assert (ew.turnover.iloc[1:-1] == 0).all()  # held: no trade until the close-out
    assert ew.positions.iloc[-1].abs().sum() == 0
    # the close-out sells the drifted book: cost x (V⁻ + cash) on the last date
    pre = float((px.loc[span[-1]] / px.loc[span[0]]).mean()) - cost
    assert ew.equity.iloc[-1] == pytest.approx(pre - cost * (pre + cost), rel=1e-12)


def test_equal_weight_buys_a_listing_on_its_first_price(basket):
    data = basket.select(tickers=["KO", "XOM", "TSLA"], start="2009-01-01", end="2012-12-31")
    span = data.dates[10:]
    ew = equal_weight_buy_and_hold(data, span)
    traded = ew.turnover[ew.turnover > 0].index
    listing = pd.Timestamp("2010-06-29")  # TSLA's first close in the local files
    assert list(traded) == [span[0], listing, span[-1]]
    assert ew.positions.loc[:listing, "TSLA"].iloc[:-1].eq(0).all()
    np.testing.assert_allclose(ew.positions.loc[listing].to_numpy(), [1 / 3] * 3, rtol=1e-12)


def test_equal_weight_holds_nothing_over_a_missing_price(sp500_dir):
    from mltrainer.data.local import load_local

    data = load_local(sp500_dir, tickers=["WELL", "KO"]).select(
        start="2005-06-01", end="2006-06-30"
    )
    gaps = data.adj_close.index[data.adj_close["WELL"].isna()]  # real gaps in WELL's file
    assert len(gaps) >= 3
    ew = equal_weight_buy_and_hold(data, data.dates, commission_bps=5.0)
    before = data.dates[data.dates.get_indexer(gaps) - 1]
    assert ew.positions.loc[before, "WELL"].eq(0).all()  # sold at the last close before
    assert ew.positions.loc[gaps, "WELL"].eq(0).all()
    assert ew.positions.loc[before, "KO"].eq(1.0).all() and not ew.warnings
    after = data.dates[data.dates.get_indexer(gaps) + 1]
    np.testing.assert_allclose(ew.positions.loc[after].to_numpy(), 0.5, rtol=1e-12)


def test_a_membership_mask_limits_the_equal_weight_holdings(data, wf):
    span = oos_span(data.dates, wf.splits)
    joins = pd.Timestamp("2009-06-01")
    members = pd.DataFrame(True, index=data.dates, columns=FIVE)
    members.loc[: joins - pd.Timedelta(days=1), "KO"] = False
    ew = equal_weight_buy_and_hold(data, span, members=members)
    assert ew.positions.loc[: joins - pd.Timedelta(days=1), "KO"].eq(0).all()
    np.testing.assert_allclose(ew.positions.loc[joins].to_numpy(), [0.2] * 5, rtol=1e-12)
    np.testing.assert_allclose(ew.positions.iloc[0].to_numpy(), [0.25, 0.25, 0, 0.25, 0.25])
    assert list(ew.turnover[ew.turnover > 0].index) == [span[0], joins, span[-1]]


def test_a_members_mask_in_the_backtest_settings_reaches_the_baseline(data, wf):
    members = pd.DataFrame(True, index=data.dates, columns=FIVE)
    members.loc[:"2009-05-29", "KO"] = False
    masked = walk_forward(
        MOM,
        data,
        {"window": [20, 120]},
        train_size=504,
        test_size=252,
        backtest_kwargs={"commission_bps": 5.0, "members": members},
        n_jobs=1,
    )
    span = oos_span(data.dates, masked.splits)
    want = equal_weight_buy_and_hold(data, span, members=members, commission_bps=5.0)
    pd.testing.assert_series_equal(
        masked.baselines.returns["equal_weight"], want.returns, check_names=False
    )
    assert not masked.baselines.returns["equal_weight"].equals(wf.baselines.returns["equal_weight"])
    assert masked.baselines.span["universe"].endswith("held only while index members")


def test_every_row_covers_exactly_the_out_of_sample_dates_of_the_folds(data, wf):
    dates = data.dates
    decisions = np.concatenate([sp.test for sp in wf.splits])
    labels = dates[decisions + 1]
    span = oos_span(dates, wf.splits)
    assert span[:-1].equals(dates[decisions]) and span[1:].equals(labels)
    report = wf.baselines
    assert report.returns.index.equals(span) and wf.oos.returns.index.equals(span)
    assert list(report.returns) == list(ROWS)  # all four rows available on local 2005-2011
    assert report.span["first_date"] == wf.folds["test_start"].iloc[0]
    assert report.span["last_date"] == str(labels[-1].date())
    assert report.span["n_dates"] == len(span) and report.span["n_folds"] == len(wf.folds)
    assert report.span["label"] == "out of sample" and "AAPL" in report.span["universe"]
    table = report.table()
    assert table.loc["model", "cagr"] == pytest.approx(wf.oos_metrics["cagr"], rel=1e-12)
    assert table.loc["model", "sharpe"] == pytest.approx(wf.oos_metrics["sharpe"], rel=1e-12)
    for row in ("equal_weight", "index", "default_params"):
        assert table.loc[row, "excess_cagr"] == pytest.approx(
            table.loc["model", "cagr"] - table.loc[row, "cagr"], rel=1e-12
        )
        assert table.loc[row, "excess_sharpe"] == pytest.approx(
            table.loc["model", "sharpe"] - table.loc[row, "sharpe"], rel=1e-12
        )
    assert np.isnan(table.loc["index", "annual_turnover"])  # not traded


def test_default_params_baseline_is_a_one_point_walk_forward_at_the_defaults(data, wf):
    one_point = walk_forward(MOM, data, {"window": [10]}, **KW)
    pd.testing.assert_series_equal(
        wf.baselines.returns["default_params"],
        one_point.oos.returns,
        check_names=False,
        rtol=0,
        atol=0,
    )
    # the same track when the grid holds the defaults (the grid's run is reused)
    with_default = walk_forward(MOM, data, {"window": [10, 120]}, **KW)
    pd.testing.assert_series_equal(
        with_default.baselines.returns["default_params"],
        one_point.oos.returns,
        check_names=False,
        rtol=0,
        atol=0,
    )
    assert "same track" in one_point.baselines.notes["default_params"]


def test_index_row_is_the_bundled_sp500_held_from_the_first_close(data, wf):
    span = oos_span(data.dates, wf.splits)
    close = sp500_index_close()
    growth = wf.baselines.equity()["index"]
    for day in (span[1], pd.Timestamp("2009-03-09"), span[-1]):
        assert growth.loc[day] == pytest.approx(close.loc[day] / close.loc[span[0]], rel=1e-12)
    returns, note = index_buy_and_hold(close.loc[:"2010-12-31"], span)
    assert returns is None and note.startswith("index: not available for this source")
    short = walk_forward(MOM, data, {"window": [20]}, index_close=close.loc[:"2010-12-31"], **KW)
    summary = short.summary()["baselines"]
    assert summary["index"]["available"] is False and summary["index"]["cagr"] is None
    assert "not available for this source" in summary["index"]["note"]


@pytest.mark.parametrize(
    "key",
    ["momentum/SimpleMomentumModel", "technical/TrendAnalysisModel", "volume/VolumeWeightedModel"],
)
def test_cli_json_and_text_carry_the_baselines(key, capsys):
    args = [
        "walkforward",
        key,
        "--source",
        "local",
        "--tickers",
        "AAPL,KO,XOM",
        "--start",
        "2012-01-01",
        "--end",
        "2016-12-31",
        "--train-days",
        "504",
        "--test-days",
        "252",
        "--cost-bps",
        "5",
        "--n-jobs",
        "1",
        "--no-progress",
    ]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [k for k in doc if "baseline" in k] == ["baselines"]
    base = doc["baselines"]
    assert set(base) == {"out_of_sample", *ROWS}
    span = base["out_of_sample"]
    assert span["label"] == "out of sample" and span["first_date"] == doc["folds"][0]["test_start"]
    assert span["universe"].startswith("3 tickers (local): AAPL, KO, XOM")
    assert span["costs"]["commission_bps"] == 5.0
    assert base["model"]["cagr"] == pytest.approx(doc["oos_metrics"]["cagr"], rel=1e-12)
    for row in ("equal_weight", "index", "default_params"):
        entry = base[row]
        assert entry["available"] and {
            "cagr",
            "sharpe",
            "max_drawdown",
            "excess_cagr",
            "excess_sharpe",
        } <= set(entry)
        assert entry["excess_cagr"] == pytest.approx(base["model"]["cagr"] - entry["cagr"])
    assert base["equal_weight"]["annual_turnover"] > 0 and base["index"]["annual_turnover"] is None
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"out of sample: from {span['first_date']} to {span['last_date']}" in text
    assert "equal-weight buy-and-hold" in text and "S&P 500 index" in text
    assert "default parameters" in text
