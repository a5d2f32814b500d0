"""Ticker symbols through time: which symbol a company traded under on a given date.

A company keeps its identity when its ticker changes (FB became META on 2022-06-09,
HCN became WELL on 2018-02-28), and a freed ticker can later name another company
(GOOG was Google's class A until 2014-04-03, then its class C). Historical member lists
and price files are keyed by different conventions (symbols of the day, the symbols of
2019, of April 2021, of today), so every lookup goes through one table of changes:

``old, new, date, kind, source, note``: on ``date`` the company trading as ``old``
starts trading as ``new``. ``kind`` is ``rename``, or ``not_rename`` for a same-day
add/remove pair in a membership file that is an index replacement, not a rename (kept so
the derivation below does not mistake it for one).

The table is the package's curated file ``reference/symbol_changes.csv`` (a source for
every row) plus renames derived from the data at hand (:func:`derive_renames`: a
same-day add/remove pair whose added company was first added to the index earlier, or
whose CIK matches across two constituent lists).

Spelling: a share class is written with a dot (``BRK.B``); Yahoo's ``BRK-B`` and
``BRK/B`` are the same symbol (:func:`normalise_symbol`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mltrainer.errors import DataError
from mltrainer.validate import DateLike

REFERENCE_FILE = Path(__file__).resolve().parent / "reference" / "symbol_changes.csv"
COLUMNS = ("old", "new", "date", "kind", "source", "note")
_CLASS = re.compile(r"^([A-Z0-9]+)[-/ ]([A-Z])$")
# days between a pair's change date and the added company's "date first added" above
# which the pair is taken for a rename (index dates and list dates differ by a few days)
_RENAME_MIN_AGE_DAYS = 7

NEG_INF = pd.Timestamp("1700-01-01")  # before any listing: an open start
POS_INF = pd.Timestamp("2200-01-01")  # an open end


def normalise_symbol(symbol: object) -> str:
    """Upper-case, stripped, share class after a dot: ``brk-b`` -> ``BRK.B``."""
    text = str(symbol).strip().upper()
    match = _CLASS.match(text)
    return f"{match.group(1)}.{match.group(2)}" if match else text


@lru_cache(maxsize=1)
def _reference_table() -> pd.DataFrame:
    try:
        table = pd.read_csv(REFERENCE_FILE, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise DataError(
            f"the symbol-change table {REFERENCE_FILE} cannot be read ({exc.strerror or exc})"
        ) from None
    return _clean_table(table, str(REFERENCE_FILE.name))


def reference_changes() -> pd.DataFrame:
    """The curated symbol-change table shipped with the package (a copy)."""
    return _reference_table().copy()


def _clean_table(table: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{name}: symbol-change table lacks column(s) {', '.join(missing)}")
    out = table[list(COLUMNS)].copy()
    out["old"] = out["old"].map(normalise_symbol)
    out["new"] = out["new"].map(normalise_symbol)
    out["date"] = pd.to_datetime(out["date"], errors="coerce")
    bad = out["date"].isna() | (out["old"] == "") | (out["new"] == "")
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} row(s) without a valid old, new and date")
    if not out["kind"].isin(["rename", "not_rename"]).all():
        raise DataError(f"{name}: kind must be 'rename' or 'not_rename'")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def derive_renames(
    changes: pd.DataFrame,
    first_added: dict[str, pd.Timestamp],
    ciks: dict[str, set[str]] | None = None,
    known: pd.DataFrame | None = None,
    source: str = "membership changes",
) -> pd.DataFrame:
    """Renames implied by same-day add/remove pairs in a changes table.

    ``changes`` has ``date, added, removed`` (one symbol each, either may be empty).
    A pair on date d is a rename when exactly one symbol was removed that day and the
    added company was first added to the index (``first_added``, from a constituents
    list's "Date added") more than a week before d, or when the two symbols share a CIK
    (``ciks``: symbol -> CIKs seen for it). Pairs already in ``known`` (either kind) are
    skipped, so the curated table decides.
    """
    if changes.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    seen = set()
    if known is not None and not known.empty:
        seen = {(o, n) for o, n in zip(known["old"], known["new"], strict=True)}
    ciks = ciks or {}
    rows = []
    for date, group in changes.groupby("date", sort=True):
        added = [normalise_symbol(s) for s in group["added"].dropna() if str(s).strip()]
        removed = [normalise_symbol(s) for s in group["removed"].dropna() if str(s).strip()]
        for new in added:
            candidates = removed
            shared = [old for old in removed if ciks.get(old, set()) & ciks.get(new, set())]
            if shared:
                candidates = shared
            first = first_added.get(new)
            old_enough = first is not None and (date - first).days > _RENAME_MIN_AGE_DAYS
            if len(candidates) != 1 or not (shared or old_enough):
                continue
            old = candidates[0]
            if (old, new) in seen or old == new:
                continue
            why = (
                f"CIK {sorted(ciks[new] & ciks[old])[0]}"
                if shared
                else f"{new} first added {first.date()}"
            )
            rows.append(
                {
                    "old": old,
                    "new": new,
                    "date": pd.Timestamp(date),
                    "kind": "rename",
                    "source": f"derived: same-day pair in {source}; {why}",
                    "note": "",
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


@dataclass(frozen=True)
class Segment:
    """``symbol`` named the company on dates in ``[start, end)``."""

    symbol: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass
class SymbolHistory:
    """The rename table, indexed for walking a symbol back and forth through time."""

    changes: pd.DataFrame
    _in: dict = field(default_factory=dict, init=False, repr=False)
    _out: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        renames = self.changes[self.changes["kind"] == "rename"]
        for old, new, date in zip(renames["old"], renames["new"], renames["date"], strict=True):
            self._in.setdefault(new, []).append((date, old))
            self._out.setdefault(old, []).append((date, new))
        for table in (self._in, self._out):
            for events in table.values():
                events.sort()

    @classmethod
    def default(cls, extra: pd.DataFrame | None = None) -> SymbolHistory:
        """The curated table, plus ``extra`` rows (derived ones) not already in it."""
        table = reference_changes()
        if extra is not None and not extra.empty:
            have = {(o, n) for o, n in zip(table["old"], table["new"], strict=True)}
            keep = [(o, n) not in have for o, n in zip(extra["old"], extra["new"], strict=True)]
            table = pd.concat([table, extra[keep]], ignore_index=True)
            table = table.sort_values("date", kind="stable").reset_index(drop=True)
        return cls(table)

    def renames(self) -> pd.DataFrame:
        """The ``rename`` rows (old, new, date, source)."""
        return self.changes[self.changes["kind"] == "rename"].reset_index(drop=True)

    @staticmethod
    def _last_before(events: list, when: pd.Timestamp, inclusive: bool):
        """The latest (date, other) with date < when (<= when if inclusive), or None."""
        dates = [d for d, _ in events]
        i = (bisect.bisect_right if inclusive else bisect.bisect_left)(dates, when)
        return events[i - 1] if i else None

    def segments(
        self,
        symbol: str,
        anchor: DateLike,
        *,
        forward: bool = True,
        ignore_out_from: DateLike | None = None,
    ) -> list[Segment]:
        """The symbols of the company that traded as ``symbol`` on ``anchor``.

        Walks back from ``anchor``: a rename into the current symbol on date r means the
        company traded under the old one before r; a rename *out of* the current symbol
        on r, with no rename into it, means the symbol named another company before r,
        so the walk stops (a freed ticker re-used). ``ignore_out_from``: renames out of
        a symbol on or after that date are ignored (a membership file labels a company
        that left the index with its own last symbol, even if another company took that
        symbol later). With ``forward`` the walk also goes on after ``anchor``. Segments
        are oldest first and cover ``[start, end)``; an open side is NEG_INF/POS_INF.
        """
        anchor = pd.Timestamp(anchor).normalize()
        sym = normalise_symbol(symbol)
        back: list[Segment] = []
        hi, cur = anchor, sym  # cur names the company on dates <= hi
        end = POS_INF
        if forward:
            end, tail = self._forward(sym, anchor)
        else:
            tail = []
        seg_end = end
        for _ in range(64):  # a chain of renames is short; the bound guards a cycle
            into = self._last_before(self._in.get(cur, []), hi, inclusive=True)
            # a rename out of the symbol on the anchor itself belongs to the forward walk
            out = self._last_before(self._out.get(cur, []), hi, inclusive=False)
            if out is not None and ignore_out_from is not None and out[0] >= ignore_out_from:
                out = None
            if into is None and out is None:
                back.append(Segment(cur, NEG_INF, seg_end))
                break
            if into is not None and (out is None or into[0] >= out[0]):
                date, old = into
                back.append(Segment(cur, date, seg_end))
                cur, hi, seg_end = old, date - pd.Timedelta(days=1), date
                continue
            back.append(Segment(cur, out[0], seg_end))  # symbol freed before: stop
            break
        return back[::-1] + tail

    def _forward(self, sym: str, anchor: pd.Timestamp) -> tuple[pd.Timestamp, list[Segment]]:
        """End of ``sym``'s use after ``anchor`` and the later segments of its company."""
        tail: list[Segment] = []
        cur, lo = sym, anchor
        first_end = POS_INF
        for _ in range(64):
            events = self._out.get(cur, [])
            dates = [d for d, _ in events]
            i = (bisect.bisect_left if cur == sym and not tail else bisect.bisect_right)(dates, lo)
            if i >= len(events):
                if tail:
                    tail[-1] = Segment(tail[-1].symbol, tail[-1].start, POS_INF)
                break
            date, new = events[i]
            if not tail:
                first_end = date
            else:
                tail[-1] = Segment(tail[-1].symbol, tail[-1].start, date)
            tail.append(Segment(new, date, POS_INF))
            cur, lo = new, date
        return first_end, tail

    def symbol_on(self, symbol: str, anchor: DateLike, when: DateLike) -> str | None:
        """The symbol on ``when`` of the company that traded as ``symbol`` on ``anchor``
        (None where the walk stops: the symbol named another company then)."""
        when = pd.Timestamp(when).normalize()
        for seg in self.segments(symbol, anchor):
            if seg.start <= when < seg.end:
                return seg.symbol
        return None

    def symbols_on(
        self, symbols: Iterable[str], anchor: DateLike, when: DateLike
    ) -> dict[str, str]:
        """``{symbol on anchor: symbol on when}`` for the ``symbols`` whose company traded
        under another symbol on ``when`` (a rename between the dates); the others are left
        out."""
        out = {}
        for sym in symbols:
            then = self.symbol_on(sym, anchor, when)
            if then is not None and then != sym:
                out[sym] = then
        return out


def relabel(frame: pd.DataFrame, renamed: dict[str, str], column: str = "ticker") -> pd.DataFrame:
    """``frame`` with its ``column`` symbols renamed by ``renamed`` (``{old: new}``, as
    :meth:`SymbolHistory.symbols_on` gives), in its row order. Where a new symbol is also
    another row's own (a symbol freed and taken over by a renamed company), the renamed
    row keeps it: the symbol names that company on the target date."""
    moved = frame[column].isin(renamed)
    out = frame.assign(**{column: frame[column].replace(renamed)})
    keep = ~out[column].duplicated(keep=False) | moved
    return out[keep].drop_duplicates(column)


__all__ = [
    "COLUMNS",
    "Segment",
    "SymbolHistory",
    "derive_renames",
    "normalise_symbol",
    "reference_changes",
    "relabel",
]
