"""The volatility family: annualised volatility forecasts per (date, ticker).

Every model's primary output (kind ``volatility``) at date t is the annualised
volatility forecast for t+1 made with data up to t: ``sqrt(252 * daily variance)``.
Classifiers (volatility classes, regimes) keep that forecast as primary and put their
labels in ``extras``. Returns are log returns of the adjusted close; range estimators
use OHLC scaled onto the adjusted close (``data.adjusted()``), so splits and
dividends do not look like moves. Anything estimated (GARCH, HAR, ARIMA, forests) is
refitted on a calendar schedule from data strictly before the refit date.

The maths lives beside the classes: :mod:`._volmath` (estimators, HAR, clustering,
regimes), :mod:`.garch` (arch wrapper, variance filter) and :mod:`._volforecast`
(walk-forward ARIMA, linear, random forest, forecast losses). GARCH and the forecasters
fit one ticker at a time, in parallel (:func:`mltrainer.numerics.parallel.map_tickers`:
jobs and progress come from :func:`~mltrainer.numerics.parallel.execution`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _volmath as vm
from mltrainer.models._volforecast import (
    FORECAST_METHODS,
    ForecastSpec,
    forecast_errors,
    forecast_ticker,
)
from mltrainer.models.base import VOLATILITY, Model, ModelOutput
from mltrainer.models.garch import GarchSpec, garch_fit_warnings, garch_ticker
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import adjusted_ohlc, as_array, as_frame
from mltrainer.numerics.parallel import current_execution, execution, map_tickers
from mltrainer.numerics.schedule import CALENDAR_FREQUENCIES, calendar_refit_rows
from mltrainer.numerics.units import SQRT_TRADING_DAYS
from mltrainer.numerics.variance import ewma_variance

_REFIT_HELP = "How often the model is re-estimated (from data strictly before the date)"

# ------------------------------------------------------------------- helpers


def _log_returns(data: MarketData) -> np.ndarray:
    return vm.log_returns(as_array(data.adj_close))


def _output(
    data: MarketData,
    primary: np.ndarray,
    tables: dict | None = None,
    warnings: tuple[str, ...] = (),
    **extras: np.ndarray,
) -> ModelOutput:
    """The primary and the named extra (dates x tickers) arrays as frames on ``data``."""
    frames = {name: as_frame(values, data) for name, values in extras.items()}
    return ModelOutput(as_frame(primary, data), frames, tables or {}, warnings)


def _spec(model: Model, spec_class: type) -> object:
    """The per-ticker fit settings: the model's parameters of those names."""
    return spec_class(**{f.name: getattr(model, f.name) for f in fields(spec_class)})


def _fit_per_ticker(
    fit: Callable, values: np.ndarray, spec: object, data: MarketData, refit: str
) -> tuple[list[np.ndarray], list[dict], pd.DataFrame]:
    """Walk-forward ``fit(series, obs_before, spec)`` on each ticker's finite values.

    Fits run on a ticker's own observations (date order), so a ticker that lists
    mid-sample or has a missing day is handled like any other (a gap is skipped);
    ``obs_before`` counts them before each refit row. ``fit`` returns series aligned
    with those observations, then one dict per refit (``refit`` indexes the schedule).

    Returns the series placed back on the (dates x tickers) panel (NaN elsewhere), the
    refit records (``ticker``, ``refit_date`` first) and them as a table indexed by
    (ticker, refit_date).
    """
    refits = calendar_refit_rows(data.dates, refit)
    observed = [np.flatnonzero(np.isfinite(values[:, j])) for j in range(values.shape[1])]
    tasks = [(values[pos, j], np.searchsorted(pos, refits), spec) for j, pos in enumerate(observed)]
    results = map_tickers(fit, tasks)
    panels = [np.full(values.shape, np.nan) for _ in results[0][:-1]]
    records = []
    for j, (pos, (*series, rows)) in enumerate(zip(observed, results, strict=True)):
        for panel, values_j in zip(panels, series, strict=True):
            panel[pos, j] = values_j
        for row in rows:
            head = {"ticker": data.tickers[j], "refit_date": data.dates[refits[row["refit"]]]}
            records.append(head | {k: v for k, v in row.items() if k != "refit"})
    table = pd.DataFrame.from_records(records)
    return panels, records, table.set_index(["ticker", "refit_date"]) if len(table) else table


