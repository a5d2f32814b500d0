"""Walk-forward next-day variance forecasts: ARIMA on log RV, linear and random forest.

One ticker at a time (ARIMA is univariate, and each ticker has its own dynamics), so
the per-ticker loop is the unit of work that
:func:`mltrainer.numerics.engine.map_tickers` runs in parallel. All variances are
daily, in percent squared (returns times 100).

The daily realised variance proxy is ``rv_t = (100 r_t)^2`` with r the log return.
At each refit date r a model is fitted on the last ``window`` samples whose target
lies strictly before r, then applied, with its parameters fixed, at every date t
from r to the next refit to forecast ``rv_{t+1}`` from data up to t.

- ``linear``: OLS of ``rv_{t+1}`` on lagged realised variance ``[1, rv_t,
  mean(rv_{t-4..t}), mean(rv_{t-21..t})]`` (the HAR design).
- ``random_forest``: scikit-learn's ``RandomForestRegressor`` (seeded) on the same
  lagged features.
- ``arima``: statsmodels ARIMA(p, 0, q) with a constant on ``z_t = ln RV^{(w)}_t``, the
  log of the w-day mean of rv (w = ``rv_window``; the log of a single squared return
  is too heavy-tailed). Between refits the Kalman filter runs with fixed parameters
  for the one-step prediction of ``z_{t+1}``; the variance forecast is
  ``exp(z_hat) * mean(exp(residuals))`` (Duan's 1983 smearing, which does not assume
  normal residuals).

The forecasts are scored against the realised proxy by :func:`forecast_errors` (MSE and
Patton's QLIKE). :class:`VolatilityForecastingModel`, the registered model, is the thin
class over these functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.models import _volbase as vb
from mltrainer.models._volmath import HAR_TERMS, annualise
from mltrainer.models.base import ModelOutput
from mltrainer.models.params import ChoiceParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.parallel import current_execution, execution, reported
from mltrainer.numerics.schedule import CALENDAR_FREQUENCIES
from mltrainer.numerics.units import SQRT_TRADING_DAYS
from mltrainer.numerics.variance import mse_loss, qlike_loss

FORECAST_METHODS = ("linear", "random_forest", "arima")
LOG_FLOOR = 1e-6  # percent^2: a run of zero returns would otherwise have no logarithm


@dataclass(frozen=True)
class ForecastSpec:
    """A VolatilityForecastingModel's walk-forward settings (defaults: the model's specs)."""

    method: str
    window: int
    min_obs: int
    arima_p: int
    arima_q: int
    rv_window: int
    n_estimators: int
    max_depth: int
    random_state: int


def trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``x[i-n+1..i]`` for a 1-D series without gaps (NaN for i < n-1)."""
    return rl.rolling_mean(np.asarray(x, dtype="float64")[:, None], n)[:, 0]


def lagged_rv_features(rv: np.ndarray) -> np.ndarray:
    """``[rv_t, mean(rv_{t-4..t}), mean(rv_{t-21..t})]`` per observation, shape (n, 3)."""
    return np.column_stack([rv, trailing_mean(rv, 5), trailing_mean(rv, 22)])


