"""The position-sizing family: target weights per (date, ticker) under stated limits.

Every model here ends with the same limits (:func:`mltrainer.measures.exposure.
apply_limits`): ``long_only`` drops shorts, each ``|w|`` is capped at ``max_weight``
and a row's gross exposure ``sum |w|`` is scaled down to ``gross_cap``. Weights at t are
decided with data up to t (the backtest trades them from t+1); NaN = no position
(ticker not trading yet, or without a full estimation window).

The maths is in :mod:`mltrainer.measures`: the formulas that belong to one sizing model
in :mod:`~mltrainer.measures.sizing`, those shared with the risk family in
:mod:`~mltrainer.measures.allocation` (risk parity and the walk-forward optimiser) and
:mod:`~mltrainer.measures.exposure` (volatility targeting, the limits); this module
holds the thin model classes.
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.measures import allocation as al
from mltrainer.measures import exposure as ex
from mltrainer.measures import sizing as sz
from mltrainer.measures import var as vr
from mltrainer.models import portfolio_specs as specs
from mltrainer.models.base import WEIGHTS, Model, ModelOutput
from mltrainer.models.params import BoolParam, ChoiceParam, FloatParam, IntParam
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS

_LIMITS = {
    "max_weight": FloatParam(
        0.01,
        1.0,
        default=0.25,
        step=0.01,
        help="Largest absolute weight of one position (0.25 = 25%)",
    ),
    "gross_cap": FloatParam(
        0.1,
        3.0,
        default=1.0,
        step=0.05,
        help="Cap on the sum of absolute weights (1 = no leverage)",
    ),
    "long_only": BoolParam(True, help="Drop short positions"),
}


class _SizingModel(Model):
    """The family's template: raw sizes (:meth:`_sizes`), then the same limits for all."""

    family = "sizing"
    output_kind = WEIGHTS

    def _compute(self, data: MarketData) -> ModelOutput:
        raw, extras = self._sizes(data)
        limits = {"max_weight": self.max_weight, "gross_cap": self.gross_cap}
        return ModelOutput(ex.apply_limits(raw, **limits, long_only=self.long_only), extras)

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:  # pragma: no cover
        """Weights before the limits, and the extras frames (subclasses implement)."""
        raise NotImplementedError


class KellyCriterionModel(_SizingModel):
    """Fractional Kelly sizes from the past trades of a built-in signal.

    Parameters
    ----------
    signal : {"momentum", "trend", "reversal"}
        Direction rule (see :func:`~mltrainer.measures.sizing.rule_signal`).

    Notes
    -----
    Per ticker, ``p`` and ``b`` from the last ``kelly_window`` daily trades
    (:func:`~mltrainer.measures.sizing.trade_statistics`), ``f* = p - (1 - p) / b``, size
    ``max(0, fraction f*)`` in the signal's direction, then the limits. Extras:
    ``win_rate``, ``payoff``, ``kelly``.

    References
    ----------
    Kelly, J. L. (1956). A new interpretation of information rate. Bell System
    Technical Journal 35(4). Thorp, E. O. (2006). The Kelly criterion in blackjack,
    sports betting and the stock market. Handbook of Asset and Liability Management.
    """

    description = "Fractional Kelly sizing from the win rate and payoff of a signal's trades"
    param_specs = {
        "signal": ChoiceParam(
            sz.SIGNAL_RULES,
            default="momentum",
            help="Direction rule: trailing-return sign, price vs SMA, reversal",
        ),
        "lookback": IntParam(5, 252, default=63, help="Lookback of the signal rule, days"),
        "kelly_window": IntParam(
            60, 1008, default=252, help="Days of past trades for the win rate and payoff"
        ),
        "fraction": FloatParam(
            0.05, 1.0, default=0.5, step=0.05, help="Fraction of the Kelly bet (0.5 = half Kelly)"
        ),
        **_LIMITS,
    }

    def min_history(self) -> int:
        return self.lookback + self.kelly_window + 1

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        sig = sz.rule_signal(data.adj_close, self.signal, self.lookback)
        p, b = sz.trade_statistics(sig, data.returns(), self.kelly_window)
        raw, f = sz.kelly_weights(sig, p, b, self.fraction)
        return raw, {"win_rate": p, "payoff": b, "kelly": f}


