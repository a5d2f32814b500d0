"""Stress testing: historical replays and hypothetical shocks of a weighted portfolio.

The maths is in :mod:`mltrainer.risk_stress.scenarios` (pure functions, data in, result
out); :class:`~mltrainer.models.stress.StressTestingModel` wraps it for the model
registry, and :mod:`mltrainer.reports.stress_report` turns it into a stakeholder report.
This package depends on ``data``, ``measures`` and ``errors`` only, never on ``models``
(``tests/test_import_graph.py`` checks that no package cycle comes back).
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
