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
(absurd costs or leverage) the exact day-by-day recursion is used instead
(:mod:`mltrainer.backtest.simulation`).

Steps
-----
:func:`run_backtest` builds a :class:`~mltrainer.backtest.panel.BacktestSettings` and
runs the steps, each usable alone: :func:`~mltrainer.backtest.panel.load_panel` (checks,
dates, prices and returns), :func:`prepare_weights` (signal to target weights,
:mod:`mltrainer.backtest.weights`), :func:`solve` (the recursion of
:mod:`mltrainer.backtest.simulation` plus the gross-limit check of positions held
without a price) and :func:`~mltrainer.backtest.summary.summarise` (equity, frames,
benchmark, metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mltrainer.backtest.panel import BacktestPanel, BacktestSettings, load_panel
from mltrainer.backtest.simulation import Recursion, plan_simulation
from mltrainer.backtest.summary import BacktestResult, summarise
from mltrainer.backtest.weights import (  # noqa: F401  (signal_to_weights: re-exported)
    _apply_sizing,
    _membership,
    _to_weights,
    signal_to_weights,
)
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.numerics.units import TRADING_DAYS

if TYPE_CHECKING:  # pragma: no cover
    from mltrainer.models.base import Model, ModelOutput

__all__ = [
    "BacktestPanel",
    "BacktestResult",
    "BacktestSettings",
    "backtest_model",
    "load_panel",
    "prepare_weights",
    "run_backtest",
    "signal_to_weights",
    "solve",
    "summarise",
]


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
    periods_per_year: int = TRADING_DAYS,
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
    weighting, commission_bps, slippage_bps, spread_bps, gross_limit, max_weight, strict,
    rebalance_every, cash_rate, benchmark, start, end, initial_capital, periods_per_year :
        The costs, limits and choices of the run: the fields of
        :class:`~mltrainer.backtest.panel.BacktestSettings` (documented there). ``weighting``
        is ignored when ``sizing`` is given.

    Returns
    -------
    BacktestResult
    """
    settings = BacktestSettings(
        weighting=weighting,
        commission_bps=commission_bps,
        slippage_bps=slippage_bps,
        spread_bps=spread_bps,
        gross_limit=gross_limit,
        max_weight=max_weight,
        strict=strict,
        rebalance_every=rebalance_every,
        cash_rate=cash_rate,
        benchmark=benchmark,
        start=start,
        end=end,
        initial_capital=initial_capital,
        periods_per_year=periods_per_year,
    )
    panel = load_panel(signal, prices, settings)
    targets, tradable, universe = prepare_weights(panel, settings, sizing, members)
    sim = solve(panel, settings, targets, tradable)
    return summarise(
        panel, settings, sim, universe, sizing=sizing is not None, members=members is not None
    )


def prepare_weights(
    panel: BacktestPanel,
    settings: BacktestSettings,
    sizing: Callable | None = None,
    members: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target weights on the cells that trade, within the limits.

    Returns
    -------
    targets : (T, N) array
        The weights traded at each close (0 where nothing is traded).
    tradable : (T, N) bool array
        Where a trade happens: a rebalance row and a price.
    universe : (T, N) bool array
        Where a ticker has a price (and is an index member): the default benchmark's
        universe.
    """
    dates, tickers, signal, finite = panel.dates, panel.tickers, panel.signal, panel.finite
    if sizing is not None:
        raw, mode = _apply_sizing(sizing, signal, panel.data), "weights"
    else:
        raw, mode = signal, settings.weighting
    full_rows = raw.index.equals(dates)
    if not (full_rows and raw.columns.equals(tickers)):
        raw = raw.reindex(index=dates, columns=tickers)
    raw_values = raw.to_numpy(dtype="float64", na_value=np.nan)
    if full_rows and settings.rebalance_every == 1:
        tradable = finite
    else:
        rebalance = np.zeros(len(dates), dtype=bool)
        rebalance[dates.get_indexer(signal.index)[:: settings.rebalance_every]] = True
        tradable = finite & rebalance[:, None]
    universe, for_signal = finite, tradable
    if members is not None:
        member_cells = _membership(members, dates, tickers, panel.warnings)
        universe, for_signal = finite & member_cells, tradable & member_cells
    # NaN, no price, no rebalance or not a member: weight 0
    values = np.where(for_signal & np.isfinite(raw_values), raw_values, 0.0)
    _to_weights(
        values,
        settings.gross_limit,
        settings.max_weight,
        mode,
        settings.strict,
        dates,
        tickers,
        panel.warnings,
        finite_only=True,
    )
    return values, tradable, universe


def solve(
    panel: BacktestPanel, settings: BacktestSettings, targets: np.ndarray, tradable: np.ndarray
) -> dict:
    """:func:`simulate` the targets, keeping positions held without a price within the
    gross limit (see :func:`_limit_held`). ``targets`` becomes the positions.

    Returns :func:`simulate`'s dict, with the daily cash rate ``rho`` added.
    """
    rho = _daily_cash_rate(settings.cash_rate, panel.dates, settings.periods_per_year)
    plan = plan_simulation(tradable, panel.growth, panel.returns)
    recursion = Recursion(
        targets, panel.returns, tradable, settings.cost_rate(panel.tickers), rho, plan
    )
    recursion.solve()
    if len(plan.rows):  # only a held cell can take the gross exposure over the limit
        _limit_held(recursion, tradable, settings.gross_limit, settings.strict, panel)
    sim = recursion.result()
    sim["rho"] = rho
    return sim


def _daily_cash_rate(
    rate: pd.Series | float | None, dates: pd.DatetimeIndex, periods: int
) -> np.ndarray:
    """Annual percentage rate -> the daily rate known at each date (carried forward)."""
    if rate is None:
        return np.zeros(len(dates))
    if np.isscalar(rate):
        return np.full(len(dates), float(rate) / 100.0 / periods)
    series = pd.Series(rate).astype("float64").dropna().sort_index()
    if series.empty or series.index[0] > dates[0]:
        first = "no values" if series.empty else f"starts {series.index[0].date()}"
        raise DataError(
            f"the cash rate series {first}; it must cover the backtest start {dates[0].date()}"
        )
    aligned = series.reindex(series.index.union(dates)).ffill().reindex(dates)
    return aligned.to_numpy() / 100.0 / periods


def _limit_held(
    recursion: Recursion,
    tradable: np.ndarray,
    gross_limit: float,
    strict: bool,
    panel: BacktestPanel,
) -> None:
    """Keep held-without-a-price positions inside ``gross_limit`` on rebalance dates.

    The targets are sized before the simulation, but the weight a position held without a
    price carries on a date depends on the portfolio's value, known only after it. So the
    solution is checked afterwards and, on the rows where the held and the traded
    positions together exceed the limit, the traded targets are scaled to what the held
    ones leave, and the recursion is solved again (warm-started; only those rows of the
    targets change). Scaling one row moves the value (and so the held weights) of later
    rows by a cost-sized amount: a second pass is rare and a third, after the first
    correction, changes nothing above 1e-9.
    """
    held = recursion.held_gross()
    if not held.any():
        return
    trading_rows = tradable.any(axis=1)
    traded = np.abs(recursion.target).sum(axis=1)  # gross exposure of the traded cells
    for attempt in range(4):
        over = (held > 0) & (traded > 0) & trading_rows & (held + traded > gross_limit * (1 + 1e-9))
        if not over.any():
            return
        if attempt == 0:
            _warn_held(recursion, held + traded, over, gross_limit, strict, panel)
        rows = np.flatnonzero(over)
        recursion.rescale(rows, np.clip((gross_limit - held[rows]) / traded[rows], 0.0, 1.0))
        traded[rows] = np.abs(recursion.target[rows]).sum(axis=1)
        recursion.solve(recursion.g)  # warm start: the growth barely moves
        held = recursion.held_gross()


def _warn_held(
    recursion: Recursion,
    gross: np.ndarray,
    over: np.ndarray,
    gross_limit: float,
    strict: bool,
    panel: BacktestPanel,
) -> None:
    """Say (or, when strict, raise) that held positions took rows over the limit."""
    r = int(over.argmax())
    without = [str(panel.tickers[j]) for j in recursion.held_columns(r)]
    text = (
        f"{int(over.sum())} rebalance date(s) hold positions in tickers with no "
        f"price that take the gross exposure above the limit {gross_limit:g} "
        f"(first {panel.dates[r].date()}: {gross[r]:.4g}, held without a "
        f"price: {', '.join(without[:5])})"
    )
    if strict:
        raise DataError(
            text + "; lower the weights, raise gross_limit (--gross-limit) or leave out "
            "tickers with price gaps"
        )
    panel.warnings.append(
        text + "; the weights of the tickers that trade were scaled down "
        "to keep the total at the limit"
    )


def backtest_model(
    model: Model, data: MarketData, **kwargs: object
) -> tuple[BacktestResult, ModelOutput]:
    """Run a signal or weights model on ``data`` and backtest its output.

    Returns the result and the model output. A signal model's output is normalised to
    the gross limit; a weights model's output is used as weights.
    """
    from mltrainer.models.base import SIGNAL, WEIGHTS

    if model.output_kind not in (SIGNAL, WEIGHTS):
        raise ParameterError(
            f"{type(model).__name__} outputs {model.output_kind}; a backtest needs a model "
            "whose output is a signal or portfolio weights"
        )
    output = model.run(data)
    kwargs.setdefault("weighting", "weights" if model.output_kind == WEIGHTS else "normalize")
    return run_backtest(output.primary, data, **kwargs), output
