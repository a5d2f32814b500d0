"""A vectorised daily backtest of target weights over a (dates x tickers) panel.

Timeline and accounting convention
----------------------------------
Everything is a fraction of the portfolio's value. At the close of each date ``t``:

1. Positions have drifted with the day's returns; the portfolio is worth ``V⁻_t`` before
   trading and holds the *drifted* weights ``w̃_t`` (fractions of ``V⁻_t``).
2. The target weights ``w_t``, decided with information up to the close of ``t``, are
   traded at that close, also as fractions of the pre-trade value ``V⁻_t``. The traded
   weight is ``d_t = w_t - w̃_t``.
3. Costs are linear in traded value: ``c_t = Σ_i k_i |d_t,i|`` (a fraction of ``V⁻_t``)
   with ``k_i = (commission + slippage + half_spread_i) / 10,000``; they are paid from
   cash. The equity curve is the post-trade value ``V_t = V⁻_t (1 - c_t)``.
4. The positions ``w_t V⁻_t`` then earn the returns of ``t+1`` (weights decided at ``t``
   never earn the return of ``t`` itself); the cash ``(1 - Σ_i w_t,i - c_t) V⁻_t`` (negative
   when levered, short proceeds included) earns the daily cash rate ``ρ_t`` known at
   ``t``::

       V⁻_{t+1} = V⁻_t g_{t+1},   g_{t+1} = 1 + w_t·r_{t+1} - c_t + (1 - Σ w_t - c_t) ρ_t
       w̃_{t+1} = w_t ⊙ (1 + r_{t+1}) / g_{t+1}

   Returns ``r`` come from the adjusted close. ``V⁻_0`` is the initial capital.

This is exactly vectorbt's ``Portfolio.from_orders(close, size=w, size_type="targetpercent",
cash_sharing=True, group_by=True, call_seq="auto", fees=k, slippage=0)`` (its defaults
``update_value=False`` and valuation at the close), with two differences outside that
domain: vectorbt never lets cash fall below zero (it partially fills a buy it cannot pay
for, e.g. a fully invested long-only book paying fees) while this engine lets cash go
negative (borrowing at the cash rate), and vectorbt has no cash rate. Slippage here is a
cost per traded value like the commission (vectorbt's ``slippage`` moves the fill price,
which adds a second-order cross term ``slippage x fees``); pass the sum as vectorbt's
``fees`` to compare (and give vectorbt a capital of 1e6 or more: it ignores orders
below 1e-12 shares). vectorbt's ``value()`` is this ``V_t``.

Signals, weights and limits
---------------------------
A NaN signal means no position (weight 0). By default a signal row is normalised so its
gross exposure equals ``gross_limit`` (``w = L s / Σ|s|``, over the tickers that can trade
and are index members that day); ``weighting="weights"`` takes the frame as weights and
scales a row whose gross exposure exceeds the limit down to it. ``max_weight`` then clips
each weight (the excess stays in cash). With ``strict=True`` either excess raises a
DataError instead. A signal frame whose tickers or dates are not in the prices raises a
DataError naming them.

Held, not traded
----------------
A cell is traded only on a rebalance row (a date present in the signal frame, thinned by
``rebalance_every``) where the ticker has a price. Elsewhere the position is held and
drifts: a ticker whose price is missing (not listed yet, delisted, a gap) cannot be
traded and its position keeps its last price until the price reappears; a date missing
from the signal frame is not a rebalance date. vectorbt does the same (a NaN price or
NaN size ignores the order; the valuation price is carried forward).
A held position still counts toward ``gross_limit``: on a rebalance date the weights of
the tickers that do trade are scaled down so the held ones and they together stay within
the limit (a warning says so; with ``strict=True`` it is a DataError).

Vectorisation
-------------
Costs feed back into the drifted weights through the scalar ``g_t`` only, so the panel
is solved by a fixed-point iteration on the vector ``g`` (length = dates): each sweep is a
handful of whole-panel numpy operations and contracts the error by about ``k x gross``
(1e-3 at 10 bps), reaching machine precision in a few sweeps. If it does not converge
(absurd costs or leverage) the exact day-by-day recursion is used instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer.backtest.metrics import drawdown, performance_metrics
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError

PERIODS_PER_YEAR = 252
_MAX_SWEEPS = 60
_TOL = 1e-12


@dataclass
class BacktestResult:
    """What a backtest produced (all frames and series indexed by the backtest dates).

    Attributes
    ----------
    equity : Series
        Post-trade portfolio value at each close (starts from ``initial_capital``
        before the first date, so its first value is the capital minus the first costs).
    returns : Series
        Daily net returns ``V_t / V_{t-1} - 1``.
    gross_returns : Series
        Daily returns before costs: ``w_{t-1}·r_t + (1 - Σ w_{t-1}) ρ_{t-1}``.
    positions : DataFrame
        Weights held after trading at each close (fractions of the pre-trade value).
    trades : DataFrame
        Traded weight ``w_t - w̃_t`` per date and ticker (fractions of the pre-trade value).
    costs : Series
        Cost paid at each close as a fraction of the pre-trade value.
    turnover : Series
        ``Σ_i |trades|`` per date (buys plus sells, a fraction of the pre-trade value).
    benchmark : Series or None
        Benchmark daily returns on the same dates (used for beta, alpha, IR).
    metrics : dict
        Headline figures, see :func:`mltrainer.backtest.metrics.performance_metrics`.
    settings : dict
        The costs, limits and choices the run used (JSON-ready).
    warnings : tuple of str
        What was clipped, filled or ignored.
    """

    equity: pd.Series
    returns: pd.Series
    gross_returns: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    costs: pd.Series
    turnover: pd.Series
    benchmark: pd.Series | None
    metrics: dict
    settings: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def drawdown(self) -> pd.Series:
        """Fractional distance below the running peak of the equity curve (<= 0)."""
        return drawdown(self.equity, self.settings.get("initial_capital", 1.0))

    def summary(self) -> dict:
        """Metrics, dates and the final equity as a JSON-ready dict (what the CLI prints)."""
        idx = self.equity.index
        return {
            "first_date": str(idx[0].date()),
            "last_date": str(idx[-1].date()),
            "n_dates": len(idx),
            "n_tickers": self.positions.shape[1],
            "final_equity": float(self.equity.iloc[-1]),
            "metrics": dict(self.metrics),
            "settings": dict(self.settings),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- inputs
def _check_signal(signal: pd.DataFrame, prices: pd.DataFrame, what: str) -> None:
    if not isinstance(signal, pd.DataFrame):
        raise DataError(f"the {what} must be a DataFrame (dates x tickers), got "
                        f"{type(signal).__name__}")
    if not isinstance(signal.index, pd.DatetimeIndex):
        raise DataError(f"the {what} frame needs a DatetimeIndex of trading dates")
    if signal.index.has_duplicates or not signal.index.is_monotonic_increasing:
        raise DataError(f"the {what} frame's dates must be sorted and unique")
    if signal.columns.has_duplicates:
        dup = signal.columns[signal.columns.duplicated()].unique()
        raise DataError(f"the {what} frame has duplicated ticker column(s): "
                        f"{', '.join(map(str, dup[:5]))}")
    unknown = signal.columns.difference(prices.columns, sort=False)
    if len(unknown):
        raise DataError(
            f"the {what} frame has {len(unknown)} ticker(s) with no prices: "
            f"{', '.join(map(str, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}; "
            f"the price data has {prices.shape[1]} tickers"
        )
    missing = signal.index.difference(prices.index, sort=False)
    if len(missing):
        raise DataError(
            f"the {what} frame has {len(missing)} date(s) that are not trading dates of "
            f"the prices, e.g. {', '.join(str(d.date()) for d in missing[:3])}; the prices "
            f"cover {prices.index[0].date()} to {prices.index[-1].date()}"
        )


def _check_limits(gross_limit: float, max_weight: float | None, costs: dict) -> None:
    if not (np.isfinite(gross_limit) and gross_limit > 0):
        raise ParameterError(f"gross_limit must be positive (got {gross_limit}); 1.0 means "
                             "fully invested, 2.0 allows 2x gross leverage")
    if max_weight is not None and not (np.isfinite(max_weight) and max_weight > 0):
        raise ParameterError(f"max_weight must be positive or None (got {max_weight})")
    for name, value in costs.items():
        arr = np.asarray(value, dtype="float64")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1000):
            raise ParameterError(f"{name} must be between 0 and 1000 basis points (got {value})")


def signal_to_weights(
    signal: pd.DataFrame,
    gross_limit: float = 1.0,
    max_weight: float | None = None,
    mode: str = "normalize",
    strict: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Target weights from a signal (or from given weights), within the limits.

    Parameters
    ----------
    signal : DataFrame
        Dates x tickers. NaN means "no position" (weight 0).
    gross_limit : float
        Largest gross exposure ``Σ_i |w_i|``.
    max_weight : float, optional
        Largest ``|w_i|``.
    mode : {"normalize", "weights"}
        ``normalize``: ``w = gross_limit x s / Σ_i |s_i|`` (rows with no signal stay in
        cash). ``weights``: the frame already holds weights; rows whose gross exposure
        exceeds the limit are scaled down to it (or raise when ``strict``).
    strict : bool
        Raise a DataError instead of scaling/clipping weights above the limits.

    Returns
    -------
    weights : DataFrame
    notes : list of str
        What was scaled or clipped, for the result's warnings.

    Notes
    -----
    ``max_weight`` clips each weight to ``[-max_weight, max_weight]`` after the
    normalisation, without renormalising: the clipped excess stays in cash.
    """
    values = signal.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    notes: list[str] = []
    _to_weights(values, gross_limit, max_weight, mode, strict, signal.index, signal.columns,
                notes)
    return pd.DataFrame(values, index=signal.index, columns=signal.columns), notes


