"""Polygon's daily bars as frames: the checked parsing of an aggregates answer, and the
split and dividend adjustments :mod:`mltrainer.data.polygon` builds from two of them.

Anything malformed in a bar (a timestamp or a price that is not a number) raises
SourceError, so the answer is never cached and a stale copy is served instead.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np
import pandas as pd

from mltrainer.errors import SourceError

_NY = "America/New_York"
_MAX_MS = 9.2e15  # |t| in ms that pandas' nanosecond timestamps hold (years 1678-2261)


def bars_frame(results: list[dict], where: str = "Polygon") -> pd.DataFrame:
    """Polygon bar dicts (``t`` ms, ``o h l c v``) -> a date-indexed frame."""
    cols = ["open", "high", "low", "close", "volume"]
    if not results:
        return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], name="date"), dtype=float)
    try:
        frame = pd.DataFrame.from_records(results)
        valid = {k: _are_numbers(frame[k]) for k in "tohlcv" if k in frame}
        millis = pd.to_numeric(frame["t"].where(valid["t"]), errors="coerce").astype(float)
    except (KeyError, ValueError, TypeError) as exc:
        raise SourceError(f"{where}: bars without a readable timestamp 't' ({exc})") from None
    for key, ok in valid.items():  # a price of null, text or NaN: a junk answer, which
        if key != "t" and not ok.all():  # would be cached over the good bars if let through
            raise SourceError(
                f"{where}: {int((~ok).sum())} bar(s) whose '{key}' is not a number "
                f"(first: {str(frame[key][~ok].iloc[0])[:40]!r})"
            )
    # NaN (null, text) and values past pandas' dates (t = 1e20: an OverflowError, or a
    # silent NaT once cast) are refused with the first offending value, never cast
    bad = ~(millis.abs() < _MAX_MS)
    if bad.any():
        raise SourceError(
            f"{where}: {int(bad.sum())} bar(s) without a readable timestamp 't' "
            f"(first: {str(frame['t'][bad].iloc[0])[:40]!r}; expected ms since 1970)"
        )
    stamps = pd.to_datetime(millis.astype("int64"), unit="ms", utc=True)
    days = stamps.dt.tz_convert(_NY).dt.tz_localize(None).dt.normalize()
    out = pd.DataFrame(
        {
            name: pd.to_numeric(frame[key], errors="coerce") if key in frame else np.nan
            for name, key in zip(cols, "ohlcv", strict=True)
        }
    ).set_index(pd.DatetimeIndex(days, name="date"))
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out.astype("float64")


def _are_numbers(column: pd.Series) -> pd.Series:
    """Per value: a JSON number a float holds (not a bool, null, text, NaN, infinite or
    too large); a column of plain numbers (all of a real answer) is checked at once."""
    if column.dtype.kind in "iuf":
        return pd.Series(np.isfinite(column.to_numpy("float64")), index=column.index)
    return column.map(_is_number)


def _is_number(value: object) -> bool:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


def split_coefficients(close: pd.Series, split_adjusted: pd.Series) -> pd.Series:
    """Split coefficient per day (1.0 on ordinary days) from unadjusted / adjusted close.

    The ratio only changes on a split day; it is read as the nearest fraction with a
    denominator up to 50 (4:1 -> 4.0, 3:2 -> 1.5, 1:10 -> 0.1), because Polygon rounds
    adjusted prices to 4 decimals.
    """
    ratio = close / split_adjusted
    step = (ratio.shift(1) / ratio).to_numpy()
    coef = np.ones(len(step))
    for i in np.flatnonzero(np.isfinite(step) & (np.abs(step - 1.0) > 0.02)):
        coef[i] = float(Fraction(step[i]).limit_denominator(50))
    return pd.Series(coef, index=close.index, name="splits")


def dividend_factor(close: pd.Series, cash: pd.Series) -> pd.Series:
    """Cumulative dividend adjustment: product of ``1 - D_e / C_{e-1}`` over ex-dates
    after each day (1.0 from the last ex-date on)."""
    prev = close.shift(1)
    step = (1.0 - cash / prev).where((cash > 0) & (prev > 0), 1.0)
    # the factor on day t multiplies every ex-date strictly after t
    after = step.iloc[::-1].cumprod().shift(1, fill_value=1.0).iloc[::-1]
    return after.rename("factor")


__all__ = ["bars_frame", "dividend_factor", "split_coefficients"]
