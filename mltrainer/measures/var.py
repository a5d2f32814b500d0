"""Value at Risk and Expected Shortfall of a return series, by method.

Conventions (every function here):

- ``returns`` are simple periodic (daily) returns; NaNs are dropped.
- ``level`` is the confidence level (0.99 = 99 %); it may be a float or a sequence of
  floats (several levels at once). The tail probability is ``p = 1 - level``.
- VaR and ES are **positive loss numbers** (a fraction of portfolio value):
  ``VaR = -q_p(r)`` and ``ES = -E[r | r <= q_p(r)]``, so a 99 % VaR of 0.03 means a
  one-day loss worse than 3 % is expected on 1 day in 100.
- Rolling versions give, at date t, the forecast for t+1 made from the last ``window``
  returns up to and including t (never later data).

Methods (``METHODS``):

``historical``
    Empirical quantile of the window, numpy's default linear interpolation
    (Hyndman & Fan type 7): with sorted ``x`` and ``h = (n-1) p``,
    ``q = x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h])``.
    ES is minus the mean of the returns at or below ``q``.
``normal``
    ``VaR = -(mu + sigma z_p)``, ``ES = -(mu - sigma phi(z_p) / p)`` with the sample
    mean and standard deviation (ddof=1), ``z_p = Phi^-1(p)``.
``student_t``
    Standardised Student t with the sample mean and variance; the degrees of freedom
    are fitted by matching the sample excess kurtosis ``g2 = 6 / (nu - 4)``, i.e.
    ``nu = 4 + 6 / g2`` (clipped to ``(4, 1000]``; ``g2 <= 0`` gives 1000, i.e. normal).
    ``VaR = -(mu + s t_nu^-1(p))``, ``ES = -mu + s f_nu(t_nu^-1(p)) / p
    (nu + t_nu^-1(p)^2) / (nu - 1)`` with ``s = sigma sqrt((nu - 2) / nu)``.
``cornish_fisher``
    Modified VaR: ``z_cf = z + (z^2-1) S/6 + (z^3-3z) K/24 - (2z^3-5z) S^2/36`` with the
    sample skewness S and excess kurtosis K (moment estimators, as
    ``scipy.stats.skew``/``kurtosis`` with ``bias=True``); ``VaR = -(mu + sigma z_cf)``.
    ES integrates the same quantile function over the tail: with ``c = z_p`` and the
    truncated-normal moments ``m1 = -phi(c)/p``, ``m2 = 1 - c phi(c)/p``,
    ``m3 = -(c^2+2) phi(c)/p``: ``E[z_cf] = m1 + (m2-1) S/6 + (m3-3 m1) K/24
    - (2 m3 - 5 m1) S^2/36`` and ``ES = -(mu + sigma E[z_cf])``.
``fhs_ewma``, ``fhs_garch``
    Filtered historical simulation (Barone-Adesi et al. 1999): residuals
    ``z_s = (r_s - mu) / sigma_s`` from a conditional volatility filter, then
    ``VaR = -mu + sigma_{t+1} VaR_hist(z)`` and ``ES = -mu + sigma_{t+1} ES_hist(z)``
    over the window. EWMA is RiskMetrics (``mu = 0``, ``lambda = 0.94``); GARCH(1,1)
    with a constant mean is estimated with ``arch`` (rolling: refitted every
    ``refit_every`` observations on all returns up to the refit date).

References
----------
Jorion, P. (2007). *Value at Risk*, 3rd ed. McGraw-Hill.
Dowd, K. (2005). *Measuring Market Risk*, 2nd ed. Wiley (ch. 6-7: t and Cornish-Fisher).
Barone-Adesi, G., Giannopoulos, K., Vosper, L. (1999). VaR without correlations for
portfolios of derivative securities. *Journal of Futures Markets* 19(5).
Favre, L., Galeano, J.-A. (2002). Mean-modified Value-at-Risk optimization with hedge
funds. *Journal of Alternative Investments* 5(2).
J.P. Morgan/Reuters (1996). *RiskMetrics Technical Document*, 4th ed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal, stats

from mltrainer.errors import DataError, ParameterError
from mltrainer.numerics import variance as nvar

METHODS = ("historical", "normal", "student_t", "cornish_fisher", "fhs_ewma", "fhs_garch")
MAX_DOF = 1000.0  # Student t degrees of freedom used when the sample has no excess kurtosis
MIN_OBS = 10  # fewest returns a single VaR figure is computed from
MIN_GARCH_OBS = 100  # fewest returns a GARCH(1,1) is estimated from

Level = float | Sequence[float]
# One return series: a Series, a one-column frame, an array or a list of floats.
Returns = pd.Series | pd.DataFrame | np.ndarray | Sequence[float]
# A VaR or ES figure: a float for a scalar level, one value per level otherwise.
Figure = float | np.ndarray


# --------------------------------------------------------------------------- checks
def _levels(level: Level) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(level, dtype="float64"))
    if arr.ndim != 1 or arr.size == 0 or not np.all((arr > 0.0) & (arr < 1.0)):
        raise ParameterError(
            f"level must be a confidence level strictly between 0 and 1, e.g. 0.95 or 0.99 "
            f"(got {level!r})"
        )
    return arr


def _method(method: str) -> str:
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    return method


def _clean(returns: Returns, what: str = "returns") -> np.ndarray:
    """1-D float array of the finite returns (NaNs dropped); DataError otherwise."""
    if isinstance(returns, pd.DataFrame):
        if returns.shape[1] != 1:
            raise DataError(
                f"{what} must be one series (got a frame with {returns.shape[1]} columns); "
                "combine the assets first, e.g. with measures.portfolio.portfolio_returns"
            )
        returns = returns.iloc[:, 0]
    arr = np.asarray(returns, dtype="float64")
    if arr.ndim != 1:
        raise DataError(f"{what} must be one-dimensional (got shape {arr.shape})")
    if np.isinf(arr).any():
        raise DataError(f"{what} contain infinite values (a price of zero?)")
    return arr[~np.isnan(arr)]


def _shape(values: np.ndarray, level: Level) -> Figure:
    """A float for a scalar level, else the per-level array."""
    return float(values[0]) if np.ndim(level) == 0 else values


# --------------------------------------------------------------------------- kernels
# Every kernel takes windows X of shape (m, w) (one row per window) and tail
# probabilities p of shape (L,), and returns (var, es), each of shape (m, L).
def _hist_kernel(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs = np.sort(x, axis=1)
    w = xs.shape[1]
    h = (w - 1) * p
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, w - 1)
    q = xs[:, lo] + (h - lo) * (xs[:, hi] - xs[:, lo])  # (m, L)
    csum = np.cumsum(xs, axis=1)
    # number of window returns at or below the quantile (ties included)
    k = (xs[:, :, None] <= q[:, None, :]).sum(axis=1)  # (m, L), >= 1
    rows = np.arange(xs.shape[0])[:, None]
    es = -csum[rows, k - 1] / k
    return -q, es


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std (ddof=1), skewness and excess kurtosis (moment estimators) per row."""
    w = x.shape[1]
    mu = x.mean(axis=1)
    d = x - mu[:, None]
    d2 = d * d
    m2 = d2.mean(axis=1)
    m3 = (d2 * d).mean(axis=1)
    m4 = (d2 * d2).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = m3 / m2**1.5
        kurt = m4 / (m2 * m2) - 3.0
    sd = np.sqrt(m2 * w / (w - 1))
    return mu, sd, skew, kurt


