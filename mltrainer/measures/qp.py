"""Exact solver for the small convex quadratic programmes of portfolio construction.

Every long-only or bounded long-short mean-variance problem in
:mod:`mltrainer.measures.portfolio` reduces to

    min_x  1/2 x'Qx - c'x   subject to   sum(x) = 1,   lb <= x <= ub        (QP)

with ``Q`` positive definite, so the solution is unique and a continuous function of
``Q`` and ``c``. A general-purpose SQP solver (scipy's SLSQP) stops wherever its
line search meets ``ftol`` and which bounds it treats as active depends on rounding:
on real returns a 2e-16 change of the inputs moved its weights by up to 0.25.
:func:`box_qp` is the primal active-set method (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., algorithm 16.3): each iteration solves the equality-
constrained problem on the free variables exactly (one KKT system), so it ends on the
optimum itself, to rounding, whatever the starting point.

:func:`frontier_root` walks the efficient frontier ``x(t) = argmin 1/2 x'Qx - t m'x``
(``t >= 0``; ``t = 0`` is minimum variance) to the point where a monotone function of
``x(t)`` (its variance, its mean) reaches a target, by Brent's method on ``t`` to machine
precision.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize

from mltrainer.errors import DataError

FREE, LOWER, UPPER = 0, -1, 1


def feasible_start(lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """A point with ``sum(x) = 1`` inside the box: ``clip(s, lb, ub)`` for the right ``s``.

    Raises DataError when the box holds no such point.
    """
    if lb.sum() > 1 + 1e-12 or ub.sum() < 1 - 1e-12:
        raise DataError(
            f"no fully invested portfolio within the bounds (they allow sums "
            f"from {lb.sum():.4g} to {ub.sum():.4g})"
        )
    # a box that only just allows the budget (max_weight = 1/n) holds one point
    if ub.sum() <= 1 + 1e-12:
        return ub.astype("float64").copy()
    if lb.sum() >= 1 - 1e-12:
        return lb.astype("float64").copy()
    s = optimize.brentq(
        lambda s: np.clip(s, lb, ub).sum() - 1.0, lb.min() - 1.0, ub.max() + 1.0, xtol=1e-15
    )
    x = np.clip(s, lb, ub)
    free = (x > lb) & (x < ub)
    if free.any():  # put the rounding residue on a free coordinate
        i = int(np.flatnonzero(free)[0])
        x[i] = min(max(x[i] + 1.0 - x.sum(), lb[i]), ub[i])
    return x


def box_qp(
    q: np.ndarray,
    c: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    x0: np.ndarray | None = None,
    max_iter: int | None = None,
) -> np.ndarray:
    """Solve (QP) above by the primal active-set method.

    Parameters
    ----------
    q : (n, n) positive definite matrix (scaled so that its diagonal is of order one).
    c : (n,) linear term.
    lb, ub : (n,) bounds with ``sum(lb) <= 1 <= sum(ub)``.
    x0 : optional start (e.g. the solution of a neighbouring problem); the bounds it
        touches start as the working set. It changes the path, not the answer (to
        rounding: 1e-12 on real covariances). One that is not fully invested (a
        previous portfolio some assets have left) is divided by its sum; one that the
        box then cuts is replaced by :func:`feasible_start`.

    Returns
    -------
    x : the minimiser; coordinates on a bound equal the bound exactly.

    Notes
    -----
    At ``x`` with free set F, the step ``p`` solves ``[Q_FF 1; 1' 0] [p; nu] = [-g_F; 0]``
    (``g = Qx - c``). A non-zero step is taken as far as the first bound it meets (which
    joins the working set); a zero step is optimal when every active bound's multiplier
    ``g_i + nu`` has the right sign (``>= 0`` at a lower bound, ``<= 0`` at an upper),
    otherwise the most violated bound is released. Strict convexity rules out cycling
    except in degenerate ties, which the iteration cap turns into a DataError.
    """
    n = c.shape[0]
    x = None if x0 is None else _invested(np.asarray(x0, dtype="float64"), lb, ub)
    if x is None:
        x = feasible_start(lb, ub)
    state = np.where(x <= lb, LOWER, np.where(x >= ub, UPPER, FREE))
    scale = 1.0 + np.abs(c).max() + np.abs(q).max()
    tol = 1e-13 * scale
    optimal_on_face = False  # x minimises over the current free set (after a full step)
    for _ in range(max_iter or 20 * n + 50):
        g = q @ x - c
        free = np.flatnonzero(state == FREE)
        if free.size:
            kkt = np.zeros((free.size + 1, free.size + 1))
            kkt[:-1, :-1] = q[np.ix_(free, free)]
            kkt[:-1, -1] = kkt[-1, :-1] = 1.0
            sol = np.linalg.solve(kkt, np.append(-g[free], 0.0))
            p, nu = sol[:-1], sol[-1]
        else:
            p = np.empty(0)
            # any nu between the lower bounds' -g and the upper bounds' -g certifies x
            lo = np.max(-g[state == LOWER], initial=-np.inf)
            hi = np.min(-g[state == UPPER], initial=np.inf)
            nu = 0.5 * (lo + hi) if np.isfinite(lo + hi) else (lo if np.isfinite(lo) else hi)
        # after a full step the new p is rounding noise; taking it would only wander
        if not optimal_on_face and p.size and np.abs(p).max() > 1e-14:
            alpha, block = _ratio_test(x[free], p, lb[free], ub[free])
            x[free] += alpha * p
            if block >= 0:
                i = free[block]
                x[i], state[i] = (lb[i], LOWER) if p[block] < 0 else (ub[i], UPPER)
            optimal_on_face = block < 0
            continue
        mult = g + nu
        wrong = np.where(state == LOWER, -mult, np.where(state == UPPER, mult, -np.inf))
        worst = int(np.argmax(wrong))
        if wrong[worst] <= tol:
            return x
        state[worst] = FREE
        optimal_on_face = False
    raise DataError(
        f"the quadratic programme did not converge in {max_iter or 20 * n + 50} "
        "active-set iterations (degenerate inputs?)"
    )


def _invested(x0: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray | None:
    """``x0`` in the box and fully invested (divided by its sum if need be), else None."""
    x = np.clip(x0, lb, ub)
    if abs(x.sum() - 1.0) > 1e-12 and x.sum() > 0:
        x = np.clip(x / x.sum(), lb, ub)
    return x if abs(x.sum() - 1.0) <= 1e-12 else None


def _ratio_test(x: np.ndarray, p: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> tuple:
    """Step length (at most 1) to the first bound that ``x + alpha p`` meets, and that
    coordinate's position (-1: none). The scan it replaces took the first smallest room,
    or, once a room was negative (a coordinate a rounding step put outside its box), the
    last negative one at step 0; kept exactly, so the path is unchanged."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(p < 0, (lb - x) / p, np.where(p > 0, (ub - x) / p, 1.0))
    negative = np.flatnonzero(room < 0)
    if negative.size:
        return 0.0, int(negative[-1])
    j = int(np.argmin(room))
    return (float(room[j]), j) if room[j] < 1.0 else (1.0, -1)


def max_linear(m: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """``argmax m'x`` s.t. ``sum(x) = 1`` and the box: every coordinate at its lower bound,
    then the best assets filled to their upper bounds until the budget is spent (exact
    for this linear programme; ties go to the first asset)."""
    x = lb.astype("float64").copy()
    left = 1.0 - x.sum()
    for i in np.argsort(-m, kind="stable"):
        add = min(ub[i] - lb[i], left)
        x[i] += add
        left -= add
    return x


def frontier_root(
    q: np.ndarray,
    m: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    f: Callable[[np.ndarray], float],
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The frontier portfolio ``x(t)`` at which ``f(x(t))`` crosses zero.

    ``start`` is :func:`box_qp`'s start for ``x(0)`` (the minimum-variance portfolio, when
    the caller has it).

    ``f`` must be non-decreasing along the frontier (variance minus a target, mean minus
    a target) and negative at ``t = 0``. When it is still not positive at the end of the
    frontier (the target lies at or beyond the highest-return portfolio the bounds
    allow, :func:`max_linear`) that portfolio is returned.

    Notes
    -----
    ``x(t)`` is piecewise linear in ``t`` and reaches the highest-return vertex at a
    finite ``t`` (for distinct means), so the bracket stays where the problem is well
    scaled: at ``t`` of 1e12 the KKT systems lose every digit and the active-set method
    wanders.
    """
    top = max_linear(m, lb, ub)
    if f(top) <= 0:
        return top
    cache = {0.0: box_qp(q, np.zeros_like(m), lb, ub, x0=start)}
    if f(cache[0.0]) >= 0:  # the caller's minimum-variance check, up to rounding
        return cache[0.0]

    def solve(t: float) -> np.ndarray:
        if t not in cache:
            # start from the solved t nearest below: the same answer, fewer iterations
            near = max(k for k in cache if k <= t)
            cache[t] = box_qp(q, t * m, lb, ub, x0=cache[near].copy())
        return cache[t]

    lo, hi = 0.0, 1.0
    while f(solve(hi)) < 0:
        if hi > 1e9:
            raise DataError(
                "the efficient frontier did not reach the target (assets with "
                "equal expected returns?)"
            )
        lo, hi = hi, hi * 4.0
    t = optimize.brentq(lambda t: f(solve(t)), lo, hi, xtol=1e-15 * hi, rtol=1e-15, maxiter=500)
    return solve(t)