def _to_weights(values: np.ndarray, gross_limit, max_weight, mode, strict, index, columns,
                notes: list, finite_only: bool = False) -> np.ndarray:
    """In place: NaN -> 0, then normalise or cap the rows (see :func:`signal_to_weights`).

    ``finite_only``: the caller guarantees there is no NaN or infinity left.
    """
    if not finite_only:
        np.putmask(values, ~np.isfinite(values), 0.0)
    gross = np.abs(values).sum(axis=1)
    if mode == "normalize":
        scale = np.divide(gross_limit, gross, out=np.zeros_like(gross), where=gross > 0)
        values *= scale[:, None]
    elif mode == "weights":
        over = gross > gross_limit * (1 + 1e-12)
        if over.any():
            first = int(over.argmax())
            text = (f"{int(over.sum())} date(s) have gross exposure above the limit "
                    f"{gross_limit:g} (first {index[first].date()}: {gross[first]:.4g})")
            if strict:
                raise DataError(text + "; lower the weights or raise gross_limit")
            values[over] *= (gross_limit / gross[over])[:, None]
            notes.append(text + "; those rows were scaled down to the limit")
    else:
        raise ParameterError(f"weighting must be 'normalize' or 'weights' (got {mode!r})")
    if max_weight is not None and values.size:
        top = np.abs(values).max(axis=1)
        if np.any(top > max_weight * (1 + 1e-12)):
            big = np.abs(values) > max_weight * (1 + 1e-12)
            r, c = np.argwhere(big)[0]
            text = (f"{int(big.sum())} weight(s) exceed max_weight {max_weight:g} (first "
                    f"{columns[c]} on {index[r].date()}: {values[r, c]:.4g})")
            if strict:
                raise DataError(text + "; lower the weights or raise max_weight")
            np.clip(values, -max_weight, max_weight, out=values)
            notes.append(text + "; clipped to the limit, the excess stays in cash")
    return values


