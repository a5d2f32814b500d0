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

Each source is read into a part by :mod:`mltrainer.data.membership_sources`; the parts
are combined into a :class:`Membership` by :mod:`mltrainer.data.membership_combined`
(both importable from here), which answers ``members_on(date)`` and ``mask(dates,
keys)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from mltrainer import config
from mltrainer.data.membership_combined import Coverage, Membership, combine
from mltrainer.data.membership_sources import (
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
    POS_INF,
    SymbolHistory,
    derive_renames,
    normalise_symbol,
)
from mltrainer.errors import DataError


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


def _cached_wikipedia() -> tuple | None:
    """(symbols, changes frame, as_of, constituents frame) of the cached live page, or
    None."""
    try:
        from mltrainer.data.universe import SP500UniverseManager

        universe = SP500UniverseManager().cached_wikipedia()
    except Exception:  # a broken cache entry must not stop membership from the files
        return None
    if universe is None or universe.changes.empty or universe.as_of is None:
        return None
    return universe.symbols, universe.changes, universe.as_of, universe.to_frame()


class _WikiList(NamedTuple):
    """One dated Wikipedia list: the constituents table and the changes table."""

    name: str
    symbols: list[str]
    changes: pd.DataFrame
    as_of: pd.Timestamp | None
    frame: pd.DataFrame | None  # the constituents table (date added, CIK)


@dataclass
class _Read:
    """What the sources gave, before any symbol is followed through time."""

    snapshots: list[Snapshot] = field(default_factory=list)
    wiki: list[_WikiList] = field(default_factory=list)
    intervals: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


def _build(
    found: dict, pages: list[Path], cached_page: tuple | None, extra_renames: pd.DataFrame | None
) -> Membership:
    """Read the sources, derive the symbol history, turn each source into a part and
    combine them (a snapshot newer than every part bridges the gap)."""
    read = _read_sources(found, pages, cached_page)
    history = _symbol_history(read, found, extra_renames)
    parts = _source_parts(read, found, history)
    if not parts and not read.snapshots:
        why = f" ({'; '.join(read.warnings)})" if read.warnings else ""
        raise DataError(
            "no S&P 500 membership source: the data folder has no usable "
            "membership/ files, saved Wikipedia page or constituents-YYYY-MM-DD.csv,"
            " and no Wikipedia copy is cached (run `python -m mltrainer universe "
            f"update`){why}"
        )
    span_notes: list[tuple] = []
    if parts:
        _bridge_with_snapshots(parts, read.snapshots, history, span_notes)
    else:  # snapshots only: each is exact on its date, nothing in between
        parts.append(_latest_snapshot_part(read))
    return combine(parts, history, read.snapshots, read.warnings, span_notes)


def _read_sources(found: dict, pages: list[Path], cached_page: tuple | None) -> _Read:
    """Snapshots, Wikipedia lists (the cached copy first) and the membership files; a
    broken one is left out with a warning naming it, the others still count."""
    from mltrainer.data import wikipedia

    read = _Read(warnings=list(found.get("ignored", [])))
    for path in found["snapshots"]:
        try:
            read.snapshots.append(read_snapshot(path))
        except DataError as exc:
            read.warnings.append(f"left out: {exc}")
    if cached_page is not None:
        symbols, changes, as_of, frame = cached_page
        read.wiki.append(_WikiList("Wikipedia (cached copy)", symbols, changes, as_of, frame))
    for page in pages:
        try:
            tables = wikipedia.read_html_file(page)
        except DataError as exc:
            read.warnings.append(f"left out: {exc}")
            continue
        if tables.changes.empty:
            read.warnings.append(
                f"{page.name}: no changes table found; it gives the members on its date only"
            )
        read.wiki.append(
            _WikiList(
                f"Wikipedia page {page.name}",
                list(tables.constituents["symbol"]),
                tables.changes,
                tables.as_of,
                tables.constituents,
            )
        )
        read.warnings.extend(getattr(tables, "warnings", []) or [])
    if found["intervals"] is not None:
        try:
            read.intervals, read.changes = read_membership_files(
                found["intervals"], found["changes"]
            )
        except DataError as exc:
            read.warnings.append(f"left out: {exc}")
    return read


