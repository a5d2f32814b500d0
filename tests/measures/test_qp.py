"""The active-set QP solver against its optimality conditions, on real covariances."""

from __future__ import annotations

import numpy as np
import pytest

from mltrainer.measures import allocation as A
from mltrainer.measures import covariance as C
from mltrainer.measures import qp
from mltrainer.numerics.schedule import refit_rows


@pytest.fixture(scope="module")
def problem(basket):
    rets = basket.returns().loc["2014-09-01":"2015-09-08"].dropna(axis=1)
    cov = C.covariance(rets).to_numpy()
    mu = rets.mean().to_numpy()
    return A._unit_trace(cov), mu / np.abs(mu).max()


def _kkt_violation(q, c, lb, ub, x):
    """Largest breach of the KKT conditions of min 1/2 x'Qx - c'x, sum x = 1, box."""
    g = q @ x - c
    free = (x > lb) & (x < ub)
    at_lo, at_hi = (x <= lb) & ~free, (x >= ub) & ~free
    if free.any():
        nu = -g[free].mean()
    else:  # a vertex: any nu between the bounds' certificates will do
        lo, hi = np.max(-g[at_lo], initial=-np.inf), np.min(-g[at_hi], initial=np.inf)
        nu = hi if not np.isfinite(lo) else lo if not np.isfinite(hi) else (lo + hi) / 2
    mult = g + nu
    return max(
        abs(x.sum() - 1),
        np.abs(mult[free]).max(initial=0.0),
        np.max(-mult[at_lo], initial=0.0),
        np.max(mult[at_hi], initial=0.0),
        np.max(lb - x, initial=0.0),
        np.max(x - ub, initial=0.0),
    )


@pytest.mark.parametrize("t", [0.0, 1.0, 4.0, 16.0, 64.0])
@pytest.mark.parametrize("bounds", [(0.0, 0.25), (-0.25, 0.25), (0.0, 1.0)])
def test_box_qp_meets_kkt_from_any_start(problem, t, bounds):
    q, m = problem
    n = m.size
    lb, ub = np.full(n, bounds[0]), np.full(n, bounds[1])
    cold = qp.box_qp(q, t * m, lb, ub)
    assert _kkt_violation(q, t * m, lb, ub, cold) < 1e-10
    # a warm start at the highest-return vertex (degenerate: every coordinate on a
    # bound) made the first version wander forever on this window
    warm = qp.box_qp(q, t * m, lb, ub, x0=qp.max_linear(m, lb, ub))
    np.testing.assert_allclose(warm, cold, atol=1e-12)


def test_box_qp_closed_form_without_binding_bounds(problem):
    q, _ = problem
    ones = np.ones(q.shape[0])
    exact = np.linalg.solve(q, ones) / (ones @ np.linalg.solve(q, ones))
    x = qp.box_qp(q, np.zeros_like(ones), np.full_like(ones, -10.0), np.full_like(ones, 10.0))
    np.testing.assert_allclose(x, exact, atol=1e-13)


def test_a_box_holding_one_point_gives_that_point():
    x = qp.box_qp(np.eye(4), np.arange(4.0), np.zeros(4), np.full(4, 0.25))
    np.testing.assert_array_equal(x, np.full(4, 0.25))


def _ratio_scan(x, p, lb, ub):
    """The ratio test as the solver first wrote it: one coordinate at a time."""
    alpha, block = 1.0, -1
    for j, pj in enumerate(p):
        room = (lb[j] - x[j]) / pj if pj < 0 else (ub[j] - x[j]) / pj if pj > 0 else 1.0
        if room < alpha:
            alpha, block = max(room, 0.0), j
    return alpha, block


def test_ratio_test_equals_the_scalar_scan():
    rng = np.random.default_rng(11)
    for _ in range(2000):
        n = int(rng.integers(1, 12))
        lb, ub = np.zeros(n), np.full(n, 0.25)
        x = rng.choice([0.0, 0.25, 0.1, -1e-17, 0.25 + 1e-17], n)
        p = rng.choice([-0.3, -0.1, 0.0, 0.1, 0.3, 1e-3], n) * rng.choice([1.0, 2.0], n)
        assert qp._ratio_test(x, p, lb, ub) == _ratio_scan(x, p, lb, ub)


@pytest.mark.parametrize("objective", ["min_variance", "target_risk"])
def test_walk_forward_warm_starts_give_the_cold_weights(panel, objective):
    """Each rebalance starts from the last one's weights (on 500 assets hundreds of
    active-set steps fewer); the weights are the cold-start ones to rounding, assets
    entering and leaving the window included."""
    r = panel.returns().loc["2006":"2008"].iloc[:, :80]
    target = 0.15 / np.sqrt(252) if objective == "target_risk" else None
    kw = {"max_weight": 0.25, "target": target}
    warm, _ = A.walk_forward_optimised(r, objective, 252, 21, **kw)
    rows = refit_rows(len(r), 252, 21)
    assert r.iloc[rows[0] - 251 :].dropna(axis=1).shape[1] < r.shape[1]  # the set changes
    for t in rows:
        cold, _ = A.optimal_weights(r.iloc[t - 251 : t + 1].dropna(axis=1), objective, **kw)
        np.testing.assert_allclose(warm.iloc[t][cold.index], cold, rtol=0, atol=1e-12)
        assert warm.iloc[t].drop(cold.index).isna().all()
