"""The membership sources, read and turned into intervals under the symbols of each day.

Readers for the membership-intervals and changes files and for dated constituent lists,
and one :class:`SourcePart` builder per source (the intervals file, a Wikipedia page's
walk back, a newer list bridging a gap). :mod:`mltrainer.data.membership` combines them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mltrainer.data.files import MAX_LIST_BYTES, read_bounded
from mltrainer.data.symbols import POS_INF, SymbolHistory, normalise_symbol
from mltrainer.errors import DataError

DAY = pd.Timedelta(days=1)
SNAPSHOT_NAME = re.compile(r"^constituents-(\d{4}-\d{2}-\d{2})\.csv$")


@dataclass
class Snapshot:
    """A dated constituents list: symbols of that day, sectors, first-added dates, CIKs."""

    date: pd.Timestamp
    name: str
    frame: pd.DataFrame  # symbol, sector, sub_industry, date_added, cik

    @property
    def symbols(self) -> set[str]:
        """The list's symbols (of its date)."""
        return set(self.frame["symbol"])


@dataclass
class SourcePart:
    """One source's membership as intervals in symbols of the day, and its span."""

    name: str
    intervals: pd.DataFrame  # symbol, start, end (exclusive; POS_INF when open)
    start: pd.Timestamp
    end: pd.Timestamp
    note: str = ""


def intervals_frame(rows: list[tuple], source: str) -> pd.DataFrame:
    """``(symbol, start, end)`` rows as a frame tagged with their source."""
    frame = pd.DataFrame(rows, columns=["symbol", "start", "end"])
    frame["source"] = source
    return frame


# ------------------------------------------------------------------ readers
def read_snapshot(path: str | Path) -> Snapshot:
    """A ``constituents-YYYY-MM-DD.csv`` list (Symbol and a (GICS) Sector column)."""
    from mltrainer.data import wikipedia

    path = Path(path)
    match = SNAPSHOT_NAME.match(path.name)
    if not match:
        raise DataError(f"{path.name}: a snapshot is named constituents-YYYY-MM-DD.csv")
    raw = read_bounded(path, MAX_LIST_BYTES, "a constituents CSV")
    try:
        table = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    names = [wikipedia.normalise_header(str(c)) for c in table.columns]
    cols = wikipedia.match_constituent_columns(names)
    if cols is None:
        raise DataError(f"{path}: not a constituents list (needs Symbol and Sector columns)")
    frame = pd.DataFrame({key: table.iloc[:, j] for key, j in cols.items()})
    frame["symbol"] = frame["symbol"].map(normalise_symbol)
    frame = frame[frame["symbol"] != ""]
    for col in ("sector", "sub_industry", "date_added", "cik"):
        if col not in frame:
            frame[col] = None
    frame["date_added"] = pd.to_datetime(
        frame["date_added"].map(wikipedia.iso_date), errors="coerce"
    )
    frame["cik"] = frame["cik"].map(lambda v: wikipedia.cik(v) if v else None)
    date = pd.to_datetime(match.group(1), format="%Y-%m-%d", errors="coerce")
    if pd.isna(date):
        raise DataError(f"{path.name}: {match.group(1)} in the name is not a calendar date")
    return Snapshot(
        date,
        path.name,
        frame[["symbol", "sector", "sub_industry", "date_added", "cik"]].reset_index(drop=True),
    )