class VolatilityTargetingModel(_SizingModel):
    """Inverse-volatility position sizes, each position scaled to its share of a target.

    Parameters
    ----------
    target_vol : float
        Annualised volatility target of the book; each of the N_t positions gets
        ``target_vol / N_t`` of standalone volatility.
    max_leverage : float
        Cap on each position's scaling ``target / sigma_i``.

    Notes
    -----
    ``w_i = min(max_leverage, target / sigma_hat_i) / N_t`` — the per-position use of
    :func:`mltrainer.measures.exposure.volatility_targeting`, the function
    ``risk/VolatilityTargetingModel`` applies to the whole portfolio. Extras:
    ``forecast_vol``.

    References
    ----------
    Moreira, A., Muir, T. (2017). Volatility-managed portfolios. Journal of Finance 72(4).
    """

    description = "Inverse-volatility sizes scaled so each position runs its share of a target"
    param_specs = {
        "target_vol": FloatParam(
            0.02, 1.0, default=0.15, step=0.01, help="Annualised volatility target (0.15 = 15%)"
        ),
        **specs.VOL_FORECAST,
        "max_leverage": FloatParam(
            0.1, 10.0, default=2.0, step=0.1, help="Largest scaling of one position"
        ),
        **_LIMITS,
    }

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        raw, _, vol = specs.volatility_targeting(self, data, per_position=True)
        return raw, {"forecast_vol": vol}


class RiskParityModel(_SizingModel):
    """Equal risk contribution sizes, re-estimated on a schedule, under the limits.

    Notes
    -----
    ``w_i (S w)_i = w'Sw / n`` (:func:`mltrainer.measures.allocation.risk_parity_weights`
    through :func:`~mltrainer.measures.allocation.walk_forward_optimised`, shared with
    ``risk/RiskParityModel``), then the limits (a binding ``max_weight`` leaves the rest
    in cash rather than breaking the equal contributions of the others). Extras:
    ``risk_contributions`` of the unconstrained weights.

    References
    ----------
    Maillard, Roncalli & Teiletche (2010); Spinu (2013).
    """

    description = "Equal risk contribution sizes under position and gross limits"
    param_specs = {**specs.WALK_FORWARD, **_LIMITS}

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        w, rc = al.walk_forward_optimised(
            data.returns(), "risk_parity", self.window, self.rebalance, self.covariance
        )
        return w, {"risk_contributions": rc}


class DynamicPositionSizingModel(_SizingModel):
    """Sizes from momentum, trend and volatility factors combined.

    Parameters
    ----------
    target_vol : float
        Annualised volatility each position is scaled to before dividing by N_t.

    Notes
    -----
    ``w_i = (a tanh(z_i) + (1 - a) sign(P_i - SMA_i)) (target / sigma_i) / N_t`` (see
    :func:`~mltrainer.measures.sizing.momentum_trend_sizes`), then the limits. Extras:
    ``momentum``, ``trend``, ``vol_scale``.

    References
    ----------
    Moskowitz, T., Ooi, Y. H., Pedersen, L. H. (2012). Time series momentum. Journal of
    Financial Economics 104(2).
    """

    description = "Sizes from momentum, trend and inverse-volatility factors combined"
    param_specs = {
        "mom_window": IntParam(10, 252, default=63, help="Momentum lookback, days"),
        "trend_window": IntParam(10, 252, default=100, help="Trend moving average, days"),
        "vol_window": IntParam(10, 126, default=21, help="Volatility window, days"),
        "momentum_weight": FloatParam(
            0.0, 1.0, default=0.5, step=0.05, help="Momentum's share of the direction score"
        ),
        "target_vol": FloatParam(
            0.02, 1.0, default=0.15, step=0.01, help="Annualised volatility per position before / N"
        ),
        **_LIMITS,
    }

    def min_history(self) -> int:
        return max(self.mom_window, self.trend_window, self.vol_window) + 1

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        return sz.momentum_trend_sizes(
            data.adj_close,
            self.mom_window,
            self.trend_window,
            self.vol_window,
            self.momentum_weight,
            self.target_vol,
        )


