"""Stress testing: historical replays and hypothetical shocks of a weighted portfolio.

The maths is in :mod:`mltrainer.risk_stress.scenarios` (pure functions, data in, result
out); :class:`~mltrainer.risk_stress.model.StressTestingModel` wraps it for the model
registry, and :mod:`mltrainer.reports.stress_report` turns it into a stakeholder report.
"""

from mltrainer.risk_stress.scenarios import (
    HISTORICAL_SCENARIOS,
    HistoricalScenario,
    ScenarioResult,
    correlation_breakdown,
    equal_weight_market,
    liquidity_crisis,
    liquidity_haircut,
    market_crash,
    replay_all,
    replay_window,
    scenario_table,
    stressed_correlation,
    validate_weights,
    volatility_spike,
)

__all__ = [
    "HISTORICAL_SCENARIOS",
    "HistoricalScenario",
    "ScenarioResult",
    "correlation_breakdown",
    "equal_weight_market",
    "liquidity_crisis",
    "liquidity_haircut",
    "market_crash",
    "replay_all",
    "replay_window",
    "scenario_table",
    "stressed_correlation",
    "validate_weights",
    "volatility_spike",
]
