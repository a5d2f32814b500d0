"""Stress scenarios of a weighted portfolio: historical replays and hypothetical shocks.

Every function is pure: market data (a :class:`~mltrainer.data.market_data.MarketData`
or a wide frame of daily simple returns) and a weights Series in, a
:class:`ScenarioResult` out. Results carry the P&L by position and by GICS sector, the
portfolio P&L and, for replays, the portfolio path and its maximum drawdown.

This module is the catalogue: the scenarios live by topic in
:mod:`~mltrainer.risk_stress.historical` (replays of real episodes),
:mod:`~mltrainer.risk_stress.shocks` (a market crash through betas, parametric
volatility and correlation stresses) and :mod:`~mltrainer.risk_stress.liquidity` (a
forced sale), on the shared book and result of :mod:`~mltrainer.risk_stress.base`.

Conventions
-----------
- ``return`` and ``pnl`` are signed: a loss is negative. ``pnl`` is in the currency of
  ``portfolio_value`` (default 1.0, i.e. a fraction of the portfolio).
- A position without data where the scenario needs it (not yet listed in a replay
  window, too short a history for a covariance) is *missing*: its return and P&L are
  NaN, never zero, ``ScenarioResult.warnings`` says so, and the portfolio figure proxies the
  missing exposure by the covered positions, pro rata to gross exposure
  (``portfolio_return = sum_covered(w_i r_i) * G / G_covered`` with ``G = sum |w_i|``).
- Parametric figures assume zero-mean normal returns over a short horizon:
  ``VaR_alpha = z_alpha * sqrt(h) * sqrt(w' Sigma w)``, Sigma the sample covariance of
  the complete trailing rows.

References
----------
Jorion, P. (2007). *Value at Risk*, 3rd ed., ch. 14 (stress testing) and ch. 7
(component VaR). Basel Committee (2009), *Principles for sound stress testing*.
Almgren, R., Thum, C., Hauptmann, E., Li, H. (2005). Direct estimation of equity market
impact. Toth, B. et al. (2011). Anomalous price impact and the critical nature of
liquidity in financial markets (the square-root impact law).
"""

from __future__ import annotations

from mltrainer.risk_stress.base import (
    UNKNOWN_SECTOR,
    WEIGHT_TOLERANCE,
    Book,
    ScenarioData,
    ScenarioResult,
    Weights,
    price_index_from_returns,
    scenario_table,
    validate_weights,
)
from mltrainer.risk_stress.historical import (
    HISTORICAL_SCENARIOS,
    HistoricalScenario,
    replay_all,
    replay_window,
    scenario_title,
    skipped_reason,
)
from mltrainer.risk_stress.liquidity import LiquidityCosts, liquidity_crisis, liquidity_haircut
from mltrainer.risk_stress.shocks import (
    ParametricSettings,
    correlation_breakdown,
    equal_weight_market,
    market_crash,
    stressed_correlation,
    volatility_spike,
)

__all__ = [
    "HISTORICAL_SCENARIOS",
    "UNKNOWN_SECTOR",
    "WEIGHT_TOLERANCE",
    "Book",
    "HistoricalScenario",
    "LiquidityCosts",
    "ParametricSettings",
    "ScenarioData",
    "ScenarioResult",
    "Weights",
    "correlation_breakdown",
    "equal_weight_market",
    "liquidity_crisis",
    "liquidity_haircut",
    "market_crash",
    "price_index_from_returns",
    "replay_all",
    "replay_window",
    "scenario_table",
    "scenario_title",
    "skipped_reason",
    "stressed_correlation",
    "validate_weights",
    "volatility_spike",
]
