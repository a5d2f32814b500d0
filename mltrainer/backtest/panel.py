"""The backtest's inputs: its settings, and the price panel cut to its dates and tickers.

:class:`BacktestSettings` holds the costs, limits and choices of a run (checked by
:meth:`~BacktestSettings.validate`); :func:`load_panel` checks a signal against the
prices and cuts both to the backtest's dates into a :class:`BacktestPanel`, the first of
the steps of :func:`mltrainer.backtest.engine.run_backtest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.backtest.simulation import _growth_and_returns
from mltrainer.backtest.weights import _check_limits, _check_signal
from mltrainer.data.market_data import MAX_PRICE, MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.numerics.frames import first_out_of_range
from mltrainer.numerics.units import TRADING_DAYS


@dataclass(frozen=True, eq=False)  # Series fields: no element-wise ==
class BacktestSettings:
    """The costs, limits and choices of a backtest.

    :func:`~mltrainer.backtest.engine.run_backtest`'s keyword arguments other than the
    sizing model and the membership frame.

    Attributes
    ----------
    weighting : {"normalize", "weights"}
        Read the signal as a signal (each row normalised to ``gross_limit``) or as
        weights (capped at it); see :func:`~mltrainer.backtest.weights.signal_to_weights`.
    commission_bps, slippage_bps : float
        Costs in basis points of traded value.
    spread_bps : float or Series
        Half the bid-ask spread in basis points of traded value, one number or per ticker.
    gross_limit, max_weight, strict :
        Exposure limits, see :func:`~mltrainer.backtest.weights.signal_to_weights`.
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
    periods_per_year : int
        Annualisation of the metrics and of the cash rate.
    """

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
    periods_per_year: int = TRADING_DAYS

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
            else EQUAL_WEIGHT + (" while index members" if members else "") + ", rebalanced daily",
            "initial_capital": float(self.initial_capital),
            "members": members,
        }


# the default benchmark: the mean daily return of the tickers the run may hold (not the
# index, whatever the universe: with --universe sp500 and picked tickers, those tickers)
EQUAL_WEIGHT = "equal-weighted tickers of the run"


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
    if where := first_out_of_range(pd.DataFrame(close, dates, tickers, copy=False), MAX_PRICE):
        raise DataError(  # else a 0 is a -100% day then an inf one, a 1e308 a 1e306 equity
            f"the adjusted close {where}; prices must be positive finite numbers up to "
            f"{MAX_PRICE:g} (NaN for a missing bar): correct or drop the bar"
        )
    finite = np.isfinite(close)
    growth, rets = _growth_and_returns(close, finite)
    panel = BacktestPanel(
        signal, data if data is not None else price_frame, dates, tickers, growth, rets, finite
    )
    unpriced = tickers[~finite.any(axis=0)]
    if len(unpriced):  # else "on 2 tickers" and an equal-weight benchmark of one stock
        names = ", ".join(map(str, unpriced[:8])) + (" ..." if len(unpriced) > 8 else "")
        panel.warnings.append(
            f"{fmt.count(len(unpriced), 'ticker')} with no price from {fmt.date(dates[0])} to "
            f"{fmt.date(dates[-1])} ({names}): never held, and not in the equal-weighted "
            "benchmark"
        )
    return panel


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
            # the end asked for, or none: the signal's last day is no end anyone gave
            f"no trading dates to backtest {fmt.date_range(start or lo, end)}: the "
            f"signal covers {span}"
        )
    return i0, i1
