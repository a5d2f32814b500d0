"""Performance metrics against their formulas written out with pandas, and by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.backtest.engine import run_backtest
from mltrainer.backtest.metrics import max_drawdown_duration, performance_metrics


@pytest.fixture(scope="module")
def result(basket):
    data = basket.select(start="2006-01-01", end="2020-12-31")
    px = data.adj_close
    return run_backtest(np.sign(px / px.shift(60) - 1), data, commission_bps=10)


def test_metrics_by_their_formulas(result):
    r, b = result.returns, result.benchmark
    m = result.metrics
    n = len(r)
    growth = (1 + r).prod()
    assert m["cagr"] == pytest.approx(growth ** (252 / n) - 1, rel=1e-10)
    assert m["annual_volatility"] == pytest.approx(r.std() * np.sqrt(252), rel=1e-10)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std() * np.sqrt(252), rel=1e-10)
    downside = np.sqrt((r.clip(upper=0) ** 2).mean()) * np.sqrt(252)
    assert m["sortino"] == pytest.approx(r.mean() * 252 / downside, rel=1e-10)
    wealth = (1 + r).cumprod()
    mdd = (wealth / wealth.cummax().clip(lower=1.0) - 1).min()
    assert m["max_drawdown"] == pytest.approx(mdd, rel=1e-10)
    assert m["calmar"] == pytest.approx(m["cagr"] / abs(mdd), rel=1e-10)
    beta = np.cov(r, b, ddof=0)[0, 1] / np.var(b)
    assert m["beta"] == pytest.approx(beta, rel=1e-9)
    assert m["alpha"] == pytest.approx((1 + (r - beta * b).mean()) ** 252 - 1, rel=1e-9)
    active = r - b
    assert m["information_ratio"] == pytest.approx(
        active.mean() / active.std() * np.sqrt(252), rel=1e-10
    )
    assert m["hit_rate"] == pytest.approx((r[r != 0] > 0).mean())
    assert m["annual_turnover"] == pytest.approx(result.turnover.mean() * 252, rel=1e-12)
    assert m["avg_gross_exposure"] == pytest.approx(
        result.positions.abs().sum(axis=1).mean(), rel=1e-12
    )


def test_drawdown_duration_by_hand():
    idx = pd.bdate_range("2021-01-04", periods=9)
    equity = pd.Series([1.0, 1.1, 1.0, 0.9, 1.05, 1.12, 1.0, 1.11, 1.1], index=idx)
    # under water from the 1.1 peak (Jan 5) until Jan 11 (1.12): 6 calendar days, 4 bars;
    # then from the 1.12 peak (Jan 11) to the end (Jan 14), not recovered: 3 days
    out = max_drawdown_duration(equity, initial_value=1.0)
    assert out == {"days": 6, "bars": 4, "start": "2021-01-05", "end": "2021-01-11"}
    rets = equity.pct_change().fillna(0.0)
    m = performance_metrics(rets)
    assert m["max_drawdown"] == pytest.approx(0.9 / 1.1 - 1)
    assert m["hit_rate"] == pytest.approx(4 / 8)
    flat = performance_metrics(pd.Series(0.0, index=idx))
    assert np.isnan(flat["sharpe"]) and flat["max_drawdown"] == 0.0


def test_a_given_benchmark_earns_nothing_before_trading_begins(basket):
    """The strategy holds nothing into its first date, and neither does the benchmark:
    the S&P 500's +9.4% into 2020-03-24 made the Model Lab's index benchmark start at
    1.094 (CAGR 94% where the index's own closes give 73%)."""
    data = basket.select(start="2020-01-02", end="2020-12-31")
    px = data.adj_close
    ko = px["KO"].pct_change()  # real returns, given as the benchmark
    signal = np.sign(px / px.shift(20) - 1)
    result = run_backtest(signal, data, commission_bps=5, benchmark=ko, start="2020-03-24")
    b = result.benchmark
    assert b.index[0] == pd.Timestamp("2020-03-24") and ko["2020-03-24"] > 0.05
    assert b.iloc[0] == 0.0
    close_ratio = px["KO"].iloc[-1] / px["KO"]["2020-03-24"]
    assert (1 + b).prod() == pytest.approx(close_ratio, rel=1e-12)
    n = len(b)
    assert result.metrics["benchmark_cagr"] == pytest.approx(close_ratio ** (252 / n) - 1)