def forecast_ticker(
    rv: np.ndarray, obs_before: np.ndarray, spec: ForecastSpec
) -> tuple[np.ndarray, list[dict]]:
    """Walk-forward forecasts for one ticker.

    Parameters
    ----------
    rv : realised variance proxy of the ticker's valid dates, oldest first (no NaN)
    obs_before : for each refit date, how many observations fall strictly before it

    Returns
    -------
    forecast : variance forecast for the next observation, made at each observation
    rows : one dict per refit (``refit`` index, ``nobs``, ``ok``, method details)
    """
    if spec.method == "linear":
        return _linear_walk_forward(rv, obs_before, spec)
    n = rv.shape[0]
    forecast = np.full(n, np.nan)
    rows: list[dict] = []
    if spec.method == "arima":
        z = np.log(np.maximum(trailing_mean(rv, spec.rv_window), LOG_FLOOR))
    else:
        feats = lagged_rv_features(rv)
    for k, nb in reported(obs_before):  # a lone ticker's refits show as progress
        ne = obs_before[k + 1] if k + 1 < len(obs_before) else n
        if ne <= nb:
            continue
        if spec.method == "arima":
            first = spec.rv_window - 1
            ws = max(first, nb - spec.window)
            if nb - ws < spec.min_obs:
                continue
            seg, row = _arima_segment(z, ws, nb, ne, spec)
        else:
            # sample i: features at i, target rv[i + 1]; targets strictly before the refit
            lo = max(21, nb - 1 - spec.window)
            if nb - 1 - lo < spec.min_obs:
                continue
            seg, row = _forest_segment(feats, rv, lo, nb, ne, spec)
        row.update(refit=k)
        rows.append(row)
        forecast[nb:ne] = seg
    return forecast, rows


def _linear_walk_forward(
    rv: np.ndarray, obs_before: np.ndarray, spec: ForecastSpec
) -> tuple[np.ndarray, list[dict]]:
    """The ``linear`` method for all refits at once.

    Each refit's OLS uses the cross-product sums of its window, taken as differences
    of one cumulative sum of ``z z'`` with ``z = [1, features, target]`` (samples in
    date order, so a prefix of the data gives a prefix of the sums), then a 4x4 solve.
    One solve per refit, without refitting from scratch in a Python loop.
    """
    n = rv.shape[0]
    forecast = np.full(n, np.nan)
    feats = lagged_rv_features(rv)
    z = np.zeros((max(n - 1, 0), 5))  # sample i: features at i, target rv[i + 1]
    if n > 22:
        z[21:, 0] = 1.0
        z[21:, 1:4] = feats[21 : n - 1]
        z[21:, 4] = rv[22:]
    cum = np.zeros((z.shape[0] + 1, 5, 5))
    np.cumsum(z[:, :, None] * z[:, None, :], axis=0, out=cum[1:])
    before = np.asarray(obs_before)
    ends = np.append(before[1:], n)
    lo = np.maximum(21, before - 1 - spec.window)
    fit = (ends > before) & (before - 1 - lo >= spec.min_obs)
    rows: list[dict] = []
    if not fit.any():
        return forecast, rows
    ks = np.flatnonzero(fit)
    cross = cum[before[ks] - 1] - cum[lo[ks]]
    with np.errstate(invalid="ignore"):
        try:
            beta = np.linalg.solve(cross[:, :4, :4], cross[:, :4, 4:])[..., 0]
        except np.linalg.LinAlgError:  # a degenerate window: least squares per refit
            beta = np.stack([np.linalg.lstsq(c[:4, :4], c[:4, 4], rcond=None)[0] for c in cross])
    for k, b in zip(ks, beta, strict=True):
        nb, ne = before[k], ends[k]
        out = b[0] + feats[nb:ne] @ b[1:]
        forecast[nb:ne] = np.where(out > 0, out, np.nan)
        coefs = dict(zip(HAR_TERMS, b, strict=True))
        rows.append({"refit": int(k), "nobs": int(nb - 1 - lo[k]), "ok": True, **coefs})
    return forecast, rows


