"""Backtests: the vectorised engine, performance metrics and walk-forward validation."""

from mltrainer.backtest.engine import (
    BacktestResult,
    backtest_model,
    run_backtest,
    signal_to_weights,
)
from mltrainer.backtest.metrics import performance_metrics

__all__ = [
    "BacktestResult",
    "backtest_model",
    "performance_metrics",
    "run_backtest",
    "signal_to_weights",
]
