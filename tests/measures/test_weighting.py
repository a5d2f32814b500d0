"""Portfolio construction by named method, checked by hand on real prices (the basket)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.weighting import WEIGHTINGS, portfolio_weights

TICKERS = ["AAPL", "MSFT", "JPM", "XOM"]


@pytest.fixture(scope="module")
def returns(basket) -> pd.DataFrame:
    return basket.select(tickers=TICKERS, start="2015-01-01", end="2020-12-31").returns()


def test_the_declared_methods():
    assert WEIGHTINGS == ("equal", "market_cap", "risk_parity", "sizing_model")
    with pytest.raises(ParameterError, match="unknown weighting 'inverse'.*risk_parity"):
        portfolio_weights("inverse", TICKERS)
    with pytest.raises(ParameterError, match="risk_parity weighting needs returns"):
        portfolio_weights("risk_parity", TICKERS)


def test_equal():
    w = portfolio_weights("equal", TICKERS)
    assert list(w.index) == TICKERS and (w == 0.25).all()


def test_market_cap_by_hand():
    caps = {"AAPL": 3.0e12, "MSFT": 2.5e12, "JPM": 0.5e12, "XOM": 0.4e12, "TSLA": 1e12}
    w = portfolio_weights("market_cap", TICKERS, market_caps=caps, source="the snapshot")
    np.testing.assert_allclose(w.to_numpy(), np.array([3.0, 2.5, 0.5, 0.4]) / 6.4, rtol=1e-15)
    with pytest.raises(DataError, match="no market cap for JPM in the snapshot; remove it or"):
        portfolio_weights(
            "market_cap",
            TICKERS,
            market_caps={"AAPL": 1, "MSFT": 1, "XOM": 1},
            source="the snapshot",
        )
    with pytest.raises(DataError, match="no market cap for JPM, XOM in the snapshot; remove them"):
        portfolio_weights(
            "market_cap", TICKERS, market_caps={"AAPL": 1, "MSFT": 1}, source="the snapshot"
        )


def _ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2004) shrinkage to mu*I, written out (biased sample covariance)."""
    x = x - x.mean(axis=0)
    n, p = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / p
    d2 = ((s - mu * np.eye(p)) ** 2).sum()
    b2 = min(d2, sum(((np.outer(r, r) - s) ** 2).sum() for r in x) / n**2)
    return b2 / d2 * mu * np.eye(p) + (1 - b2 / d2) * s


def test_risk_parity_equalises_risk_contributions_by_hand(returns):
    w = portfolio_weights("risk_parity", TICKERS, returns=returns)
    window = returns.iloc[-756:].dropna()
    assert len(window) == 756
    cov = _ledoit_wolf(window.to_numpy())
    x = w.to_numpy()
    contributions = x * (cov @ x)
    np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-8)
    assert x.sum() == pytest.approx(1.0) and (x > 0).all()
    # the least volatile stock carries the most weight
    assert w.idxmax() == returns[TICKERS].iloc[-756:].std().idxmin()


def test_risk_parity_lookback_and_minimum(returns):
    short = portfolio_weights("risk_parity", TICKERS, returns=returns, lookback=120)
    cov = _ledoit_wolf(returns.iloc[-120:].dropna().to_numpy())
    rc = short.to_numpy() * (cov @ short.to_numpy())
    np.testing.assert_allclose(rc, rc.mean(), rtol=1e-8)
    with pytest.raises(DataError, match="at least 60 days .* \\(got 59\\)"):
        portfolio_weights("risk_parity", TICKERS, returns=returns, lookback=59)
    with pytest.raises(DataError, match="at least 200 days"):
        portfolio_weights("risk_parity", TICKERS, returns=returns, lookback=150, min_days=200)


def test_sizing_model_last_row_long_only(returns):
    sized = pd.DataFrame(np.nan, index=returns.index, columns=TICKERS)
    sized.iloc[-3] = [0.1, 0.2, 0.3, 0.4]
    sized.iloc[-2] = [0.5, -0.2, np.nan, 0.3]  # the last row with a weight
    w = portfolio_weights("sizing_model", TICKERS, sizing_weights=sized, name="sizing/x")
    np.testing.assert_allclose(w.to_numpy(), [0.5 / 0.8, 0.0, 0.0, 0.3 / 0.8], rtol=1e-15)
    with pytest.raises(DataError, match="sizing/x gave no weights"):
        portfolio_weights("sizing_model", TICKERS, sizing_weights=sized * np.nan, name="sizing/x")
    sized.iloc[-2] = [-1.0, 0.0, np.nan, -0.5]
    with pytest.raises(DataError, match="sizing/x holds nothing on"):
        portfolio_weights("sizing_model", TICKERS, sizing_weights=sized, name="sizing/x")
