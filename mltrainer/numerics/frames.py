"""Between wide (dates x tickers) frames and float arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MAX_PRICE, MarketData
from mltrainer.errors import DataError


def as_array(frame: pd.DataFrame | np.ndarray, column_major: bool = False) -> np.ndarray:
    """A frame's values as float64 with NaN for missing.

    A read-only view where pandas can give one without copying: copy before writing.
    ``column_major``: each ticker's dates contiguous (Fortran order), the layout in
    which per-ticker recursions walk memory in order.
    """
    if isinstance(frame, pd.DataFrame):
        try:
            values = frame.to_numpy(dtype="float64")
        except (TypeError, ValueError):  # nullable dtypes holding pd.NA
            values = frame.to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = np.asarray(frame, dtype="float64")
    return np.asfortranarray(values) if column_major else values


def like(values: np.ndarray, template: pd.DataFrame) -> pd.DataFrame:
    """Wrap an array with the index and columns of ``template``."""
    return pd.DataFrame(values, index=template.index, columns=template.columns)


def as_frame(values: np.ndarray, data: MarketData) -> pd.DataFrame:
    """A (dates x tickers) array as a frame on ``data``'s dates and tickers.

    The array is owned by the result (no copy): pass a fresh array.
    """
    return pd.DataFrame(values, index=data.dates, columns=data.adj_close.columns, copy=False)


def adjusted_ohlc(
    data: MarketData, fields: tuple[str, ...] = ("high", "low"), column_major: bool = False
) -> tuple[np.ndarray, ...]:
    """The as-traded ``fields`` scaled onto the adjusted close, then the adjusted close.

    The arithmetic of :meth:`MarketData.adjusted` (``x * adj_close / close``) for only
    the fields a model reads, on arrays (``adjusted()`` also rebuilds volume and the
    other fields: ~0.1 s on the S&P 500 panel).
    """
    close = as_array(data.adj_close, column_major)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = close / as_array(data.close, column_major)
    return (*(as_array(getattr(data, f), column_major) * factor for f in fields), close)


def first_out_of_range(frame: pd.DataFrame, high: float) -> str | None:
    """Where ``frame`` holds a value that is not a positive finite number up to ``high``.

    ``"of TICKER on DATE is VALUE"`` for the first such cell in date order (with how many
    there are when more than one), or None when every value is in range. NaN (a missing
    bar) is in range. Two whole-frame reductions (``fmin``/``fmax`` skip NaN) decide; only
    a frame with a bad value is searched cell by cell.
    """
    values = as_array(frame)
    if not values.size or (
        np.fmin.reduce(values, None) > 0 and np.fmax.reduce(values, None) <= high
    ):
        return None
    with np.errstate(invalid="ignore"):
        bad = ~((values > 0) & (values <= high)) & ~np.isnan(values)
    rows, cols = np.nonzero(bad)
    if not len(rows):  # every value NaN
        return None
    row, col = rows[0], cols[0]
    more = f" ({len(rows)} such values)" if len(rows) > 1 else ""
    return f"of {frame.columns[col]} on {frame.index[row].date()} is {values[row, col]:.10g}{more}"


def check_prices(name: str, data: MarketData) -> None:
    """Raise a DataError naming the first price that is not a positive finite number up to
    MAX_PRICE: the loaders drop such bars, data built in memory may still hold them."""
    for kind in ("adj_close", "close", "open", "high", "low"):
        if where := first_out_of_range(getattr(data, kind), MAX_PRICE):
            raise DataError(
                f"{name}: the {kind} price {where}; prices must be positive finite numbers up "
                f"to {MAX_PRICE:g} (NaN for a missing bar): correct or drop the bar"
            )
