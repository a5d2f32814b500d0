"""US recession dates of the NBER Business Cycle Dating Committee (since 1990).

Source: National Bureau of Economic Research, Business Cycle Dating Committee, "US
Business Cycle Expansions and Contractions",
https://www.nber.org/research/data/us-business-cycle-expansions-and-contractions
(peak and trough months and the dates the committee announced them).

These dates are for *evaluating* models after the fact (does a regime model's stressed
regime cover the recessions?). They must never be a model input: the committee names a
peak or trough 6 to 21 months after it happened (see the announcement dates), so using
them as a feature would be look-ahead.

Convention (the same as FRED's ``USREC`` series): the peak month is the last month of the
expansion, so a recession runs from the first day of the month after the peak to the last
day of the trough month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SOURCE = (
    "NBER Business Cycle Dating Committee, US Business Cycle Expansions and Contractions, "
    "https://www.nber.org/research/data/us-business-cycle-expansions-and-contractions"
)


@dataclass(frozen=True)
class Recession:
    """One NBER contraction: peak and trough months and when each was announced."""

    peak: str  # "YYYY-MM", last month of the expansion
    trough: str  # "YYYY-MM", last month of the contraction
    peak_announced: str  # date the committee announced the peak
    trough_announced: str  # date the committee announced the trough

    @property
    def start(self) -> pd.Timestamp:
        """First day of the recession (the first day of the month after the peak)."""
        return (pd.Period(self.peak, freq="M") + 1).start_time

    @property
    def end(self) -> pd.Timestamp:
        """Last day of the recession (the last day of the trough month)."""
        return pd.Period(self.trough, freq="M").end_time.normalize()

    @property
    def months(self) -> int:
        """Duration, peak to trough, in months (NBER's own count)."""
        return (pd.Period(self.trough, freq="M") - pd.Period(self.peak, freq="M")).n


RECESSIONS: tuple[Recession, ...] = (
    Recession("1990-07", "1991-03", "1991-04-25", "1992-12-22"),
    Recession("2001-03", "2001-11", "2001-11-26", "2003-07-17"),
    Recession("2007-12", "2009-06", "2008-12-01", "2010-09-20"),
    Recession("2020-02", "2020-04", "2020-06-08", "2021-07-19"),
)


def recession_containing(day: str | pd.Timestamp) -> Recession:
    """The recession a date falls in; ValueError naming the known recessions otherwise."""
    ts = pd.Timestamp(day)
    for rec in RECESSIONS:
        if rec.start <= ts <= rec.end:
            return rec
    known = ", ".join(f"{r.start.date()}..{r.end.date()}" for r in RECESSIONS)
    raise ValueError(f"{ts.date()} is in no NBER recession since 1990 (known: {known})")


def recession_indicator(dates: pd.DatetimeIndex) -> pd.Series:
    """True on the dates inside an NBER recession (FRED ``USREC`` convention)."""
    dates = pd.DatetimeIndex(dates)
    inside = np.zeros(len(dates), dtype=bool)
    for rec in RECESSIONS:
        inside |= (dates >= rec.start) & (dates <= rec.end)
    return pd.Series(inside, index=dates, name="nber_recession")
