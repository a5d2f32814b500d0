"""The risk family: portfolio-level risk figures and risk-managed portfolio weights.

- :class:`VaRModel` (output kind ``risk``): one-day VaR and ES of the portfolio for t+1
  from data up to t, its exceptions and their backtests (Kupiec, Christoffersen, Basel).
- :class:`~mltrainer.models.stress.StressTestingModel` (kind ``risk``, in its own module):
  scenario losses through time and today's stress tests.
- The others (output kind ``weights``) turn the input tickers into target weights per
  (date, ticker): optimised portfolios re-estimated on a schedule from past returns
  (:class:`PortfolioRiskModel`, :class:`RiskParityModel`) and exposure overlays on the
  equal-weight portfolio (:class:`DynamicRiskAdjustmentModel`,
  :class:`MaximumDrawdownProtectionModel`, :class:`VolatilityTargetingModel`).

The maths is in :mod:`mltrainer.measures` (the optimisers in
:mod:`~mltrainer.measures.allocation` and volatility targeting in
:mod:`~mltrainer.measures.exposure` shared with the sizing family, the exposure overlays
beside them); this module holds the thin model classes and the VaR backtest frame.
Weights at t use data up to t; the backtest trades them from t+1. A ticker with
no price yet (or without a full estimation window) has weight NaN ("no position").
"""

from __future__ import annotations

import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import ParameterError
from mltrainer.measures import allocation as al
from mltrainer.measures import backtest_var as bt
from mltrainer.measures import exposure as ex
from mltrainer.measures import portfolio as pf
from mltrainer.measures import var as vr
from mltrainer.models import portfolio_specs as specs
from mltrainer.models.base import RISK, WEIGHTS, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.models.stress import StressTestingModel


# --------------------------------------------------------------------------- maths
def var_backtest(
    returns: pd.Series, forecast: pd.DataFrame, level: float
) -> tuple[pd.DataFrame, dict]:
    """Exceptions frame (return, loss, VaR in force, exception; on the day of the loss)
    and the backtest tables over every day that had a forecast."""
    exc = bt.var_exceptions(returns, forecast["var"])
    frame = pd.DataFrame(
        {
            "portfolio_return": returns,
            "loss": -returns,
            "var_forecast": forecast["var"].shift(1),
            "exception": exc,
        }
    )
    hits = exc.dropna()
    tables = bt.backtest_tables(hits, level) if len(hits) else {}
    return frame, tables


def _output(weights: pd.DataFrame, **series: pd.Series) -> ModelOutput:
    """Weights with each date-indexed series as a one-column extras frame of its name."""
    return ModelOutput(weights, extras={name: s.to_frame(name) for name, s in series.items()})


# ------------------------------------------------------------------------ classes
class _RiskModel(Model):
    """The family's base: weights by default, a full ``window`` of returns needed."""

    family = "risk"
    output_kind = WEIGHTS


