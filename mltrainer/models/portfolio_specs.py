"""Parameter specs the risk and sizing families share: one declaration per setting.

Both families estimate portfolios on a walk-forward schedule (risk parity, mean-variance),
target a volatility and estimate a rolling VaR; the settings of those shared ideas are
declared once here so that ``risk/RiskParityModel`` and ``sizing/RiskParityModel`` (the
two ``VolatilityTargetingModel``, ``risk/VaRModel`` and
``sizing/RiskAdjustedSizingModel``) offer the same sliders.
"""

from __future__ import annotations

from mltrainer.data.market_data import MarketData
from mltrainer.measures import exposure as ex
from mltrainer.measures.covariance import COVARIANCES
from mltrainer.models.base import Model
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam

WINDOW = IntParam(60, 1000, default=252, help="Estimation window, trading days (252 = one year)")
REBALANCE = IntParam(1, 252, default=21, help="Re-estimate every N trading days (21 = monthly)")
COVARIANCE = ChoiceParam(
    COVARIANCES,
    default="ledoit_wolf",
    help="Covariance estimator: Ledoit-Wolf shrinkage, sample, or EWMA (0.94)",
)
WALK_FORWARD = {"window": WINDOW, "rebalance": REBALANCE, "covariance": COVARIANCE}
"""Specs of an optimiser re-estimated every ``rebalance`` days on ``window`` days."""

VOL_FORECAST = {
    "estimator": ChoiceParam(
        ("ewma", "rolling"),
        default="ewma",
        help="Volatility forecast: EWMA (RiskMetrics) or rolling std",
    ),
    "window": IntParam(10, 252, default=21, help="Rolling window / EWMA burn-in, days"),
    "lam": FloatParam(0.8, 0.995, default=0.94, step=0.005, help="EWMA decay (0.94)"),
}
"""Specs of :func:`mltrainer.measures.exposure.volatility_forecast` (volatility targeting)."""


def volatility_targeting(model: Model, data: MarketData, per_position: bool) -> tuple:
    """:func:`mltrainer.measures.exposure.volatility_targeting` with ``model``'s settings
    (``target_vol``, ``max_leverage`` and those of :data:`VOL_FORECAST`): the one call of
    both ``VolatilityTargetingModel`` (risk: the portfolio; sizing: each position)."""
    return ex.volatility_targeting(
        data.adj_close,
        data.returns(),
        model.target_vol,
        model.max_leverage,
        estimator=model.estimator,
        window=model.window,
        lam=model.lam,
        per_position=per_position,
    )


VAR_LEVEL = FloatParam(
    0.9, 0.999, default=0.99, step=0.005, help="VaR confidence level (0.99 = exceeded 1 day in 100)"
)
VAR_WINDOW = IntParam(50, 1000, default=250, help="Returns per VaR estimation window")
