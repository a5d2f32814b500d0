"""The stress-testing model: scenario losses through time plus today's scenario table.

The primary output is causal (row t uses data up to t only): for an equal-weight book of
the tickers that have a full trailing window at t, the one-day loss of each hypothetical
scenario (market crash through betas known at t, volatility spike, correlation
breakdown, forced liquidation). The tables hold the full scenario set computed on the
whole input, as labelled.

The scenarios themselves are pure functions in :mod:`mltrainer.risk_stress` (the losses
through time in :mod:`~mltrainer.risk_stress.rolling`); the model lives here, beside the
other model families, so that ``risk_stress`` never imports ``models`` (the registry
imports this module, not the other way round). It belongs to the risk family
(:data:`mltrainer.models.risk.MODELS` lists it).
"""

from __future__ import annotations

import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.models.base import RISK, Model, ModelOutput
from mltrainer.models.params import FloatParam, IntParam
from mltrainer.risk_stress import scenarios as sc
from mltrainer.risk_stress.rolling import rolling_stress_losses


class StressTestingModel(Model):
    """Stress tests of an equal-weight book: historical replays and hypothetical shocks.

    Parameters
    ----------
    correlation_push : float
        Fraction ``a`` of the way every correlation is pushed toward one,
        ``C' = (1 - a) C + a 11'``.
    portfolio_value : float
        Book size in currency (liquidity costs depend on it; the other losses scale).
    confidence : float
        Confidence level of the parametric VaR behind the volatility and correlation
        scenarios.

    Notes
    -----
    Primary output (kind ``risk``, one row per date, positive currency losses):
    ``crash_loss, base_var, vol_spike_loss, correlation_loss, liquidity_loss`` from
    :func:`~mltrainer.risk_stress.rolling.rolling_stress_losses`, each using data up to
    that date only. Extras: ``beta`` (the trailing betas). Tables, computed on the whole
    input: ``scenarios`` (every historical window inside the data plus the four
    hypothetical shocks at the last date), ``positions`` (P&L per ticker and scenario)
    and ``skipped`` (scenarios that could not run and why).

    References
    ----------
    Jorion, P. (2007). *Value at Risk*, 3rd ed., ch. 14. Basel Committee on Banking
    Supervision (2009). *Principles for sound stress testing practices and supervision*.
    """

    family = "risk"
    description = (
        "Stress tests: market crash via betas, volatility spike, correlation "
        "breakdown, liquidity crisis, historical replays"
    )
    output_kind = RISK
    param_specs = {
        "crash_size": FloatParam(
            -0.6,
            -0.01,
            default=-0.20,
            step=0.01,
            help="Market index move of the crash scenario (-0.2 = -20%)",
        ),
        "vol_multiplier": FloatParam(
            1.0, 10.0, default=3.0, step=0.1, help="Every volatility multiplied by this factor"
        ),
        "correlation_push": FloatParam(
            0.0, 1.0, default=0.5, step=0.05, help="Fraction of the way correlations move toward 1"
        ),
        "spread_multiplier": FloatParam(
            1.0, 20.0, default=5.0, step=0.5, help="Bid-ask spread widening in the liquidity crisis"
        ),
        "portfolio_value": FloatParam(
            1e4, 1e10, default=1e6, step=1e4, help="Book size in currency (drives liquidity costs)"
        ),
        "confidence": FloatParam(
            0.9, 0.999, default=0.99, step=0.001, help="Confidence level of the parametric VaR"
        ),
        "window": IntParam(
            60, 504, default=252, help="Trailing trading days for betas, volatilities, correlations"
        ),
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        losses, betas = rolling_stress_losses(data, **self.get_params())
        return ModelOutput(losses, extras={"beta": betas}, tables=self._tables(data))

    def _tables(self, data: MarketData) -> dict:
        """Today's scenario set for an equal-weight book of every ticker."""
        weights = pd.Series(1.0 / data.n_tickers, index=data.tickers)
        value = {"portfolio_value": float(self.portfolio_value)}
        parametric = {"window": self.window, "confidence": self.confidence, **value}
        results, skipped = sc.replay_all(data, weights, **value)
        shocks = (
            (sc.market_crash, {"shock": self.crash_size, "window": self.window, **value}),
            (sc.volatility_spike, {"multiplier": self.vol_multiplier, **parametric}),
            (sc.correlation_breakdown, {"push": self.correlation_push, **parametric}),
            (
                sc.liquidity_crisis,
                {"spread_multiplier": self.spread_multiplier, "vol_window": self.window, **value},
            ),
        )
        for fn, kwargs in shocks:
            try:
                results.append(fn(data, weights, **kwargs))
            except DataError as exc:
                skipped[fn.__name__] = str(exc)
        positions = pd.DataFrame(
            {r.key: r.positions["pnl"] for r in results},
            index=pd.Index(data.tickers, name="ticker"),
        )
        return {
            "scenarios": sc.scenario_table(results),
            "positions": positions,
            "skipped": pd.DataFrame({"reason": pd.Series(skipped, dtype="object")}),
        }
