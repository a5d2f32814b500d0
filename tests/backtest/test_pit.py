"""Trading the index as it was, on the real 504-ticker panel and the real membership
files: the held universe equals the membership mask, the survivorship comparison, the
CLI's JSON and text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mltrainer.backtest.engine import backtest_model, run_backtest
from mltrainer.backtest.pit import (
    SP500,
    SURVIVORS,
    membership_mask,
    resolve_universe,
    survivorship_effect,
)
from mltrainer.cli import main
from mltrainer.data.membership import load_membership
from mltrainer.models.momentum import CrossSectionalMomentumModel


@pytest.fixture(scope="module")
def panel_0512(panel):
    return panel.select(start="2005-01-01", end="2012-12-31")


@pytest.fixture(scope="module")
def membership(shared_data_dir):
    return load_membership(shared_data_dir, use_cache=False)


def test_a_2005_2012_backtest_holds_exactly_the_members_with_prices(panel_0512, membership):
    universe = resolve_universe(panel_0512, None, tickers_given=False, membership=membership)
    assert universe.name == SP500
    mask = membership_mask(panel_0512, membership)
    # an always-long signal: the positions taken are the tradable universe itself
    signal = panel_0512.adj_close.notna().astype(float)
    res = run_backtest(signal, panel_0512, members=universe.mask)
    held = res.positions.to_numpy() != 0
    tradable = mask.to_numpy() & panel_0512.adj_close.notna().to_numpy()
    # held = the members with a price, plus a member whose price is missing that day and
    # whose position simply carries (14 such cells: KIM, RHI, SPGI (McGraw-Hill then),
    # VIAC (CBS then) in 2006-2008); never a non-member
    differ = held != tradable
    no_price = panel_0512.adj_close.isna().to_numpy()
    assert (differ <= (mask.to_numpy() & no_price & held)).all()
    assert int(differ.sum()) == 14
    assert not (held & ~mask.to_numpy()).any()
    # 2005-01-03: 244 of the 504 files were members with a price
    assert int(held[0].sum()) == int(tradable[0].sum()) == 244
    # and a member's weight is 1/n of that day's members with a price
    row = res.positions.iloc[0]
    assert row[row != 0].to_numpy() == pytest.approx(1 / 244)
    assert res.settings["benchmark"] == (
        "equal-weighted tickers of the run while index members, rebalanced daily"
    )


def test_the_survivorship_effect_on_real_data(panel_0512, membership):
    universe = resolve_universe(panel_0512, SP500, tickers_given=False, membership=membership)
    model = CrossSectionalMomentumModel()
    pit, out = backtest_model(model, panel_0512, members=universe.mask, commission_bps=5)
    surv = run_backtest(out.primary, panel_0512, commission_bps=5)
    effect = survivorship_effect(pit.metrics, surv.metrics)
    diff = effect["survivors_minus_point_in_time"]
    assert diff["cagr"] == pytest.approx(surv.metrics["cagr"] - pit.metrics["cagr"])
    assert diff["sharpe"] == pytest.approx(surv.metrics["sharpe"] - pit.metrics["sharpe"])
    # every compared figure is there (the volatility was null: it was read under a name
    # the metrics do not use)
    for side in ("point_in_time", "survivors", "survivors_minus_point_in_time"):
        assert all(np.isfinite(v) for v in effect[side].values()), effect[side]
    assert effect["survivors"]["annual_volatility"] == surv.metrics["annual_volatility"]
    # the two runs differ: membership removes 2005's non-members from the book
    assert abs(diff["cagr"]) > 1e-3
    assert any("leans toward survivors" in w for w in universe.warnings)


def test_the_coverage_speaks_of_the_dates_traded(panel_0512, membership):
    """A backtest from 2010 on a panel loaded from 2005 (for the model to learn from):
    the coverage and its warning are measured from 2010, not from the panel's start."""
    whole = resolve_universe(panel_0512, SP500, tickers_given=False, membership=membership)
    traded = resolve_universe(
        panel_0512, SP500, tickers_given=False, membership=membership, traded_from="2010-01-02"
    )
    assert whole.coverage["first_date"] == "2005-01-03"
    assert traded.coverage["first_date"] == "2010-01-04"  # the first trading day
    assert traded.coverage["members_on_first_date"] == len(membership.members_on("2010-01-04"))
    # fewer of the 2010 members are missing from a panel of April 2021's members
    assert traded.coverage["share_mean"] > whole.coverage["share_mean"]
    assert any("on 2010-01-04" in w for w in traded.warnings)
    assert traded.mask.equals(whole.mask)  # the holdings' mask is the same


