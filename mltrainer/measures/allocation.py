"""Portfolio allocation: optimal weights of one estimation window, and their walk forward.

One-window optimisers take a covariance (and expected returns) and give long-only or
bounded, fully invested weights: risk parity (risk budgeting), inverse volatility,
minimum variance, maximum Sharpe, the mean-variance frontier for a target, and a
correlation heuristic. :func:`optimal_weights` picks one by name from a window of
returns; :func:`walk_forward_weights` and :func:`walk_forward_optimised` re-estimate
on a schedule from past returns only (the weights at t use rows up to t).

Shared by the risk and sizing model families (one implementation of each idea): the
risk-parity models of both families and ``PortfolioRiskModel(objective="risk_parity")``
all reach :func:`risk_parity_weights` through :func:`walk_forward_optimised`.

References
----------
Maillard, S., Roncalli, T., Teiletche, J. (2010). The properties of equally weighted
risk contribution portfolios. *Journal of Portfolio Management* 36(4).
Spinu, F. (2013). An algorithm for computing risk parity weights. SSRN 2297383.
Markowitz, H. (1952). Portfolio selection. *Journal of Finance* 7(1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures import qp
from mltrainer.measures.covariance import check_covariance, covariance, labelled, labels_of
from mltrainer.measures.portfolio import risk_contributions
from mltrainer.numerics.schedule import refit_rows
from mltrainer.numerics.threads import single_thread

Covariance = pd.DataFrame | np.ndarray
Weights = pd.Series | np.ndarray  # a Series on the covariance's labels, else an array
OBJECTIVES = ("min_variance", "max_sharpe", "risk_parity", "target_return", "target_risk")


def _budget(budget: ArrayLike | None, n: int) -> np.ndarray:
    if budget is None:
        return np.full(n, 1.0 / n)
    b = np.asarray(budget, dtype="float64")
    if b.shape != (n,) or not np.isfinite(b).all() or (b <= 0).any():
        raise DataError(f"risk budget must be {n} positive numbers (got {budget!r})")
    return b / b.sum()


# ------------------------------------------------------------------ one window
def risk_parity_weights(
    cov: Covariance, budget: ArrayLike | None = None, *, tol: float = 1e-12, max_iter: int = 100
) -> Weights:
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
    names = labels_of(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    b = _budget(budget, n)
    if n == 1:
        return labelled(np.ones(1), names)
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
    return labelled(y / y.sum(), names)


def inverse_volatility_weights(vol: pd.Series | np.ndarray) -> Weights:
    """``w_i = (1/sigma_i) / sum_j (1/sigma_j)`` (risk parity when correlations are equal)."""
    v = np.asarray(vol, dtype="float64")
    if not np.isfinite(v).all() or (v <= 0).any():
        raise DataError("volatilities must be positive and finite")
    w = (1.0 / v) / (1.0 / v).sum()
    return labelled(w, labels_of(vol))


def _bounds(n: int, long_only: bool, max_weight: float) -> list[tuple[float, float]]:
    if not 0 < max_weight <= 1:
        raise ParameterError(f"max_weight must be in (0, 1] (got {max_weight})")
    if max_weight * n < 1 - 1e-12:
        raise DataError(
            f"max_weight {max_weight:g} is too small for {n} assets to be fully "
            f"invested (needs at least {1 / n:.4g})"
        )
    return [(0.0 if long_only else -max_weight, max_weight)] * n


def _solve(
    fun: Callable,
    x0: np.ndarray,
    bounds: list[tuple[float, float]] | None,
    constraints: list,
    what: str,
) -> np.ndarray:
    res = optimize.minimize(
        fun,
        x0,
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=constraints,
        options={"maxiter": 500, "ftol": 1e-15},
    )
    if not res.success:
        raise DataError(f"{what} optimisation failed: {res.message}")
    return res.x


def min_variance_weights(
    cov: Covariance,
    *,
    long_only: bool = True,
    max_weight: float = 1.0,
    start: Weights | None = None,
) -> Weights:
    """Minimum-variance weights: ``min w'Sw`` s.t. ``sum w = 1`` and the bounds.

    Bounds are ``[0, max_weight]`` (long only) or ``[-max_weight, max_weight]``.
    Solved exactly by the active-set method of :func:`mltrainer.measures.qp.box_qp`,
    from ``start`` if given (see :func:`_aligned`).
    """
    names = labels_of(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    lb, ub = _box(n, long_only, max_weight)
    w = qp.box_qp(_unit_trace(s), np.zeros(n), lb, ub, x0=_aligned(start, names, n))
    return labelled(_tidy(w, long_only), names)


def _aligned(start: Weights | None, names: pd.Index | None, n: int) -> np.ndarray | None:
    """A neighbouring problem's weights (the last rebalance's) as the quadratic
    programme's start on these ``n`` assets: a Series by label (assets it lacks at 0),
    or an array of length n; anything else is no start. A start changes the solver's
    path, not its answer (to rounding, :func:`mltrainer.measures.qp.box_qp`): near the
    new optimum it takes a few active-set steps instead of one per asset leaving."""
    if start is None:
        return None
    if isinstance(start, pd.Series):
        if names is None:
            return None
        start = start.reindex(names).fillna(0.0)
    x0 = np.asarray(start, dtype="float64")
    return x0 if x0.shape == (n,) and np.isfinite(x0).all() else None


def _box(n: int, long_only: bool, max_weight: float) -> tuple[np.ndarray, np.ndarray]:
    ((lo, hi),) = set(_bounds(n, long_only, max_weight))
    return np.full(n, lo), np.full(n, hi)


def _unit_trace(s: np.ndarray) -> np.ndarray:
    """``S / (trace(S) / n)``: the same optimum, a diagonal of order one for the tolerances."""
    return s / (np.trace(s) / s.shape[0])


def _tidy(w: np.ndarray, long_only: bool) -> np.ndarray:
    if long_only:
        w = np.clip(w, 0.0, None)
    return w / w.sum()


def max_sharpe_weights(
    mu: pd.Series | np.ndarray,
    cov: Covariance,
    *,
    risk_free: float = 0.0,
    long_only: bool = True,
    max_weight: float = 1.0,
) -> Weights:
    """Tangency (maximum Sharpe ratio) weights under the bounds.

    Solved as the convex problem ``min y'Sy`` s.t. ``(mu - rf)'y = 1``,
    ``lb sum(y) <= y_i <= ub sum(y)``, ``sum(y) >= 0``, then ``w = y / sum(y)``
    (Cornuejols & Tutuncu 2007, section 8.2).

    Raises DataError when no asset has an expected return above ``risk_free`` (the
    maximum Sharpe portfolio does not exist with positive excess return).
    """
    names = labels_of(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    m = np.asarray(mu, dtype="float64") - risk_free
    if m.shape != (n,) or not np.isfinite(m).all():
        raise DataError(f"expected returns must be {n} finite numbers")
    if (m <= 0).all():
        raise DataError(
            "no asset has an expected return above the risk-free rate; the "
            "maximum Sharpe portfolio is undefined (use minimum variance)"
        )
    bounds = _bounds(n, long_only, max_weight)
    lb, ub = bounds[0]
    scale = 1.0 / (np.trace(s) / n)
    m = m / np.abs(m).max()  # unit-scale excess returns keep y of order one for SLSQP
    cons = [
        {"type": "eq", "fun": lambda y: m @ y - 1, "jac": lambda y: m},
        {
            "type": "ineq",
            "fun": lambda y: ub * y.sum() - y,
            "jac": lambda y: ub * np.ones((n, n)) - np.eye(n),
        },
        {
            "type": "ineq",
            "fun": lambda y: y - lb * y.sum(),
            "jac": lambda y: np.eye(n) - lb * np.ones((n, n)),
        },
        {"type": "ineq", "fun": lambda y: np.array([y.sum()]), "jac": lambda y: np.ones((1, n))},
    ]
    x0 = np.where(m > 0, m, 0.0)
    x0 = x0 / (m @ x0)
    y = _solve(lambda y: (scale * y @ s @ y, 2 * scale * s @ y), x0, None, cons, "maximum Sharpe")
    return labelled(_tidy(y, long_only), names)


def _max_return(m: np.ndarray, long_only: bool, max_weight: float) -> float:
    """Highest ``m'w`` with ``sum w = 1`` and the bounds (greedy fill of the best assets)."""
    return float(m @ qp.max_linear(m, *_box(m.size, long_only, max_weight)))