class VaRModel(_RiskModel):
    """One-day Value at Risk and Expected Shortfall of the portfolio, with a backtest.

    Parameters
    ----------
    method : str
        One of :data:`mltrainer.measures.var.METHODS`: historical, normal, student_t
        (dof from the kurtosis), cornish_fisher, fhs_ewma, fhs_garch (GARCH refitted
        yearly on all returns up to the refit date).
    weighting : {"equal", "inverse_volatility"}
        How the input tickers form the portfolio (weights decided the day before).

    Notes
    -----
    Primary columns ``var`` and ``es`` at t are positive losses (fractions of value)
    forecast for t+1 from the last ``window`` portfolio returns up to t (formulas in
    :mod:`mltrainer.measures.var`). Extras ``exceptions``: the day's return and loss,
    the VaR in force (made the day before) and ``exception`` = 1 when the loss exceeds
    it, recorded on the day of the loss. Tables ``kupiec``, ``christoffersen``,
    ``traffic_light`` backtest every forecast in the sample (the traffic light uses the
    last 250).

    References
    ----------
    Jorion, P. (2007). Value at Risk, 3rd ed. Kupiec (1995); Christoffersen (1998);
    Basel Committee (1996), see :mod:`mltrainer.measures.backtest_var`.
    """

    output_kind = RISK
    description = "One-day portfolio VaR and ES by method, with exceptions and backtests"
    param_specs = {
        "method": ChoiceParam(
            vr.METHODS,
            default="historical",
            help="historical, normal, Student t, Cornish-Fisher, or filtered "
            "historical simulation with EWMA or GARCH volatility",
        ),
        "level": specs.VAR_LEVEL,
        "window": specs.VAR_WINDOW,
        "weighting": ChoiceParam(
            ("equal", "inverse_volatility"),
            default="equal",
            help="Portfolio of the input tickers: equal or inverse-vol",
        ),
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        r = pf.weighted_portfolio_returns(data.returns(), self.weighting)
        forecast = vr.rolling_var_es(r, self.window, self.level, self.method)
        exceptions, tables = var_backtest(r, forecast, self.level)
        return ModelOutput(forecast, extras={"exceptions": exceptions}, tables=tables)


class PortfolioRiskModel(_RiskModel):
    """Minimum-variance, maximum-Sharpe or risk-parity weights, re-estimated on a schedule.

    Parameters
    ----------
    window : int
        Returns per estimation window (only tickers with a full window take part).
    max_weight : float
        Upper bound per asset for the mean-variance objectives (raised to 1/n when
        fewer assets would not be fully invested).

    Notes
    -----
    Long only, fully invested. ``min w'Sw``; ``max (mu'w) / sqrt(w'Sw)`` (minimum variance
    when no window mean is positive); ``w_i (Sw)_i = w'Sw / n`` (see
    :func:`mltrainer.measures.allocation.optimal_weights`). Extras
    ``risk_contributions``: each asset's share of the ex-ante volatility at the last
    rebalance. Table ``risk_contributions``:
    weight, annualised volatility, contribution and share at the end of the sample.

    References
    ----------
    Markowitz, H. (1952). Portfolio selection. Journal of Finance 7(1). Maillard,
    Roncalli & Teiletche (2010). Ledoit & Wolf (2004).
    """

    description = "Min-variance, max-Sharpe or risk-parity weights re-estimated on a schedule"
    param_specs = {
        "objective": ChoiceParam(
            al.OBJECTIVES[:3], default="min_variance", help="What the weights optimise"
        ),
        **specs.WALK_FORWARD,
        "max_weight": FloatParam(
            0.05,
            1.0,
            default=1.0,
            step=0.05,
            help="Largest weight per asset (mean-variance objectives)",
        ),
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        r = data.returns()
        w, rc = al.walk_forward_optimised(
            r,
            self.objective,
            self.window,
            self.rebalance,
            self.covariance,
            max_weight=self.max_weight,
        )
        table = pf.contribution_table(w, r, self.window, self.covariance)
        return ModelOutput(
            w, extras={"risk_contributions": rc}, tables={"risk_contributions": table}
        )


class RiskParityModel(PortfolioRiskModel):
    """Equal risk contribution weights, re-estimated on a schedule from past returns.

    Notes
    -----
    ``w_i (S w)_i = w'Sw / n`` for every asset, long only, fully invested; solved by
    Newton's method on Spinu's convex formulation
    (:func:`mltrainer.measures.allocation.risk_parity_weights`, shared with
    ``sizing/RiskParityModel``): :class:`PortfolioRiskModel` with
    ``objective="risk_parity"``. Extras/tables as :class:`PortfolioRiskModel`.

    References
    ----------
    Maillard, S., Roncalli, T., Teiletche, J. (2010). The properties of equally weighted
    risk contribution portfolios. Journal of Portfolio Management 36(4).
    """

    description = "Equal risk contribution (risk parity) weights, re-estimated on a schedule"
    param_specs = {**specs.WALK_FORWARD}
    objective = "risk_parity"  # fixed, not a parameter
    max_weight = 1.0  # unused: risk parity is long only and fully invested, never capped


class DynamicRiskAdjustmentModel(_RiskModel):
    """Equal-weight exposure scaled down when risk is high relative to its own past.

    Notes
    -----
    See :func:`~mltrainer.measures.exposure.risk_exposure`: ``e_t = clip(1 - k z_t, lo, hi)`` or
    ``clip(1 + k (median VaR / VaR_t - 1), lo, hi)``; weights ``e_t / N_t`` for the
    N_t tickers trading at t. Extras: ``exposure``, ``score``.

    References
    ----------
    Moreira, A., Muir, T. (2017). Volatility-managed portfolios. Journal of Finance 72(4).
    """

    description = "Equal-weight exposure scaled by current risk versus its own history"
    param_specs = {
        "measure": ChoiceParam(
            ("vol_zscore", "var_ratio"),
            default="vol_zscore",
            help="Volatility z-score or typical-VaR / current-VaR ratio",
        ),
        "window": IntParam(10, 252, default=21, help="Days of the current risk estimate"),
        "lookback": IntParam(63, 1260, default=252, help="Days of risk history to compare with"),
        "sensitivity": FloatParam(
            0.0, 2.0, default=0.25, step=0.05, help="Exposure change per unit of score"
        ),
        "min_exposure": FloatParam(
            0.0, 1.0, default=0.25, step=0.05, help="Lowest exposure multiplier"
        ),
        "max_exposure": FloatParam(
            0.5,
            2.0,
            default=1.0,
            step=0.05,
            help="Highest exposure multiplier (above 1 = leverage)",
        ),
    }

    def _check_params(self) -> None:
        self._require_order("min_exposure", "max_exposure", strict=False)
        if self.measure == "var_ratio" and self.window < 20:
            raise ParameterError(f"window must be at least 20 for a 95% VaR (got {self.window})")

    def min_history(self) -> int:
        return self.window + self.lookback

    def _compute(self, data: MarketData) -> ModelOutput:
        exposure, score = ex.risk_exposure(
            pf.portfolio_returns(data.returns()),
            self.measure,
            self.window,
            self.lookback,
            self.sensitivity,
            self.min_exposure,
            self.max_exposure,
        )
        w = ex.scaled_equal_weights(data.adj_close, exposure)
        return _output(w, exposure=exposure, score=score)


class MaximumDrawdownProtectionModel(_RiskModel):
    """Equal-weight portfolio that steps aside past a drawdown and re-enters on recovery.

    Parameters
    ----------
    threshold : float
        Drawdown from the peak since entry that triggers the cut (0.10 = 10 %).
    recovery : float
        Re-enter when the (unprotected) portfolio is this far above its trough.

    Notes
    -----
    The rule watches the equity of the daily-rebalanced equal-weight portfolio of the
    input tickers (not the protected one, which is flat while out and could never
    recover); see :func:`~mltrainer.measures.exposure.drawdown_protection`. Weights
    ``e_t / N_t``. Extras: ``exposure``, ``drawdown`` (from the peak since the last entry).

    References
    ----------
    Grossman, S., Zhou, Z. (1993). Optimal investment strategies for controlling
    drawdowns. Mathematical Finance 3(3).
    """

    description = "Cut exposure past a drawdown threshold, re-enter after a recovery"
    param_specs = {
        "threshold": FloatParam(
            0.02, 0.6, default=0.10, step=0.01, help="Drawdown that triggers the cut (0.10 = 10%)"
        ),
        "reduced_exposure": FloatParam(
            0.0, 1.0, default=0.0, step=0.05, help="Exposure while cut (0 = cash)"
        ),
        "recovery": FloatParam(
            0.0,
            0.5,
            default=0.05,
            step=0.01,
            help="Re-enter after this rise from the trough (0.05 = 5%)",
        ),
        "max_days_out": IntParam(
            1, 504, default=63, help="Re-enter after this many trading days out anyway"
        ),
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        r = pf.portfolio_returns(data.returns())
        equity = pf.equity_curve(r).where(r.notna() | (r.index == r.index[0]))
        exposure, dd = ex.drawdown_protection(
            equity.to_numpy(),
            self.threshold,
            self.recovery,
            self.max_days_out,
            self.reduced_exposure,
        )
        exposure, dd = pd.Series(exposure, index=data.dates), pd.Series(dd, index=data.dates)
        w = ex.scaled_equal_weights(data.adj_close, exposure)
        return _output(w, exposure=exposure, drawdown=dd)


class VolatilityTargetingModel(_RiskModel):
    """Equal-weight portfolio levered up or down to a target annualised volatility.

    Notes
    -----
    ``L_t = min(max_leverage, target / sigma_hat_t)`` with ``sigma_hat_t`` the annualised
    forecast for t+1 of the equal-weight portfolio's returns; weights ``L_t / N_t``.
    Shares :func:`mltrainer.measures.exposure.volatility_targeting` with
    ``sizing/VolatilityTargetingModel`` (which applies it per position). Extras:
    ``leverage``, ``forecast_vol``.

    References
    ----------
    Moreira & Muir (2017); Harvey, C. et al. (2018). The impact of volatility targeting.
    Journal of Portfolio Management 45(1).
    """

    description = "Scale the equal-weight portfolio to a target annualised volatility"
    param_specs = {
        "target_vol": FloatParam(
            0.02, 0.5, default=0.10, step=0.01, help="Annualised volatility target (0.10 = 10%)"
        ),
        **specs.VOL_FORECAST,
        "max_leverage": FloatParam(
            0.1, 5.0, default=1.5, step=0.1, help="Largest allowed scaling of the portfolio"
        ),
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        w, leverage, vol = specs.volatility_targeting(self, data, per_position=False)
        return _output(w, leverage=leverage, forecast_vol=vol)


MODELS = (
    VaRModel,
    PortfolioRiskModel,
    DynamicRiskAdjustmentModel,
    RiskParityModel,
    MaximumDrawdownProtectionModel,
    VolatilityTargetingModel,
    StressTestingModel,
)