class _VolatilityModel(Model):
    family = "volatility"
    output_kind = VOLATILITY


# -------------------------------------------------------------------- models


class SimpleVolatilityModel(_VolatilityModel):
    """Rolling standard deviation of log returns, classed low / medium / high.

    Parameters
    ----------
    window : int
        Trading days in the rolling window (default 21).
    low_quantile, high_quantile : float
        Class boundaries as quantiles of the ticker's own past volatility.
    min_periods : int
        Volatility values needed before a class is given.

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

    def __init__(self, window=21, low_quantile=0.33, high_quantile=0.67, min_periods=252):
        self.window = window
        self.low_quantile = low_quantile
        self.high_quantile = high_quantile
        self.min_periods = min_periods

    def _check_params(self) -> None:
        if self.low_quantile >= self.high_quantile:
            raise ParameterError(
                f"low_quantile ({self.low_quantile}) must be below high_quantile "
                f"({self.high_quantile}); e.g. 0.33 and 0.67"
            )

    def min_history(self) -> int:
        return self.window + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        vol = vm.rolling_volatility(_log_returns(data), self.window)
        bounds = (self.low_quantile, self.high_quantile)
        low, high = vm.expanding_quantiles(vol, bounds, self.min_periods)
        cls, conf, _ = vm.band_classes(vol, low, high)
        return _output(
            data, vol, vol_class=cls, confidence=conf, low_boundary=low, high_boundary=high
        )


class GARCHVolatilityModel(_VolatilityModel):
    """GARCH(p, o, q) one-step volatility forecast with ``arch``, walk-forward.

    Parameters
    ----------
    mean : {"constant", "zero"}
        arch's ``ConstantMean`` or ``ZeroMean``.
    p, o, q : int
        ARCH, asymmetric (GJR; 0 for plain GARCH) and GARCH orders.
    dist : {"normal", "studentst"}
        Error distribution (arch ``Normal`` / ``StudentsT``).
    refit : {"yearly", "quarterly", "monthly"}
        Refit on the first trading day of each calendar period.
    window_type : {"rolling", "expanding"}
        Estimate on the last ``window`` returns before the refit date, or on all.
    window : int
        Returns in a rolling window.
    min_obs : int
        Returns a ticker needs before its first fit (NaN until then).

    Notes
    -----
    Returns are ``100 ln(P_t/P_{t-1})``. At each refit date r the model is estimated
    on returns strictly before r; from r to the next refit the variance recursion
    ``sigma^2_{t+1} = omega + sum alpha_i e^2_{t+1-i} + sum gamma_j e^2_{t+1-j}
    1[e<0] + sum beta_k sigma^2_{t+1-k}`` is filtered forward with those parameters
    fixed (started at the fit window as arch does), and the output at t is
    ``sqrt(252 sigma^2_{t+1|t}) / 100``. Tickers run in parallel (joblib);
    ``with execution(progress=callback): model.run(data)`` reports ``(done, total)``
    tickers. Extras: ``persistence`` (``sum alpha + sum beta + sum gamma / 2`` in force).
    Tables: ``params`` indexed (ticker, refit_date) with arch's parameter names,
    ``loglik``, ``nobs``, ``converged``.

    References
    ----------
    Bollerslev, T. (1986). Generalized autoregressive conditional heteroskedasticity.
    Journal of Econometrics 31(3), 307-327. Glosten, L., Jagannathan, R., Runkle, D.
    (1993). Journal of Finance 48(5), 1779-1801. Sheppard, K. arch (Python package).
    """

    description = "GARCH(p,o,q) with arch, refitted on a schedule, one-step forecast filtered"
    param_specs = {
        "mean": ChoiceParam(
            ("constant", "zero"), default="constant", help="Mean model: constant or zero"
        ),
        "p": IntParam(1, 3, default=1, help="ARCH order (lags of squared residuals)"),
        "o": IntParam(0, 2, default=0, help="Asymmetric (GJR) order; 0 = symmetric GARCH"),
        "q": IntParam(0, 3, default=1, help="GARCH order (lags of the variance)"),
        "dist": ChoiceParam(
            ("normal", "studentst"),
            default="normal",
            help="Error distribution: normal or Student's t",
        ),
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="yearly", help=_REFIT_HELP),
        "window_type": ChoiceParam(
            ("rolling", "expanding"),
            default="rolling",
            help="Fit on the last `window` returns, or on all",
        ),
        "window": IntParam(
            250, 5000, default=1000, step=50, help="Returns in the rolling estimation window"
        ),
        "min_obs": IntParam(
            250, 2520, default=500, step=50, help="Returns needed before the first fit"
        ),
    }

    def __init__(
        self,
        mean="constant",
        p=1,
        o=0,
        q=1,
        dist="normal",
        refit="yearly",
        window_type="rolling",
        window=1000,
        min_obs=500,
    ):
        self.mean = mean
        self.p = p
        self.o = o
        self.q = q
        self.dist = dist
        self.refit = refit
        self.window_type = window_type
        self.window = window
        self.min_obs = min_obs

    def _check_params(self) -> None:
        if self.window_type == "rolling" and self.min_obs > self.window:
            raise ParameterError(
                f"min_obs ({self.min_obs}) cannot exceed the rolling window ({self.window})"
            )

    def min_history(self) -> int:
        return self.min_obs + 2

    def spec(self) -> GarchSpec:
        """What each per-ticker fit estimates (every parameter but ``refit``)."""
        return _spec(self, GarchSpec)

    def _compute(self, data: MarketData) -> ModelOutput:
        r = 100.0 * _log_returns(data)
        (var, persistence), records, params = _fit_per_ticker(
            garch_ticker, r, self.spec(), data, self.refit
        )
        return _output(
            data,
            vm.annualise(var) / 100.0,
            {"params": params},
            garch_fit_warnings(records),
            persistence=persistence,
        )


class RealizedVolatilityModel(_VolatilityModel):
    """Range-based realised volatility with a walk-forward HAR forecast.

    Parameters
    ----------
    estimator : {"parkinson", "garman_klass", "rogers_satchell", "yang_zhang"}
        Range estimator of the daily variance.
    window : int
        Days averaged by the range estimator (the ``range_volatility`` extra).
    refit : {"yearly", "quarterly", "monthly"}
        HAR refit schedule.
    pooling : {"per_ticker", "pooled"}
        One HAR regression per ticker, or one on all tickers' samples.
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
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="monthly", help=_REFIT_HELP),
        "pooling": ChoiceParam(
            ("per_ticker", "pooled"),
            default="per_ticker",
            help="One HAR regression per ticker or one for all",
        ),
        "min_obs": IntParam(
            100, 2520, default=500, step=10, help="Samples needed before the first HAR fit"
        ),
    }

    def __init__(
        self, estimator="yang_zhang", window=21, refit="monthly", pooling="per_ticker", min_obs=500
    ):
        self.estimator = estimator
        self.window = window
        self.refit = refit
        self.pooling = pooling
        self.min_obs = min_obs

    def min_history(self) -> int:
        return self.window + 1

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
        return _output(
            data,
            vm.annualise(forecast),
            {"har_coefficients": table},
            range_volatility=vm.annualise(windowed),
        )


