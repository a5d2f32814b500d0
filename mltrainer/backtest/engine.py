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
:func:`run_backtest` builds a :class:`BacktestSettings` and runs the steps, each usable
alone: :func:`load_panel` (checks, dates, prices and returns), :func:`prepare_weights`
(signal to target weights, :mod:`mltrainer.backtest.weights`), :func:`solve` (the
recursion plus the gross-limit check of positions held without a price) and
:func:`summarise` (equity, frames, benchmark, metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer.backtest.metrics import PERIODS_PER_YEAR, drawdown, performance_metrics
from mltrainer.backtest.simulation import (  # noqa: F401  (simulate, _simulate_loop: re-exported)
    Recursion,
    _growth_and_returns,
    _simulate_loop,
    plan_simulation,
    simulate,
)
from mltrainer.backtest.weights import (  # noqa: F401  (signal_to_weights: re-exported)
    _apply_sizing,
    _check_limits,
    _check_signal,
    _membership,
    _to_weights,
    signal_to_weights,
)
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError


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


@dataclass(frozen=True, eq=False)  # Series fields: no element-wise ==
class BacktestSettings:
    """The costs, limits and choices of a backtest: :func:`run_backtest`'s keyword
    arguments other than the sizing model and the membership frame (see there)."""

    weighting: str = "normalize"
    commission_bps: float = 0.0
    slippage_bps: float = 0.0
    spread_bps: float | pd.Series = 0.0
    gross_limit: float = 1.0
    max_weight: float | None = None
    strict: bool = False
    rebalance_every: int = 1
    cash_rate: pd.Series | float | None = None
    benchmark: pd.Series | None = None
    start: str | pd.Timestamp | None = None
    end: str | pd.Timestamp | None = None
    initial_capital: float = 1.0
    periods_per_year: int = PERIODS_PER_YEAR

    def validate(self) -> None:
        """Raise a ParameterError naming the first setting out of its range."""
        every = self.rebalance_every
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ParameterError(f"rebalance_every must be a positive integer (got {every!r})")
        _check_limits(
            self.gross_limit,
            self.max_weight,
            {
                "commission_bps": self.commission_bps,
                "slippage_bps": self.slippage_bps,
                "spread_bps": self.spread_bps,
            },
        )
        capital = self.initial_capital
        if not (np.isfinite(capital) and capital > 0):
            raise ParameterError(f"initial_capital must be positive (got {capital})")
        if self.weighting not in ("normalize", "weights"):
            raise ParameterError(
                f"weighting must be 'normalize' or 'weights' (got {self.weighting!r})"
            )

    def cost_rate(self, tickers: pd.Index) -> np.ndarray:
        """Cost per unit of traded value of each ticker (commission + slippage + spread)."""
        spread = self.spread_bps
        spread = (
            spread.reindex(tickers).fillna(0.0).to_numpy(dtype="float64")
            if isinstance(spread, pd.Series)
            else np.full(len(tickers), float(spread))
        )
        return (float(self.commission_bps) + float(self.slippage_bps) + spread) / 1e4

    def as_dict(self, sizing: bool, members: bool) -> dict:
        """The JSON-ready record of :attr:`BacktestResult.settings`."""
        cash, spread = self.cash_rate, self.spread_bps
        return {
            "weighting": "sizing" if sizing else self.weighting,
            "commission_bps": float(self.commission_bps),
            "slippage_bps": float(self.slippage_bps),
            "spread_bps": float(spread) if not isinstance(spread, pd.Series) else "per ticker",
            "gross_limit": float(self.gross_limit),
            "max_weight": None if self.max_weight is None else float(self.max_weight),
            "strict": bool(self.strict),
            "rebalance_every": int(self.rebalance_every),
            "cash_rate": None
            if cash is None
            else ("series" if not np.isscalar(cash) else float(cash)),
            "benchmark": "given"
            if self.benchmark is not None
            else ("equal-weighted universe" if not members else "equal-weighted index members"),
            "initial_capital": float(self.initial_capital),
            "members": members,
        }


@dataclass
class BacktestPanel:
    """The backtest's dates and tickers with their prices, returns and the signal on them.

    ``growth`` is the forward-filled adjusted close, ``returns`` the daily returns from
    it (0 where undefined), ``finite`` where a price exists; ``data`` is what a sizing
    step receives (the MarketData, or the bare price frame); ``warnings`` collects what
    the steps clipped, filled or ignored.
    """

    signal: pd.DataFrame
    data: MarketData | pd.DataFrame
    dates: pd.DatetimeIndex
    tickers: pd.Index
    growth: np.ndarray
    returns: np.ndarray
    finite: np.ndarray
    warnings: list = field(default_factory=list)


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


def load_panel(
    signal: pd.DataFrame, prices: MarketData | pd.DataFrame, settings: BacktestSettings
) -> BacktestPanel:
    """Check the inputs and settings; cut the signal and prices to the backtest dates.

    The dates are the signal's span, cut to ``settings.start``/``end``; the tickers the
    signal's columns. Raises DataError for inputs that do not fit, ParameterError for
    settings out of range.
    """
    data = prices if isinstance(prices, MarketData) else None
    price_frame = prices.adj_close if data is not None else prices
    if not isinstance(price_frame, pd.DataFrame):
        raise DataError("prices must be MarketData or a DataFrame of adjusted closes")
    _check_signal(signal, price_frame, "signal")
    settings.validate()
    i0, i1 = _date_span(signal.index, price_frame.index, settings.start, settings.end)
    dates = price_frame.index[i0:i1]
    if len(dates) != len(signal.index) or not signal.index.equals(dates):
        signal = signal.loc[(signal.index >= dates[0]) & (signal.index <= dates[-1])]
    tickers = signal.columns
    # numpy views where possible
    close = price_frame.to_numpy(dtype="float64", na_value=np.nan)[i0:i1]
    if not price_frame.columns.equals(tickers):
        close = close[:, price_frame.columns.get_indexer(tickers)]
    finite = np.isfinite(close)
    growth, rets = _growth_and_returns(close, finite)
    return BacktestPanel(
        signal, data if data is not None else price_frame, dates, tickers, growth, rets, finite
    )


def _date_span(
    signal_dates: pd.DatetimeIndex, all_dates: pd.DatetimeIndex, start, end
) -> tuple[int, int]:
    """Rows ``[i0, i1)`` of the price dates inside the signal's span and start/end."""
    lo = signal_dates[0] if len(signal_dates) else None
    hi = signal_dates[-1] if len(signal_dates) else None
    if lo is not None and start is not None:
        lo = max(pd.Timestamp(start), lo)
    if hi is not None and end is not None:
        hi = min(pd.Timestamp(end), hi)
    i0 = all_dates.searchsorted(lo, "left") if lo is not None else 0
    i1 = all_dates.searchsorted(hi, "right") if hi is not None else 0
    if lo is None or i1 <= i0:
        span = (
            f"{signal_dates[0].date()} to {signal_dates[-1].date()}"
            if len(signal_dates)
            else "no dates"
        )
        raise DataError(
            f"empty date range: no trading dates between {start or lo} and "
            f"{end or hi} (the signal covers {span})"
        )
    return i0, i1


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


def summarise(
    panel: BacktestPanel,
    settings: BacktestSettings,
    sim: dict,
    universe: np.ndarray,
    sizing: bool = False,
    members: bool = False,
) -> BacktestResult:
    """Equity, returns, positions, the benchmark and the metrics of a solved backtest.

    ``sim`` is :func:`solve`'s answer, ``universe`` :func:`prepare_weights`'; ``sizing``
    and ``members`` say whether those were given (for the settings record).
    """
    dates, tickers, warnings = panel.dates, panel.tickers, panel.warnings
    capital, rho = settings.initial_capital, sim["rho"]
    g, cost = sim["g"], sim["cost"]
    pre_value = capital * np.cumprod(g)
    equity_values = pre_value * (1.0 - cost)
    if np.any(equity_values <= 0):
        first = dates[int(np.argmax(equity_values <= 0))]
        warnings.append(
            f"the portfolio lost all its value on {first.date()}; later figures are not meaningful"
        )
    equity = pd.Series(equity_values, index=dates, name="equity")
    prev_equity = np.concatenate([[capital], equity_values[:-1]])
    net = pd.Series(equity_values / prev_equity - 1.0, index=dates, name="returns")
    gross_ret = np.zeros(len(dates))
    gross_ret[1:] = sim["port"][1:] + (1.0 - sim["invested"][:-1]) * rho[:-1]
    turnover = pd.Series(sim["turnover"], index=dates, name="turnover")
    # the default benchmark is the equal-weighted universe the run may hold: its members
    bench = _benchmark(settings.benchmark, panel.returns, universe, dates, warnings)
    rf = (
        pd.Series(np.concatenate([[0.0], rho[:-1]]), index=dates)
        if settings.cash_rate is not None
        else None
    )
    metrics = performance_metrics(
        net,
        benchmark=bench,
        risk_free=rf,
        turnover=turnover,
        periods_per_year=settings.periods_per_year,
        initial_value=capital,
    )
    metrics["avg_gross_exposure"] = float(np.abs(sim["positions"]).sum(axis=1).mean())
    metrics["avg_net_exposure"] = float(sim["invested"].mean())
    metrics["total_costs"] = float(np.sum(cost * pre_value) / capital)
    return BacktestResult(
        equity=equity,
        returns=net,
        gross_returns=pd.Series(gross_ret, index=dates, name="gross_returns"),
        positions=pd.DataFrame(sim["positions"], index=dates, columns=tickers, copy=False),
        trades=pd.DataFrame(sim["trades"], index=dates, columns=tickers, copy=False),
        costs=pd.Series(cost, index=dates, name="costs"),
        turnover=turnover,
        benchmark=bench,
        metrics=metrics,
        settings=settings.as_dict(sizing, members),
        warnings=tuple(warnings),
    )


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
            text + "; lower the weights, raise gross_limit or leave out tickers with price gaps"
        )
    panel.warnings.append(
        text + "; the weights of the tickers that trade were scaled down "
        "to keep the total at the limit"
    )


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
        raise DataError(
            "the benchmark returns share no date with the backtest "
            f"({dates[0].date()} to {dates[-1].date()})"
        )
    if missing:
        warnings.append(f"the benchmark has no return on {missing} backtest date(s); counted as 0")
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
            "whose output is a signal or portfolio weights"
        )
    output = model.run(data)
    kwargs.setdefault("weighting", "weights" if model.output_kind == WEIGHTS else "normalize")
    return run_backtest(output.primary, data, **kwargs), output
