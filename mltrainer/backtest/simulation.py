"""The accounting recursion of :mod:`mltrainer.backtest.engine`, solved for a whole panel.

:func:`plan_simulation` finds, once, what depends only on where trading happens and on
the prices (the held cells that may carry a position, the rows that trade); a
:class:`Recursion` solves for given target weights by a fixed-point iteration on the
value growth ``g`` (see the engine's module docstring), falling back to the date-by-date
:func:`_simulate_loop` when it does not converge, and re-solves after a few target rows
are rescaled (the engine's gross-limit correction) without redoing the rest.
:func:`simulate` is the one-shot form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_SWEEPS = 60
_TOL = 1e-12


def _growth_and_returns(close: np.ndarray, finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-filled prices and simple returns from them (0 where undefined).

    Only columns with a missing price after their first one need filling; leading NaNs
    (not listed yet) stay NaN in the growth and give zero returns.
    """
    n_t = close.shape[0]
    first = finite.argmax(axis=0)
    n_valid = np.add.reduce(finite, axis=0, dtype=np.int64)
    first = np.where(n_valid > 0, first, n_t)
    gappy = np.flatnonzero((n_valid > 0) & (n_valid < n_t - first))
    growth = close
    if len(gappy):
        growth = close.copy()
        growth[:, gappy], _ = _ffill_rows(close[:, gappy])
    rets = np.empty_like(close)
    rets[0] = 0.0
    with np.errstate(invalid="ignore"):
        np.divide(growth[1:], growth[:-1], out=rets[1:])
    rets[1:] -= 1.0
    # NaN only up to each ticker's first price: a loop over the late listings' columns
    for j in np.flatnonzero(first > 0):
        rets[: first[j] + 1, j] = 0.0
    return growth, rets


