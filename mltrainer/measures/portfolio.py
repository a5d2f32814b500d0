"""Portfolio measures and construction: covariance, risk contributions, optimal weights,
volatility targeting, exposure limits, beta and drawdowns.

Pure functions on numpy arrays or pandas objects; where a function takes a covariance
as a DataFrame it returns weights as a Series with the same labels, otherwise arrays.
Nothing here annualises: feed daily returns and get daily figures (multiply a variance
by 252, a volatility by sqrt(252)).

Shared by the risk and sizing model families (one implementation of each idea):
:func:`risk_parity_weights`, :func:`volatility_target_weights`, :func:`apply_limits`,
:func:`walk_forward_weights`.

References
----------
Maillard, S., Roncalli, T., Teiletche, J. (2010). The properties of equally weighted
risk contribution portfolios. *Journal of Portfolio Management* 36(4).
Spinu, F. (2013). An algorithm for computing risk parity weights. SSRN 2297383.
Ledoit, O., Wolf, M. (2004). A well-conditioned estimator for large-dimensional
covariance matrices. *Journal of Multivariate Analysis* 88(2).
Magdon-Ismail, M., Atiya, A. (2004). Maximum drawdown. *Risk* 17(10).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures import qp

OBJECTIVES = ("min_variance", "max_sharpe", "risk_parity", "target_return", "target_risk")
COVARIANCES = ("ledoit_wolf", "sample", "ewma")
SINGULAR_RTOL = 1e-10  # smallest eigenvalue / largest below which a covariance is singular


# --------------------------------------------------------------------------- checks
def _labels(obj) -> pd.Index | None:
    if isinstance(obj, pd.DataFrame):
        return obj.columns
    if isinstance(obj, pd.Series):
        return obj.index
    return None


def check_covariance(cov, *, allow_singular: bool = False) -> np.ndarray:
    """Validate a covariance matrix and return it as a float array.

    Raises DataError when it is not square, not finite, not symmetric, has a negative
    eigenvalue (not positive semi-definite) or, unless ``allow_singular``, is singular;
    the message names perfectly correlated columns when that is the cause.
    """
    names = _labels(cov)
    s = np.asarray(cov, dtype="float64")
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise DataError(f"covariance must be a non-empty square matrix (got shape {s.shape})")
    if not np.isfinite(s).all():
        raise DataError("covariance has NaN or infinite entries (an asset without enough data?)")
    scale = max(np.abs(s).max(), 1e-300)
    if not np.allclose(s, s.T, rtol=1e-8, atol=1e-12 * scale):
        raise DataError("covariance is not symmetric")
    eig = np.linalg.eigvalsh(s)
    if eig[-1] <= 0:
        raise DataError("covariance is zero: every asset has zero variance")
    if eig[0] < -1e-8 * eig[-1]:
        raise DataError(
            f"covariance is not positive semi-definite (smallest eigenvalue {eig[0]:.3g})"
        )
    if not allow_singular and eig[0] <= SINGULAR_RTOL * eig[-1]:
        raise DataError(_singular_message(s, names, int((eig > SINGULAR_RTOL * eig[-1]).sum())))
    return s


def _singular_message(s: np.ndarray, names, rank: int) -> str:
    n = s.shape[0]
    label = (lambda i: str(names[i])) if names is not None else (lambda i: f"#{i}")
    sd = np.sqrt(np.clip(np.diag(s), 0, None))
    zero = [label(i) for i in range(n) if sd[i] <= 1e-12 * sd.max()]
    if zero:
        cause = f"asset(s) {', '.join(zero[:5])} have zero variance"
    else:
        corr = s / np.outer(sd, sd)
        iu = np.argwhere(np.triu(np.abs(corr) > 1 - 1e-9, k=1))
        pairs = [f"{label(i)}/{label(j)}" for i, j in iu[:5]]
        cause = (f"columns {', '.join(pairs)} are perfectly correlated" if pairs
                 else "some assets are linear combinations of others (fewer observations "
                      "than assets?)")
    return (f"covariance of {n} assets is singular (rank {rank}): {cause}; drop duplicates or "
            "use a shrunk estimate (covariance(..., method='ledoit_wolf'))")


def check_weights(weights, n_assets: int | None = None, *, total: float = 1.0,
                  tol: float = 1e-6) -> np.ndarray:
    """Validate a weight vector (finite, right length, summing to ``total``)."""
    w = np.asarray(weights, dtype="float64")
    if w.ndim != 1 or w.size == 0:
        raise DataError(f"weights must be a non-empty vector (got shape {w.shape})")
    if n_assets is not None and w.size != n_assets:
        raise DataError(f"weights have {w.size} entries for {n_assets} assets")
    if not np.isfinite(w).all():
        raise DataError("weights contain NaN or infinite values")
    if total is not None and abs(w.sum() - total) > tol:
        raise DataError(
            f"weights sum to {w.sum():.6g}; they must sum to {total:g} (fully invested); "
            "divide them by their sum if they are relative sizes"
        )
    return w


def _budget(budget, n: int) -> np.ndarray:
    if budget is None:
        return np.full(n, 1.0 / n)
    b = np.asarray(budget, dtype="float64")
    if b.shape != (n,) or not np.isfinite(b).all() or (b <= 0).any():
        raise DataError(f"risk budget must be {n} positive numbers (got {budget!r})")
    return b / b.sum()


def _wrap(w: np.ndarray, names):
    return pd.Series(w, index=names) if names is not None else w


# ------------------------------------------------------------------------ estimation
def covariance(returns: pd.DataFrame, method: str = "ledoit_wolf", *, lam: float = 0.94,
               ) -> pd.DataFrame:
    """Covariance of the columns of ``returns`` (rows with any NaN are rejected).

    ``method``: ``sample`` (ddof=1), ``ledoit_wolf`` (shrinkage to a scaled identity,
    always positive definite; scikit-learn's ``ledoit_wolf`` on demeaned returns) or
    ``ewma`` (RiskMetrics, weights ``(1-lam) lam^k``, ``k = 0`` the latest row, mean zero).
    """
    if not isinstance(returns, pd.DataFrame):
        returns = pd.DataFrame(np.asarray(returns, dtype="float64"))
    x = returns.to_numpy(dtype="float64")
    if np.isnan(x).any():
        bad = list(returns.columns[np.isnan(x).any(axis=0)][:5])
        raise DataError(f"returns for the covariance contain NaN (columns {bad}); select a "
                        "window where every asset has data")
    if x.shape[0] < 2:
        raise DataError(f"a covariance needs at least 2 observations (got {x.shape[0]})")
    if method == "sample":
        s = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    elif method == "ledoit_wolf":
        from sklearn.covariance import ledoit_wolf

        s = ledoit_wolf(x - x.mean(axis=0), assume_centered=True)[0]
    elif method == "ewma":
        if not 0 < lam < 1:
            raise ParameterError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
        k = np.arange(x.shape[0])[::-1]
        wts = (1 - lam) * lam**k
        wts /= wts.sum()
        s = (x * wts[:, None]).T @ x
    else:
        raise ParameterError(
            f"covariance method must be 'sample', 'ledoit_wolf' or 'ewma' (got {method!r})"
        )
    return pd.DataFrame(s, index=returns.columns, columns=returns.columns)


def portfolio_returns(returns: pd.DataFrame, weights=None) -> pd.Series:
    """Daily returns of a portfolio rebalanced to fixed weights every day.

    ``weights`` None means equal weight over the assets that have a return that day.
    Given weights (dict/Series by ticker, or an array in column order) must sum to 1;
    on a day where some assets have no return, the others' weights are rescaled to 1.
    The first row (no return for any asset) is NaN.
    """
    r = returns.astype("float64")
    if weights is None:
        return r.mean(axis=1, skipna=True).rename("portfolio")
    if isinstance(weights, dict):
        weights = pd.Series(weights, dtype="float64")
    if isinstance(weights, pd.Series):
        missing = [t for t in weights.index if t not in r.columns]
        if missing:
            raise DataError(f"weights name tickers not in the returns: {missing[:5]}")
        w = weights.reindex(r.columns).fillna(0.0).to_numpy()
        check_weights(weights.to_numpy())
    else:
        w = check_weights(weights, r.shape[1])
    x = r.to_numpy()
    have = ~np.isnan(x)
    wsum = have @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(have, x, 0.0) @ w / wsum
    out[~have.any(axis=1)] = np.nan
    return pd.Series(out, index=r.index, name="portfolio")


def equity_curve(returns: pd.Series | pd.DataFrame, start: float = 1.0):
    """Compounded value of ``start`` invested (NaN returns count as flat days)."""
    return start * (1.0 + returns.fillna(0.0)).cumprod()


# -------------------------------------------------------------------------- risk
def portfolio_summary(returns: pd.DataFrame, weights: pd.Series, window: int = 756,
                      min_common: int = 30) -> dict:
    """What a risk page shows about a portfolio, from daily returns (dates x tickers).

    Correlation over the days on which every ticker has a return; risk contributions
    (relative, Ledoit-Wolf covariance of the last ``window`` such days); annualised
    volatility from the same covariance; the portfolio's drawdown path and each
    position's worst drawdown.
    """
    w = pd.Series(weights, dtype="float64")
    common = returns[w.index].dropna()
    if len(common) < min_common:
        raise DataError(f"only {len(common)} days on which every ticker has a return; "
                        f"correlations and risk contributions need at least {min_common}")
    cov = covariance(common.iloc[-window:], "ledoit_wolf")
    aligned = w.reindex(cov.index)
    port = portfolio_returns(returns, w)
    return {
        "corr": common.corr(),
        "contributions": risk_contributions(aligned, cov, relative=True),
        "drawdown": drawdown_series(equity_curve(port.dropna())),
        "stock_drawdowns": drawdown_series(equity_curve(returns.fillna(0.0))).min(),
        "volatility": portfolio_volatility(aligned, cov) * np.sqrt(252),
        "n_common": len(common),
    }


def portfolio_volatility(weights, cov) -> float:
    """``sqrt(w' S w)`` (same frequency as ``cov``)."""
    s = check_covariance(cov, allow_singular=True)
    w = check_weights(weights, s.shape[0], total=None)
    return float(np.sqrt(w @ s @ w))


def risk_contributions(weights, cov, relative: bool = False):
    """Euler risk contributions ``RC_i = w_i (S w)_i / sqrt(w' S w)``.

    They sum to the portfolio volatility; with ``relative=True`` they are divided by it
    (summing to 1). Weights need not sum to one here (a levered book is allowed).
    """
    names = _labels(cov)
    s = check_covariance(cov, allow_singular=True)
    w = check_weights(weights, s.shape[0], total=None)
    marginal = s @ w
    vol = np.sqrt(w @ marginal)
    if vol <= 0:
        raise DataError("the portfolio has zero volatility; risk contributions are undefined")
    rc = w * marginal / vol
    return _wrap(rc / vol if relative else rc, names)


# ---------------------------------------------------------------------- weights
def risk_parity_weights(cov, budget=None, *, tol: float = 1e-12, max_iter: int = 100):
    """Risk budgeting weights: ``RC_i / sigma = b_i`` (equal risk contributions by default).

    Long-only, fully invested. Solved by damped Newton on Spinu's strictly convex
    problem ``min_y 1/2 y'Sy - sum_i b_i ln y_i`` (``y > 0``), whose optimum satisfies
    ``y_i (S y)_i = b_i``; the weights are ``y / sum(y)``. Converges quadratically
    (typically < 15 iterations); one asset gives weight 1.

    Raises
    ------
    DataError
        If ``cov`` is singular, not PSD, or not finite; if the budget is not positive.
    """
    names = _labels(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    b = _budget(budget, n)
    if n == 1:
        return _wrap(np.ones(1), names)
    y = b / np.sqrt(np.diag(s))
    y /= np.sqrt(y @ s @ y)
    for _ in range(max_iter):
        sy = s @ y
        grad = sy - b / y
        hess = s + np.diag(b / (y * y))
        step = np.linalg.solve(hess, grad)
        dec = float(np.sqrt(max(grad @ step, 0.0)))  # Newton decrement
        if dec < tol:
            break
        # damped step of a self-concordant function: stays inside y > 0 and converges
        y = y - (step / (1.0 + dec) if dec > 0.25 else step)
        if (y <= 0).any():  # pragma: no cover - excluded by the damping
            raise DataError("risk parity did not converge (a weight hit zero)")
    else:  # pragma: no cover
        raise DataError(f"risk parity did not converge in {max_iter} Newton steps")
    return _wrap(y / y.sum(), names)


def inverse_volatility_weights(vol):
    """``w_i = (1/sigma_i) / sum_j (1/sigma_j)`` (risk parity when correlations are equal)."""
    v = np.asarray(vol, dtype="float64")
    if not np.isfinite(v).all() or (v <= 0).any():
        raise DataError("volatilities must be positive and finite")
    w = (1.0 / v) / (1.0 / v).sum()
    return _wrap(w, _labels(vol))


def _bounds(n: int, long_only: bool, max_weight: float):
    if not 0 < max_weight <= 1:
        raise ParameterError(f"max_weight must be in (0, 1] (got {max_weight})")
    if max_weight * n < 1 - 1e-12:
        raise DataError(f"max_weight {max_weight:g} is too small for {n} assets to be fully "
                        f"invested (needs at least {1 / n:.4g})")
    return [(0.0 if long_only else -max_weight, max_weight)] * n


def _solve(fun, x0, bounds, constraints, what: str) -> np.ndarray:
    res = optimize.minimize(fun, x0, jac=True, method="SLSQP", bounds=bounds,
                            constraints=constraints, options={"maxiter": 500, "ftol": 1e-15})
    if not res.success:
        raise DataError(f"{what} optimisation failed: {res.message}")
    return res.x


def min_variance_weights(cov, *, long_only: bool = True, max_weight: float = 1.0):
    """Minimum-variance weights: ``min w'Sw`` s.t. ``sum w = 1`` and the bounds.

    Bounds are ``[0, max_weight]`` (long only) or ``[-max_weight, max_weight]``.
    Solved exactly by the active-set method of :func:`mltrainer.measures.qp.box_qp`.
    """
    names = _labels(cov)
    s = check_covariance(cov)
    lb, ub = _box(s.shape[0], long_only, max_weight)
    w = qp.box_qp(_unit_trace(s), np.zeros(s.shape[0]), lb, ub)
    return _wrap(_tidy(w, long_only), names)


def _box(n: int, long_only: bool, max_weight: float) -> tuple[np.ndarray, np.ndarray]:
    (lo, hi), = set(_bounds(n, long_only, max_weight))
    return np.full(n, lo), np.full(n, hi)


def _unit_trace(s: np.ndarray) -> np.ndarray:
    """``S / (trace(S) / n)``: the same optimum, a diagonal of order one for the tolerances."""
    return s / (np.trace(s) / s.shape[0])


def _tidy(w: np.ndarray, long_only: bool) -> np.ndarray:
    if long_only:
        w = np.clip(w, 0.0, None)
    return w / w.sum()


def max_sharpe_weights(mu, cov, *, risk_free: float = 0.0, long_only: bool = True,
                       max_weight: float = 1.0):
    """Tangency (maximum Sharpe ratio) weights under the bounds.

    Solved as the convex problem ``min y'Sy`` s.t. ``(mu - rf)'y = 1``,
    ``lb sum(y) <= y_i <= ub sum(y)``, ``sum(y) >= 0``, then ``w = y / sum(y)``
    (Cornuejols & Tutuncu 2007, section 8.2).

    Raises DataError when no asset has an expected return above ``risk_free`` (the
    maximum Sharpe portfolio does not exist with positive excess return).
    """
    names = _labels(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    m = np.asarray(mu, dtype="float64") - risk_free
    if m.shape != (n,) or not np.isfinite(m).all():
        raise DataError(f"expected returns must be {n} finite numbers")
    if (m <= 0).all():
        raise DataError("no asset has an expected return above the risk-free rate; the "
                        "maximum Sharpe portfolio is undefined (use minimum variance)")
    bounds = _bounds(n, long_only, max_weight)
    lb, ub = bounds[0]
    scale = 1.0 / (np.trace(s) / n)
    m = m / np.abs(m).max()  # unit-scale excess returns keep y of order one for SLSQP
    cons = [{"type": "eq", "fun": lambda y: m @ y - 1, "jac": lambda y: m},
            {"type": "ineq", "fun": lambda y: ub * y.sum() - y,
             "jac": lambda y: ub * np.ones((n, n)) - np.eye(n)},
            {"type": "ineq", "fun": lambda y: y - lb * y.sum(),
             "jac": lambda y: np.eye(n) - lb * np.ones((n, n))},
            {"type": "ineq", "fun": lambda y: np.array([y.sum()]),
             "jac": lambda y: np.ones((1, n))}]
    x0 = np.where(m > 0, m, 0.0)
    x0 = x0 / (m @ x0)
    y = _solve(lambda y: (scale * y @ s @ y, 2 * scale * s @ y), x0, None, cons,
               "maximum Sharpe")
    return _wrap(_tidy(y, long_only), names)


def _max_return(m: np.ndarray, long_only: bool, max_weight: float) -> float:
    """Highest ``m'w`` with ``sum w = 1`` and the bounds (greedy fill of the best assets)."""
    return float(m @ qp.max_linear(m, *_box(m.size, long_only, max_weight)))


def mean_variance_weights(mu, cov, *, target_return: float | None = None,
                          target_risk: float | None = None, long_only: bool = True,
                          max_weight: float = 1.0):
    """Efficient-frontier weights for a target return or a target risk (same frequency).

    - ``target_return``: ``min w'Sw`` s.t. ``mu'w >= target_return``;
    - ``target_risk``: ``max mu'w`` s.t. ``w'Sw <= target_risk^2``;

    both with ``sum w = 1`` and the bounds. Exactly one target must be given.
    Raises DataError when the target cannot be met (return above the best achievable,
    risk below the minimum-variance portfolio's).
    """
    if (target_return is None) == (target_risk is None):
        raise ParameterError("give exactly one of target_return and target_risk")
    names = _labels(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    m = np.asarray(mu, dtype="float64")
    if m.shape != (n,) or not np.isfinite(m).all():
        raise DataError(f"expected returns must be {n} finite numbers")
    lb, ub = _box(n, long_only, max_weight)
    q = _unit_trace(s)
    w_mv = np.asarray(min_variance_weights(s, long_only=long_only, max_weight=max_weight))
    # the frontier x(t) = argmin 1/2 x'Qx - t m'x (unit-scale m keeps t of order one)
    m_unit = m / max(np.abs(m).max(), 1e-300)
    if target_return is not None:
        best = _max_return(m, long_only, max_weight)
        if target_return > best + 1e-12:
            raise DataError(f"target_return {target_return:.6g} is above the highest return "
                            f"the constraints allow ({best:.6g})")
        if m @ w_mv >= target_return:
            return _wrap(w_mv, names)
        w = qp.frontier_root(q, m_unit, lb, ub, lambda w: m @ w - target_return)
    else:
        if target_risk <= 0:
            raise ParameterError(f"target_risk must be positive (got {target_risk})")
        vmin = float(np.sqrt(w_mv @ s @ w_mv))
        if target_risk < vmin - 1e-12:
            raise DataError(f"target_risk {target_risk:.6g} is below the minimum-variance "
                            f"portfolio's volatility ({vmin:.6g})")
        if target_risk <= vmin:
            return _wrap(w_mv, names)
        # max m'w s.t. w'Sw <= target^2 is the frontier point of that variance (or the
        # highest-return portfolio when even that is less risky than the target)
        w = qp.frontier_root(q, m_unit, lb, ub, lambda w: w @ s @ w - target_risk**2)
    return _wrap(_tidy(w, long_only), names)


def correlation_weights(corr):
    """Weights ``proportional to 1 / (1 + mean correlation with the other assets)``.

    A position that moves with the rest of the book gets less; one asset gets 1. The
    mean correlation is floored at -0.99 (only two perfectly anti-correlated assets
    reach -1).
    """
    names = _labels(corr)
    c = np.asarray(corr, dtype="float64")
    n = c.shape[0]
    if c.ndim != 2 or c.shape != (n, n) or not np.isfinite(c).all():
        raise DataError("correlation must be a finite square matrix")
    if n == 1:
        return _wrap(np.ones(1), names)
    avg = (c.sum(axis=1) - np.diag(c)) / (n - 1)
    raw = 1.0 / (1.0 + np.maximum(avg, -0.99))
    return _wrap(raw / raw.sum(), names)


# ------------------------------------------------------------- sizing and limits
def volatility_target_weights(weights, vol, target_vol: float, max_leverage: float):
    """Scale weights by ``min(max_leverage, target_vol / vol)`` (volatility targeting).

    Used at portfolio level (``vol`` a Series of portfolio volatility per date, scaling
    each row of ``weights``) and per position (``vol`` a frame like ``weights``: inverse-
    volatility sizing). ``vol`` and ``target_vol`` must be on the same (e.g. annualised)
    scale. A NaN or non-positive volatility gives NaN.
    """
    if not target_vol > 0:
        raise ParameterError(f"target_vol must be positive (got {target_vol})")
    if not max_leverage > 0:
        raise ParameterError(f"max_leverage must be positive (got {max_leverage})")
    v = vol.where(vol > 0) if isinstance(vol, (pd.Series, pd.DataFrame)) else np.where(
        np.asarray(vol) > 0, vol, np.nan)
    lev = np.minimum(target_vol / v, max_leverage)
    if isinstance(weights, pd.DataFrame) and isinstance(lev, pd.Series):
        return weights.mul(lev, axis=0)
    return weights * lev


def apply_limits(weights: pd.DataFrame, *, max_weight: float = 1.0, gross_cap: float = 1.0,
                 long_only: bool = True) -> pd.DataFrame:
    """Enforce position limits on a (dates x tickers) weight frame.

    In order: negative weights set to 0 if ``long_only``; each ``|w|`` clipped to
    ``max_weight``; rows whose gross exposure ``sum |w|`` exceeds ``gross_cap`` scaled
    down to it (scaling down cannot break the other two limits). NaNs stay NaN.
    """
    if not max_weight > 0 or not gross_cap > 0:
        raise ParameterError(f"max_weight and gross_cap must be positive (got {max_weight}, "
                             f"{gross_cap})")
    w = weights.astype("float64")
    if long_only:
        w = w.clip(lower=0.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    w = w.clip(lower=-max_weight, upper=max_weight)
    gross = w.abs().sum(axis=1)
    factor = np.minimum(1.0, gross_cap / gross.where(gross > 0))
    return w.mul(factor.fillna(1.0), axis=0)


# ------------------------------------------------------------------- walk forward
def rebalance_positions(n_dates: int, first: int, every: int) -> np.ndarray:
    """Row positions ``first, first + every, ...`` below ``n_dates`` (anchored at the start,
    so truncating the data at the end never moves an earlier rebalance)."""
    if every < 1:
        raise ParameterError(f"rebalance interval must be >= 1 (got {every})")
    return np.arange(first, n_dates, every)


def hold_forward(rows: dict, index: pd.Index, columns: pd.Index) -> pd.DataFrame:
    """A frame where each ``rows[date]`` (a Series by column) holds until the next one.

    Columns a row does not name are NaN until the next row; dates before the first row
    are NaN. ``rows`` keys must be in ``index``.
    """
    out = np.full((len(index), len(columns)), np.nan)
    if rows:
        dates = sorted(rows)
        pos = index.get_indexer(dates)
        if (pos < 0).any():
            raise DataError("hold_forward: a row date is not in the index")
        block = np.vstack([pd.Series(rows[d], dtype="float64").reindex(columns).to_numpy()
                           for d in dates])
        which = np.searchsorted(pos, np.arange(len(index)), side="right") - 1
        have = which >= 0
        out[have] = block[which[have]]
    return pd.DataFrame(out, index=index, columns=columns)


def walk_forward_weights(
    returns: pd.DataFrame,
    window: int,
    every: int,
    solve: Callable[[pd.DataFrame], pd.Series],
    *,
    min_assets: int = 1,
) -> pd.DataFrame:
    """Weights re-estimated every ``every`` rows from the last ``window`` rows of returns.

    At each rebalance row t (from row ``window`` on) ``solve`` receives the returns of
    rows ``t - window + 1 .. t`` for the assets with a return on every one of those rows
    and returns their weights (a Series by ticker); the weights hold until the next
    rebalance. Assets left out get NaN; rows before the first rebalance are NaN. A
    rebalance with fewer than ``min_assets`` usable assets, or whose ``solve`` raises
    DataError (e.g. a singular window), keeps the previous weights.

    One Python iteration per rebalance (a few hundred over 20 years): each is a small
    optimisation that does not vectorise across dates.
    """
    x = returns.to_numpy(dtype="float64")
    n, k = x.shape
    pos = rebalance_positions(n, window, every)
    finite = np.isfinite(x)
    # count of finite returns in each trailing window, for all rows at once
    csum = np.vstack([np.zeros((1, k), dtype=int), np.cumsum(finite, axis=0)])
    rows = {}
    # Small dense problems (n <= a few hundred): a threaded BLAS buys nothing and, on a
    # busy machine, oversubscription made each 100x100 solve 10x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        for t in pos:
            full = np.flatnonzero((csum[t + 1] - csum[t + 1 - window]) == window)
            if full.size < min_assets:
                continue
            sub = returns.iloc[t + 1 - window : t + 1, full]
            try:
                w = solve(sub)
            except DataError:
                continue
            rows[returns.index[t]] = pd.Series(
                np.asarray(pd.Series(w).reindex(sub.columns)), index=sub.columns)
    return hold_forward(rows, returns.index, returns.columns)


def optimal_weights(returns: pd.DataFrame, objective: str, cov_method: str = "ledoit_wolf",
                    *, max_weight: float = 1.0, long_only: bool = True,
                    target: float | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """Weights of one estimation window of returns by ``objective``, and the covariance.

    ``objective`` is one of ``OBJECTIVES``; ``target`` is the per-period (daily) return
    for ``target_return`` or volatility for ``target_risk``. Expected returns are the
    window means. Where the objective has no solution the nearest one is used:
    ``max_sharpe`` with no positive mean -> minimum variance; a ``target_return`` above
    what the limits allow -> the highest achievable; a ``target_risk`` below the
    minimum-variance volatility -> minimum variance. ``max_weight`` is raised to ``1/n``
    when n assets could not otherwise be fully invested. Risk parity is long only.
    """
    if objective not in OBJECTIVES:
        raise ParameterError(f"objective must be one of {', '.join(OBJECTIVES)} "
                             f"(got {objective!r})")
    cov = covariance(returns, cov_method)
    n = cov.shape[0]
    cap = max(max_weight, 1.0 / n)
    mu = returns.mean()
    kw = {"max_weight": cap, "long_only": long_only}
    if objective == "risk_parity":
        return risk_parity_weights(cov), cov
    if objective == "max_sharpe" and (mu > 0).any():
        return max_sharpe_weights(mu, cov, **kw), cov
    if objective in ("target_return", "target_risk"):
        if target is None:
            raise ParameterError(f"objective {objective!r} needs a target")
        if objective == "target_return":
            best = _max_return(mu.to_numpy(), long_only, cap)
            goal = min(target, best - 1e-12 * max(abs(best), 1e-8))
            return mean_variance_weights(mu, cov, target_return=goal, **kw), cov
        w_mv = min_variance_weights(cov, **kw)
        if target <= np.sqrt(w_mv @ cov.to_numpy() @ w_mv):
            return w_mv, cov
        return mean_variance_weights(mu, cov, target_risk=target, **kw), cov
    return min_variance_weights(cov, **kw), cov


def walk_forward_optimised(returns: pd.DataFrame, objective: str, window: int, every: int,
                           cov_method: str = "ledoit_wolf", **kw
                           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Walk-forward :func:`optimal_weights` and the relative risk contributions of each
    rebalance's weights under its own covariance, both held until the next rebalance.

    ``kw`` goes to :func:`optimal_weights` (``max_weight``, ``long_only``, ``target``).
    """
    contributions = {}

    def solve(win: pd.DataFrame) -> pd.Series:
        w, cov = optimal_weights(win, objective, cov_method, **kw)
        contributions[win.index[-1]] = risk_contributions(w, cov, relative=True)
        return w

    weights = walk_forward_weights(returns, window, every, solve)
    return weights, hold_forward(contributions, returns.index, returns.columns)


def equal_weights(prices: pd.DataFrame) -> pd.DataFrame:
    """``1 / N_t`` for each ticker with a price at t (N_t of them), NaN for the others."""
    have = prices.notna()
    n = have.sum(axis=1)
    w = have.astype("float64").div(n.where(n > 0), axis=0)
    return w.where(have)


def volatility_forecast(returns: pd.DataFrame | pd.Series, method: str = "ewma", *,
                        window: int = 21, lam: float = 0.94, periods_per_year: int = 252):
    """Annualised volatility forecast for t+1 made at t, per column.

    ``rolling``: sample standard deviation (ddof=1) of the last ``window`` returns.
    ``ewma``: RiskMetrics ``s2_t = lam s2_{t-1} + (1 - lam) r_t^2`` (mean zero), started
    at each column's first return; the first ``window - 1`` values are NaN (burn-in).
    Both are multiplied by ``sqrt(periods_per_year)``.
    """
    if method == "rolling":
        vol = returns.rolling(window, min_periods=window).std(ddof=1)
    elif method == "ewma":
        if not 0 < lam < 1:
            raise ParameterError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
        vol = np.sqrt((returns * returns).ewm(alpha=1 - lam, adjust=False,
                                              min_periods=window).mean())
    else:
        raise ParameterError(f"volatility method must be 'ewma' or 'rolling' (got {method!r})")
    return vol * np.sqrt(periods_per_year)


# ---------------------------------------------------------------------- beta
def beta(returns, index_returns: pd.Series):
    """OLS beta ``cov(r, m) / var(m)`` of each column (or a series) on the index returns,
    over the dates where both are present."""
    m = pd.Series(index_returns, dtype="float64")
    if isinstance(returns, pd.DataFrame):
        return returns.apply(lambda c: beta(c, m))
    r = pd.Series(returns, dtype="float64")
    both = pd.concat([r, m], axis=1, join="inner").dropna()
    if len(both) < 3:
        return np.nan
    c = np.cov(both.to_numpy(), rowvar=False)
    return float(c[0, 1] / c[1, 1]) if c[1, 1] > 0 else np.nan


def rolling_beta(returns: pd.DataFrame, index_returns: pd.Series, window: int) -> pd.DataFrame:
    """Rolling OLS beta of each column on the index over the last ``window`` rows
    (NaN until the window is full of paired data)."""
    m = index_returns.reindex(returns.index).astype("float64")
    cov = returns.rolling(window, min_periods=window).cov(m)
    var = m.rolling(window, min_periods=window).var()
    return cov.div(var.where(var > 0), axis=0)


# ------------------------------------------------------------------ drawdowns
def drawdown_series(equity):
    """Drawdown from the running peak, ``equity / cummax(equity) - 1`` (values <= 0).

    ``equity`` is a value path (Series, frame or array), not returns; see
    :func:`equity_curve`. NaNs stay NaN and do not reset the peak.
    """
    if isinstance(equity, (pd.Series, pd.DataFrame)):
        e = equity.astype("float64")
        if (e <= 0).to_numpy().any():
            raise DataError("equity must be positive (got a value <= 0); pass a value path, "
                            "not returns")
        return e / e.cummax() - 1.0
    e = np.asarray(equity, dtype="float64")
    if (e <= 0).any():
        raise DataError("equity must be positive (got a value <= 0); pass a value path, "
                        "not returns")
    peak = np.fmax.accumulate(e, axis=0)
    return e / peak - 1.0


def max_drawdown(equity) -> float | pd.Series:
    """Largest peak-to-trough loss as a positive fraction (0.35 = a 35 % drawdown).

    A Series per column for a frame.
    """
    dd = drawdown_series(equity)
    if isinstance(dd, pd.DataFrame):
        return -dd.min()
    if isinstance(dd, pd.Series):
        return float(-dd.min()) if dd.notna().any() else np.nan
    return float(-np.nanmin(dd)) if np.isfinite(dd).any() else np.nan
