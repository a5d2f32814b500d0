"""``python -m mltrainer backtest`` and ``walkforward``: JSON output, audit records, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mltrainer import audit
from mltrainer.backtest.engine import backtest_model
from mltrainer.cli import main
from mltrainer.models.registry import MODELS

ARGS = [
    "--tickers",
    "AAPL,KO,XOM",
    "--start",
    "2012-01-01",
    "--end",
    "2016-12-31",
    "--source",
    "local",
]


def test_backtest_json_matches_the_engine_and_is_audited(basket, capsys):
    code = main(
        [
            "backtest",
            "momentum/SimpleMomentumModel",
            "--param",
            "window=60",
            "--cost-bps",
            "5",
            "--json",
            *ARGS,
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    # the model learns from the history before --start too (as in the Model Lab): the
    # backtest trades from the range's first day, its 60-day window already full
    data = basket.select(tickers=["AAPL", "KO", "XOM"], end="2016-12-31")
    assert data.dates[0] < pd.Timestamp("2011-01-01")
    want, _ = backtest_model(
        MODELS["momentum/SimpleMomentumModel"](window=60),
        data,
        commission_bps=5,
        start="2012-01-01",
    )
    assert doc["first_date"] == "2012-01-03" and doc["last_date"] == "2016-12-30"
    assert doc["final_equity"] == pytest.approx(float(want.equity.iloc[-1]), rel=1e-12)
    assert doc["metrics"]["sharpe"] == pytest.approx(want.metrics["sharpe"], rel=1e-12)
    assert want.positions.iloc[0].abs().sum() > 0  # invested on the first day
    main(["backtest", "momentum/SimpleMomentumModel", "--param", "window=60", *ARGS])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(
        "from 2012-01-03 to 2016-12-30; the model learns from 1999-11-01 on (each day's "
        "value uses data up to that day only)"
    )
    rec = audit.show(doc["audit_id"])
    assert rec["kind"] == "backtest" and rec["params"]["window"] == 60
    assert rec["metrics"]["final_equity"] == pytest.approx(doc["final_equity"])


def test_walkforward_json_reports_folds_and_the_deflated_sharpe(capsys):
    code = main(
        [
            "walkforward",
            "momentum/SimpleMomentumModel",
            "--grid",
            "window=20,120",
            "--train-days",
            "504",
            "--test-days",
            "252",
            "--n-jobs",
            "1",
            "--json",
            "--no-progress",
            *ARGS,
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["folds"]) == 3
    assert {"is_sharpe", "oos_sharpe", "params"} <= set(doc["folds"][0])
    assert doc["deflated_sharpe"]["oos"]["n_trials"] == 2
    assert audit.show(doc["audit_id"])["kind"] == "walkforward"


def test_bad_requests_exit_2_with_a_message(capsys):
    assert (
        main(["walkforward", "momentum/SimpleMomentumModel", "--grid", "nope=1,2", "--json", *ARGS])
        == 2
    )
    assert "unknown grid parameter 'nope'" in json.loads(capsys.readouterr().out)["error"]
    assert main(["backtest", "volatility/SimpleVolatilityModel", "--json", *ARGS]) == 2
    assert "signal or portfolio weights" in json.loads(capsys.readouterr().out)["error"]
    assert (
        main(["backtest", "momentum/SimpleMomentumModel", "--param", "window=1", "--json", *ARGS])
        == 2
    )
    assert "window" in json.loads(capsys.readouterr().out)["error"]


def test_walkforward_says_when_the_out_of_sample_track_never_held_anything(capsys):
    """Dual momentum on one ticker has no relative part, so it never trades: the stitched
    out-of-sample figures are cash's, and the command says so (JSON and text)."""
    one = ["--tickers", "AAPL", *ARGS[2:], "--train-days", "504", "--test-days", "252"]
    code = main(["walkforward", "momentum/DualMomentumModel", "--no-progress", "--json", *one])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("took no position on any date" in w for w in doc["warnings"])
    code = main(["walkforward", "momentum/DualMomentumModel", "--no-progress", *one])
    assert "warning (out of sample): the model took no position" in capsys.readouterr().out
    code = main(["walkforward", "momentum/SimpleMomentumModel", "--no-progress", "--json", *ARGS])
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_a_ticker_with_no_price_in_the_range_is_named(capsys):
    """ABBV trades from 2013: a 2005 backtest 'on 2 tickers' held AAPL alone and its
    'equal-weighted' benchmark was AAPL's; the backtest and the walk-forward say so."""
    two = ["--tickers", "ABBV,AAPL", "--source", "local", "--start", "2005-01-01"]
    code = main(["backtest", "momentum/SimpleMomentumModel", *two, "--end", "2006-01-01", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "1 ticker with no price from 2005-01-03 to 2005-12-30 (ABBV): never held" in " ".join(
        doc["warnings"]
    )
    argv = ["walkforward", "momentum/SimpleMomentumModel", "--no-progress", "--n-jobs", "1"]
    code = main([*argv, *two, "--end", "2010-12-31"])
    out = capsys.readouterr().out
    assert "warning (out of sample): 1 ticker with no price from 2008-01-04 to 2010-12-31" in out
    code = main(["backtest", "momentum/SimpleMomentumModel", "--json", *ARGS])
    assert not any("no price" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_a_last_stretch_in_no_test_fold_is_named(capsys):
    """Rolling 252/504 folds over 2012-2021 leave the last 71 days in no fold (under
    half a fold): the out-of-sample figures end in January and the run says so."""
    argv = ["walkforward", "momentum/SimpleMomentumModel", "--no-progress", "--n-jobs", "1"]
    argv += ["--tickers", "AAPL,MSFT,XOM", "--source", "local", "--start", "2012-01-01"]
    rolling = ["--mode", "rolling", "--train-days", "252", "--test-days", "504"]
    assert main([*argv, "--end", "2021-04-21", *rolling, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any(
        w.startswith("the last 71 trading days of the range (from 2021-01-08 to 2021-04-21)")
        for w in doc["warnings"]
    )
    # expanding 756/252 folds over 2012-2020 reach the range's end: nothing to say
    expanding = ["--train-days", "756", "--test-days", "252", "--end", "2020-12-31"]
    assert main([*argv, *expanding, "--json"]) == 0
    assert not any("in no test fold" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_backtest_and_walkforward_charge_the_model_labs_costs_by_default(capsys):
    """Without --cost-bps the CLI charged nothing while the Model Lab charged 5 bps, so
    the same run gave two answers; both now take config.DEFAULT_COST_BPS."""
    from mltrainer.config import DEFAULT_COST_BPS

    argv = ["backtest", "momentum/SimpleMomentumModel", "--json", *ARGS]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out)
    assert main([*argv, "--cost-bps", f"{DEFAULT_COST_BPS}"]) == 0
    explicit = json.loads(capsys.readouterr().out)
    assert main([*argv, "--cost-bps", "0"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert DEFAULT_COST_BPS == 5.0
    assert default["final_equity"] == explicit["final_equity"] < free["final_equity"]
    wf = ["walkforward", "momentum/SimpleMomentumModel", "--grid", "window=20,60", "--json"]
    assert main([*wf, *ARGS]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["backtest"]["commission_bps"] == DEFAULT_COST_BPS
    assert doc["baselines"]["out_of_sample"]["costs"]["commission_bps"] == DEFAULT_COST_BPS