def _ffill_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-filled copy of ``x`` down the rows, and the source row of each cell (-1)."""
    n = x.shape[0]
    rows = np.where(np.isfinite(x), np.arange(n)[:, None], -1)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = np.take_along_axis(x, np.maximum(rows, 0), axis=0)
    filled[rows < 0] = np.nan
    return filled, rows


@dataclass(frozen=True)
class SimulationPlan:
    """The part of a simulation fixed by the trading pattern and the prices.

    One entry per held cell that follows a traded one in its column (it may carry a
    position): its row, column and anchor (the last traded row before it), the growth at
    both, the return of the next row (0 on the last row), whether it feeds the next row's
    drift and where its row sits among the rows that trade after the first.
    """

    n_t: int
    rows: np.ndarray
    cols: np.ndarray
    a_rows: np.ndarray
    growth_at: np.ndarray
    growth_anchor: np.ndarray
    next_ret: np.ndarray
    has_next: np.ndarray
    in_sel: np.ndarray
    sel_pos: np.ndarray
    trade_rows: np.ndarray
    dense: bool


def plan_simulation(traded: np.ndarray, growth: np.ndarray, returns: np.ndarray) -> SimulationPlan:
    """Find the held cells that can carry a position and the rows that trade (see
    :class:`SimulationPlan`); arguments as in :func:`simulate`."""
    n_t = traded.shape[0]
    # a held cell follows the first traded one unless every later row is traded
    n_traded = np.add.reduce(traded, axis=0, dtype=np.int64)
    first_traded = traded.argmax(axis=0)
    maybe = np.flatnonzero((n_traded > 0) & (n_traded < n_t - first_traded))
    if len(maybe):
        sub = traded[:, maybe]
        anchor = np.where(sub, np.arange(n_t)[:, None], -1)
        np.maximum.accumulate(anchor, axis=0, out=anchor)
        rows, sub_cols = np.nonzero(~sub & (anchor >= 0))
        cols = maybe[sub_cols]
        a_rows = anchor[rows, sub_cols]
    else:
        rows = cols = a_rows = np.empty(0, dtype=np.intp)
    has_next = rows + 1 < n_t
    next_ret = np.zeros(len(rows))
    next_ret[has_next] = returns[rows[has_next] + 1, cols[has_next]]
    trade_rows = np.flatnonzero(traded[1:].any(axis=1)) + 1
    dense = len(trade_rows) == n_t - 1
    if dense:
        in_sel = rows >= 1
        sel_pos = rows - 1
    else:
        in_sel = np.isin(rows, trade_rows)
        sel_pos = np.searchsorted(trade_rows, rows)
    return SimulationPlan(
        n_t,
        rows,
        cols,
        a_rows,
        growth[rows, cols],
        growth[a_rows, cols],
        next_ret,
        has_next,
        in_sel,
        sel_pos,
        trade_rows,
        dense,
    )


class Recursion:
    """The recursion for given targets on a planned panel: solve, rescale rows, re-solve.

    Held cells carrying a position set on an earlier traded row ``a`` are worth
    ``w_a (growth_t / growth_a) (V⁻_a / V⁻_t)``; only they depend on ``g`` besides the
    drift denominators, so each sweep touches the full panel four times (divide,
    subtract, abs, product with the cost rates) plus the carried cells. Rescaling a few
    target rows (the engine's gross-limit correction) updates only those rows, and the
    positions and trades are assembled once, by :meth:`result`.
    """

    def __init__(self, target, returns, traded, cost_rate, cash_rate, plan: SimulationPlan):
        n_t = plan.n_t
        self.target, self.returns, self.traded = target, returns, traded
        self.cost_rate, self.cash_rate, self.plan = cost_rate, cash_rate, plan
        # drift numerators A_t = w_{t-1} (1 + r_t); carried cells are overwritten per sweep
        self.numer = numer = np.empty_like(target)
        numer[0] = 0.0
        np.multiply(target[:-1], returns[1:], out=numer[1:])  # w r, then + w: no temporary
        self.port0 = np.zeros(n_t)
        self.port0[1:] = numer[1:].sum(axis=1)
        numer[1:] += target[:-1]
        self.invested0 = target.sum(axis=1)
        self.has_cost = bool(np.any(cost_rate > 0))
        self.uniform = bool(np.all(cost_rate == cost_rate[0])) if len(cost_rate) else True
        self.turnover0 = float(np.abs(target[0]).sum())
        self.cost0 = float(np.abs(target[0]) @ cost_rate)
        self.sel = slice(1, None) if plan.dense else plan.trade_rows
        self.sel_target = target[self.sel]
        self.buf = np.empty_like(self.sel_target)
        self._find_carried()
        self.fallback: dict | None = None

    def _find_carried(self) -> None:
        """The planned held cells whose anchor target is not zero: they carry a position."""
        plan, target = self.plan, self.target
        base = target[plan.a_rows, plan.cols] * plan.growth_at / plan.growth_anchor
        keep = base != 0
        self.rows, self.cols, self.a_rows = plan.rows[keep], plan.cols[keep], plan.a_rows[keep]
        self.base = base[keep]
        self.nxt = nxt = plan.has_next[keep]  # carried cells that feed the next row's drift
        self.n_rows, self.n_cols = self.rows[nxt] + 1, self.cols[nxt]
        self.n_ret = plan.next_ret[keep][nxt]
        self.n_one_r = 1.0 + self.n_ret
        z = plan.in_sel[keep]
        self.z_rows, self.z_cols = plan.sel_pos[keep][z], self.cols[z]

    def start(self) -> np.ndarray:
        """The no-cost growth: a first guess."""
        g = np.ones(self.plan.n_t)
        g[1:] = 1.0 + self.port0[1:] + (1.0 - self.invested0[:-1]) * self.cash_rate[:-1]
        return g

    def _carry(self, g: np.ndarray):
        """Carried values, and the portfolio return and net exposure with them."""
        vm = np.cumprod(g)
        carried = self.base * (vm[self.a_rows] / vm[self.rows])
        port, invested = self.port0, self.invested0
        if len(self.rows):
            carried_next = carried[self.nxt]
            self.numer[self.n_rows, self.n_cols] = carried_next * self.n_one_r
            port = self.port0 + np.bincount(
                self.n_rows, carried_next * self.n_ret, minlength=self.plan.n_t
            )
            invested = self.invested0 + np.bincount(self.rows, carried, minlength=self.plan.n_t)
        return carried, port, invested

    def _sweep(self, g: np.ndarray):
        n_t, sel, buf, cost_rate = self.plan.n_t, self.sel, self.buf, self.cost_rate
        carried, port, invested = self._carry(g)
        cost = np.zeros(n_t)
        turnover = None
        if self.has_cost:
            cost[0] = self.cost0
            if len(self.plan.trade_rows):
                np.divide(self.numer[sel], g[sel, None], out=buf)
                np.subtract(self.sel_target, buf, out=buf)
                buf[self.z_rows, self.z_cols] = 0.0
                np.abs(buf, out=buf)
                # a row sum, not a BLAS product: multithreaded BLAS stalls on a busy machine
                if self.uniform:
                    turnover = np.zeros(n_t)
                    turnover[0] = self.turnover0
                    turnover[sel] = buf.sum(axis=1)
                    cost[sel] = turnover[sel] * cost_rate[0]
                else:
                    cost[sel] = np.einsum("ij,j->i", buf, cost_rate)
        new_g = np.ones(n_t)
        new_g[1:] = (
            1.0 + port[1:] - cost[:-1] + (1.0 - invested[:-1] - cost[:-1]) * self.cash_rate[:-1]
        )
        return new_g, cost, carried, turnover

    def solve(self, g0: np.ndarray | None = None) -> None:
        """Iterate to the fixed point from ``g0`` (default the no-cost growth); if that
        fails, keep the date-by-date solution instead (:attr:`fallback`)."""
        g = self.start() if g0 is None else np.array(g0, dtype="float64")
        self.fallback = None
        # Each row's growth depends on earlier rows only, so the sweeps settle on the one
        # solution; far from it they may pass through huge values (a position carried
        # for years: AAPL held from 2003 reaches 1e98 on its third sweep), harmless while
        # finite. An overflow is not: the loop below takes over, and numpy stays quiet.
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(_MAX_SWEEPS):
                new_g, cost, carried, turnover = self._sweep(g)
                change = float(np.max(np.abs(new_g - g)))
                g = new_g
                if change <= _TOL:
                    self.g, self.cost, self.carried, self.turnover = g, cost, carried, turnover
                    return
                if not np.isfinite(change):
                    break
        self.fallback = _simulate_loop(
            self.target, self.returns, self.traded, self.cost_rate, self.cash_rate
        )
        self.g = self.fallback["g"]

    def held_gross(self) -> np.ndarray:
        """``Σ_i |w_t,i|`` over the positions held (not traded) on each row."""
        if self.fallback is not None:
            pos = self.fallback["positions"]
            return np.where(self.traded, 0.0, np.abs(pos)).sum(axis=1)
        return np.bincount(self.rows, np.abs(self.carried), minlength=self.plan.n_t)

    def held_columns(self, row: int) -> np.ndarray:
        """The columns holding a position without trading on ``row``."""
        if self.fallback is not None:
            pos = self.fallback["positions"]
            return np.flatnonzero(~self.traded[row] & (pos[row] != 0))
        return np.sort(self.cols[(self.rows == row) & (self.carried != 0)])

    def rescale(self, rows: np.ndarray, factor: np.ndarray) -> None:
        """Multiply the targets of ``rows`` (indices) by ``factor``; :meth:`solve` again."""
        target, numer, returns = self.target, self.numer, self.returns
        target[rows] *= factor[:, None]
        numer[self.n_rows, self.n_cols] = 0.0  # the carried cells are found again
        nxt = rows[rows + 1 < self.plan.n_t]
        numer[nxt + 1] = target[nxt] * returns[nxt + 1]
        self.port0[nxt + 1] = numer[nxt + 1].sum(axis=1)
        numer[nxt + 1] += target[nxt]
        self.invested0[rows] = target[rows].sum(axis=1)
        self.turnover0 = float(np.abs(target[0]).sum())
        self.cost0 = float(np.abs(target[0]) @ self.cost_rate)
        if not self.plan.dense:  # a copy, not a view of the targets
            self.sel_target = target[self.sel]
        self._find_carried()

    def result(self) -> dict:
        """The solution's positions, trades and flows (the targets become the positions)."""
        if self.fallback is not None:
            return self.fallback
        g, carried, rows, cols, numer = self.g, self.carried, self.rows, self.cols, self.numer
        positions = self.target  # filled in place: the caller's array becomes the positions
        positions[rows, cols] = carried
        trades = np.empty_like(positions)
        trades[0] = positions[0]
        np.divide(numer[1:], g[1:, None], out=trades[1:])
        np.subtract(positions[1:], trades[1:], out=trades[1:])
        trades[rows, cols] = 0.0  # held: no trade (exactly, not up to rounding)
        invested, port = self.invested0, self.port0.copy()
        if len(rows):
            invested = invested + np.bincount(rows, carried, minlength=self.plan.n_t)
            port += np.bincount(
                self.n_rows, carried[self.nxt] * self.n_ret, minlength=self.plan.n_t
            )
        turnover = self.turnover
        if turnover is None:
            turnover = np.abs(trades).sum(axis=1)
        return {
            "g": g,
            "cost": self.cost,
            "positions": positions,
            "trades": trades,
            "port": port,
            "invested": invested,
            "turnover": turnover,
        }


def simulate(
    weights: np.ndarray,
    returns: np.ndarray,
    traded: np.ndarray,
    growth: np.ndarray,
    cost_rate: np.ndarray,
    cash_rate: np.ndarray,
    g0: np.ndarray | None = None,
    plan: SimulationPlan | None = None,
) -> dict:
    """Solve the accounting recursion of the engine's module docstring for the whole panel.

    Parameters
    ----------
    weights : (T, N) array
        Target weights, zero wherever not ``traded`` (filled in place with the positions).
    returns : (T, N) array
        Simple returns from the previous date's close (row 0 unused, NaN-free).
    traded : (T, N) bool array
        Where the target is traded; elsewhere the position is held.
    growth : (T, N) array
        Cumulative price growth (forward-filled adjusted close); used to carry held
        positions: a position set at row a is worth ``w_a growth_t / growth_a`` of
        ``V⁻_a`` at row t.
    cost_rate : (N,) array
        Cost per unit of traded value for each ticker.
    cash_rate : (T,) array
        Daily cash rate known at each date.
    g0 : (T,) array, optional
        A first guess of the value growth (a previous solution of a nearby problem);
        default the no-cost growth.
    plan : SimulationPlan, optional
        :func:`plan_simulation` of ``traded``, ``growth`` and ``returns``.

    Returns
    -------
    dict of arrays: ``g`` (pre-trade value growth ``V⁻_t / V⁻_{t-1}``), ``cost``,
    ``positions``, ``trades``, ``port`` (``w_{t-1}·r_t``), ``invested`` (``Σ w_t``) and
    ``turnover``.
    """
    if plan is None:
        plan = plan_simulation(traded, growth, returns)
    recursion = Recursion(weights, returns, traded, cost_rate, cash_rate, plan)
    recursion.solve(g0)
    return recursion.result()


def _simulate_loop(weights, returns, traded, cost_rate, cash_rate) -> dict:
    """The same recursion date by date (reference implementation and fallback).

    A Python loop over dates: each step needs the previous step's value growth, which is
    why :func:`simulate` prefers the fixed-point iteration.
    """
    n_t, n = weights.shape
    g = np.ones(n_t)
    cost = np.zeros(n_t)
    pos = np.zeros((n_t, n))
    trades = np.zeros((n_t, n))
    prev = np.zeros(n)
    prev_cost = 0.0
    for t in range(n_t):
        if t > 0:
            g[t] = (
                1.0
                + prev @ returns[t]
                - prev_cost
                + (1.0 - prev.sum() - prev_cost) * cash_rate[t - 1]
            )
            drift = prev * (1.0 + returns[t]) / g[t]
        else:
            drift = np.zeros(n)
        w = np.where(traded[t], weights[t], drift)
        trades[t] = w - drift
        cost[t] = np.abs(trades[t]) @ cost_rate
        pos[t] = w
        prev, prev_cost = w, cost[t]
    port = np.zeros(n_t)
    port[1:] = np.einsum("ij,ij->i", pos[:-1], returns[1:])
    return {
        "g": g,
        "cost": cost,
        "positions": pos,
        "trades": trades,
        "port": port,
        "invested": pos.sum(axis=1),
        "turnover": np.abs(trades).sum(axis=1),
    }
