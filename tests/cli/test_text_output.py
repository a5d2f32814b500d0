"""The CLI's text output (not ``--json``) prints every number through mltrainer.fmt:
percentages with a sign where they are changes, ratios with two decimals, thousands
separators; the JSON output of the same run keeps the raw numbers."""

from __future__ import annotations

import json
import re

from mltrainer import fmt
from mltrainer.cli import main

ARGS = ["--tickers", "AAPL,KO,XOM", "--start", "2012-01-01", "--end", "2016-12-31"]
ARGS += ["--source", "local"]


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(start))


def test_backtest_text_formats_every_figure(capsys, sp500_dir):
    argv = ["backtest", "momentum/SimpleMomentumModel", "--param", "window=60", *ARGS]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["metrics"]["cagr"], float)  # JSON: raw numbers
    assert main(argv) == 0
    text = capsys.readouterr().out
    m = doc["metrics"]
    # a percentage, a ratio, a count with a thousands separator, a multiple
    assert _line(text, "cagr").split() == ["cagr", fmt.percent(m["cagr"])]
    assert re.fullmatch(r"-?\d+\.\d%", _line(text, "cagr").split()[1])
    assert _line(text, "sharpe").split() == ["sharpe", fmt.ratio(m["sharpe"])]
    assert _line(text, "n_days").split() == ["n_days", fmt.integer(m["n_days"])]
    assert "," in fmt.integer(m["n_days"])  # 1,258 days: the separator is really printed
    assert _line(text, "annual_turnover").split()[1].endswith("x")
    assert "from 2012-01-03 to 2016-12-30" in text.splitlines()[0]
    # what the figures are measured against: the year, the rate, the costs, the benchmark
    assert "annualised over 252 trading days a year" in text
    assert "Sharpe and Sortino with a zero risk-free rate" in text
    assert "5.0 bps commission, 0.0 bps slippage, half-spread 0.0 bps" in text
    bench = "equal-weighted tickers of the run, rebalanced daily"
    assert doc["settings"]["benchmark"] == bench
    assert f"benchmark_cagr: against\n   the {bench};" in text


def test_walkforward_text_formats_folds_and_out_of_sample(capsys, sp500_dir):
    argv = ["walkforward", "momentum/SimpleMomentumModel", "--grid", "window=20,120"]
    argv += ["--train-days", "504", "--test-days", "252", "--n-jobs", "1", "--no-progress"]
    assert main([*argv, *ARGS, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main([*argv, *ARGS]) == 0
    text = capsys.readouterr().out
    oos = doc["oos_metrics"]
    assert _line(text, "out-of-sample:") == (
        f"out-of-sample: Sharpe {fmt.ratio(oos['sharpe'])}, CAGR {fmt.percent(oos['cagr'])}, "
        f"max drawdown {fmt.percent(oos['max_drawdown'])}"
    )
    assert "(annualised over 252 trading days a year" in text
    # the deflated Sharpe ratio is a probability, and the JSON's per-period Sharpe says so
    assert "deflated Sharpe ratio (the probability that the true Sharpe is above" in text
    assert "sharpe_per_period" in doc["deflated_sharpe"]["oos"]
    assert "sharpe" not in doc["deflated_sharpe"]["oos"]
    assert "each decision earns the next day's return" in text
    fold = doc["folds"][0]
    assert _line(text, "0 ").split()[-2:] == [
        fmt.ratio(fold["is_sharpe"]),
        fmt.ratio(fold["oos_sharpe"]),
    ]
    # the baselines: excess figures are changes, so they carry their sign
    row = _line(text, "equal-weight buy-and-hold")
    excess = doc["baselines"]["equal_weight"]["excess_cagr"]
    assert fmt.percent(excess, sign=True) in row and "x/yr" in row
