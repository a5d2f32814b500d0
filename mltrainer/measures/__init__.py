"""Measures: pure functions from returns/weights to risk figures (VaR, ES, backtests of
VaR, covariance, risk contributions, portfolio construction, drawdowns)."""
