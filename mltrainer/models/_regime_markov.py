"""Walk-forward Markov-switching regressions (Hamilton, 1989) with statsmodels.

Each refit estimates ``MarkovRegression`` by maximum likelihood on past returns only;
until the next refit the parameters are frozen and the Hamilton *filter* runs forward
over the new days (statsmodels ``model.filter(params)`` on the longer sample: the
filtered probability at t uses returns up to t only). Smoothed probabilities, which use
the whole sample, are never computed.

References
----------
J. D. Hamilton (1989), "A New Approach to the Economic Analysis of Nonstationary Time
Series and the Business Cycle", Econometrica 57(2). C.-J. Kim and C. R. Nelson (1999),
"State-Space Models with Regime Switching", MIT Press. statsmodels
``statsmodels.tsa.regime_switching.markov_regression.MarkovRegression``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from mltrainer.models._regime_math import stress_rank
from mltrainer.numerics.parallel import reported
from mltrainer.numerics.schedule import refit_rows, stops
from mltrainer.numerics.threads import single_thread

# Returns are fed in percent: the likelihood surface is then well scaled (variances ~1),
# which the optimiser needs; regime labels and probabilities do not depend on the unit.
SCALE = 100.0


def markov_model(y: np.ndarray, k: int, switching_mean: bool) -> MarkovRegression:
    """The statsmodels model used throughout: constant mean, switching variance."""
    return MarkovRegression(
        y, k_regimes=k, trend="c", switching_trend=switching_mean, switching_variance=True
    )


def start_params(model: MarkovRegression, y: np.ndarray) -> np.ndarray:
    """Deterministic starting values from the data's own scale.

    Persistent regimes (``p_ii = 0.95``), the sample mean for every regime's mean, and
    variances spread geometrically from 0.4x to 2.5x the sample variance (calm to
    stressed). statsmodels' default start values can land in a degenerate optimum
    (``p_00 = 0``: an i.i.d. mixture) on short samples; these do not.
    """
    k = model.k_regimes
    var = float(np.var(y))
    factors = np.geomspace(0.4, 2.5, k)
    values = {}
    for i in range(k):
        for j in range(k - 1):
            values[f"p[{i}->{j}]"] = 0.95 if i == j else 0.05 / (k - 1)
        values[f"sigma2[{i}]"] = var * factors[i]
        values[f"const[{i}]"] = float(np.mean(y))
    values["const"] = float(np.mean(y))
    return np.array([values[name] for name in model.param_names])


SCREEN_EM = 10  # EM steps that rank the non-default starts before one BFGS fit
# RuntimeError: statsmodels' 'Steady-state probabilities could not be constructed' (a halted price)
FIT_ERRORS = (ValueError, RuntimeError, np.linalg.LinAlgError, FloatingPointError, OverflowError)


def _fit_from(model: MarkovRegression, **kwargs) -> np.ndarray | None:
    """One statsmodels fit (parameters only), None when it fails or is not finite."""
    try:
        params = np.asarray(model.fit(disp=False, return_params=True, **kwargs))
    except FIT_ERRORS:  # e.g. "Could not untransform parameters" on a degenerate start
        return None
    return params if np.all(np.isfinite(params)) else None


def fit_params(
    model: MarkovRegression, start: np.ndarray, warm: np.ndarray | None = None
) -> np.ndarray:
    """Maximum-likelihood parameters (statsmodels order): the best of several fits.

    Candidates: statsmodels' default fit (its start values, EM warm-up, BFGS), and a
    BFGS fit from the more likely, after ``SCREEN_EM`` EM steps, of ``start``
    (:func:`start_params`) and ``warm`` (the previous refit's parameters). The highest
    log-likelihood wins, so the result is never below statsmodels' default fit; a
    3-regime likelihood has several local optima and any single start lands on a worse
    one on some windows.
    ``return_params=True`` skips the smoother statsmodels would otherwise run on the
    fitted model (not needed, and it is the slow part).

    Raises
    ------
    ValueError
        When every candidate fails (statsmodels raises on degenerate windows).
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # convergence / EM re-scaling notes: judged below
        # a 3-regime BFGS fit costs seconds: the other starts are screened by a few EM
        # steps (milliseconds) and only the most likely one is fitted
        others = [start] + ([warm] if warm is not None else [])
        screened = []
        for x0 in others:
            x = _fit_from(model, start_params=x0, em_iter=SCREEN_EM, maxiter=0)  # EM only
            if x is not None:
                screened.append((float(model.loglike(x)), x))
        finite = [(ll, x) for ll, x in screened if np.isfinite(ll)]
        found = [_fit_from(model)]
        if finite:
            found.append(
                _fit_from(model, start_params=max(finite, key=lambda c: c[0])[1], em_iter=0)
            )
        best, best_ll = None, -np.inf
        for params in found:
            if params is None:
                continue
            ll = float(model.loglike(params))
            # clearly better only: near-ties keep the earlier candidate
            if np.isfinite(ll) and ll > best_ll + 1e-9 * abs(ll):
                best, best_ll = params, ll
    if best is None:
        raise ValueError("every maximum-likelihood fit failed (a degenerate window?)")
    return best


def variance_rank(model: MarkovRegression, params: np.ndarray) -> np.ndarray:
    """``rank[statsmodels regime]`` = regime label ordered by variance (0 = calmest)."""
    names = model.param_names
    sigma2 = np.array([params[names.index(f"sigma2[{i}]")] for i in range(model.k_regimes)])
    return stress_rank(sigma2)


def transition_from_params(model: MarkovRegression, params: np.ndarray) -> np.ndarray:
    """Sorted transition matrix ``P[i, j] = P(s_t = j | s_{t-1} = i)`` (rows sum to 1).

    statsmodels stores ``P(s_t = i | s_{t-1} = j)`` at ``[i, j]``; it is transposed and
    its regimes reordered by variance.
    """
    sm = model.regime_transition_matrix(params)[..., 0].T
    order = np.argsort(variance_rank(model, params))
    return sm[np.ix_(order, order)]


@dataclass
class MarkovFits:
    """Walk-forward output on one series (rows of the input)."""

    probs: np.ndarray  # (n, k) filtered probabilities, regimes sorted by variance
    refits: list = field(default_factory=list)  # (row, params in statsmodels order)
    param_names: list = field(default_factory=list)
    last_model: MarkovRegression | None = None
    failures: list = field(default_factory=list)  # (first row, stop row, message)


def markov_walk_forward(
    y: np.ndarray,
    k: int,
    switching_mean: bool,
    min_train: int,
    refit_every: int,
    max_train: int = 0,
) -> MarkovFits:
    """Refit on past returns on a schedule, filter forward with frozen parameters.

    Parameters
    ----------
    y : ndarray
        Daily returns (any unit; multiplied by :data:`SCALE`), no NaN.
    k, switching_mean : see :class:`MarkovRegression` (``k_regimes``, ``switching_trend``).
    min_train, refit_every, max_train : int
        Schedule (see :func:`mltrainer.numerics.schedule.refit_rows`); ``max_train``
        0 = expanding window, else the last ``max_train`` returns.

    Notes
    -----
    Fit j uses rows ``[lo_j, r_j)``; for rows ``r_j .. r_{j+1}-1`` the probabilities are
    ``MarkovRegression(y[lo_j:r_{j+1}]).filter(params_j).filtered_marginal_probabilities``,
    i.e. the filter started at ``lo_j`` from the chain's steady state. Each fit is
    :func:`fit_params` (several starts, the previous fit's parameters among them). A
    refit where statsmodels fails leaves its rows NaN and is listed in ``failures``.
    """
    y = np.asarray(y, dtype="float64") * SCALE
    n = len(y)
    out = MarkovFits(probs=np.full((n, k), np.nan))
    rows = refit_rows(n, min_train, refit_every)
    params = None
    with single_thread():
        # one ML fit per refit (dozens), each reported: a 3-regime run takes minutes
        for _, (start, stop) in reported(list(zip(rows, stops(rows, n), strict=True))):
            lo = 0 if max_train == 0 else max(0, start - max_train)
            model = markov_model(y[lo:start], k, switching_mean)
            try:
                params = fit_params(model, start_params(model, y[lo:start]), params)
                full = markov_model(y[lo:stop], k, switching_mean)
                with np.errstate(all="ignore"):
                    filtered = np.asarray(full.filter(params).filtered_marginal_probabilities)
                if not np.all(np.isfinite(filtered)):
                    raise ValueError("the Hamilton filter gave non-finite probabilities")
            except FIT_ERRORS as exc:
                # this segment stays NaN; the next refit starts afresh
                out.failures.append((int(start), int(stop), str(exc)[:200]))
                params = None
                continue
            order = np.argsort(variance_rank(full, params))
            out.probs[start:stop] = filtered[start - lo :, order]
            out.refits.append((int(start), params))
            out.param_names = list(model.param_names)
            out.last_model = full
    return out


def params_table(fits: MarkovFits, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per refit: the date it applies from and its parameters (statsmodels names)."""
    rows = [
        {"refit_date": dates[row], **dict(zip(fits.param_names, p, strict=True))}
        for row, p in fits.refits
    ]
    return pd.DataFrame(rows)