class PortfolioOptimizationModel(_SizingModel):
    """Mean-variance sizes for a target return or a target risk, walk-forward.

    Parameters
    ----------
    target_return : float
        Annualised return target (``target_return`` objective).
    target_risk : float
        Annualised volatility target (``target_risk`` objective).
    window : int
        Returns per estimation window (mean and covariance).

    Notes
    -----
    Full covariance (correlation-aware) with ``sum w = 1`` and the position bounds
    (:func:`mltrainer.measures.allocation.optimal_weights`; targets divided by 252 or
    sqrt(252)); an unreachable target uses the nearest feasible portfolio. The gross cap
    then scales a long-short book down. Extras: ``risk_contributions``.

    References
    ----------
    Markowitz, H. (1952). Portfolio selection. Journal of Finance 7(1).
    """

    description = "Correlation-aware mean-variance sizes for a target return or target risk"
    param_specs = {
        "objective": ChoiceParam(
            ("target_return", "target_risk"),
            default="target_risk",
            help="Min variance for a return, or max return for a risk",
        ),
        "target_return": FloatParam(
            -0.2, 0.6, default=0.10, step=0.01, help="Annualised return target (0.10 = 10%)"
        ),
        "target_risk": FloatParam(
            0.02, 0.6, default=0.15, step=0.01, help="Annualised volatility target (0.15 = 15%)"
        ),
        **specs.WALK_FORWARD,
        **_LIMITS,
    }

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        if self.objective == "target_return":
            target = self.target_return / TRADING_DAYS
        else:
            target = self.target_risk / SQRT_TRADING_DAYS
        w, rc = al.walk_forward_optimised(
            data.returns(),
            self.objective,
            self.window,
            self.rebalance,
            self.covariance,
            target=target,
            max_weight=self.max_weight,
            long_only=self.long_only,
        )
        return w, {"risk_contributions": rc}


class RiskAdjustedSizingModel(_SizingModel):
    """Sizes that give every position the same VaR, cut while a position is in drawdown.

    Notes
    -----
    ``w_i = budget / VaR_i`` with ``VaR_i`` the rolling one-day VaR of ticker i
    (:func:`mltrainer.measures.var.rolling_var`), times ``dd_scale`` where
    ``P_i / max(P_i over dd_window) - 1 <= -dd_threshold``, then the limits. Extras:
    ``var``, ``drawdown``.

    References
    ----------
    Jorion, P. (2007). Value at Risk, 3rd ed., ch. 7 (VaR budgeting).
    """

    description = "Sizes giving each position the same VaR, with a drawdown guard"
    param_specs = {
        "method": ChoiceParam(
            ("historical", "normal", "cornish_fisher"),
            default="historical",
            help="VaR method per ticker",
        ),
        "level": specs.VAR_LEVEL,
        "window": specs.VAR_WINDOW,
        "var_budget": FloatParam(
            0.001,
            0.05,
            default=0.005,
            step=0.001,
            help="One-day VaR per position, fraction of the book",
        ),
        "dd_window": IntParam(21, 504, default=126, help="Days for the peak of the guard"),
        "dd_threshold": FloatParam(
            0.05, 0.8, default=0.20, step=0.01, help="Drawdown from the peak that cuts the position"
        ),
        "dd_scale": FloatParam(
            0.0, 1.0, default=0.5, step=0.05, help="Size multiplier while in drawdown (0 = close)"
        ),
        **_LIMITS,
    }

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        var = vr.rolling_var(data.returns(), self.window, self.level, self.method)
        mult, dd = sz.drawdown_guard(
            data.adj_close, self.dd_window, self.dd_threshold, self.dd_scale
        )
        return sz.var_budget_weights(var, self.var_budget) * mult, {"var": var, "drawdown": dd}


class CorrelationBasedSizingModel(_SizingModel):
    """Smaller sizes for positions that move with the rest of the book.

    Notes
    -----
    ``w_i prop. to 1 / (1 + rho_i)`` with ``rho_i`` the mean correlation of ticker i with
    the others over the window (times ``1 / sigma_i`` if ``inverse_vol``), summing to 1
    (:func:`mltrainer.measures.allocation.correlation_weights`), then the limits.

    References
    ----------
    Choueifaty, Y., Coignard, Y. (2008). Toward maximum diversification. Journal of
    Portfolio Management 35(1) (the diversification idea; this is a simple heuristic).
    """

    description = "Sizes shrink with a position's average correlation to the rest of the book"
    param_specs = {
        "window": IntParam(20, 504, default=126, help="Returns per correlation window, days"),
        "rebalance": specs.REBALANCE,
        "inverse_vol": BoolParam(True, help="Also size inversely to volatility"),
        **_LIMITS,
    }

    def _sizes(self, data: MarketData) -> tuple[pd.DataFrame, dict]:
        solve = partial(sz.correlation_sizes, inverse_vol=self.inverse_vol)
        return al.walk_forward_weights(data.returns(), self.window, self.rebalance, solve), {}


MODELS = (
    KellyCriterionModel,
    VolatilityTargetingModel,
    RiskParityModel,
    DynamicPositionSizingModel,
    PortfolioOptimizationModel,
    RiskAdjustedSizingModel,
    CorrelationBasedSizingModel,
)