def _forest_segment(
    feats: np.ndarray, rv: np.ndarray, lo: int, nb: int, ne: int, spec: ForecastSpec
) -> tuple[np.ndarray, dict]:
    """Fit the seeded forest on samples ``lo..nb-2`` (targets before the refit), predict."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(
        n_estimators=spec.n_estimators,
        max_depth=spec.max_depth,
        min_samples_leaf=5,
        random_state=spec.random_state,
        n_jobs=1,
    )
    forest.fit(feats[lo : nb - 1], rv[lo + 1 : nb])
    out = forest.predict(feats[nb:ne])  # averages of past targets: never negative
    return np.where(out > 0, out, np.nan), {"nobs": nb - 1 - lo, "ok": True}


def _arima_segment(
    z: np.ndarray, ws: int, nb: int, ne: int, spec: ForecastSpec
) -> tuple[np.ndarray, dict]:
    from statsmodels.tsa.arima.model import ARIMA

    order = (spec.arima_p, 0, spec.arima_q)
    row: dict = {"nobs": nb - ws}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ARIMA(z[ws:nb], order=order, trend="c").fit()
            smear = float(np.mean(np.exp(res.resid)))
            filt = ARIMA(z[ws:ne], order=order, trend="c").filter(res.params)
            # prediction i is for z[ws + i] from data before it; i = ne - ws is one step out
            pred = np.asarray(filt.predict(start=0, end=ne - ws))
    except (ValueError, np.linalg.LinAlgError) as exc:
        row.update(ok=False, error=str(exc)[:200])
        return np.full(ne - nb, np.nan), row
    row.update(ok=True, smearing=smear, **dict(zip(res.model.param_names, res.params, strict=True)))
    return np.exp(pred[nb - ws + 1 : ne - ws + 1]) * smear, row


def forecast_errors(rv: np.ndarray, forecast: np.ndarray, tickers: list) -> pd.DataFrame:
    """MSE and QLIKE of each ticker's forecasts and of all of them (row ``(all)``).

    The forecast made at a ticker's observation i is scored against ``rv`` at its next
    observation. Columns ``n`` (scored pairs), ``mse``, ``qlike``, ``n_qlike`` (pairs
    with both values positive), indexed by ticker.
    """
    pairs = []  # (realised, forecast) per ticker
    for j in range(rv.shape[1]):
        pos = np.flatnonzero(np.isfinite(rv[:, j]))
        pairs.append((rv[pos[1:], j], forecast[pos[:-1], j]))
    pairs.append(tuple(np.concatenate(side) for side in zip(*pairs, strict=True)))
    scored = [np.isfinite(realised) & np.isfinite(made) for realised, made in pairs]
    positive = [ok & (r > 0) & (m > 0) for ok, (r, m) in zip(scored, pairs, strict=True)]
    columns = {
        "n": [int(ok.sum()) for ok in scored],
        "mse": [mse_loss(*pair) for pair in pairs],
        "qlike": [qlike_loss(*pair) for pair in pairs],
        "n_qlike": [int(ok.sum()) for ok in positive],
    }
    return pd.DataFrame(columns, index=pd.Index([*tickers, "(all)"], name="ticker"))


class VolatilityForecastingModel(vb.VolatilityModel):
    """Walk-forward next-day variance forecast: ARIMA, linear regression or random forest.

    Parameters
    ----------
    method : {"linear", "random_forest", "arima"}
        Forecasting method (see :mod:`._volforecast`).
    refit : {"yearly", "quarterly", "monthly"}
        Refit schedule (ARIMA refits are the slow part: prefer yearly for many tickers).
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
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="quarterly", help=vb.REFIT_HELP),
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

    def _check_params(self) -> None:
        self._require_order("min_obs", "window", strict=False)

    def min_history(self) -> int:
        return self.min_obs + 23

    def spec(self) -> ForecastSpec:
        """The walk-forward settings of each per-ticker fit (every parameter but ``refit``)."""
        return vb.spec_of(self, ForecastSpec)

    def _compute(self, data: MarketData) -> ModelOutput:
        r = vb.log_returns(data)
        rv = (100.0 * r) ** 2
        settings = current_execution()
        # linear: a few milliseconds per ticker, so workers would cost more than they save
        in_process = settings.n_jobs is None and self.method == "linear"
        with execution(1 if in_process else settings.n_jobs, settings.progress):
            (var,), _, fits = vb.fit_per_ticker(forecast_ticker, rv, self.spec(), data, self.refit)
        tables = {"errors": forecast_errors(rv, var, data.tickers), "fits": fits}
        realised = np.abs(r) * SQRT_TRADING_DAYS
        return vb.output(data, annualise(var) / 100.0, tables, realised_volatility=realised)
