"""Naive baselines for a walk-forward's out-of-sample track, on exactly its dates.

The out-of-sample span
----------------------
The test folds of a walk-forward are consecutive decision dates ``a .. b`` (positions in
``data.dates``); decision ``i`` earns the return of date ``i + 1``. The stitched track
opens its positions at the close of ``a`` (that date's return is the opening trades'
costs only), earns the returns of ``a+1 .. b+1`` and closes out at the close of
``b + 1``, the last test label. Every row of the table is a backtest over exactly these
dates, opened and closed out the same way and charged the same costs, so the rows differ
only in what was held.

The baselines
-------------
``equal_weight``
    Weights ``1 / k_t`` over the ``k_t`` tickers held from the close of ``t``: those with
    a price on ``t`` and on ``t + 1`` (a position never sits on a date without a price:
    a ticker is sold at its last close before a gap or a delisting, bought at its first
    one) and, with a membership mask, members on ``t``. Bought at the close of ``a`` and
    traded again only on a date where that set changes (a listing, a delisting, a gap, a
    membership change); otherwise the positions drift. The model's costs (commission,
    slippage, spread, cash rate), gross exposure 1.
``index``
    The S&P 500 price index (dividends not included, not traded, so no costs and no
    turnover), bought at the close of ``a``: ``r_t = P_t / P_{t-1} - 1``. Only where the
    series covers the whole span; otherwise the row says it is not available.
``default_params``
    The model with its default parameters on every test fold: a walk-forward with a
    one-point grid at the defaults (no selection). Built by
    :func:`mltrainer.backtest.walkforward.walk_forward`, which reuses the grid's run of
    the defaults when the grid holds them.

Every row reports CAGR, Sharpe, maximum drawdown and annual turnover (see
:func:`mltrainer.backtest.metrics.performance_metrics`), and the model's excess over it:
``excess_cagr = CAGR_model - CAGR_row``, ``excess_sharpe = Sharpe_model - Sharpe_row``
and the information ratio of the daily differences ``r_model - r_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer.backtest.engine import BacktestResult, run_backtest
from mltrainer.backtest.metrics import information_ratio, performance_metrics
from mltrainer.backtest.splits import Split
from mltrainer.backtest.weights import _membership
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.numerics.units import TRADING_DAYS

ROWS = {
    "model": "model (walk-forward, chosen parameters)",
    "equal_weight": "equal-weight buy-and-hold",
    "index": "S&P 500 index (price, no costs)",
    "default_params": "model, default parameters (fixed)",
}
# what the equal-weight baseline shares with the model's backtest: costs and accounting,
# not the model's exposure limits (a naive baseline is fully invested, unlevered)
SHARED_SETTINGS = ("commission_bps", "slippage_bps", "spread_bps", "cash_rate", "periods_per_year")
FIGURES = ("cagr", "sharpe", "max_drawdown", "annual_turnover")


def oos_span(dates: pd.DatetimeIndex, splits: list[Split]) -> pd.DatetimeIndex:
    """The dates a walk-forward's out-of-sample track covers: the first test decision
    through the last test label (module notes). The folds must be consecutive."""
    tests = np.concatenate([sp.test for sp in splits])
    first, last = int(tests[0]), int(tests[-1])
    if not np.array_equal(tests, np.arange(first, last + 1)):
        raise DataError(
            "the test folds are not consecutive; an out-of-sample span needs walk-forward folds"
        )
    return dates[first : last + 2]


def equal_weight_buy_and_hold(
    data: MarketData,
    span: pd.DatetimeIndex,
    *,
    members: pd.DataFrame | None = None,
    **backtest_kwargs,
) -> BacktestResult:
    """Equal-weight buy-and-hold of ``data``'s tickers over ``span`` (module notes).

    ``span`` is a run of consecutive dates of ``data``; its last date closes out.
    ``members`` (dates x tickers, True while a member) restricts the holdings to
    members; ``backtest_kwargs`` go to :func:`run_backtest` (costs, cash rate).
    """
    prices = data.adj_close
    lo = prices.index.get_indexer(span[:1])[0]
    if lo < 0 or not prices.index[lo : lo + len(span)].equals(span):
        raise DataError(
            f"the span {span[0].date()} to {span[-1].date()} is not a run of "
            "consecutive trading dates of the prices"
        )
    priced = prices.iloc[lo : lo + len(span)].notna().to_numpy()
    hold = priced[:-1] & priced[1:]  # decided at t, earning t+1 (module notes)
    if members is not None:
        hold &= _membership(members, span[:-1], prices.columns, [])
    changed = np.ones(len(hold), dtype=bool)
    changed[1:] = (hold[1:] != hold[:-1]).any(axis=1)
    rows = np.flatnonzero(changed)
    values = np.full((len(rows) + 1, prices.shape[1]), np.nan)
    values[:-1][hold[rows]] = 1.0
    signal = pd.DataFrame(values, index=span[rows].append(span[-1:]), columns=prices.columns)
    kwargs = {k: v for k, v in backtest_kwargs.items() if k in SHARED_SETTINGS}
    return run_backtest(
        signal, data, weighting="normalize", gross_limit=1.0, members=members, **kwargs
    )


def index_buy_and_hold(
    close: pd.Series | None, span: pd.DatetimeIndex
) -> tuple[pd.Series | None, str]:
    """Daily returns of holding an index over ``span`` (0 on the first date), and what
    they are; ``None`` and the reason when the series does not cover the span."""
    if close is None or close.dropna().empty:
        return None, "index: not available for this source"
    close = close.dropna().astype("float64")
    close.index = pd.DatetimeIndex(close.index)
    if close.index[0] > span[0] or close.index[-1] < span[-1]:
        return None, (
            f"index: not available for this source (the S&P 500 series runs "
            f"{close.index[0].date()} to {close.index[-1].date()}; the "
            f"out-of-sample dates run {span[0].date()} to {span[-1].date()})"
        )
    aligned = close.reindex(close.index.union(span)).ffill().reindex(span)
    returns = aligned.pct_change(fill_method=None).fillna(0.0)
    returns.iloc[0] = 0.0
    note = (
        "S&P 500 price index (dividends not included), held from the first "
        "out-of-sample close; not traded, so no costs"
    )
    gaps = span.difference(close.index)
    if len(gaps):
        note += (
            f"; {len(gaps)} out-of-sample date(s) have no index close and carry the "
            f"last one (first {gaps[0].date()})"
        )
    return returns.rename("index"), note


@dataclass
class BaselineReport:
    """The model's out-of-sample track beside the naive baselines, on the same dates.

    Attributes
    ----------
    span : dict
        What every figure covers: ``label`` ("out of sample"), ``first_date``,
        ``last_date``, ``n_dates``, ``n_folds``, ``universe``, ``costs``.
    returns : DataFrame
        Daily net returns over the span, one column per available row (keys of ``ROWS``).
    turnover : DataFrame
        Daily turnover of the rows that trade.
    notes : dict
        Row key -> what the row is, or why it is not available.
    equal_weight : BacktestResult or None
        The equal-weight baseline's backtest, for a caller scoring other models on the
        same span (:func:`baseline_report`'s ``equal_weight``).
    """

    span: dict
    returns: pd.DataFrame
    turnover: pd.DataFrame
    notes: dict = field(default_factory=dict)
    periods_per_year: int = TRADING_DAYS
    equal_weight: BacktestResult | None = field(default=None, repr=False, compare=False)

    def equity(self) -> pd.DataFrame:
        """Growth of 1 of each available row over the span."""
        return (1.0 + self.returns).cumprod()

    def table(self) -> pd.DataFrame:
        """One row per key of ``ROWS``: its figures and the model's excess over it."""
        model = self.returns["model"]
        figures = {key: self._figures(key) for key in ROWS}
        rows = []
        for key, label in ROWS.items():
            row = {"row": key, "label": label, **figures[key]}
            if key != "model" and key in self.returns:
                row["excess_cagr"] = figures["model"]["cagr"] - row["cagr"]
                row["excess_sharpe"] = figures["model"]["sharpe"] - row["sharpe"]
                row["information_ratio"] = information_ratio(
                    model.to_numpy(), self.returns[key].to_numpy(), self.periods_per_year
                )
            else:
                row.update(excess_cagr=np.nan, excess_sharpe=np.nan, information_ratio=np.nan)
            row["note"] = self.notes.get(key, "")
            rows.append(row)
        return pd.DataFrame(rows).set_index("row")

    def _figures(self, key: str) -> dict:
        if key not in self.returns:
            return dict.fromkeys(FIGURES, np.nan)
        turnover = self.turnover[key] if key in self.turnover else None
        m = performance_metrics(
            self.returns[key], turnover=turnover, periods_per_year=self.periods_per_year
        )
        return {k: m.get(k, np.nan) for k in FIGURES}

    def summary(self) -> dict:
        """JSON-ready: ``out_of_sample`` (what the figures cover) and one entry per row."""
        table = self.table()
        out = {"out_of_sample": dict(self.span)}
        for key, row in table.iterrows():
            entry = {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in row.items()
            }
            out[key] = {**entry, "available": key in self.returns}
        return out


def universe_label(data: MarketData, members: pd.DataFrame | None, shown: int = 8) -> str:
    """``"5 tickers (local): AAPL, KO, ..."``, and whether holdings follow a membership mask."""
    names = ", ".join(data.tickers[:shown]) + (", ..." if data.n_tickers > shown else "")
    text = f"{data.n_tickers} tickers ({data.source}): {names}"
    return text + ("; held only while index members" if members is not None else "")


def baseline_report(
    model: BacktestResult,
    data: MarketData,
    span: pd.DatetimeIndex,
    *,
    n_folds: int,
    default: BacktestResult | None,
    default_note: str,
    index_close: pd.Series | None,
    backtest_kwargs: dict | None = None,
    members: pd.DataFrame | None = None,
    periods_per_year: int = TRADING_DAYS,
    equal_weight: BacktestResult | None = None,
) -> BaselineReport:
    """The model's out-of-sample backtest beside the baselines on ``span`` (module notes).

    Parameters
    ----------
    model : BacktestResult
        The stitched out-of-sample backtest; it must cover exactly ``span``.
    data : MarketData
        The walk-forward's data (the equal-weight baseline holds its tickers).
    span : DatetimeIndex
        :func:`oos_span` of the folds.
    n_folds : int
    default : BacktestResult or None
        The default-parameter walk-forward over the same span, or None (``default_note``
        then says why).
    index_close : Series or None
        Index closes; None or a series not covering the span: "not available".
    backtest_kwargs : dict
        The model's backtest settings; the costs among them apply to the equal-weight
        baseline too.
    members : DataFrame of bool, optional
        Point-in-time membership (dates x tickers): the equal-weight baseline holds
        members only.
    equal_weight : BacktestResult, optional
        The equal-weight baseline of this span, data, costs and members when the caller
        already has it (:attr:`BaselineReport.equal_weight` of another model's report:
        a leaderboard scores every model on the same span, and this backtest of the
        whole universe cost ~2 s a model); computed when None or on other dates.
    """
    # the mask is passed on its own (``members``), never twice through the settings
    bt_kwargs = {k: v for k, v in (backtest_kwargs or {}).items() if k != "members"}
    for name, res in (("model", model), ("default parameters", default)):
        if res is not None and not res.returns.index.equals(span):
            raise DataError(
                f"the {name} backtest runs {res.returns.index[0].date()} to "
                f"{res.returns.index[-1].date()}, not the out-of-sample span "
                f"{span[0].date()} to {span[-1].date()}"
            )
    ew = equal_weight
    if ew is None or not ew.returns.index.equals(span):
        ew = equal_weight_buy_and_hold(data, span, members=members, **bt_kwargs)
    index_returns, index_note = index_buy_and_hold(index_close, span)
    returns = {"model": model.returns, "equal_weight": ew.returns}
    turnover = {"model": model.turnover, "equal_weight": ew.turnover}
    if index_returns is not None:
        returns["index"] = index_returns
    if default is not None:
        returns["default_params"] = default.returns
        turnover["default_params"] = default.turnover
    notes = {
        "model": "each test fold traded with the parameters its training window chose",
        "equal_weight": (
            "equal weights of the tickers with a price"
            + (" that are index members" if members is not None else "")
            + ", rebalanced only when that set changes; same costs"
        ),
        "index": index_note,
        "default_params": default_note,
    }
    return BaselineReport(
        span=_span_info(data, span, n_folds, bt_kwargs, members),
        returns=pd.DataFrame(returns),
        turnover=pd.DataFrame(turnover),
        notes=notes,
        periods_per_year=periods_per_year,
        equal_weight=ew,
    )


def _span_info(
    data: MarketData,
    span: pd.DatetimeIndex,
    n_folds: int,
    bt_kwargs: dict,
    members: pd.DataFrame | None,
) -> dict:
    """What every row covers: dates, folds, universe and the (scalar) costs."""
    costs = {
        k: bt_kwargs[k]
        for k in ("commission_bps", "slippage_bps", "spread_bps")
        if k in bt_kwargs and np.isscalar(bt_kwargs[k])
    }
    return {
        "label": "out of sample",
        "first_date": str(span[0].date()),
        "last_date": str(span[-1].date()),
        "n_dates": len(span),
        "n_folds": int(n_folds),
        "universe": universe_label(data, members),
        "costs": costs or {"commission_bps": 0.0},
        "note": (
            "every row is a backtest over exactly these dates: opened at the close "
            "of the first test decision, closed out at the last test label"
        ),
    }