def _growth_and_returns(close: np.ndarray, finite: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
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


def _daily_cash_rate(rate: pd.Series | float | None, dates: pd.DatetimeIndex,
                     periods: int) -> np.ndarray:
    """Annual percentage rate -> the daily rate known at each date (carried forward)."""
    if rate is None:
        return np.zeros(len(dates))
    if np.isscalar(rate):
        return np.full(len(dates), float(rate) / 100.0 / periods)
    series = pd.Series(rate).astype("float64").dropna().sort_index()
    if series.empty or series.index[0] > dates[0]:
        first = "no values" if series.empty else f"starts {series.index[0].date()}"
        raise DataError(f"the cash rate series {first}; it must cover the backtest start "
                        f"{dates[0].date()}")
    aligned = series.reindex(series.index.union(dates)).ffill().reindex(dates)
    return aligned.to_numpy() / 100.0 / periods


# ------------------------------------------------------------------------- core maths
def simulate(
    weights: np.ndarray,
    returns: np.ndarray,
    traded: np.ndarray,
    growth: np.ndarray,
    cost_rate: np.ndarray,
    cash_rate: np.ndarray,
    g0: np.ndarray | None = None,
) -> dict:
    """Solve the accounting recursion of the module docstring for the whole panel.

    Parameters
    ----------
    weights : (T, N) array
        Target weights (used only where ``traded``).
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
        A first guess of the value growth (a previous solution of a nearby problem, so
        a re-run converges in a sweep or two); default the no-cost growth.

    Returns
    -------
    dict of arrays: ``g`` (pre-trade value growth ``V⁻_t / V⁻_{t-1}``), ``cost``,
    ``positions`` and ``trades``.

    Notes
    -----
    Held cells carrying a position set on an earlier traded row ``a`` are worth
    ``w_a (growth_t / growth_a) (V⁻_a / V⁻_t)``; only they depend on ``g`` besides the
    drift denominators, so each sweep touches the full panel four times (divide,
    subtract, abs, product with the cost rates) plus the carried cells.
    """
    n_t, _ = weights.shape
    target = weights  # zero wherever not traded (the caller guarantees it)
    # held cells after a traded one can carry a position; find their columns (a held
    # cell follows the first traded one unless every later row is traded)
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
        base = target[a_rows, cols] * growth[rows, cols] / growth[a_rows, cols]
        keep = base != 0
        rows, cols, a_rows, base = rows[keep], cols[keep], a_rows[keep], base[keep]
    else:
        rows = cols = a_rows = np.empty(0, dtype=np.intp)
        base = np.empty(0)
    nxt = rows + 1 < n_t  # carried cells that feed the next row's drift
    n_rows, n_cols = rows[nxt] + 1, cols[nxt]
    n_one_r = 1.0 + returns[n_rows, n_cols]
    n_ret = returns[n_rows, n_cols]

    # drift numerators A_t = w_{t-1} (1 + r_t); carried cells are overwritten per sweep
    numer = np.empty_like(target)
    numer[0] = 0.0
    np.multiply(target[:-1], returns[1:], out=numer[1:])  # w r, then + w: no temporary
    port0 = np.zeros(n_t)
    port0[1:] = numer[1:].sum(axis=1)
    numer[1:] += target[:-1]
    invested0 = target.sum(axis=1)
    has_cost = bool(np.any(cost_rate > 0))
    uniform = bool(np.all(cost_rate == cost_rate[0])) if len(cost_rate) else True
    turnover0 = float(np.abs(target[0]).sum())
    cost0 = float(np.abs(target[0]) @ cost_rate)
    trade_rows = np.flatnonzero(traded[1:].any(axis=1)) + 1
    dense = len(trade_rows) == n_t - 1
    if dense:
        sel = slice(1, None)
        z = rows >= 1
        z_rows, z_cols = rows[z] - 1, cols[z]
    else:
        sel = trade_rows
        in_tr = np.isin(rows, trade_rows)
        z_rows, z_cols = np.searchsorted(trade_rows, rows[in_tr]), cols[in_tr]
    sel_target = target[sel]
    buf = np.empty_like(sel_target)

    def sweep(g: np.ndarray):
        vm = np.cumprod(g)
        carried = base * (vm[a_rows] / vm[rows])
        port, invested = port0, invested0
        if len(rows):
            carried_next = carried[nxt]
            numer[n_rows, n_cols] = carried_next * n_one_r
            port = port0 + np.bincount(n_rows, carried_next * n_ret, minlength=n_t)
            invested = invested0 + np.bincount(rows, carried, minlength=n_t)
        cost = np.zeros(n_t)
        turnover = None
        if has_cost:
            cost[0] = cost0
            if len(trade_rows):
                np.divide(numer[sel], g[sel, None], out=buf)
                np.subtract(sel_target, buf, out=buf)
                buf[z_rows, z_cols] = 0.0
                np.abs(buf, out=buf)
                # a row sum, not a BLAS product: multithreaded BLAS stalls on a busy machine
                if uniform:
                    turnover = np.zeros(n_t)
                    turnover[0] = turnover0
                    turnover[sel] = buf.sum(axis=1)
                    cost[sel] = turnover[sel] * cost_rate[0]
                else:
                    cost[sel] = np.einsum("ij,j->i", buf, cost_rate)
        new_g = np.ones(n_t)
        new_g[1:] = (1.0 + port[1:] - cost[:-1]
                     + (1.0 - invested[:-1] - cost[:-1]) * cash_rate[:-1])
        return new_g, cost, carried, turnover

    if g0 is not None:
        g = np.array(g0, dtype="float64")
    else:
        g = np.ones(n_t)
        g[1:] = 1.0 + port0[1:] + (1.0 - invested0[:-1]) * cash_rate[:-1]  # no-cost guess
    for _ in range(_MAX_SWEEPS):
        new_g, cost, carried, turnover = sweep(g)
        change = float(np.max(np.abs(new_g - g)))
        g = new_g
        if change <= _TOL:
            break
    else:
        return _simulate_loop(weights, returns, traded, cost_rate, cash_rate)
    positions = target  # filled in place: the caller's array becomes the positions
    positions[rows, cols] = carried
    trades = np.empty_like(positions)
    trades[0] = positions[0]
    np.divide(numer[1:], g[1:, None], out=trades[1:])
    np.subtract(positions[1:], trades[1:], out=trades[1:])
    trades[rows, cols] = 0.0  # held: no trade (exactly, not up to rounding)
    invested = invested0 + np.bincount(rows, carried, minlength=n_t) if len(rows) else invested0
    port = port0.copy()
    if len(rows):
        port += np.bincount(n_rows, carried[nxt] * n_ret, minlength=n_t)
    if turnover is None:
        turnover = np.abs(trades).sum(axis=1)
    return {"g": g, "cost": cost, "positions": positions, "trades": trades,
            "port": port, "invested": invested, "turnover": turnover,
            "held_rows": rows, "held_values": carried}


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
            g[t] = (1.0 + prev @ returns[t] - prev_cost
                    + (1.0 - prev.sum() - prev_cost) * cash_rate[t - 1])
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
    return {"g": g, "cost": cost, "positions": pos, "trades": trades, "port": port,
            "invested": pos.sum(axis=1), "turnover": np.abs(trades).sum(axis=1)}


# ------------------------------------------------------------------------ entry point
def run_backtest(
    signal: pd.DataFrame,
    prices: MarketData | pd.DataFrame,
    *,
    weighting: str = "normalize",
    sizing: Callable | None = None,
    members: pd.DataFrame | None = None,
    commission_bps: float = 0.0,
    slippage_bps: float = 0.0,
    spread_bps: float | pd.Series = 0.0,
    gross_limit: float = 1.0,
    max_weight: float | None = None,
    strict: bool = False,
    rebalance_every: int = 1,
    cash_rate: pd.Series | float | None = None,
    benchmark: pd.Series | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    initial_capital: float = 1.0,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> BacktestResult:
    """Backtest a signal in [-1, 1] or target weights on daily prices.

    Parameters
    ----------
    signal : DataFrame
        Dates x tickers, decided at each date's close (so it earns the next day's return).
        Its dates must be trading dates of ``prices`` and its tickers must have prices,
        else DataError. NaN = no position. A date absent from the frame (between its first
        and last date) is not a rebalance date: positions drift.
    prices : MarketData or DataFrame
        Returns come from ``adj_close`` (or from the frame itself).
    weighting : {"normalize", "weights"}
        See :func:`signal_to_weights`. Ignored when ``sizing`` is given (its output is
        used as weights).
    sizing : callable or Model, optional
        ``sizing(signal, data) -> weights frame``, or a model with output kind "weights"
        (a ``sizing/...`` model): the absolute value of its output is the size of a
        full-strength position, so ``weights = signal x |sizes|`` (direction from the
        signal, magnitude from the sizing model; NaN sizes = no position). The result
        is used as weights (limits applied, no renormalisation).
    members : DataFrame of bool, optional
        Point-in-time index membership (dates x tickers, "is a member on date"); carried
        forward onto the backtest dates. Non-members (and tickers absent from the frame)
        get weight 0.
    commission_bps, slippage_bps : float
        Costs in basis points of traded value.
    spread_bps : float or Series
        Half the bid-ask spread in basis points of traded value, one number or per ticker.
    gross_limit, max_weight, strict :
        Exposure limits, see :func:`signal_to_weights`.
    rebalance_every : int
        Trade on every k-th date of the signal frame only (1 = every date).
    cash_rate : Series or float, optional
        Annual cash rate in percent (e.g. FRED DTB3), carried forward; cash earns
        ``rate / 100 / periods_per_year`` a day. Default: cash earns 0.
    benchmark : Series, optional
        Benchmark daily returns; default the equal-weighted universe (mean of the
        tickers' daily returns on each date).
    start, end : date-like, optional
        Restrict the backtest to these dates (inclusive).
    initial_capital : float
        The value before the first date.

    Returns
    -------
    BacktestResult
    """
    data = prices if isinstance(prices, MarketData) else None
    price_frame = prices.adj_close if data is not None else prices
    if not isinstance(price_frame, pd.DataFrame):
        raise DataError("prices must be MarketData or a DataFrame of adjusted closes")
    _check_signal(signal, price_frame, "signal")
    if not isinstance(rebalance_every, (int, np.integer)) or rebalance_every < 1:
        raise ParameterError(f"rebalance_every must be a positive integer (got "
                             f"{rebalance_every!r})")
    _check_limits(gross_limit, max_weight, {"commission_bps": commission_bps,
                                            "slippage_bps": slippage_bps,
                                            "spread_bps": spread_bps})
    if not (np.isfinite(initial_capital) and initial_capital > 0):
        raise ParameterError(f"initial_capital must be positive (got {initial_capital})")
    if weighting not in ("normalize", "weights"):
        raise ParameterError(f"weighting must be 'normalize' or 'weights' (got {weighting!r})")

    # ---- the dates: the signal's span, cut to start/end
    lo = signal.index[0] if len(signal.index) else None
    hi = signal.index[-1] if len(signal.index) else None
    if lo is not None and start is not None:
        lo = max(pd.Timestamp(start), lo)
    if hi is not None and end is not None:
        hi = min(pd.Timestamp(end), hi)
    all_dates = price_frame.index
    i0 = all_dates.searchsorted(lo, "left") if lo is not None else 0
    i1 = all_dates.searchsorted(hi, "right") if hi is not None else 0
    if lo is None or i1 <= i0:
        span = (f"{signal.index[0].date()} to {signal.index[-1].date()}"
                if len(signal.index) else "no dates")
        raise DataError(f"empty date range: no trading dates between {start or lo} and "
                        f"{end or hi} (the signal covers {span})")
    dates = all_dates[i0:i1]
    if len(dates) != len(signal.index) or not signal.index.equals(dates):
        signal = signal.loc[(signal.index >= dates[0]) & (signal.index <= dates[-1])]
    tickers = signal.columns
    warnings: list[str] = []

    # ---- prices and returns (numpy views where possible)
    close = price_frame.to_numpy(dtype="float64", na_value=np.nan)[i0:i1]
    if not price_frame.columns.equals(tickers):
        close = close[:, price_frame.columns.get_indexer(tickers)]
    finite = np.isfinite(close)
    growth, rets = _growth_and_returns(close, finite)

    # ---- signal -> target weights on the cells that can trade
    if sizing is not None:
        raw = _apply_sizing(sizing, signal, data if data is not None else price_frame)
        mode = "weights"
    else:
        raw, mode = signal, weighting
    full_rows = raw.index.equals(dates)
    if not (full_rows and raw.columns.equals(tickers)):
        raw = raw.reindex(index=dates, columns=tickers)
    raw_values = raw.to_numpy(dtype="float64", na_value=np.nan)
    if full_rows and rebalance_every == 1:
        tradable = finite
    else:
        rebalance = np.zeros(len(dates), dtype=bool)
        rebalance[dates.get_indexer(signal.index)[::rebalance_every]] = True
        tradable = finite & rebalance[:, None]
    member_cells = None
    if members is not None:
        member_cells = _membership(members, dates, tickers, warnings)
        tradable_for_signal = tradable & member_cells
    else:
        tradable_for_signal = tradable
    # NaN, no price, no rebalance or not a member: weight 0
    values = np.where(tradable_for_signal & np.isfinite(raw_values), raw_values, 0.0)
    _to_weights(values, gross_limit, max_weight, mode, strict, dates, tickers, warnings,
                finite_only=True)

    # ---- the recursion
    spread = (spread_bps.reindex(tickers).fillna(0.0).to_numpy(dtype="float64")
              if isinstance(spread_bps, pd.Series) else np.full(len(tickers), float(spread_bps)))
    cost_rate = (float(commission_bps) + float(slippage_bps) + spread) / 1e4
    rho = _daily_cash_rate(cash_rate, dates, periods_per_year)
    sim = simulate(values, rets, tradable, growth, cost_rate, rho)
    sim = _limit_held(sim, tradable, gross_limit, strict, dates, tickers, warnings,
                      lambda targets, g0: simulate(targets, rets, tradable, growth,
                                                   cost_rate, rho, g0=g0))

    g, cost = sim["g"], sim["cost"]
    pre_value = initial_capital * np.cumprod(g)
    equity_values = pre_value * (1.0 - cost)
    if np.any(equity_values <= 0):
        first = dates[int(np.argmax(equity_values <= 0))]
        warnings.append(f"the portfolio lost all its value on {first.date()}; later figures "
                        "are not meaningful")
    equity = pd.Series(equity_values, index=dates, name="equity")
    prev_equity = np.concatenate([[initial_capital], equity_values[:-1]])
    net = pd.Series(equity_values / prev_equity - 1.0, index=dates, name="returns")
    gross_ret = np.zeros(len(dates))
    gross_ret[1:] = sim["port"][1:] + (1.0 - sim["invested"][:-1]) * rho[:-1]
    positions = pd.DataFrame(sim["positions"], index=dates, columns=tickers, copy=False)
    trades = pd.DataFrame(sim["trades"], index=dates, columns=tickers, copy=False)
    turnover = pd.Series(sim["turnover"], index=dates, name="turnover")
    costs = pd.Series(cost, index=dates, name="costs")

    # the default benchmark is the equal-weighted universe the run may hold: its members
    bench = _benchmark(benchmark, rets, finite if member_cells is None else finite & member_cells,
                       dates, warnings)
    rf = (pd.Series(np.concatenate([[0.0], rho[:-1]]), index=dates)
          if cash_rate is not None else None)
    metrics = performance_metrics(
        net, benchmark=bench, risk_free=rf, turnover=turnover,
        periods_per_year=periods_per_year, initial_value=initial_capital)
    pos = sim["positions"]
    metrics["avg_gross_exposure"] = float(np.abs(pos).sum(axis=1).mean())
    metrics["avg_net_exposure"] = float(sim["invested"].mean())
    metrics["total_costs"] = float(np.sum(cost * pre_value) / initial_capital)
    settings = {
        "weighting": "sizing" if sizing is not None else weighting,
        "commission_bps": float(commission_bps), "slippage_bps": float(slippage_bps),
        "spread_bps": (float(spread_bps) if not isinstance(spread_bps, pd.Series)
                       else "per ticker"),
        "gross_limit": float(gross_limit),
        "max_weight": None if max_weight is None else float(max_weight),
        "strict": bool(strict), "rebalance_every": int(rebalance_every),
        "cash_rate": None if cash_rate is None else ("series" if not np.isscalar(cash_rate)
                                                     else float(cash_rate)),
        "benchmark": "given" if benchmark is not None else (
            "equal-weighted universe" if members is None else "equal-weighted index members"),
        "initial_capital": float(initial_capital),
        "members": members is not None,
    }
    return BacktestResult(
        equity=equity, returns=net,
        gross_returns=pd.Series(gross_ret, index=dates, name="gross_returns"),
        positions=positions, trades=trades, costs=costs, turnover=turnover,
        benchmark=bench, metrics=metrics, settings=settings, warnings=tuple(warnings))


def _limit_held(sim: dict, tradable: np.ndarray, gross_limit: float, strict: bool, dates,
                tickers, warnings: list, rerun: Callable[[np.ndarray, np.ndarray], dict]
                ) -> dict:
    """Keep held-without-a-price positions inside ``gross_limit`` on rebalance dates.

    The targets are sized before the simulation, but the weight a position held without a
    price carries on a date depends on the portfolio's value, known only after it. So the
    simulation is checked afterwards and, on the rows where the held and the traded
    positions together exceed the limit, the traded targets are scaled to what the held
    ones leave, and the panel is simulated again. Scaling one row moves the value (and so
    the held weights) of later rows by a cost-sized amount: a second pass is rare and a
    third, after the first correction, changes nothing above 1e-9.
    """
    for attempt in range(4):
        pos = sim["positions"]
        if "held_rows" in sim:  # the carried cells are the held ones: no full-panel pass
            held = np.bincount(sim["held_rows"], np.abs(sim["held_values"]),
                               minlength=len(pos))
        else:
            held = np.where(tradable, 0.0, np.abs(pos)).sum(axis=1)
        traded = np.abs(pos).sum(axis=1) - held
        over = ((held > 0) & (traded > 0) & tradable.any(axis=1)
                & (held + traded > gross_limit * (1 + 1e-9)))
        if not over.any():
            return sim
        if attempt == 0:
            r = int(over.argmax())
            without = [str(tickers[j]) for j in np.flatnonzero(~tradable[r] & (pos[r] != 0))]
            text = (f"{int(over.sum())} rebalance date(s) hold positions in tickers with no "
                    f"price that take the gross exposure above the limit {gross_limit:g} "
                    f"(first {dates[r].date()}: {held[r] + traded[r]:.4g}, held without a "
                    f"price: {', '.join(without[:5])})")
            if strict:
                raise DataError(text + "; lower the weights, raise gross_limit or leave out "
                                "tickers with price gaps")
            warnings.append(text + "; the weights of the tickers that trade were scaled down "
                            "to keep the total at the limit")
        targets = np.where(tradable, pos, 0.0)
        targets[over] *= np.clip((gross_limit - held[over]) / traded[over], 0.0, 1.0)[:, None]
        sim = rerun(targets, sim["g"])  # warm start: the growth barely moves
    return sim


def _apply_sizing(sizing, signal: pd.DataFrame, data) -> pd.DataFrame:
    from mltrainer.models.base import WEIGHTS, Model

    if isinstance(sizing, Model):
        if hasattr(sizing, "size"):
            out = sizing.size(signal, data)
        else:
            if sizing.output_kind != WEIGHTS:
                raise ParameterError(
                    f"{type(sizing).__name__} outputs {sizing.output_kind}; a sizing model "
                    "must output weights")
            if not isinstance(data, MarketData):
                raise DataError("a sizing model needs MarketData, not a bare price frame")
            sizes = sizing.run(data).primary.reindex(index=signal.index, columns=signal.columns)
            out = signal * sizes.abs()
    elif callable(sizing):
        out = sizing(signal, data)
    else:
        raise ParameterError("sizing must be a callable (signal, data) -> weights or a "
                             "weights-model instance")
    if not isinstance(out, pd.DataFrame):
        raise DataError(f"the sizing step returned {type(out).__name__}, not a DataFrame")
    _check_signal(out, data.adj_close if isinstance(data, MarketData) else data,
                  "sizing output")
    return out


def _membership(members: pd.DataFrame, dates, tickers, warnings: list) -> np.ndarray:
    if not isinstance(members, pd.DataFrame) or not isinstance(members.index, pd.DatetimeIndex):
        raise DataError("members must be a boolean DataFrame indexed by dates (dates x "
                        "tickers, True where the ticker is an index member)")
    if members.index.equals(dates) and members.columns.equals(tickers):
        return members.to_numpy(dtype=bool)  # already aligned (a point-in-time mask)
    absent = tickers.difference(members.columns, sort=False)
    if len(absent):
        warnings.append(f"{len(absent)} ticker(s) absent from the membership frame are "
                        f"treated as non-members: {', '.join(map(str, absent[:5]))}")
    frame = members.sort_index().astype("float64").reindex(columns=tickers)
    if len(frame.index) == 0 or frame.index[0] > dates[0]:
        warnings.append("the membership frame starts after the backtest start; earlier "
                        "dates count as non-members")
    aligned = frame.reindex(frame.index.union(dates)).ffill().reindex(dates)
    return aligned.fillna(0.0).to_numpy() > 0.5


def _benchmark(benchmark, rets: np.ndarray, finite: np.ndarray, dates, warnings: list):
    """The given benchmark returns on the backtest dates, or the equal-weighted universe.

    The equal-weighted universe return on date t is the mean daily return of the tickers
    with a price on both t-1 and t (daily rebalanced; 0 on the first date).
    """
    if benchmark is None:
        both = finite[1:] & finite[:-1]
        count = both.sum(axis=1)
        total = np.einsum("ij,ij->i", rets[1:], both)
        ew = np.zeros(len(dates))
        np.divide(total, count, out=ew[1:], where=count > 0)
        return pd.Series(ew, index=dates, name="benchmark")
    bench = pd.Series(benchmark).astype("float64")
    aligned = bench.reindex(dates)
    missing = int(aligned.isna().sum())
    if missing == len(dates):
        raise DataError("the benchmark returns share no date with the backtest "
                        f"({dates[0].date()} to {dates[-1].date()})")
    if missing:
        warnings.append(f"the benchmark has no return on {missing} backtest date(s); "
                        "counted as 0")
    return aligned.fillna(0.0).rename("benchmark")


def backtest_model(model, data: MarketData, **kwargs) -> tuple[BacktestResult, object]:
    """Run a signal or weights model on ``data`` and backtest its output.

    Returns the result and the model output. A signal model's output is normalised to
    the gross limit; a weights model's output is used as weights.
    """
    from mltrainer.models.base import SIGNAL, WEIGHTS

    if model.output_kind not in (SIGNAL, WEIGHTS):
        raise ParameterError(
            f"{type(model).__name__} outputs {model.output_kind}; a backtest needs a model "
            "whose output is a signal or portfolio weights")
    output = model.run(data)
    kwargs.setdefault("weighting", "weights" if model.output_kind == WEIGHTS else "normalize")
    return run_backtest(output.primary, data, **kwargs), output