class VolatilityClusteringModel(_VolatilityModel):
    """EWMA (RiskMetrics) volatility forecast with a volatility-clustering score.

    Parameters
    ----------
    ewma_lambda : float
        RiskMetrics decay (0.94 for daily data).
    window : int
        Rolling window of the autocorrelation measure, trading days.
    n_lags : int
        Lags averaged in the persistence score.
    measure : {"abs", "squared"}
        Autocorrelation of ``|r|`` (robust) or ``r^2``.

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

    def __init__(self, ewma_lambda=0.94, window=252, n_lags=5, measure="abs"):
        self.ewma_lambda = ewma_lambda
        self.window = window
        self.n_lags = n_lags
        self.measure = measure

    def min_history(self) -> int:
        return self.ewma_min_periods + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        r = _log_returns(data)
        var = ewma_variance(r, self.ewma_lambda, min_periods=self.ewma_min_periods)
        acfs = vm.clustering_acfs(r, self.window, self.n_lags, self.measure)
        persistence = acfs.mean(axis=0)
        bound = 1.96 / np.sqrt(self.window * self.n_lags)
        clustered = np.where(np.isnan(persistence), np.nan, persistence > bound)
        return _output(
            data, vm.annualise(var), persistence=persistence, acf1=acfs[0], clustered=clustered
        )


class VolatilityForecastingModel(_VolatilityModel):
    """Walk-forward next-day variance forecast: ARIMA, linear regression or random forest.

    Parameters
    ----------
    method : {"linear", "random_forest", "arima"}
        Forecasting method (see :mod:`._volforecast`).
    refit : {"yearly", "quarterly", "monthly"}
        Refit schedule (ARIMA refits are the slow part: prefer yearly for many tickers).
    window : int
        Training samples before each refit date.
    min_obs : int
        Samples needed before the first fit.
    arima_p, arima_q : int
        ARMA orders of the ARIMA(p, 0, q) on log realised variance.
    rv_window : int
        Days in the realised variance the ARIMA models (its log needs some smoothing).
    n_estimators, max_depth, random_state : int
        Random forest size, depth and seed (leaves hold at least 5 samples).

    Notes
    -----
    Target: the daily realised variance proxy ``rv_{t+1} = (100 r_{t+1})^2``; the
    output at t is ``sqrt(252 h_t) / 100`` with ``h_t`` the forecast of ``rv_{t+1}``
    made with data up to t. ``tables["errors"]`` scores the forecasts against the
    realised ``rv_{t+1}`` per ticker and over all (``(all)``): ``mse`` (percent^2
    squared) and Patton's ``qlike`` ``mean(rv/h - ln(rv/h) - 1)`` (days with a zero
    return left out of QLIKE, counted in ``n_qlike``). ``tables["fits"]``: one row per
    (ticker, refit_date). Extras: ``realised_volatility`` ``sqrt(252) |r_t|``.

    References
    ----------
    Harvey, A., Ruiz, E., Shephard, N. (1994). Multivariate stochastic variance models.
    Rev. Economic Studies 61(2). Patton, A. (2011). Volatility forecast comparison
    using imperfect volatility proxies. J. Econometrics 160(1), 246-256. Breiman, L.
    (2001). Random forests. Machine Learning 45(1), 5-32.
    """

    description = "Walk-forward variance forecast (ARIMA / linear / random forest) + QLIKE"
    param_specs = {
        "method": ChoiceParam(
            FORECAST_METHODS,
            default="linear",
            help="linear regression, random forest or ARIMA on log RV",
        ),
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="quarterly", help=_REFIT_HELP),
        "window": IntParam(
            250, 2520, default=750, step=50, help="Training samples before each refit"
        ),
        "min_obs": IntParam(
            100, 2520, default=250, step=10, help="Samples needed before the first fit"
        ),
        "arima_p": IntParam(0, 3, default=1, help="ARIMA autoregressive order"),
        "arima_q": IntParam(0, 3, default=1, help="ARIMA moving-average order"),
        "rv_window": IntParam(
            1, 22, default=5, help="Days in the realised variance modelled by ARIMA"
        ),
        "n_estimators": IntParam(
            10, 300, default=50, step=10, help="Random forest: number of trees"
        ),
        "max_depth": IntParam(2, 12, default=5, help="Random forest: tree depth"),
        "random_state": IntParam(0, 2**31 - 1, default=0, help="Random forest seed"),
    }

    def __init__(
        self,
        method="linear",
        refit="quarterly",
        window=750,
        min_obs=250,
        arima_p=1,
        arima_q=1,
        rv_window=5,
        n_estimators=50,
        max_depth=5,
        random_state=0,
    ):
        self.method = method
        self.refit = refit
        self.window = window
        self.min_obs = min_obs
        self.arima_p = arima_p
        self.arima_q = arima_q
        self.rv_window = rv_window
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.min_obs > self.window:
            raise ParameterError(
                f"min_obs ({self.min_obs}) cannot exceed the training window ({self.window})"
            )

    def min_history(self) -> int:
        return self.min_obs + 23

    def spec(self) -> ForecastSpec:
        """The walk-forward settings of each per-ticker fit (every parameter but ``refit``)."""
        return _spec(self, ForecastSpec)

    def _compute(self, data: MarketData) -> ModelOutput:
        r = _log_returns(data)
        rv = (100.0 * r) ** 2
        settings = current_execution()
        # linear: a few milliseconds per ticker, so workers would cost more than they save
        in_process = settings.n_jobs is None and self.method == "linear"
        with execution(1 if in_process else settings.n_jobs, settings.progress):
            (var,), _, fits = _fit_per_ticker(forecast_ticker, rv, self.spec(), data, self.refit)
        tables = {"errors": forecast_errors(rv, var, data.tickers), "fits": fits}
        realised = np.abs(r) * SQRT_TRADING_DAYS
        return _output(data, vm.annualise(var) / 100.0, tables, realised_volatility=realised)


class VolatilityRegimeDetectionModel(_VolatilityModel):
    """Low / normal / high volatility regime against the ticker's own past, with persistence.

    Parameters
    ----------
    method : {"zscore", "quantile"}
        ``zscore``: z-score of log volatility against its rolling mean and std over
        ``lookback``; ``quantile``: against expanding quantiles of its own past.
    vol_window : int
        Rolling window of the volatility (the primary output), trading days.
    lookback : int
        z-score window; for ``quantile``, the history needed before a label.
    threshold : float
        z beyond which the regime is low (``< -threshold``) or high (``> threshold``).
    low_quantile, high_quantile : float
        Percentile boundaries for ``quantile``.
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

    def __init__(
        self,
        method="zscore",
        vol_window=21,
        lookback=252,
        threshold=1.0,
        low_quantile=0.2,
        high_quantile=0.8,
        min_duration=5,
    ):
        self.method = method
        self.vol_window = vol_window
        self.lookback = lookback
        self.threshold = threshold
        self.low_quantile = low_quantile
        self.high_quantile = high_quantile
        self.min_duration = min_duration

    def min_history(self) -> int:
        return self.vol_window + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        vol = vm.rolling_volatility(_log_returns(data), self.vol_window)
        if self.method == "zscore":
            score = vm.rolling_log_zscore(vol, self.lookback)
            raw = rl.signed_step(score, self.threshold) + 1.0  # 0 low, 1 normal, 2 high
        else:
            bounds = (self.low_quantile, self.high_quantile)
            low, high = vm.expanding_quantiles(vol, bounds, self.lookback)
            raw, _, score = vm.band_classes(vol, low, high)
        regime = vm.min_duration_filter(raw, self.min_duration)
        return _output(data, vol, regime=regime, raw_regime=raw, score=score)


MODELS = (
    SimpleVolatilityModel,
    GARCHVolatilityModel,
    RealizedVolatilityModel,
    VolatilityClusteringModel,
    VolatilityForecastingModel,
    VolatilityRegimeDetectionModel,
)
