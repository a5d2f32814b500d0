"""The volatility family: annualised volatility forecasts per (date, ticker).

Every model's primary output (kind ``volatility``) at date t is the annualised
volatility forecast for t+1 made with data up to t: ``sqrt(252 * daily variance)``.
Classifiers (volatility classes, regimes) keep that forecast as primary and put their
labels in ``extras``. Returns are log returns of the adjusted close; range estimators
use OHLC scaled onto the adjusted close (``data.adjusted()``), so splits and
dividends do not look like moves. Anything estimated (GARCH, HAR, ARIMA, forests) is
refitted on a calendar schedule from data strictly before the refit date.

Here are the models computed on the whole panel at once, their maths in
:mod:`._volmath` (estimators, HAR, clustering, regimes). The models fitted one ticker
at a time live beside their maths: :class:`~.garch.GARCHVolatilityModel` (arch
wrapper, variance filter) and :class:`~._volforecast.VolatilityForecastingModel`
(walk-forward ARIMA, linear, random forest); :mod:`._volbase` holds what the family
shares (base class, output frames, the per-ticker walk-forward runner).
"""

from __future__ import annotations

import numpy as np

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.models import _volbase as vb
from mltrainer.models import _volmath as vm
from mltrainer.models._volforecast import VolatilityForecastingModel
from mltrainer.models.base import ModelOutput
from mltrainer.models.garch import GARCHVolatilityModel
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import adjusted_ohlc
from mltrainer.numerics.schedule import CALENDAR_FREQUENCIES, calendar_refit_rows
from mltrainer.numerics.variance import ewma_variance

__all__ = [
    "GARCHVolatilityModel",
    "MODELS",
    "RealizedVolatilityModel",
    "SimpleVolatilityModel",
    "VolatilityClusteringModel",
    "VolatilityForecastingModel",
    "VolatilityRegimeDetectionModel",
]