def mean_variance_weights(
    mu: pd.Series | np.ndarray,
    cov: Covariance,
    *,
    target_return: float | None = None,
    target_risk: float | None = None,
    long_only: bool = True,
    max_weight: float = 1.0,
    start: Weights | None = None,
) -> Weights:
    """Efficient-frontier weights for a target return or a target risk (same frequency).

    - ``target_return``: ``min w'Sw`` s.t. ``mu'w >= target_return``;
    - ``target_risk``: ``max mu'w`` s.t. ``w'Sw <= target_risk^2``;

    both with ``sum w = 1`` and the bounds. Exactly one target must be given. ``start``
    starts the minimum-variance solve (see :func:`_aligned`).
    Raises DataError when the target cannot be met (return above the best achievable,
    risk below the minimum-variance portfolio's).
    """
    if (target_return is None) == (target_risk is None):
        raise ParameterError("give exactly one of target_return and target_risk")
    names = labels_of(cov)
    s = check_covariance(cov)
    n = s.shape[0]
    m = np.asarray(mu, dtype="float64")
    if m.shape != (n,) or not np.isfinite(m).all():
        raise DataError(f"expected returns must be {n} finite numbers")
    lb, ub = _box(n, long_only, max_weight)
    q = _unit_trace(s)
    x0 = _aligned(start, names, n)
    w_mv = np.asarray(min_variance_weights(s, long_only=long_only, max_weight=max_weight, start=x0))
    # the frontier x(t) = argmin 1/2 x'Qx - t m'x (unit-scale m keeps t of order one)
    m_unit = m / max(np.abs(m).max(), 1e-300)
    if target_return is not None:
        best = _max_return(m, long_only, max_weight)
        if target_return > best + 1e-12:
            raise DataError(
                f"target_return {target_return:.6g} is above the highest return "
                f"the constraints allow ({best:.6g})"
            )
        if m @ w_mv >= target_return:
            return labelled(w_mv, names)
        w = qp.frontier_root(q, m_unit, lb, ub, lambda w: m @ w - target_return, w_mv)
    else:
        if target_risk <= 0:
            raise ParameterError(f"target_risk must be positive (got {target_risk})")
        vmin = float(np.sqrt(w_mv @ s @ w_mv))
        if target_risk < vmin - 1e-12:
            raise DataError(
                f"target_risk {target_risk:.6g} is below the minimum-variance "
                f"portfolio's volatility ({vmin:.6g})"
            )
        if target_risk <= vmin:
            return labelled(w_mv, names)
        # max m'w s.t. w'Sw <= target^2 is the frontier point of that variance (or the
        # highest-return portfolio when even that is less risky than the target)
        w = qp.frontier_root(q, m_unit, lb, ub, lambda w: w @ s @ w - target_risk**2, w_mv)
    return labelled(_tidy(w, long_only), names)


