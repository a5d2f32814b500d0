"""Point-in-time S&P 500 membership from several real sources, under the symbols of the day.

Sources, in order of precedence for the dates each covers:

1. a membership-intervals file (``ticker,start_date,end_date``) with its changes file
   (``date,add,remove``), as in ``membership/`` of the data folder: complete since 1996.
   Its intervals lag its changes file, so changes after the intervals' last event are
   applied on top. Before the changes file begins it labels companies with their 2019
   symbols; those are turned into the symbols of each day through :mod:`symbols`.
2. the Wikipedia page (live through the cache, or a saved copy): the constituents table
   walked back through the "Selected changes" table. Complete for recent years only
   (the table lists *selected* changes: before about 2008 the count drifts above 500).
3. dated constituent snapshots (``constituents-YYYY-MM-DD.csv``): each is exact on its
   date, and a snapshot newer than every other source bridges the gap with its
   "Date added" column (additions dated, removals undated: said in a warning).

Polygon's ticker events add symbol changes when asked (``load_membership(polygon=True)``)
and a key is set (:func:`mltrainer.data.polygon.polygon_ticker_events`).
A date outside every source's span gets a warning, never a silent answer.

:class:`Membership` answers ``members_on(date)`` (symbols of that day) and
``mask(dates, keys)``: a dates x data-keys boolean frame for a price panel whose
columns are keyed by another convention (the local files by April-2021 symbols,
Yahoo by today's), mapped through each key's own last price date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mltrainer import config
from mltrainer.data.membership_sources import (
    DAY,
    SNAPSHOT_NAME,
    Snapshot,
    SourcePart,
    intervals_frame,
    part_from_files,
    part_from_snapshot_bridge,
    part_from_wikipedia,
    read_membership_files,
    read_snapshot,
)
from mltrainer.data.symbols import (
    NEG_INF,
    POS_INF,
    SymbolHistory,
    derive_renames,
    normalise_symbol,
)
from mltrainer.errors import DataError


@dataclass(frozen=True)
class Coverage:
    """``source`` decides membership on dates in ``[start, end]``."""

    source: str
    start: pd.Timestamp
    end: pd.Timestamp
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "note": self.note,
        }


# ------------------------------------------------------------------ combine
@dataclass
class Membership:
    """Combined point-in-time membership (see the module docstring)."""

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
        return min(c.start for c in self.coverage)

    @property
    def end(self) -> pd.Timestamp:
        return max(c.end for c in self.coverage)

    def source_on(self, date) -> str | None:
        when = pd.Timestamp(date).normalize()
        return next((c.source for c in self.coverage if c.start <= when <= c.end), None)

    def date_warnings(self, start, end=None) -> list[str]:
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

    def members_on(self, date) -> list[str]:
        """Members on ``date`` under the symbols of that day (sorted)."""
        when = pd.Timestamp(date).normalize()
        when = min(max(when, self.start), self.end)
        t = when.to_datetime64()
        hit = (self._starts <= t) & (self._ends > t)
        return sorted(set(self._symbols[hit]))

    def lookup(self, date) -> dict:
        """JSON-ready members on ``date`` with the source in charge and any warnings."""
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

    def mask(self, dates, keys, key_dates=None) -> pd.DataFrame:
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

    def symbol_frame(self, dates) -> pd.DataFrame:
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
        return {
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "coverage": [c.to_dict() for c in self.coverage],
            "symbol_changes": int((self.history.changes["kind"] == "rename").sum()),
            "symbol_sources": list(self.symbol_sources),
            "warnings": list(self.warnings),
        }


def combine(
    parts: list[SourcePart], history: SymbolHistory, snapshots=(), warnings=(), span_notes=()
) -> Membership:
    """Each date is decided by the first part (in order) whose span covers it."""
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


# -------------------------------------------------------------------- loading
def find_sources(data_dir: str | Path | None = None) -> dict:
    """Membership sources in a data folder: intervals/changes files, saved Wikipedia
    pages, dated constituent snapshots (any of them may be missing)."""
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    found: dict = {"intervals": None, "changes": None, "pages": [], "snapshots": [], "ignored": []}
    if root is None or not root.is_dir():
        return found
    for path in (
        sorted((root / "membership").glob("*.csv")) if (root / "membership").is_dir() else []
    ):
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                head = fh.readline(4096).lower()
        except OSError as exc:
            found["ignored"].append(f"{path.name}: cannot be read ({exc.strerror or exc})")
            continue
        cols = [c.strip().strip('"') for c in head.split(",")]
        if {"ticker", "start_date", "end_date"} <= set(cols):
            found["intervals"] = path
        elif {"date", "add", "remove"} <= set(cols):
            found["changes"] = path
        else:
            found["ignored"].append(
                f"membership/{path.name}: neither an intervals file "
                "(ticker,start_date,end_date) nor a changes file "
                "(date,add,remove); ignored"
            )
    if (root / "wikipedia").is_dir():
        found["pages"] = sorted((root / "wikipedia").glob("*.html"))
    found["snapshots"] = sorted(
        p for p in root.glob("constituents-*.csv") if SNAPSHOT_NAME.match(p.name)
    )
    return found


_MEMO: dict = {}


def load_membership(
    data_dir: str | Path | None = None,
    html: str | Path | None = None,
    use_cache: bool = True,
    extra_renames: pd.DataFrame | None = None,
    polygon: bool | None = None,
) -> Membership:
    """Every membership source found, combined (see the module docstring).

    ``html``: a saved Wikipedia page to use instead of the cached/saved ones. With
    ``use_cache`` the last Wikipedia copy in the disk cache counts as a source (never
    the network). Memoised on the files' paths, sizes and modification times.

    ``polygon=True`` also asks Polygon's Ticker Events endpoint (through the disk cache)
    for the past symbols of the members on the last covered date, when a usable
    ``POLYGON_API_KEY`` is configured (else a warning says why not). The default (None)
    and False never touch the network.
    """
    found = find_sources(data_dir)
    pages = [Path(html)] if html is not None else found["pages"][-1:]
    files = [
        p
        for p in (found["intervals"], found["changes"], *pages, *found["snapshots"])
        if p is not None
    ]
    try:
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError as exc:
        raise DataError(f"a membership source cannot be read ({exc})") from None
    cached_page = _cached_wikipedia() if use_cache and html is None else None
    key = (
        stamp,
        None if cached_page is None else cached_page[2],
        None if extra_renames is None else len(extra_renames),
    )
    if polygon:  # not memoised: the answer depends on the key and the network
        return _with_polygon_renames(
            _build(found, pages, cached_page, extra_renames),
            lambda rows: _build(found, pages, cached_page, rows),
            extra_renames,
        )
    if key in _MEMO:
        return _MEMO[key]
    membership = _build(found, pages, cached_page, extra_renames)
    _MEMO.clear()
    _MEMO[key] = membership
    return membership


def membership_from_page(path: str | Path) -> Membership:
    """Membership from one saved Wikipedia page alone (its table walked back)."""
    from mltrainer.data import wikipedia

    tables = wikipedia.read_html_file(path)
    history = SymbolHistory.default()
    name = f"Wikipedia page {Path(path).name}"
    warnings = list(getattr(tables, "warnings", []) or [])
    if tables.as_of is None:
        raise DataError(
            f"{Path(path).name}: the page has no date, so its list cannot be placed in time"
        )
    if tables.changes.empty:
        warnings.append(
            f"{Path(path).name}: no changes table found; only the members on "
            f"{tables.as_of.date()} are known"
        )
    part = part_from_wikipedia(
        list(tables.constituents["symbol"]),
        tables.changes,
        pd.Timestamp(tables.as_of).normalize(),
        history,
        name,
    )
    return combine([part], history, warnings=warnings)


def _cached_wikipedia():
    """(constituents frame, changes frame, as_of) of the cached live page, or None."""
    try:
        from mltrainer.data.universe import SP500UniverseManager

        universe = SP500UniverseManager().cached_wikipedia()
    except Exception:  # a broken cache entry must not stop membership from the files
        return None
    if universe is None or universe.changes.empty or universe.as_of is None:
        return None
    return universe.symbols, universe.changes, universe.as_of, universe.to_frame()


def _build(found: dict, pages: list[Path], cached_page, extra_renames) -> Membership:
    from mltrainer.data import wikipedia

    # a broken file is left out with a warning naming it; the other sources still count
    warnings: list[str] = list(found.get("ignored", []))
    span_notes: list[tuple] = []
    snapshots = []
    for path in found["snapshots"]:
        try:
            snapshots.append(read_snapshot(path))
        except DataError as exc:
            warnings.append(f"left out: {exc}")
    wiki = []  # (name, symbols, changes, as_of, constituents frame)
    if cached_page is not None:
        symbols, changes, as_of, frame = cached_page
        wiki.append(("Wikipedia (cached copy)", symbols, changes, as_of, frame))
    for page in pages:
        try:
            tables = wikipedia.read_html_file(page)
        except DataError as exc:
            warnings.append(f"left out: {exc}")
            continue
        if tables.changes.empty:
            warnings.append(
                f"{page.name}: no changes table found; it gives the members on its date only"
            )
        wiki.append(
            (
                f"Wikipedia page {page.name}",
                list(tables.constituents["symbol"]),
                tables.changes,
                tables.as_of,
                tables.constituents,
            )
        )
        warnings.extend(getattr(tables, "warnings", []) or [])
    intervals = changes = None
    if found["intervals"] is not None:
        try:
            intervals, changes = read_membership_files(found["intervals"], found["changes"])
        except DataError as exc:
            warnings.append(f"left out: {exc}")

    # symbol history: the curated table plus renames the data itself implies
    first_added: dict[str, pd.Timestamp] = {}
    ciks: dict[str, set[str]] = {}
    frames = [s.frame for s in snapshots] + [w[4] for w in wiki if w[4] is not None]
    for frame in frames:
        for sym, added, cik in zip(
            frame["symbol"],
            pd.to_datetime(frame["date_added"], errors="coerce"),
            frame.get("cik", [None] * len(frame)),
            strict=True,
        ):
            sym = normalise_symbol(sym)
            if pd.notna(added):
                first_added[sym] = min(first_added.get(sym, added), added)
            if cik:
                ciks.setdefault(sym, set()).add(str(cik))
    history = SymbolHistory.default()
    derived = []
    if changes is not None and not changes.empty:
        derived.append(
            derive_renames(
                changes, first_added, ciks, history.changes, source=found["changes"].name
            )
        )
    derived.append(_cik_renames(snapshots, wiki, history))
    if extra_renames is not None:
        derived.append(extra_renames)
    extra = pd.concat(
        [d for d in derived if d is not None and not d.empty]
        or [pd.DataFrame(columns=history.changes.columns)],
        ignore_index=True,
    )
    # one row per pair: the data's own derivations win over rows from outside (Polygon)
    extra = extra.drop_duplicates(["old", "new"], keep="first")
    history = SymbolHistory.default(extra)

    parts: list[SourcePart] = []
    if intervals is not None:
        parts.append(
            part_from_files(
                intervals, changes, history, f"membership file {found['intervals'].name}"
            )
        )
    for name, symbols, wchanges, as_of, _ in sorted(wiki, key=lambda w: w[3], reverse=True):
        if as_of is None:
            warnings.append(f"{name}: no page date; not used for membership")
            continue
        parts.append(
            part_from_wikipedia(symbols, wchanges, pd.Timestamp(as_of).normalize(), history, name)
        )
    if not parts and not snapshots:
        why = f" ({'; '.join(warnings)})" if warnings else ""
        raise DataError(
            "no S&P 500 membership source: the data folder has no usable "
            "membership/ files, saved Wikipedia page or constituents-YYYY-MM-DD.csv,"
            " and no Wikipedia copy is cached (run `python -m mltrainer universe "
            f"update`){why}"
        )
    if parts:
        membership = combine(parts, history)
        for snap in sorted(snapshots, key=lambda s: s.date):
            if snap.date > membership.end:
                state = set(membership.members_on(membership.end))
                bridge, warning = part_from_snapshot_bridge(snap, state, membership.end, history)
                parts.append(bridge)
                if warning:
                    span_notes.append((bridge.start, bridge.end, warning))
                membership = combine(parts, history)
    else:  # snapshots only: each is exact on its date, nothing in between
        snap = max(snapshots, key=lambda s: s.date)
        parts.append(
            SourcePart(
                f"constituents snapshot {snap.name}",
                intervals_frame([(s, snap.date, POS_INF) for s in snap.symbols], snap.name),
                snap.date,
                snap.date,
                "a single dated list",
            )
        )
        warnings.append(
            f"only a dated constituents list ({snap.name}) is available: "
            "membership on other dates is not known"
        )
    return combine(parts, history, snapshots, warnings, span_notes)


POLYGON_MAX_TICKERS = 600  # one request each; today's members are about 503


def _with_polygon_renames(membership: Membership, rebuild, extra_renames) -> Membership:
    """``membership`` rebuilt with Polygon's symbol changes of its latest members."""
    from mltrainer.data import polygon

    key_name = polygon.KEY_NAME
    if not config.api_key(key_name):
        why = config.key_problem(key_name) or f"{key_name} is not set"
        membership.warnings.append(f"Polygon ticker events not used: {why}")
        return membership
    tickers = membership.members_on(membership.end)[:POLYGON_MAX_TICKERS]
    rows, problems = polygon.polygon_ticker_events(tickers)
    answered = len(rows.attrs.get("answered", ()))
    extra = pd.concat(
        [f for f in (extra_renames, rows) if f is not None and not f.empty] or [rows],
        ignore_index=True,
    )
    rebuilt = rebuild(extra)
    rebuilt.symbol_sources.append(f"Polygon ticker events ({answered} tickers)")
    if problems:
        rebuilt.warnings.append(
            f"Polygon ticker events: {len(problems)} of {len(tickers)} "
            "ticker(s) with a problem, e.g. " + "; ".join(problems[:3])
        )
    return rebuilt