def read_membership_files(
    intervals_path: str | Path, changes_path: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The intervals file (symbol, start, end) and the changes file (date, added, removed)."""
    intervals_path = Path(intervals_path)
    table = _read(intervals_path, ("ticker", "start_date", "end_date"))
    intervals = pd.DataFrame(
        {
            "symbol": table["ticker"].map(normalise_symbol),
            "start": pd.to_datetime(table["start_date"], errors="coerce"),
            "end": pd.to_datetime(table["end_date"].replace("", None), errors="coerce"),
        }
    )
    if intervals.empty:
        raise DataError(f"{intervals_path.name}: no membership intervals in the file")
    bad = intervals["start"].isna() | (intervals["symbol"] == "")
    bad |= intervals["end"].notna() & (intervals["end"] < intervals["start"])
    if bad.any():
        raise DataError(
            f"{intervals_path.name}: {int(bad.sum())} row(s) without a symbol and "
            "a valid start date before the end date"
        )
    changes = pd.DataFrame(columns=["date", "added", "removed"])
    if changes_path is not None:
        changes_path = Path(changes_path)
        raw = _read(changes_path, ("date", "add", "remove"))
        rows = []
        for date, add, remove in zip(raw["date"], raw["add"], raw["remove"], strict=True):
            when = pd.to_datetime(date, errors="coerce")
            if pd.isna(when):
                raise DataError(f"{changes_path.name}: bad date {date!r}")
            adds = [normalise_symbol(s) for s in str(add).split(",") if s.strip()]
            rems = [normalise_symbol(s) for s in str(remove).split(",") if s.strip()]
            rows += [(when, a, None) for a in adds] + [(when, None, r) for r in rems]
        changes = pd.DataFrame(rows, columns=["date", "added", "removed"])
    return intervals, changes


def _read(path: Path, needs: tuple) -> pd.DataFrame:
    raw = read_bounded(path, MAX_LIST_BYTES, "a membership CSV")
    try:
        table = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in needs if c not in table.columns]
    if missing:
        raise DataError(f"{path.name}: needs column(s) {', '.join(missing)}")
    return table


# ------------------------------------------------------------- source parts
def part_from_files(
    intervals: pd.DataFrame,
    changes: pd.DataFrame,
    history: SymbolHistory,
    name: str = "membership intervals file",
) -> SourcePart:
    """The intervals (plus later changes) in symbols of the day.

    Rows dated before the changes file begins carry the company's symbol at that point
    (2019 for the fja05680 file); they are walked back through the symbol history. Rows
    after it are symbols of the day already.
    """
    rows = list(zip(intervals["symbol"], intervals["start"], intervals["end"], strict=True))
    last_event = max(intervals["start"].max(), intervals["end"].max())
    open_rows: dict[str, int] = {}
    for i, (sym, _, end) in enumerate(rows):
        if pd.isna(end):
            open_rows[sym] = i
    later = changes[changes["date"] > last_event].sort_values("date", kind="stable")
    for date, add, rem in zip(later["date"], later["added"], later["removed"], strict=True):
        if isinstance(rem, str) and rem in open_rows:
            i = open_rows.pop(rem)
            rows[i] = (rows[i][0], rows[i][1], date)
        if isinstance(add, str) and add not in open_rows:
            rows.append((add, date, pd.NaT))
            open_rows[add] = len(rows) - 1
    convention = changes["date"].min() if not changes.empty else last_event
    out = []
    for sym, start, end in rows:
        end = POS_INF if pd.isna(end) else end
        if end > convention and start < convention:
            out.append((sym, convention, end))
            end_before, ignore = convention, None
        elif start >= convention:
            out.append((sym, start, end))
            continue
        else:
            end_before, ignore = end, end
        for seg in history.segments(sym, convention - DAY, forward=False, ignore_out_from=ignore):
            lo, hi = max(seg.start, start), min(seg.end, end_before)
            if lo < hi:
                out.append((seg.symbol, lo, hi))
    cov_end = max(last_event, changes["date"].max()) if not changes.empty else last_event
    return SourcePart(
        name,
        intervals_frame(out, name),
        intervals["start"].min(),
        cov_end,
        "complete index changes; symbols before "
        f"{convention.date()} mapped to the symbols of each day",
    )


def part_from_wikipedia(
    constituents: list[str],
    changes: pd.DataFrame,
    as_of: pd.Timestamp,
    history: SymbolHistory,
    name: str,
) -> SourcePart:
    """Walk the page's constituents back through its changes and the symbol history.

    ``changes`` has the Wikipedia columns (date, added_ticker, removed_ticker). A change
    dated d takes effect on d; so does a rename.
    """
    events: dict[pd.Timestamp, list] = {}
    for date, add, rem in zip(
        changes["date"], changes["added_ticker"], changes["removed_ticker"], strict=True
    ):
        if pd.isna(date) or date > as_of:
            continue
        add = normalise_symbol(add) if isinstance(add, str) and add.strip() else None
        rem = normalise_symbol(rem) if isinstance(rem, str) and rem.strip() else None
        events.setdefault(pd.Timestamp(date), []).append(("change", add, rem))
    for old, new, date in zip(
        history.renames()["old"], history.renames()["new"], history.renames()["date"], strict=True
    ):
        if date <= as_of:
            events.setdefault(pd.Timestamp(date), []).append(("rename", old, new))
    state = {normalise_symbol(s) for s in constituents}
    since: dict[str, pd.Timestamp] = {s: as_of for s in state}  # symbol -> earliest date in
    out = []
    first_change = changes["date"].min() if not changes.empty else as_of
    for date in sorted(events, reverse=True):
        if date < first_change:
            break  # renames older than the changes table: nothing to walk back to
        before = set(state)
        for kind, a, b in events[date]:
            if kind == "change":
                if a is not None:
                    before.discard(a)
                if b is not None:
                    before.add(b)
        # all of a day's renames at once: IR -> TT and GDI -> IR on one day must not
        # chain TT back to GDI
        back = {new: old for kind, old, new in events[date] if kind == "rename"}
        if back:
            before = {back.get(sym, sym) for sym in before}
        for sym in state - before:  # present from `date` on, absent before
            out.append((sym, date, since.pop(sym)))
        for sym in before - state:
            since[sym] = date
        state = before
    for sym in state:
        out.append((sym, first_change, since[sym]))
    frame = intervals_frame(out, name)
    # the page's list stays the answer until a newer source says otherwise
    frame.loc[frame["end"] >= as_of, "end"] = POS_INF
    return SourcePart(
        name, frame, first_change, as_of, "'selected changes' only: incomplete before about 2008"
    )


def part_from_snapshot_bridge(
    snapshot: Snapshot, state: set[str], after: pd.Timestamp, history: SymbolHistory
) -> tuple[SourcePart, str | None]:
    """Dates in ``(after, snapshot.date]`` from the members on ``after`` and the snapshot.

    Additions are dated by the snapshot's "Date added"; members on ``after`` that are
    absent from the snapshot left on an unknown date and count as members until the
    snapshot (said in the returned warning). Renames in the gap are applied on their
    date, or on the snapshot date when a CIK links two symbols with no dated rename.
    """
    name = f"constituents snapshot {snapshot.name}"
    renamed = {}
    for sym in state:
        segs = history.segments(sym, after)
        renamed[sym] = segs
    snap = snapshot.symbols
    out = []
    still = set()
    for sym, segs in renamed.items():
        final = segs[-1].symbol if segs else sym
        # a member still listed on the snapshot stays open; a leaver ends before it
        stop = POS_INF if final in snap else snapshot.date
        for seg in segs:
            lo, hi = max(seg.start, after + DAY), min(seg.end, stop)
            if lo < hi:
                out.append((seg.symbol, lo, hi))
        if final in snap:
            still.add(final)
    added = snapshot.frame.set_index("symbol")["date_added"]
    undated = []
    for sym in sorted(snap - still):
        when = added.get(sym)
        start = when if isinstance(when, pd.Timestamp) and when > after else None
        if start is None:
            undated.append(sym)
            start = snapshot.date
        out.append((sym, start, POS_INF))
    leavers = sorted(s for s, segs in renamed.items() if segs[-1].symbol not in snap)
    warning = None
    if leavers or undated:
        warning = (
            f"between {after.date()} and {snapshot.date.date()} membership comes from "
            f"{snapshot.name}: {len(leavers)} member(s) that left on an unknown date "
            f"count as members until {snapshot.date.date()}"
            + (f"; {len(undated)} without a date added count from that date" if undated else "")
        )
    frame = intervals_frame(out, name)
    return SourcePart(
        name, frame, after + DAY, snapshot.date, "additions dated by 'Date added'; removals undated"
    ), warning