class SimpleVolatilityModel(vb.VolatilityModel):
    """Rolling standard deviation of log returns, classed low / medium / high.

    Parameters
    ----------
    low_quantile, high_quantile : float
        Class boundaries as quantiles of the ticker's own past volatility.

    Notes
    -----
    ``sigma_t = sqrt(252) * std(r_{t-w+1..t})`` (ddof 1), the random-walk forecast of
    the volatility of t+1. The class compares ``sigma_t`` with expanding (past-only)
    quantiles ``q_lo(t)``, ``q_hi(t)`` of the ticker's own sigma history, read from
    every 5th day up to t (:func:`._volmath.expanding_quantiles`): 0 if ``sigma_t <=
    q_lo``, 2 if ``sigma_t > q_hi``, else 1. ``confidence`` is the distance of sigma_t
    from the nearest boundary over half the middle band, capped at 1
    (:func:`._volmath.band_classes`). Extras: ``vol_class`` (0/1/2), ``confidence``,
    ``low_boundary``, ``high_boundary`` (annualised volatilities).

    References
    ----------
    Hull, J. (2018). Options, Futures, and Other Derivatives, 10th ed., ch. 15.
    """

    description = "Rolling std of log returns with past-quantile low/medium/high classes"
    param_specs = {
        "window": IntParam(5, 252, default=21, help="Rolling window, trading days"),
        "low_quantile": FloatParam(
            0.05,
            0.5,
            default=0.33,
            step=0.01,
            help="Past-volatility quantile below which the class is low",
        ),
        "high_quantile": FloatParam(
            0.5,
            0.95,
            default=0.67,
            step=0.01,
            help="Past-volatility quantile above which the class is high",
        ),
        "min_periods": IntParam(
            21, 2520, default=252, help="Days of volatility history needed before classes"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("low_quantile", "high_quantile", hint="; e.g. 0.33 and 0.67")

    def _compute(self, data: MarketData) -> ModelOutput:
        vol = vm.rolling_volatility(vb.log_returns(data), self.window)
        bounds = (self.low_quantile, self.high_quantile)
        low, high = vm.expanding_quantiles(vol, bounds, self.min_periods)
        cls, conf, _ = vm.band_classes(vol, low, high)
        return vb.output(
            data, vol, vol_class=cls, confidence=conf, low_boundary=low, high_boundary=high
        )


class RealizedVolatilityModel(vb.VolatilityModel):
    """Range-based realised volatility with a walk-forward HAR forecast.

    Parameters
    ----------
    window : int
        Days averaged by the range estimator (the ``range_volatility`` extra).
    min_obs : int
        Samples (per ticker; dates when pooled) needed before the first HAR fit.

    Notes
    -----
    With ``hl = ln(H/L)``, ``co = ln(C/O)`` on adjusted OHLC: Parkinson
    ``hl^2 / (4 ln 2)``; Garman-Klass ``0.5 hl^2 - (2 ln 2 - 1) co^2``; Rogers-Satchell
    ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)``; Yang-Zhang ``s_o^2 + k s_c^2 + (1-k) RS``
    over the window (:func:`._volmath.range_variance`). The primary output is the HAR
    forecast ``RV_{t+1} = b0 + b_d RV_t + b_w RV^{(5)}_t + b_m RV^{(22)}_t`` fitted by
    OLS on samples with target date strictly before each refit date, annualised.
    Extras: ``range_volatility`` (the chosen estimator over ``window``, annualised).
    Tables: ``har_coefficients`` per refit date (and ticker).

    References
    ----------
    Parkinson, M. (1980). J. Business 53(1). Garman, M., Klass, M. (1980). J. Business
    53(1). Rogers, L., Satchell, S. (1991). Ann. Appl. Prob. 1(4). Yang, D., Zhang, Q.
    (2000). J. Business 73(3). Corsi, F. (2009). A simple approximate long-memory model
    of realized volatility. J. Financial Econometrics 7(2), 174-196.
    """

    description = "Range-based realised volatility (Parkinson..Yang-Zhang) with a HAR forecast"
    requires = ("ohlc",)
    param_specs = {
        "estimator": ChoiceParam(
            vm.RANGE_ESTIMATORS, default="yang_zhang", help="Range estimator of daily variance"
        ),
        "window": IntParam(5, 252, default=21, help="Days averaged by the range estimator"),
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="monthly", help=vb.REFIT_HELP),
        "pooling": ChoiceParam(
            ("per_ticker", "pooled"),
            default="per_ticker",
            help="One HAR regression per ticker or one for all",
        ),
        "min_obs": IntParam(
            100, 2520, default=500, step=10, help="Samples needed before the first HAR fit"
        ),
    }

    def min_history(self) -> int:  # min_obs HAR samples, each a 22-day average and a target
        return self.min_obs + 23

    def _compute(self, data: MarketData) -> ModelOutput:
        needed = ("high", "low") if self.estimator == "parkinson" else ("open", "high", "low")
        missing = [f for f in needed if not getattr(data, f).notna().to_numpy().any()]
        if missing:
            raise DataError(
                f"RealizedVolatilityModel ({self.estimator}) needs the field(s) "
                f"{', '.join(repr(f) for f in missing)}, which source '{data.source}' does "
                "not have (all NaN); use a source with OHLC bars or a close-only model"
            )
        terms = vm.range_terms(*adjusted_ohlc(data, ("open", "high", "low")))
        daily, windowed = vm.range_variance(terms, self.estimator, self.window)
        refits = calendar_refit_rows(data.dates, self.refit)
        pooled = self.pooling == "pooled"
        forecast, coefs, counts, used = vm.har_walk_forward(daily, refits, pooled, self.min_obs)
        table = vm.har_table(coefs, counts, data.dates[used], None if pooled else data.tickers)
        return vb.output(
            data,
            vm.annualise(forecast),
            {"har_coefficients": table},
            range_volatility=vm.annualise(windowed),
        )


class VolatilityClusteringModel(vb.VolatilityModel):
    """EWMA (RiskMetrics) volatility forecast with a volatility-clustering score.

    Notes
    -----
    Primary: ``sqrt(252 s^2_{t+1})`` with ``s^2_{t+1} = lam s^2_t + (1 - lam) r_t^2``
    (normalised weights; first value after 20 returns). ``persistence`` is the mean
    sample autocorrelation of |r| over lags 1..n_lags in the last ``window`` days
    (statsmodels' ``acf`` estimator); ``acf1`` the lag-1 value. Under independent
    returns the mean has standard error about ``1 / sqrt(window * n_lags)``, so
    ``clustered`` is 1 when persistence exceeds 1.96 times that.

    References
    ----------
    J.P. Morgan/Reuters (1996). RiskMetrics Technical Document, 4th ed.
    Cont, R. (2001). Empirical properties of asset returns: stylized facts and
    statistical issues. Quantitative Finance 1(2), 223-236.
    """

    description = "EWMA (RiskMetrics) forecast plus a rolling volatility-clustering score"
    ewma_min_periods = 20
    param_specs = {
        "ewma_lambda": FloatParam(
            0.8,
            0.999,
            default=0.94,
            step=0.005,
            help="RiskMetrics decay; 0.94 is the daily standard",
        ),
        "window": IntParam(63, 1260, default=252, help="Autocorrelation window, trading days"),
        "n_lags": IntParam(1, 20, default=5, help="Lags averaged in the persistence score"),
        "measure": ChoiceParam(
            ("abs", "squared"), default="abs", help="Autocorrelation of |r| or of r^2"
        ),
    }

    def min_history(self) -> int:
        return self.ewma_min_periods + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        r = vb.log_returns(data)
        var = ewma_variance(r, self.ewma_lambda, min_periods=self.ewma_min_periods)
        acfs = vm.clustering_acfs(r, self.window, self.n_lags, self.measure)
        persistence = acfs.mean(axis=0)
        bound = 1.96 / np.sqrt(self.window * self.n_lags)
        clustered = np.where(np.isnan(persistence), np.nan, persistence > bound)
        return vb.output(
            data, vm.annualise(var), persistence=persistence, acf1=acfs[0], clustered=clustered
        )


class VolatilityRegimeDetectionModel(vb.VolatilityModel):
    """Low / normal / high volatility regime against the ticker's own past, with persistence.

    Parameters
    ----------
    method : {"zscore", "quantile"}
        ``zscore``: z-score of log volatility against its rolling mean and std over
        ``lookback``; ``quantile``: against expanding quantiles of its own past.
    vol_window : int
        Rolling window of the volatility (the primary output), trading days.
    min_duration : int
        Days a new raw regime must persist before it is adopted (1 = no filter).

    Notes
    -----
    ``z_t = (ln sigma_t - mean(ln sigma)) / std(ln sigma)`` over the last ``lookback``
    days including t. The raw label (0 low, 1 normal, 2 high) becomes the regime only
    after ``min_duration`` consecutive days (:func:`._volmath.min_duration_filter`),
    a causal filter: a switch is reported on its confirmation date. The ``quantile``
    method cuts at expanding quantiles of the volatility (as
    :class:`SimpleVolatilityModel`); its score is the position in the band,
    ``(sigma - mid) / half``, so both methods call |score| > 1 low or high at the
    default threshold. Extras: ``regime``, ``raw_regime``, ``score``.

    References
    ----------
    Ang, A., Timmermann, A. (2012). Regime changes and financial markets. Annual
    Review of Financial Economics 4, 313-337.
    """

    description = "Low/normal/high volatility regime versus own past, with minimum duration"
    param_specs = {
        "method": ChoiceParam(
            ("zscore", "quantile"),
            default="zscore",
            help="z-score of log vol, or expanding quantiles of vol",
        ),
        "vol_window": IntParam(5, 126, default=21, help="Volatility window, trading days"),
        "lookback": IntParam(
            63, 1260, default=252, help="z-score window (quantile: history before a label)"
        ),
        "threshold": FloatParam(
            0.25, 3.0, default=1.0, step=0.05, help="z-score beyond which the regime is low or high"
        ),
        "low_quantile": FloatParam(
            0.05, 0.45, default=0.2, step=0.01, help="quantile method: low regime at or below"
        ),
        "high_quantile": FloatParam(
            0.55, 0.95, default=0.8, step=0.01, help="quantile method: high regime above"
        ),
        "min_duration": IntParam(
            1, 63, default=5, help="Days a new regime must hold before it is adopted"
        ),
    }

    def min_history(self) -> int:
        return self.vol_window + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        vol = vm.rolling_volatility(vb.log_returns(data), self.vol_window)
        if self.method == "zscore":
            score = vm.rolling_log_zscore(vol, self.lookback)
            raw = rl.signed_step(score, self.threshold) + 1.0  # 0 low, 1 normal, 2 high
        else:
            bounds = (self.low_quantile, self.high_quantile)
            low, high = vm.expanding_quantiles(vol, bounds, self.lookback)
            raw, _, score = vm.band_classes(vol, low, high)
        regime = vm.min_duration_filter(raw, self.min_duration)
        return vb.output(data, vol, regime=regime, raw_regime=raw, score=score)


MODELS = (
    SimpleVolatilityModel,
    GARCHVolatilityModel,
    RealizedVolatilityModel,
    VolatilityClusteringModel,
    VolatilityForecastingModel,
    VolatilityRegimeDetectionModel,
)