def _cik_renames(snapshots: list[Snapshot], wiki: list, history: SymbolHistory) -> pd.DataFrame:
    """Symbols that share a CIK across two dated lists and are not linked by a known
    rename: renamed between the two dates (dated at the newer list, since the day is
    unknown)."""
    lists = [(s.date, s.frame) for s in snapshots]
    lists += [(pd.Timestamp(w[3]), w[4]) for w in wiki if w[3] is not None and w[4] is not None]
    lists.sort(key=lambda x: x[0])
    rows = []
    for (d0, f0), (d1, f1) in zip(lists, lists[1:], strict=False):
        if "cik" not in f0 or "cik" not in f1:
            continue
        old = {c: normalise_symbol(s) for s, c in zip(f0["symbol"], f0["cik"], strict=True) if c}
        for sym, c in zip(f1["symbol"], f1["cik"], strict=True):
            sym = normalise_symbol(sym)
            if not c or c not in old or old[c] == sym:
                continue
            if history.symbol_on(sym, d1, d0) == old[c]:
                continue  # a dated rename already links them
            rows.append(
                {
                    "old": old[c],
                    "new": sym,
                    "date": d1,
                    "kind": "rename",
                    "source": f"derived: CIK {c} is {old[c]} on {d0.date()} and {sym} on "
                    f"{d1.date()}; the day of the change is not known, taken "
                    f"as {d1.date()}",
                    "note": "",
                }
            )
    return pd.DataFrame(rows, columns=list(history.changes.columns))
