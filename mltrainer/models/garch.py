"""GARCH volatility forecasts with ``arch``: refitted on a calendar schedule, filtered between.

For each ticker and each refit date r, an ``arch`` model (ConstantMean or ZeroMean
mean, GARCH(p, o, q) variance, Normal or Student's t errors) is estimated on the
returns strictly before r (expanding or rolling window). With those parameters fixed,
the conditional variance recursion is run forward over the refit window and on
through the dates up to the next refit, giving at each date t the one-step-ahead
variance ``sigma^2_{t+1|t}`` from returns up to t. This is what ``arch``'s
``res.conditional_volatility`` and ``res.forecast(horizon=1)`` give on the same data;
:func:`garch_variance` is the recursion and ``tests/models/test_volatility.py`` checks
it against ``arch``.

``arch`` is univariate, so tickers are processed one by one: :func:`map_tickers` runs
them in parallel with joblib and reports progress through a callback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, lfiltic

N_JOBS = 2  # the CI and dashboard machines have two cores
PARALLEL_MIN_TASKS = 8  # fewer tickers run in-process (see map_tickers)


@dataclass(frozen=True)
class GarchSpec:
    """What to estimate: mean, GARCH orders, error distribution and the fit window."""

    mean: str = "constant"  # "constant" (ConstantMean) or "zero" (ZeroMean)
    p: int = 1  # ARCH lags (alpha)
    o: int = 0  # asymmetric (GJR) lags (gamma)
    q: int = 1  # GARCH lags (beta)
    dist: str = "normal"  # "normal" or "studentst"
    window_type: str = "rolling"  # "rolling" or "expanding"
    window: int = 1000  # returns in a rolling window
    min_obs: int = 500  # returns needed before the first fit


def build_model(y: np.ndarray, spec: GarchSpec):
    """The ``arch`` model for returns ``y`` (in percent), composed from its pieces."""
    from arch.univariate import GARCH, ConstantMean, Normal, StudentsT, ZeroMean

    mean_cls = ConstantMean if spec.mean == "constant" else ZeroMean
    dist = Normal() if spec.dist == "normal" else StudentsT()
    return mean_cls(y, volatility=GARCH(p=spec.p, o=spec.o, q=spec.q), distribution=dist,
                    rescale=False)


def garch_backcast(resid: np.ndarray) -> float:
    """arch's start-up value for the recursion: an EWMA (0.94) of the first 75 ``e^2``."""
    tau = min(75, resid.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / w.sum()
    return float(np.sum(resid[:tau] ** 2 * w))


def garch_variance(vol_params: np.ndarray, resid: np.ndarray, backcast: float,
                   p: int, o: int, q: int) -> np.ndarray:
    """Conditional variances ``sigma^2_0 .. sigma^2_n`` of a GARCH(p, o, q) given residuals.

    ``sigma^2_t = omega + sum_i alpha_i e^2_{t-i} + sum_j gamma_j e^2_{t-j} 1[e_{t-j} < 0]
    + sum_k beta_k sigma^2_{t-k}``, with the backcast standing in for ``e^2`` and
    ``sigma^2`` before the sample (and half of it for the asymmetric term), as in
    arch's ``garch_recursion``. The last of the n + 1 values is the one-step-ahead
    forecast made after the last residual. The beta part is an IIR filter, so the
    recursion runs in scipy's compiled ``lfilter`` rather than a Python loop. arch
    also clamps each variance into loose data-driven bounds (1e-6 to 1e6 times an
    EWMA variance) to keep its optimiser away from NaNs; fitted parameters never
    reach them, so they are not applied here.

    Parameters
    ----------
    vol_params : ``[omega, alpha_1..p, gamma_1..o, beta_1..q]``
    resid : residuals ``e_t = y_t - mu`` (n)
    backcast : value from :func:`garch_backcast`
    """
    n = resid.shape[0]
    omega = vol_params[0]
    alpha = vol_params[1:1 + p]
    gamma = vol_params[1 + p:1 + p + o]
    beta = vol_params[1 + p + o:1 + p + o + q]
    lags = max(p, o, 1)
    e2 = np.concatenate([np.full(lags, backcast), resid**2])
    neg = np.concatenate([np.full(lags, 0.5 * backcast), resid**2 * (resid < 0)])
    # drive_t (t = 0..n) = omega + sum alpha_i e2_{t-i} + sum gamma_j neg_{t-j}
    drive = np.full(n + 1, omega, dtype="float64")
    for i, a in enumerate(alpha, start=1):
        drive += a * e2[lags - i:lags - i + n + 1]
    for j, g in enumerate(gamma, start=1):
        drive += g * neg[lags - j:lags - j + n + 1]
    if q == 0:
        return drive
    a_coef = np.concatenate([[1.0], -np.asarray(beta, dtype="float64")])
    zi = lfiltic([1.0], a_coef, y=np.full(q, backcast))
    return lfilter([1.0], a_coef, drive, zi=zi)[0]


def garch_ticker(y: np.ndarray, obs_before: np.ndarray, spec: GarchSpec
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Walk-forward GARCH for one ticker's returns (percent, no NaN, in date order).

    Parameters
    ----------
    y : returns of the ticker's valid dates, oldest first
    obs_before : for each refit date, how many of those returns fall strictly before it

    Returns
    -------
    forecast : one-step-ahead variance (percent^2) made at each observation
    persistence : ``sum alpha + sum beta + sum gamma / 2`` of the parameters in force
    rows : one dict per refit: ``refit`` (index into the schedule), the fitted
        parameters by arch's names, ``loglik``, ``nobs``, ``converged``
    """
    n = y.shape[0]
    forecast = np.full(n, np.nan)
    persistence = np.full(n, np.nan)
    rows: list[dict] = []
    n_mean = 1 if spec.mean == "constant" else 0
    n_vol = 1 + spec.p + spec.o + spec.q
    for k, nb in enumerate(obs_before):
        ne = obs_before[k + 1] if k + 1 < len(obs_before) else n
        if nb < spec.min_obs or ne <= nb:
            continue  # not enough history yet, or nothing left to forecast
        ws = 0 if spec.window_type == "expanding" else max(0, nb - spec.window)
        fit_y = y[ws:nb]
        row: dict = {"refit": k, "nobs": nb - ws}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = build_model(fit_y, spec).fit(disp="off", show_warning=False)
            params = res.params
            values = params.to_numpy(dtype="float64")
            if not (np.all(np.isfinite(values)) and np.isfinite(res.loglikelihood)):
                # e.g. a stale price: all-zero returns have no likelihood
                raise FloatingPointError("no finite likelihood (constant returns?)")
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            row.update(converged=False, error=str(exc)[:200])
            rows.append(row)
            continue
        row.update(dict(zip(params.index, values, strict=True)))
        row.update(loglik=float(res.loglikelihood),
                   converged=bool(res.optimization_result.status == 0))
        rows.append(row)
        mu = values[0] if n_mean else 0.0
        # arch starts the recursion from residuals about the sample mean (its starting
        # value for mu), not about the fitted mu
        start_resid = fit_y - fit_y.mean() if n_mean else fit_y
        vp = values[n_mean:n_mean + n_vol]
        sigma2 = garch_variance(vp, y[ws:ne] - mu, garch_backcast(start_resid),
                                spec.p, spec.o, spec.q)
        seg = sigma2[nb - ws + 1:ne - ws + 1]
        forecast[nb:ne] = np.where(seg > 0, seg, np.nan)
        persistence[nb:ne] = (vp[1:1 + spec.p].sum() + vp[1 + spec.p + spec.o:].sum()
                              + 0.5 * vp[1 + spec.p:1 + spec.p + spec.o].sum())
    return forecast, persistence, rows


def _one_blas_thread():
    """A context in which BLAS uses one thread.

    scipy's SLSQP (arch) and statsmodels' optimisers land on optima that differ in the
    5th digit with the BLAS thread count, which differs between the main process and
    joblib's workers; one thread makes a ticker's result the same wherever it runs
    (and is faster for these tiny matrices on a busy machine).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _run_chunk(fn: Callable, chunk: Sequence[tuple]) -> list:
    """Run a few tasks in a worker, under one BLAS thread (set up once per chunk)."""
    with _one_blas_thread():
        return [fn(*task) for task in chunk]


def map_tickers(fn: Callable, tasks: Sequence[tuple], n_jobs: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> list:
    """``[fn(*task) for task in tasks]``, in parallel with joblib when worth it.

    Every call runs with one BLAS thread (see :func:`_one_blas_thread`).
    ``progress(done, total)`` is called as tasks finish (and once with ``(0, total)``
    at the start).
    """
    total = len(tasks)
    if progress is not None:
        progress(0, total)
    jobs = N_JOBS if n_jobs is None else n_jobs
    # auto mode runs small jobs in-process: starting workers (each importing arch,
    # scipy, pandas) costs seconds; an explicit n_jobs > 1 always uses workers
    if jobs == 1 or total < (PARALLEL_MIN_TASKS if n_jobs is None else 2):
        results = []
        with _one_blas_thread():
            for i, task in enumerate(tasks, start=1):
                results.append(fn(*task))
                if progress is not None:
                    progress(i, total)
        return results
    from joblib import Parallel, delayed

    # chunks of a few tickers: fewer round trips, still a smooth progress bar
    size = max(1, min(4, total // (8 * jobs)))
    chunks = [tasks[i:i + size] for i in range(0, total, size)]
    results = []
    runner = Parallel(n_jobs=jobs, return_as="generator")
    for part in runner(delayed(_run_chunk)(fn, chunk) for chunk in chunks):
        results.extend(part)
        if progress is not None:
            progress(len(results), total)
    return results
