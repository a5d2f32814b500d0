"""The active-set QP solver against its optimality conditions, on real covariances."""

from __future__ import annotations

import numpy as np
import pytest

from mltrainer.measures import allocation as A
from mltrainer.measures import covariance as C
from mltrainer.measures import qp


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