def _normal_kernel(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd, _, _ = _moments(x)
    z = stats.norm.ppf(p)
    var = -(mu[:, None] + sd[:, None] * z)
    es = -(mu[:, None] - sd[:, None] * stats.norm.pdf(z) / p)
    return var, es


def kurtosis_dof(excess_kurtosis: float | np.ndarray) -> np.ndarray:
    """Student t degrees of freedom matching an excess kurtosis: ``nu = 4 + 6 / g2``.

    Clipped to ``(4, MAX_DOF]``; no excess kurtosis (``g2 <= 0``) gives ``MAX_DOF``.
    """
    g2 = np.asarray(excess_kurtosis, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.where(g2 > 0, 4.0 + 6.0 / g2, MAX_DOF)
    return np.clip(nu, 4.0 + 1e-9, MAX_DOF)


def _student_t_kernel(
    x: np.ndarray, p: np.ndarray, dof: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    mu, sd, _, kurt = _moments(x)
    nu = kurtosis_dof(kurt) if dof is None else np.full(mu.shape, float(dof))
    nu = nu[:, None]
    q = stats.t.ppf(p[None, :], nu)
    s = sd[:, None] * np.sqrt((nu - 2.0) / nu)
    var = -(mu[:, None] + s * q)
    es = -mu[:, None] + s * stats.t.pdf(q, nu) / p * (nu + q * q) / (nu - 1.0)
    return var, es


def cornish_fisher_quantile(
    z: float | np.ndarray, skew: float | np.ndarray, kurt: float | np.ndarray
) -> float | np.ndarray:
    """Cornish-Fisher expansion of the standard quantile ``z`` (excess kurtosis ``kurt``)."""
    return (
        z + (z**2 - 1) * skew / 6 + (z**3 - 3 * z) * kurt / 24 - (2 * z**3 - 5 * z) * skew**2 / 36
    )


def cornish_fisher_valid(
    z: float | np.ndarray, skew: float | np.ndarray, kurt: float | np.ndarray
) -> np.ndarray:
    """Whether the expansion is a quantile function from ``z`` (< 0) up to the median:
    its slope ``1 + z S/3 + (z^2-1) K/8 - (6z^2-5) S^2/36`` is positive on ``[z, 0]``.

    Outside (excess kurtosis above about 8, as in a window holding a crash) it falls
    somewhere on the way, and its tail "quantile" can even be a gain: a 90 % VaR of
    -0.2 % with 400 exceptions where 250 were expected (Maillard 2012, "A user's guide to
    the Cornish Fisher expansion", gives the domain of validity).
    """
    z, s, k = (np.asarray(v, dtype="float64") for v in (z, skew, kurt))
    a, b, c = k / 8 - s * s / 6, s / 3, 1 - k / 8 + 5 * s * s / 36

    def slope(t):
        return (a * t + b) * t + c

    ok = (slope(z) > 0) & (slope(np.zeros_like(z)) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a > 0, -b / (2 * a), np.nan)  # the slope's lowest point
    inside = (vertex > z) & (vertex < 0)
    return ok & ~(inside & (slope(np.nan_to_num(vertex)) <= 0))


def no_forecast_reason(methods: str | Iterable[str]) -> str:
    """Why ``methods`` (one name or several) give no VaR forecast for some windows: the
    words every page, report and alert use."""
    names = {methods} if isinstance(methods, str) else set(methods)
    if names == {"cornish_fisher"}:
        return (
            "the Cornish-Fisher expansion is no quantile function when the window's excess "
            "kurtosis is high (about above 8, as with a crash in it)"
        )
    return "the estimation gave no figure on those windows"


def _cornish_fisher_kernel(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cornish-Fisher VaR/ES, NaN where the expansion is outside its domain
    (:func:`cornish_fisher_valid`): no figure is better than a false one."""
    mu, sd, skew, kurt = _moments(x)
    s, k = skew[:, None], kurt[:, None]
    c = stats.norm.ppf(p)
    valid = cornish_fisher_valid(c, s, k)
    zcf = np.where(valid, cornish_fisher_quantile(c, s, k), np.nan)
    phi = stats.norm.pdf(c)
    m1, m2, m3 = -phi / p, 1 - c * phi / p, -(c**2 + 2) * phi / p
    ez = m1 + (m2 - 1) * s / 6 + (m3 - 3 * m1) * k / 24 - (2 * m3 - 5 * m1) * s**2 / 36
    ez = np.where(valid, ez, np.nan)
    var = -(mu[:, None] + sd[:, None] * zcf)
    es = -(mu[:, None] + sd[:, None] * ez)
    return var, es


_PARAMETRIC = {
    "historical": _hist_kernel,
    "normal": _normal_kernel,
    "student_t": _student_t_kernel,
    "cornish_fisher": _cornish_fisher_kernel,
}


# ------------------------------------------------------------------ volatility filters
def garch_variance(
    eps: np.ndarray, omega: float, alpha: float, beta: float, backcast: float
) -> np.ndarray:
    """Conditional variances of a GARCH(1,1), ``n + 1`` of them (the last is the forecast).

    ``sigma2[0] = omega + (alpha + beta) backcast`` and
    ``sigma2[t] = omega + alpha eps[t-1]^2 + beta sigma2[t-1]`` (arch's recursion, so
    with arch's ``backcast`` the first ``n`` values equal ``conditional_volatility**2``).
    EWMA (RiskMetrics) is the case ``omega = 0, alpha = 1 - lambda, beta = lambda``.
    Computed as a linear filter (``scipy.signal.lfilter``), no Python loop.
    """
    eps = np.asarray(eps, dtype="float64")
    drive = np.empty(eps.size + 1)
    drive[0] = omega + (alpha + beta) * backcast
    drive[1:] = omega + alpha * eps * eps
    return signal.lfilter([1.0], [1.0, -beta], drive)


def ewma_variance(returns: np.ndarray, lam: float = 0.94, seed: float | None = None) -> np.ndarray:
    """RiskMetrics variances ``sigma2[t] = lam sigma2[t-1] + (1-lam) r[t-1]^2``, n + 1 values.

    ``seed`` (``sigma2[0]``) defaults to the mean square of the returns given. The
    recursion is :func:`mltrainer.numerics.variance.ewma_variance` with that seed.
    """
    if not 0.0 < lam < 1.0:
        raise ParameterError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
    r = np.asarray(returns, dtype="float64")
    seed = float(np.mean(r * r)) if seed is None else float(seed)
    return np.concatenate([[seed], nvar.ewma_variance(r, lam, seed=seed)])


def fit_garch(returns: np.ndarray, starting_values: np.ndarray | None = None) -> np.ndarray:
    """GARCH(1,1) with constant mean and normal errors, fitted by ``arch``.

    Returns ``[mu, omega, alpha, beta]`` on the scale of ``returns`` (the fit runs on
    percent returns for numerical stability).
    """
    from arch import arch_model

    r = np.asarray(returns, dtype="float64")
    if r.size < MIN_GARCH_OBS:
        raise DataError(
            f"GARCH(1,1) needs at least {MIN_GARCH_OBS} returns to be estimated (got {r.size})"
        )
    model = arch_model(100.0 * r, mean="Constant", vol="GARCH", p=1, q=1, rescale=False)
    with warnings.catch_warnings():
        # arch warns on weak convergence; the estimate is still the best available one
        warnings.simplefilter("ignore")
        res = model.fit(disp="off", starting_values=starting_values, show_warning=False)
    mu, omega, alpha, beta = res.params.to_numpy()
    return np.array([mu / 100.0, omega / 1e4, alpha, beta])


# --------------------------------------------------------------------- single figures
def _fhs_single(
    r: np.ndarray, p: np.ndarray, vol: str, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    if vol == "ewma":
        mu = 0.0
        sigma = np.sqrt(ewma_variance(r, lam))
    else:
        mu, omega, alpha, beta = fit_garch(r)
        eps = r - mu
        sigma = np.sqrt(garch_variance(eps, omega, alpha, beta, float(np.mean(eps * eps))))
    z = (r - mu) / sigma[:-1]
    var_z, es_z = _hist_kernel(z[None, :], p)
    return -mu + sigma[-1] * var_z[0], -mu + sigma[-1] * es_z[0]


def var_es(
    returns: Returns,
    level: Level = 0.99,
    method: str = "historical",
    *,
    dof: float | None = None,
    lam: float = 0.94,
) -> tuple[Figure, Figure]:
    """VaR and ES of the whole sample by ``method`` (see the module notes).

    Parameters
    ----------
    returns : Series or array
        Simple returns (NaNs dropped); at least ``MIN_OBS`` (100 for ``fhs_garch``).
    level : float or sequence of float
        Confidence level(s) in (0, 1).
    method : str
        One of ``METHODS``.
    dof : float, optional
        Student t degrees of freedom (> 2); fitted from the kurtosis when None.
    lam : float
        EWMA decay for ``fhs_ewma``.

    Returns
    -------
    (var, es) : floats for a scalar level, arrays (one per level) otherwise; positive
        numbers are losses.
    """
    p = 1.0 - _levels(level)
    _method(method)
    r = _clean(returns)
    need = MIN_GARCH_OBS if method == "fhs_garch" else MIN_OBS
    if r.size < need:
        raise DataError(f"{method} VaR needs at least {need} finite returns (got {r.size})")
    if method == "student_t" and dof is not None and not dof > 2:
        raise ParameterError(f"dof must be above 2 for a finite variance (got {dof})")
    if method in ("fhs_ewma", "fhs_garch"):
        var, es = _fhs_single(r, p, method[4:], lam)
    elif method == "student_t":
        var, es = (a[0] for a in _student_t_kernel(r[None, :], p, dof))
    else:
        var, es = (a[0] for a in _PARAMETRIC[method](r[None, :], p))
    return _shape(var, level), _shape(es, level)


def value_at_risk(
    returns: Returns, level: Level = 0.99, method: str = "historical", **kw
) -> Figure:
    """VaR (positive loss) of the whole sample; see :func:`var_es`."""
    return var_es(returns, level, method, **kw)[0]


def expected_shortfall(
    returns: Returns, level: Level = 0.99, method: str = "historical", **kw
) -> Figure:
    """Expected Shortfall (positive loss) of the whole sample; see :func:`var_es`."""
    return var_es(returns, level, method, **kw)[1]


def historical_var(returns: Returns, level: Level = 0.99) -> Figure:
    """``-quantile(returns, 1 - level)`` with linear interpolation (numpy's default)."""
    return value_at_risk(returns, level, "historical")


def historical_es(returns: Returns, level: Level = 0.99) -> Figure:
    """Minus the mean of the returns at or below the ``1 - level`` quantile."""
    return expected_shortfall(returns, level, "historical")


def normal_var(returns: Returns, level: Level = 0.99) -> Figure:
    """``-(mu + sigma z_p)`` with the sample mean and std (ddof=1)."""
    return value_at_risk(returns, level, "normal")


def normal_es(returns: Returns, level: Level = 0.99) -> Figure:
    """``-(mu - sigma phi(z_p) / p)``."""
    return expected_shortfall(returns, level, "normal")


def student_t_var(returns: Returns, level: Level = 0.99, dof: float | None = None) -> Figure:
    """Standardised-t VaR; ``dof`` fitted from the excess kurtosis when None."""
    return value_at_risk(returns, level, "student_t", dof=dof)


def student_t_es(returns: Returns, level: Level = 0.99, dof: float | None = None) -> Figure:
    """Standardised-t ES; ``dof`` fitted from the excess kurtosis when None."""
    return expected_shortfall(returns, level, "student_t", dof=dof)


def cornish_fisher_var(returns: Returns, level: Level = 0.99) -> Figure:
    """Modified (Cornish-Fisher) VaR."""
    return value_at_risk(returns, level, "cornish_fisher")


def cornish_fisher_es(returns: Returns, level: Level = 0.99) -> Figure:
    """ES of the Cornish-Fisher quantile function (closed form, see module notes)."""
    return expected_shortfall(returns, level, "cornish_fisher")


# --------------------------------------------------------------------------- rolling
def _rolling_fhs(
    r: np.ndarray, w: int, p: np.ndarray, vol: str, lam: float, refit_every: int
) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES arrays (n - w + 1, L) for windows ending at positions w-1 .. n-1."""
    n = r.size
    if vol == "ewma":
        mu = np.zeros(n + 1)
        sigma2 = ewma_variance(r, lam, seed=float(np.mean(r[:w] ** 2)))
    else:
        # Refit at output positions a_k = w-1 + k*refit_every on r[:a_k + 1]; the fit at a_k
        # drives sigma2[a_k + 1 : a_{k+1} + 1] (the first one also the warm-up before a_0).
        starts = np.arange(w - 1, n, refit_every)
        mu = np.empty(n + 1)
        sigma2 = np.empty(n + 1)
        params = None
        prev = None
        for k, a in enumerate(starts):
            params = fit_garch(
                r[: a + 1],
                starting_values=None
                if params is None
                else params * np.array([100.0, 1e4, 1.0, 1.0]),
            )
            m, omega, alpha, beta = params
            lo = 0 if k == 0 else a + 1
            hi = n + 1 if k == len(starts) - 1 else starts[k + 1] + 1
            mu[lo:hi] = m
            if k == 0:
                eps = r[: hi - 1] - m
                seed = float(np.mean((r[:w] - m) ** 2))
                sigma2[:hi] = garch_variance(eps, omega, alpha, beta, seed)
            else:
                eps = r[lo - 1 : hi - 1] - m
                drive = omega + alpha * eps * eps
                zi = [beta * prev]
                sigma2[lo:hi] = signal.lfilter([1.0], [1.0, -beta], drive, zi=zi)[0]
            prev = sigma2[hi - 1]
    sigma = np.sqrt(sigma2)
    z = (r - mu[:-1]) / sigma[:-1]
    var_z, es_z = _hist_kernel(sliding_window_view(z, w), p)
    s_next = sigma[w:, None]
    m_next = mu[w:, None]
    return -m_next + s_next * var_z, -m_next + s_next * es_z


def _rolling_series(
    s: pd.Series,
    window: int,
    p: np.ndarray,
    method: str,
    dof: float | None,
    lam: float,
    refit_every: int,
) -> tuple[np.ndarray, np.ndarray]:
    valid = s.dropna()
    r = valid.to_numpy(dtype="float64")
    if np.isinf(r).any():
        raise DataError(f"returns of {s.name!r} contain infinite values (a price of zero?)")
    n_l = p.size
    var = np.full((r.size, n_l), np.nan)
    es = np.full((r.size, n_l), np.nan)
    need = max(window, MIN_GARCH_OBS) if method == "fhs_garch" else window
    if r.size >= need:
        if method in ("fhs_ewma", "fhs_garch"):
            v, e = _rolling_fhs(r, window, p, method[4:], lam, refit_every)
        elif method == "student_t":
            v, e = _student_t_kernel(sliding_window_view(r, window), p, dof)
        else:
            v, e = _PARAMETRIC[method](sliding_window_view(r, window), p)
        var[window - 1 :], es[window - 1 :] = v, e
    var_f = pd.DataFrame(var, index=valid.index).reindex(s.index)
    es_f = pd.DataFrame(es, index=valid.index).reindex(s.index)
    return var_f.to_numpy(), es_f.to_numpy()


def rolling_var_es(
    returns: pd.Series,
    window: int = 250,
    level: Level = 0.99,
    method: str = "historical",
    *,
    dof: float | None = None,
    lam: float = 0.94,
    refit_every: int = 252,
) -> pd.DataFrame:
    """Rolling one-step-ahead VaR and ES, vectorised over the windows.

    The value at date t is the forecast for t+1 from the last ``window`` finite
    returns up to and including t; NaN before the first full window and on dates whose
    own return is NaN.

    Parameters
    ----------
    returns : Series
        Simple returns indexed by date.
    window : int
        Observations per window (>= 10; >= 100 for ``fhs_garch``).
    level : float or sequence of float
        Confidence level(s).
    method : str
        One of ``METHODS``.
    dof, lam : see :func:`var_es`.
    refit_every : int
        GARCH re-estimation interval (observations) for ``fhs_garch``; 252 = yearly.

    Returns
    -------
    DataFrame
        Columns ``var`` and ``es`` for a scalar level; for several levels a column
        MultiIndex ``(measure, level)``.
    """
    p = 1.0 - _levels(level)
    _method(method)
    if isinstance(returns, np.ndarray):
        returns = pd.Series(returns)
    if isinstance(returns, pd.DataFrame):
        raise DataError(
            "rolling_var_es takes one return series; use rolling_var for a frame "
            "(one column per asset) or combine the assets with portfolio_returns"
        )
    if not isinstance(window, (int, np.integer)) or window < MIN_OBS:
        raise ParameterError(f"window must be an integer >= {MIN_OBS} (got {window!r})")
    if not isinstance(refit_every, (int, np.integer)) or refit_every < 1:
        raise ParameterError(f"refit_every must be a positive integer (got {refit_every!r})")
    if dof is not None and not dof > 2:
        raise ParameterError(f"dof must be above 2 for a finite variance (got {dof})")
    s = returns.astype("float64")
    var, es = _rolling_series(s, int(window), p, method, dof, lam, int(refit_every))
    if np.ndim(level) == 0:
        return pd.DataFrame({"var": var[:, 0], "es": es[:, 0]}, index=s.index)
    cols = pd.MultiIndex.from_product(
        [["var", "es"], list(_levels(level))], names=["measure", "level"]
    )
    return pd.DataFrame(np.hstack([var, es]), index=s.index, columns=cols)


def _rolling_one(
    returns: pd.Series | pd.DataFrame,
    window: int,
    level: Level,
    method: str,
    **kw,
) -> pd.Series | pd.DataFrame:
    if isinstance(returns, pd.DataFrame):
        # one column at a time: a (dates x tickers x window) view would not fit in memory
        out = {c: _rolling_one(returns[c], window, level, method, **kw) for c in returns.columns}
        if np.ndim(level) == 0:
            return pd.DataFrame(out, index=returns.index, columns=returns.columns)
        return pd.concat(out, axis=1, names=["ticker", "level"])
    frame = rolling_var_es(returns, window, level, method, **kw)
    part = frame["var"]
    if isinstance(part, pd.DataFrame):
        part.columns = list(part.columns)
    else:
        part = part.rename(getattr(returns, "name", None))
    return part


def rolling_var(
    returns: pd.Series | pd.DataFrame,
    window: int = 250,
    level: Level = 0.99,
    method: str = "historical",
    **kw,
) -> pd.Series | pd.DataFrame:
    """Rolling VaR forecast for t+1 made at t (positive loss); see :func:`rolling_var_es`.

    A Series for one series and one level; a frame with one column per level, or per
    asset when ``returns`` is a frame (column MultiIndex (ticker, level) for both).
    """
    return _rolling_one(returns, window, level, method, **kw)