def test_survivors_and_given_tickers_skip_membership(basket, membership):
    assert resolve_universe(basket, None, tickers_given=True, membership=membership).mask is None
    assert resolve_universe(basket, SURVIVORS, tickers_given=False).mask is None
    forced = resolve_universe(basket, SP500, tickers_given=True, membership=membership)
    assert forced.mask is not None and forced.mask.shape == basket.adj_close.shape
    # picked tickers cover a sliver of the index because they were picked, not because
    # delisted members are missing from the data: the warning says which
    assert not any("leans toward survivors" in w for w in forced.warnings)
    assert any(
        w.startswith(f"the {basket.n_tickers} tickers given are a subset of the index")
        for w in forced.warnings
    )
    # TSLA joined the index on 2020-12-21: no membership before
    assert not forced.mask.loc[:"2020-12-18", "TSLA"].any()
    assert forced.mask.loc["2021-01-04", "TSLA"]


ARGS = [
    "--source",
    "local",
    "--tickers",
    "AAPL,MSFT,KO,XOM,JPM,TSLA,BRK.B",
    "--start",
    "2008-01-01",
    "--end",
    "2014-12-31",
]


def test_cli_backtest_reports_the_survivorship_effect(capsys):
    code = main(
        ["backtest", "momentum/TimeSeriesMomentumModel", "--universe", "sp500", "--json", *ARGS]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["universe"]["name"] == "sp500"
    effect = doc["survivorship"]
    assert set(effect) >= {"point_in_time", "survivors", "survivors_minus_point_in_time"}
    assert effect["point_in_time"]["cagr"] == pytest.approx(doc["metrics"]["cagr"])
    code = main(["backtest", "momentum/TimeSeriesMomentumModel", "--universe", "sp500", *ARGS])
    text = capsys.readouterr().out
    assert "S&P 500 as it was" in text and "survivors" in text and "difference" in text


def test_cli_walkforward_reports_survivors_and_baselines(capsys):
    code = main(
        [
            "walkforward",
            "momentum/SimpleMomentumModel",
            "--universe",
            "sp500",
            "--grid",
            "window=20,60",
            "--train-days",
            "504",
            "--test-days",
            "252",
            "--n-jobs",
            "1",
            "--no-progress",
            "--json",
            *ARGS,
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("survivor" in k for k in doc) and doc["survivorship"]["survivors"]
    assert any("baseline" in k for k in doc)


def test_cli_members_warns_outside_coverage(capsys):
    assert main(["universe", "members", "--date", "1990-01-01", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("known from 1996-01-02" in w for w in doc["warnings"])
    assert main(["universe", "members", "--date", "2021-04-23", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 505 and doc["warnings"] == []
    assert main(["universe", "members", "--date", "2031-01-02", "--json"]) == 0
    assert any("known up to" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_a_date_range_keeps_the_keys_of_the_source(panel, membership):
    """A 2005-2010 window of the 2021-keyed files: WELL is still Welltower (HCN then)."""
    window = panel.select(
        tickers=["WELL", "FB", "GOOG", "GOOGL", "BKNG"], start="2005-01-01", end="2010-12-31"
    )
    mask = membership_mask(window, membership).loc["2010-06-30"]
    assert mask.to_dict() == {"WELL": True, "FB": False, "GOOG": False, "GOOGL": True, "BKNG": True}