def _symbol_history(read: _Read, found: dict, extra_renames: pd.DataFrame | None) -> SymbolHistory:
    """The curated symbol table plus the renames the data itself implies (the changes
    file, CIKs shared across dated lists) and ``extra_renames`` (Polygon's)."""
    first_added: dict[str, pd.Timestamp] = {}
    ciks: dict[str, set[str]] = {}
    frames = [s.frame for s in read.snapshots] + [w.frame for w in read.wiki if w.frame is not None]
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
    if read.changes is not None and not read.changes.empty:
        derived.append(
            derive_renames(
                read.changes, first_added, ciks, history.changes, source=found["changes"].name
            )
        )
    derived.append(_cik_renames(read.snapshots, read.wiki, history))
    if extra_renames is not None:
        derived.append(extra_renames)
    extra = pd.concat(
        [d for d in derived if d is not None and not d.empty]
        or [pd.DataFrame(columns=history.changes.columns)],
        ignore_index=True,
    )
    # one row per pair: the data's own derivations win over rows from outside (Polygon)
    extra = extra.drop_duplicates(["old", "new"], keep="first")
    return SymbolHistory.default(extra)


def _source_parts(read: _Read, found: dict, history: SymbolHistory) -> list[SourcePart]:
    """The membership files, then the Wikipedia lists newest first (one without a page
    date is left out with a warning)."""
    parts: list[SourcePart] = []
    if read.intervals is not None:
        parts.append(
            part_from_files(
                read.intervals, read.changes, history, f"membership file {found['intervals'].name}"
            )
        )
    for name, symbols, wchanges, as_of, _ in sorted(read.wiki, key=lambda w: w.as_of, reverse=True):
        if as_of is None:
            read.warnings.append(f"{name}: no page date; not used for membership")
            continue
        parts.append(
            part_from_wikipedia(symbols, wchanges, pd.Timestamp(as_of).normalize(), history, name)
        )
    return parts


def _bridge_with_snapshots(
    parts: list[SourcePart],
    snapshots: list[Snapshot],
    history: SymbolHistory,
    span_notes: list[tuple],
) -> None:
    """Append to ``parts`` a bridge to each snapshot newer than everything before it
    (its "Date added" column dates the additions); the bridge's warning goes to
    ``span_notes``, said only for dates in the bridged gap."""
    membership = combine(parts, history)
    for snap in sorted(snapshots, key=lambda s: s.date):
        if snap.date > membership.end:
            state = set(membership.members_on(membership.end))
            bridge, warning = part_from_snapshot_bridge(snap, state, membership.end, history)
            parts.append(bridge)
            if warning:
                span_notes.append((bridge.start, bridge.end, warning))
            membership = combine(parts, history)


def _latest_snapshot_part(read: _Read) -> SourcePart:
    """The newest snapshot as a one-day part, with a warning that no other date is known."""
    snap = max(read.snapshots, key=lambda s: s.date)
    read.warnings.append(
        f"only a dated constituents list ({snap.name}) is available: "
        "membership on other dates is not known"
    )
    return SourcePart(
        f"constituents snapshot {snap.name}",
        intervals_frame([(s, snap.date, POS_INF) for s in snap.symbols], snap.name),
        snap.date,
        snap.date,
        "a single dated list",
    )


POLYGON_MAX_TICKERS = 600  # one request each; today's members are about 503


def _with_polygon_renames(
    membership: Membership,
    rebuild: Callable[[pd.DataFrame], Membership],
    extra_renames: pd.DataFrame | None,
) -> Membership:
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


def _cik_renames(
    snapshots: list[Snapshot], wiki: list[_WikiList], history: SymbolHistory
) -> pd.DataFrame:
    """Symbols that share a CIK across two dated lists and are not linked by a known
    rename: renamed between the two dates (dated at the newer list, since the day is
    unknown)."""
    lists = [(s.date, s.frame) for s in snapshots]
    lists += [
        (pd.Timestamp(w.as_of), w.frame)
        for w in wiki
        if w.as_of is not None and w.frame is not None
    ]
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


__all__ = [
    "POLYGON_MAX_TICKERS",
    "Coverage",
    "Membership",
    "combine",
    "find_sources",
    "load_membership",
    "membership_from_page",
    "part_from_wikipedia",
    "read_membership_files",
    "read_snapshot",
]
