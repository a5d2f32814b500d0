"""Walk-forward next-day variance forecasts: ARIMA on log RV, linear and random forest.

One ticker at a time (ARIMA is univariate, and each ticker has its own dynamics), so
the per-ticker loop is the unit of work that :func:`mltrainer.models.garch.map_tickers`
runs in parallel. All variances are daily, in percent squared (returns times 100).

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
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mltrainer.models import _rolling as rl

FORECAST_METHODS = ("linear", "random_forest", "arima")
LOG_FLOOR = 1e-6  # percent^2: a run of zero returns would otherwise have no logarithm


@dataclass(frozen=True)
class ForecastSpec:
    """Method and walk-forward settings (see :class:`VolatilityForecastingModel`)."""

    method: str = "linear"
    window: int = 750
    min_obs: int = 250
    arima_p: int = 1
    arima_q: int = 1
    rv_window: int = 5
    n_estimators: int = 50
    max_depth: int = 5
    random_state: int = 0


def lagged_rv_features(rv: np.ndarray) -> np.ndarray:
    """``[rv_t, mean(rv_{t-4..t}), mean(rv_{t-21..t})]`` per observation, shape (n, 3)."""
    col = rv[:, None]
    return np.hstack([col, rl.rolling_mean(col, 5), rl.rolling_mean(col, 22)])


def forecast_ticker(rv: np.ndarray, obs_before: np.ndarray, spec: ForecastSpec
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
    n = rv.shape[0]
    forecast = np.full(n, np.nan)
    rows: list[dict] = []
    if spec.method == "arima":
        z = np.log(np.maximum(rl.rolling_mean(rv[:, None], spec.rv_window)[:, 0], LOG_FLOOR))
    else:
        feats = lagged_rv_features(rv)
    for k, nb in enumerate(obs_before):
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
            seg, row = _regression_segment(feats, rv, lo, nb, ne, spec)
        row.update(refit=k)
        rows.append(row)
        forecast[nb:ne] = seg
    return forecast, rows


def _regression_segment(feats: np.ndarray, rv: np.ndarray, lo: int, nb: int, ne: int,
                        spec: ForecastSpec) -> tuple[np.ndarray, dict]:
    x_train, y_train = feats[lo:nb - 1], rv[lo + 1:nb]
    x_new = feats[nb:ne]
    out = np.full(ne - nb, np.nan)
    if spec.method == "linear":
        design = np.column_stack([np.ones(len(x_train)), x_train])
        beta = np.linalg.lstsq(design, y_train, rcond=None)[0]
        out = beta[0] + x_new @ beta[1:]
        row = {"nobs": len(y_train), "ok": True, "const": beta[0], "daily": beta[1],
               "weekly": beta[2], "monthly": beta[3]}
    else:
        from sklearn.ensemble import RandomForestRegressor

        forest = RandomForestRegressor(
            n_estimators=spec.n_estimators, max_depth=spec.max_depth, min_samples_leaf=5,
            random_state=spec.random_state, n_jobs=1)
        forest.fit(x_train, y_train)
        out = forest.predict(x_new)
        row = {"nobs": len(y_train), "ok": True}
    with np.errstate(invalid="ignore"):
        out = np.where(out > 0, out, np.nan)
    return out, row


def _arima_segment(z: np.ndarray, ws: int, nb: int, ne: int, spec: ForecastSpec
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
    return np.exp(pred[nb - ws + 1:ne - ws + 1]) * smear, row