def correlation_weights(corr: Covariance) -> Weights:
    """Weights ``proportional to 1 / (1 + mean correlation with the other assets)``.

    A position that moves with the rest of the book gets less; one asset gets 1. The
    mean correlation is floored at -0.99 (only two perfectly anti-correlated assets
    reach -1).
    """
    names = labels_of(corr)
    c = np.asarray(corr, dtype="float64")
    n = c.shape[0]
    if c.ndim != 2 or c.shape != (n, n) or not np.isfinite(c).all():
        raise DataError("correlation must be a finite square matrix")
    if n == 1:
        return labelled(np.ones(1), names)
    avg = (c.sum(axis=1) - np.diag(c)) / (n - 1)
    raw = 1.0 / (1.0 + np.maximum(avg, -0.99))
    return labelled(raw / raw.sum(), names)


# ------------------------------------------------------------------- walk forward
def hold_forward(rows: dict, index: pd.Index, columns: pd.Index) -> pd.DataFrame:
    """A frame where each ``rows[date]`` (a Series by column) holds until the next one.

    Columns a row does not name are NaN until the next row; dates before the first row
    are NaN. ``rows`` keys must be in ``index``.
    """
    dates = sorted(rows)
    pos = index.get_indexer(dates)
    if (pos < 0).any():
        raise DataError("hold_forward: a row date is not in the index")
    block = [pd.Series(rows[d], dtype="float64").reindex(columns).to_numpy() for d in dates]
    return _held(pos, block, index, columns)


