"""StressTestingModel: rolling scenario losses checked by hand on real prices.

Registry-wide checks (specs, clone, causality) are in tests/models/test_common.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mltrainer.data.market_data import MarketData
from mltrainer.models.stress import StressTestingModel

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA"]


@pytest.fixture(scope="module")
def data(basket):
    return basket.select(tickers=TICKERS, start="2009-01-01", end="2011-06-30")


@pytest.fixture(scope="module")
def output(data):
    model = StressTestingModel(
        crash_size=-0.3, vol_multiplier=2.5, correlation_push=0.4, portfolio_value=2e6, window=126
    )
    return model.run(data)


@pytest.mark.parametrize("date", ["2010-06-30", "2011-06-30"])  # TSLA out, then in the book
def test_losses_at_a_date_by_hand(data, output, date):
    r = data.returns().loc[:date].iloc[-126:]
    alive = [t for t in TICKERS if r[t].notna().all()]
    assert ("TSLA" in alive) == (date == "2011-06-30")
    market = data.returns().mean(axis=1).loc[r.index]
    beta = np.array([np.cov(r[t], market)[0, 1] / market.var() for t in alive])
    book = r[alive].mean(axis=1)
    sigma = r[alive].std().to_numpy()
    z = norm.ppf(0.99)
    row = output.primary.loc[date]
    assert row["crash_loss"] == pytest.approx(2e6 * 0.3 * beta.mean(), rel=1e-9)
    assert row["base_var"] == pytest.approx(2e6 * z * book.std(), rel=1e-9)
    assert row["vol_spike_loss"] == pytest.approx(2.5 * row["base_var"], rel=1e-12)
    stressed = np.sqrt(0.6 * book.var() + 0.4 * sigma.mean() ** 2)
    assert row["correlation_loss"] == pytest.approx(2e6 * z * stressed, rel=1e-9)
    assert 0 < row["liquidity_loss"] < row["base_var"]


def test_output_shape_tables_and_warm_up(data, output):
    assert output.primary.index.equals(data.dates)
    assert list(output.primary.columns) == [
        "crash_loss",
        "base_var",
        "vol_spike_loss",
        "correlation_loss",
        "liquidity_loss",
    ]
    assert output.primary.iloc[:126].isna().all().all()  # no full window yet
    assert output.extras["beta"].columns.tolist() == TICKERS
    table = output.tables["scenarios"]
    assert {"market_crash", "volatility_spike", "correlation_breakdown", "liquidity_crisis"} <= set(
        table.index
    )
    assert "aug_2011" not in table.index  # the data ends 2011-06-30
    assert "aug_2011" in output.tables["skipped"].index


def test_without_volume_liquidity_is_nan(data):
    closes = MarketData.from_close(data.adj_close, source="bundled")
    out = StressTestingModel(window=126).run(closes)
    assert out.primary["liquidity_loss"].isna().all()
    assert out.primary["crash_loss"].notna().any()
    assert "liquidity_crisis" in out.tables["skipped"].index
