"""A solved backtest's result: equity, returns, positions, the benchmark and the metrics.

:func:`summarise` is the last step of :func:`mltrainer.backtest.engine.run_backtest`: it
turns the recursion's growth, costs and positions into a :class:`BacktestResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.backtest.metrics import drawdown, performance_metrics
from mltrainer.backtest.panel import BacktestPanel, BacktestSettings
from mltrainer.errors import DataError

LATE_START_DAYS = 21  # a first position a month or more into the range is worth a warning


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
    warnings += _reading_notes(dates, sim, settings)
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


def _reading_notes(dates: pd.DatetimeIndex, sim: dict, settings: BacktestSettings) -> list[str]:
    """What the figures need said beside them: a range under a year, free leverage, a
    model that held nothing or started late."""
    notes: list[str] = []
    if len(dates) < settings.periods_per_year:
        notes.append(
            f"the backtest covers {fmt.count(len(dates), 'trading day')}, under a year: its "
            "annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar, alpha, information "
            "ratio, turnover, benchmark CAGR) extrapolate that to a year"
        )
    # long beyond equity (a cost paid from a fully invested book leaves a sliver: 1% is
    # the least worth a word)
    borrowed = np.asarray(sim["invested"], dtype="float64") - 1.0
    if settings.cash_rate is None and np.nanmax(borrowed, initial=0.0) > 0.01:
        notes.append(
            f"the book holds up to {fmt.percent(1.0 + np.nanmax(borrowed), 0)} of its equity "
            f"long net ({fmt.count(int((borrowed > 0.01).sum()), 'day')}): the borrowed part "
            "is financed at 0% (no cash rate given), which flatters the figures"
        )
    held = np.flatnonzero(np.any(sim["positions"] != 0, axis=1))
    if not held.size:
        notes.append(
            "the model took no position on any date (its signal or weights are zero or NaN "
            "throughout): every figure is that of cash"
        )
    elif held[0] >= LATE_START_DAYS:  # e.g. a 252-day window on data that starts late
        notes.append(
            f"the model took its first position on {dates[held[0]].date()}, "
            f"{fmt.count(int(held[0]), 'trading day')} into the range: the figures count "
            "those days as cash"
        )
    return notes


def _benchmark(benchmark, rets: np.ndarray, finite: np.ndarray, dates, warnings: list):
    """The given benchmark returns on the backtest dates, or the equal-weighted universe.

    The equal-weighted universe return on date t is the mean daily return of the tickers
    with a price on both t-1 and t (daily rebalanced). Either is 0 on the first date: the
    strategy holds nothing into it (its first return is the opening cost), so a given
    index's move into that day (+9.4% into 2020-03-24) is not the benchmark's either.
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
    if aligned.isna().all():
        raise DataError(
            "the benchmark returns share no date with the backtest "
            f"({dates[0].date()} to {dates[-1].date()})"
        )
    aligned.iloc[0] = 0.0  # the day before trading begins, whatever the index did
    missing = int(aligned.isna().sum())
    if missing:
        warnings.append(f"the benchmark has no return on {missing} backtest date(s); counted as 0")
    return aligned.fillna(0.0).rename("benchmark")