def _held(
    pos: np.ndarray, block: list[np.ndarray], index: pd.Index, columns: pd.Index
) -> pd.DataFrame:
    """Row ``block[j]`` from row ``pos[j]`` (increasing) until the next; NaN before."""
    out = np.full((len(index), len(columns)), np.nan)
    if len(block):
        which = np.searchsorted(pos, np.arange(len(index)), side="right") - 1
        have = which >= 0
        out[have] = np.vstack(block)[which[have]]
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
    rebalance. An asset whose returns there are all equal (a price held flat: a halted
    stock) is left out: it has no risk to estimate, and as a riskless asset it took most
    of a minimum-variance book and turned every correlation NaN. Assets left out get
    NaN; rows before the first rebalance are NaN. A
    rebalance with fewer than ``min_assets`` usable assets, or whose ``solve`` raises
    DataError (e.g. a singular window), keeps the previous weights.

    One Python iteration per rebalance (a few hundred over 20 years): each is a small
    optimisation that does not vectorise across dates.
    """
    x = returns.to_numpy(dtype="float64")
    n, k = x.shape
    finite = np.isfinite(x)
    # count of finite returns in each trailing window, for all rows at once
    csum = np.vstack([np.zeros((1, k), dtype=int), np.cumsum(finite, axis=0)])
    done, block = [], []
    # Small dense problems (n <= a few hundred): a threaded BLAS buys nothing and, on a
    # busy machine, oversubscription made each 100x100 solve 10x slower.
    with single_thread():
        for t in refit_rows(n, window, every):
            full = np.flatnonzero((csum[t + 1] - csum[t + 1 - window]) == window)
            full = full[np.ptp(x[t + 1 - window : t + 1, full], axis=0) > 0]  # moved
            if full.size < min_assets:
                continue
            sub = returns.iloc[t + 1 - window : t + 1, full]
            try:
                w = solve(sub)
            except DataError:
                continue
            row = np.full(k, np.nan)
            row[full] = pd.Series(w).reindex(sub.columns).to_numpy(dtype="float64")
            done.append(t)
            block.append(row)
    return _held(np.array(done, dtype=np.intp), block, returns.index, returns.columns)


def optimal_weights(
    returns: pd.DataFrame,
    objective: str,
    cov_method: str = "ledoit_wolf",
    *,
    max_weight: float = 1.0,
    long_only: bool = True,
    target: float | None = None,
    start: pd.Series | None = None,
) -> tuple[pd.Series, pd.DataFrame]:
    """Weights of one estimation window of returns by ``objective``, and the covariance.

    ``objective`` is one of ``OBJECTIVES``; ``target`` is the per-period (daily) return
    for ``target_return`` or volatility for ``target_risk``. Expected returns are the
    window means. Where the objective has no solution the nearest one is used:
    ``max_sharpe`` with no positive mean -> minimum variance; a ``target_return`` above
    what the limits allow -> the highest achievable; a ``target_risk`` below the
    minimum-variance volatility -> minimum variance. ``max_weight`` is raised to ``1/n``
    when n assets could not otherwise be fully invested. Risk parity is long only.
    ``start`` (weights by ticker, say the last rebalance's) starts the quadratic
    programmes of the minimum-variance and frontier objectives: the same weights to
    rounding, in far fewer steps (:func:`_aligned`).
    """
    if objective not in OBJECTIVES:
        raise ParameterError(
            f"objective must be one of {', '.join(OBJECTIVES)} (got {objective!r})"
        )
    cov = covariance(returns, cov_method)
    n = cov.shape[0]
    cap = max(max_weight, 1.0 / n)
    mu = returns.mean()
    kw = {"max_weight": cap, "long_only": long_only}
    qp_kw = {**kw, "start": start}
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
            return mean_variance_weights(mu, cov, target_return=goal, **qp_kw), cov
        w_mv = min_variance_weights(cov, **qp_kw)
        if target <= np.sqrt(w_mv @ cov.to_numpy() @ w_mv):
            return w_mv, cov
        return mean_variance_weights(mu, cov, target_risk=target, **kw, start=w_mv), cov
    return min_variance_weights(cov, **qp_kw), cov


def walk_forward_optimised(
    returns: pd.DataFrame,
    objective: str,
    window: int,
    every: int,
    cov_method: str = "ledoit_wolf",
    **kw,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Walk-forward :func:`optimal_weights` and the relative risk contributions of each
    rebalance's weights under its own covariance, both held until the next rebalance.

    ``kw`` goes to :func:`optimal_weights` (``max_weight``, ``long_only``, ``target``).
    Each rebalance's programme starts from the previous rebalance's weights (the same
    weights to rounding; on 500 assets a cold start took one active-set step per asset
    leaving the portfolio, hundreds of KKT solves, and dominated the leaderboard).
    """
    contributions, last = {}, {}

    def solve(win: pd.DataFrame) -> pd.Series:
        w, cov = optimal_weights(win, objective, cov_method, start=last.get("w"), **kw)
        contributions[win.index[-1]] = risk_contributions(w, cov, relative=True)
        last["w"] = w
        return w

    weights = walk_forward_weights(returns, window, every, solve)
    return weights, hold_forward(contributions, returns.index, returns.columns)
