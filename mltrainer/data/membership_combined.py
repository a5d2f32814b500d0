"""The combined point-in-time S&P 500 membership, and how source parts combine into it.

:func:`combine` lays the parts read by :mod:`mltrainer.data.membership_sources` over
one another, each date decided by the first part whose span covers it. The result, a
:class:`Membership`, answers ``members_on(date)`` (symbols of that day) and
``mask(dates, keys)``: a dates x data-keys boolean frame for a price panel whose
columns are keyed by another convention (the local files by April-2021 symbols, Yahoo
by today's), mapped through each key's own last price date. Finding and reading the
sources is :mod:`mltrainer.data.membership`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer.data.membership_sources import DAY, Snapshot, SourcePart
from mltrainer.data.symbols import NEG_INF, POS_INF, SymbolHistory
from mltrainer.errors import DataError
from mltrainer.validate import DateLike


@dataclass(frozen=True)
class Coverage:
    """``source`` decides membership on dates in ``[start, end]``."""

    source: str
    start: pd.Timestamp
    end: pd.Timestamp
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: source, ISO start and end dates, note."""
        return {
            "source": self.source,
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "note": self.note,
        }


@dataclass
class Membership:
    """Combined point-in-time membership (see the module docstring).

    Attributes
    ----------
    intervals : DataFrame
        One row per membership spell: ``symbol`` (the symbol of those days), ``start``
        (first day) and ``end`` (first day no longer a member; ``POS_INF`` if still one).
    coverage : list of Coverage
        Which source decides which dates, in date order.
    history : SymbolHistory
        The symbol changes used to follow a company across renames.
    snapshots : list of Snapshot
        The dated constituent lists read.
    warnings : list of str
        What was left out or doubted while reading the sources.
    span_notes : list of (Timestamp, Timestamp, str)
        Warnings said only for dates in that span (a bridged gap, say).
    symbol_sources : list of str
        Sources of symbol changes beyond the curated table (Polygon, say).
    """

    intervals: pd.DataFrame
    coverage: list[Coverage]
    history: SymbolHistory
    snapshots: list[Snapshot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # (start, end, text): said only for dates in that span (a bridged gap, say)
    span_notes: list[tuple] = field(default_factory=list)
    symbol_sources: list[str] = field(default_factory=list)  # beyond the curated table
    _by_symbol: dict = field(default_factory=dict, init=False, repr=False)
    _spans: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._starts = self.intervals["start"].to_numpy("datetime64[ns]")
        self._ends = self.intervals["end"].to_numpy("datetime64[ns]")
        self._symbols = self.intervals["symbol"].to_numpy(object)
        for i, sym in enumerate(self._symbols):
            self._by_symbol.setdefault(sym, []).append(i)

    @property
    def start(self) -> pd.Timestamp:
        """The first date any source covers."""
        return min(c.start for c in self.coverage)

    @property
    def end(self) -> pd.Timestamp:
        """The last date any source covers."""
        return max(c.end for c in self.coverage)

    def source_on(self, date: DateLike) -> str | None:
        """The name of the source deciding membership on ``date``; None outside them all."""
        when = pd.Timestamp(date).normalize()
        return next((c.source for c in self.coverage if c.start <= when <= c.end), None)

    def date_warnings(self, start: DateLike, end: DateLike | None = None) -> list[str]:
        """Warnings for the part of ``[start, end]`` that no source covers."""
        lo = pd.Timestamp(start).normalize()
        hi = lo if end is None else pd.Timestamp(end).normalize()
        out = []
        if lo < self.start:
            out.append(
                f"S&P 500 membership is known from {self.start.date()} "
                f"({self.coverage[0].source if self.coverage else 'no source'}); "
                f"dates before it ({lo.date()}) use the members on {self.start.date()}"
            )
        if hi > self.end:
            out.append(
                f"S&P 500 membership is known up to {self.end.date()}; later dates "
                f"(to {hi.date()}) use the members on {self.end.date()} and miss any "
                "change since"
            )
        out += [text for a, b, text in self.span_notes if a <= hi and b >= lo]
        return out

    def members_on(self, date: DateLike) -> list[str]:
        """Members on ``date`` under the symbols of that day (sorted); a date outside
        the covered span gets the members of its nearest end."""
        when = pd.Timestamp(date).normalize()
        when = min(max(when, self.start), self.end)
        t = when.to_datetime64()
        hit = (self._starts <= t) & (self._ends > t)
        return sorted(set(self._symbols[hit]))

    def lookup(self, date: DateLike) -> dict:
        """JSON-ready members on ``date`` with the source in charge and any warnings.

        Keys: date, count, members, source, coverage, symbol_sources, warnings.
        """
        when = pd.Timestamp(date).normalize()
        members = self.members_on(when)
        return {
            "date": when.date().isoformat(),
            "count": len(members),
            "members": members,
            "source": self.source_on(min(max(when, self.start), self.end)),
            "coverage": [c.to_dict() for c in self.coverage],
            "symbol_sources": list(self.symbol_sources),
            "warnings": self.date_warnings(when) + self.warnings,
        }

    def mask(
        self,
        dates: Iterable[DateLike],
        keys: Iterable[str],
        key_dates: str | pd.Timestamp | Mapping[str, DateLike] | pd.Series | None = None,
    ) -> pd.DataFrame:
        """Boolean ``dates x keys``: True where the company behind each key was a member.

        ``keys`` are the columns of a price panel; ``key_dates`` (one date, or a mapping
        or Series key -> date) says on which date each key is that company's symbol:
        for a local file its last price date, for a live source today. Default: the last
        of ``dates``. A key's symbol is walked through the symbol history, so WELL in a
        2021 file is HCN in 2010, and GOOG (class C) has no membership before 2014.
        """
        index = pd.DatetimeIndex(pd.to_datetime(dates))
        days = index.normalize().to_numpy("datetime64[ns]")
        order = np.argsort(days, kind="stable")
        sorted_days = days[order]
        keys = list(keys)
        default = index.max() if len(index) else pd.Timestamp.today()
        if key_dates is None or isinstance(key_dates, (str, pd.Timestamp)):
            anchor_of = {k: pd.Timestamp(key_dates or default) for k in keys}
        else:
            given = dict(key_dates.items()) if hasattr(key_dates, "items") else {}
            anchor_of = {k: pd.Timestamp(given.get(k, default)) for k in keys}
        # filled column by column in sorted-date order: Fortran layout keeps each a run
        filled = np.zeros((len(index), len(keys)), dtype=bool, order="F")
        spans = [
            self._key_spans(k, default if pd.isna(anchor_of[k]) else anchor_of[k]) for k in keys
        ]
        lengths = [len(s) for s, _ in spans]
        if sum(lengths):
            a = np.searchsorted(sorted_days, np.concatenate([s for s, _ in spans]))
            b = np.searchsorted(sorted_days, np.concatenate([e for _, e in spans]))
            cols = np.repeat(np.arange(len(keys)), lengths)
            for j, lo, hi in zip(cols.tolist(), a.tolist(), b.tolist(), strict=True):
                filled[lo:hi, j] = True
        values = filled if np.all(order[:-1] < order[1:]) else filled[np.argsort(order)]
        return pd.DataFrame(values, index=index, columns=pd.Index(keys))

    def symbol_frame(self, dates: Iterable[DateLike]) -> pd.DataFrame:
        """Boolean ``dates x symbols`` of every symbol ever a member, each column True on
        the days that symbol itself named a member (symbols of the day, no renames
        followed: see :meth:`mask` for price-data keys)."""
        index = pd.DatetimeIndex(pd.to_datetime(dates))
        days = index.normalize().to_numpy("datetime64[ns]")
        symbols = sorted(self._by_symbol)
        values = np.zeros((len(index), len(symbols)), dtype=bool)
        for j, sym in enumerate(symbols):
            rows = self._by_symbol[sym]
            starts, ends = self._starts[rows], self._ends[rows]
            values[:, j] = ((days[:, None] >= starts) & (days[:, None] < ends)).any(axis=1)
        return pd.DataFrame(values, index=index, columns=pd.Index(symbols))

    def _key_spans(self, key, anchor: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        """Membership spans of the company behind ``key`` (its symbol on ``anchor``),
        memoised: the symbol walk is the slow part of a mask."""
        memo = (key, anchor)
        if memo not in self._spans:
            starts, ends = [], []
            for seg in self.history.segments(key, anchor):
                seg_lo, seg_hi = seg.start.to_datetime64(), seg.end.to_datetime64()
                for i in self._by_symbol.get(seg.symbol, ()):
                    lo, hi = max(self._starts[i], seg_lo), min(self._ends[i], seg_hi)
                    if lo < hi:
                        starts.append(lo)
                        ends.append(hi)
            self._spans[memo] = (
                np.array(starts, dtype="datetime64[ns]"),
                np.array(ends, dtype="datetime64[ns]"),
            )
        return self._spans[memo]

    def describe(self) -> dict:
        """JSON-ready summary: covered span, coverage by source, how many renames the
        symbol history holds, extra symbol sources and warnings."""
        return {
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "coverage": [c.to_dict() for c in self.coverage],
            "symbol_changes": int((self.history.changes["kind"] == "rename").sum()),
            "symbol_sources": list(self.symbol_sources),
            "warnings": list(self.warnings),
        }


def combine(
    parts: list[SourcePart],
    history: SymbolHistory,
    snapshots: Iterable[Snapshot] = (),
    warnings: Iterable[str] = (),
    span_notes: Iterable[tuple] = (),
) -> Membership:
    """The parts laid over one another: each date is decided by the first part (in
    order) whose span covers it.

    The newest span's open spells stay open, and spells starting on the earliest
    covered date are taken to have started before it (``NEG_INF``). DataError if no
    part covers any date. ``snapshots``, ``warnings`` and ``span_notes`` are carried
    into the :class:`Membership`.
    """
    claimed: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    frames, coverage = [], []
    for part in parts:
        free = [(part.start, part.end)]
        for lo, hi in claimed:
            nxt = []
            for a, b in free:
                if b < lo or a > hi:
                    nxt.append((a, b))
                    continue
                if a < lo:
                    nxt.append((a, lo - DAY))
                if b > hi:
                    nxt.append((hi + DAY, b))
            free = nxt
        for a, b in free:
            iv = part.intervals
            clipped = iv.assign(
                start=iv["start"].clip(lower=a), end=iv["end"].where(iv["end"] <= b, b + DAY)
            )
            # an open interval at the end of the newest span stays open
            if b >= max(p.end for p in parts):
                clipped["end"] = np.where(iv["end"] > b, POS_INF, clipped["end"])
            if a <= min(p.start for p in parts):  # before every source: earliest known
                clipped["start"] = clipped["start"].where(clipped["start"] > a, NEG_INF)
            clipped = clipped[clipped["start"] < clipped["end"]]
            frames.append(clipped)
            coverage.append(Coverage(part.name, a, b, part.note))
            claimed.append((a, b))
    if not frames:
        raise DataError(
            "no S&P 500 membership source: give a data folder with membership/ "
            "files, a saved Wikipedia page, or run `universe update`"
        )
    coverage.sort(key=lambda c: c.start)
    intervals = pd.concat(frames, ignore_index=True)
    return Membership(
        intervals, coverage, history, list(snapshots), list(warnings), list(span_notes)
    )
