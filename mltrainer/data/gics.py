"""GICS sectors, and each company's sector as of a past date.

The 11 sectors of today's GICS (S&P/MSCI Global Industry Classification Standard,
March 2023 structure) are :data:`GICS_SECTORS`. The structure changed three times in
the span our data covers, each on a known date (:data:`RECLASSIFICATIONS`):

- 2016-09-01: Real Estate split out of Financials (REITs and real estate services);
- 2018-09-24: Communication Services replaced Telecommunication Services, taking the
  media companies from Consumer Discretionary and the internet and home-entertainment
  software companies from Information Technology;
- 2023-03-20: payments companies moved from Information Technology to Financials, data
  processing and payroll companies to Industrials, and Target, Dollar General and Dollar
  Tree from Consumer Discretionary to Consumer Staples.

:func:`sectors_as_of` answers "in which sector was this member on that date" from dated
constituents lists (snapshots): the latest list at or before the date where the company
is in one (carried forward through any reclassification since, when its sub-industry
says it moved), else the earliest later list mapped back through the reclassifications
in between. Each answer says which list and which changes it used. A company in no
list (most members that left the index before the oldest list) is ``Unknown``.

Sub-industries are those of today's structure: a list without them (the 2021 CSV) takes
the company's sub-industry from the nearest list that has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from mltrainer.data.market_data import UNKNOWN_SECTOR, MarketData
from mltrainer.data.membership_combined import Membership
from mltrainer.data.symbols import SymbolHistory, normalise_symbol
from mltrainer.errors import DataError
from mltrainer.validate import DateLike

GICS_SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)
TELECOM = "Telecommunication Services"  # the sector Communication Services replaced
UNKNOWN = UNKNOWN_SECTOR

_COMM, _CD, _IT = "Communication Services", "Consumer Discretionary", "Information Technology"

# The date on which each symbol names its company: one date for all, or symbol -> date.
Anchors = str | pd.Timestamp | Mapping[str, DateLike] | None


@dataclass(frozen=True)
class Rule:
    """From ``date`` on, companies matching this rule are in ``new`` (``old`` before).

    A rule matches a company in ``new`` whose (today's) sub-industry is one of
    ``sub_industries`` (``None``: any) and, when ``symbols`` is given, whose symbol in
    the dated list is one of them (a sub-industry that also holds companies that did
    not move).
    """

    date: pd.Timestamp
    new: str
    old: str
    sub_industries: frozenset | None = None
    symbols: frozenset | None = None

    def matches(self, sector: str, sub_industry: str | None, symbol: str, era: str) -> bool:
        """Whether the rule moves this company: ``sector`` is the rule's ``new`` one when
        ``era`` is "new" (a list dated after the change), its ``old`` one otherwise,
        and the sub-industry and symbol fit."""
        if sector != (self.new if era == "new" else self.old):
            return False
        if self.symbols is not None and symbol not in self.symbols:
            return False
        return self.sub_industries is None or sub_industry in self.sub_industries


@dataclass(frozen=True)
class Reclassification:
    """One dated change of the GICS structure (its rules and where it is documented)."""

    date: pd.Timestamp
    label: str
    rules: tuple[Rule, ...]
    source: str

    def rule_for(self, sector: str, sub_industry: str | None, symbol: str, era: str) -> Rule | None:
        """The first rule matching the company (see :meth:`Rule.matches`), or None."""
        return next((r for r in self.rules if r.matches(sector, sub_industry, symbol, era)), None)

    def needs_sub_industry(self, sector: str) -> bool:
        """Whether telling a company's earlier sector apart needs its sub-industry."""
        olds = {r.old for r in self.rules if r.new == sector}
        return len(olds) > 1


def _rules(
    date: str,
    new: str,
    old: str,
    subs: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
) -> Rule:
    return Rule(
        pd.Timestamp(date),
        new,
        old,
        None if subs is None else frozenset(subs),
        None if symbols is None else frozenset(symbols),
    )


# each change's first trading day in the new sectors (the day after the close it took
# effect at, as the sources below say)
_D16, _D18, _D23 = "2016-09-01", "2018-09-24", "2023-03-20"
RECLASSIFICATIONS: tuple[Reclassification, ...] = (
    Reclassification(
        pd.Timestamp(_D16),
        "Real Estate sector (2016-09-01)",
        (_rules(_D16, "Real Estate", "Financials"),),
        "S&P Dow Jones Indices / MSCI, GICS changes effective after the close of 2016-08-31",
    ),
    Reclassification(
        pd.Timestamp(_D18),
        "Communication Services (2018-09-24)",
        (
            _rules(
                _D18,
                _COMM,
                TELECOM,
                (
                    "Integrated Telecommunication Services",
                    "Wireless Telecommunication Services",
                    "Alternative Carriers",
                ),
            ),
            _rules(
                _D18, _COMM, _IT, ("Interactive Media & Services", "Interactive Home Entertainment")
            ),
            _rules(
                _D18,
                _COMM,
                _CD,
                (
                    "Movies & Entertainment",
                    "Cable & Satellite",
                    "Broadcasting",
                    "Publishing",
                    "Advertising",
                ),
            ),
        ),
        "S&P Dow Jones Indices / MSCI, GICS changes effective after the close of 2018-09-21",
    ),
    Reclassification(
        pd.Timestamp(_D23),
        "GICS 2023 (2023-03-20)",
        (
            _rules(_D23, "Financials", _IT, ("Transaction & Payment Processing Services",)),
            _rules(_D23, "Industrials", _IT, ("Data Processing & Outsourced Services",)),
            # payroll processors only: Robert Half etc. were in Industrials already
            _rules(
                _D23,
                "Industrials",
                _IT,
                ("Human Resource & Employment Services",),
                ("ADP", "PAYX", "PAYC"),
            ),
            # general merchandise stores only: Walmart and Costco were Consumer Staples already
            _rules(
                _D23,
                "Consumer Staples",
                _CD,
                ("Consumer Staples Merchandise Retail",),
                ("TGT", "DG", "DLTR"),
            ),
        ),
        "S&P Dow Jones Indices / MSCI, GICS changes effective after the close of "
        "2023-03-17; the companies named were checked against the 2021 and 2024 lists",
    ),
)


def map_sector(
    sector: str, sub_industry: str | None, symbol: str, listed: pd.Timestamp, date: pd.Timestamp
) -> tuple[str, list[str]]:
    """A sector from a list dated ``listed`` as it was on ``date``, and the changes used.

    Walks the reclassifications between the two dates (back in time when ``date`` is
    earlier). Returns :data:`UNKNOWN` when a change cannot be undone without the
    sub-industry (a Communication Services company of unknown sub-industry before 2018).
    """
    applied: list[str] = []
    back = date < listed  # undo the changes after ``date``, newest first
    lo, hi = (date, listed) if back else (listed, date)
    for change in sorted(RECLASSIFICATIONS, key=lambda c: c.date, reverse=back):
        if not (lo < change.date <= hi):
            continue
        rule = change.rule_for(sector, sub_industry, symbol, "new" if back else "old")
        if rule is not None:
            sector = rule.old if back else rule.new
            applied.append(change.label)
        elif back and change.needs_sub_industry(sector) and sub_industry is None:
            return UNKNOWN, [*applied, f"{change.label}: sub-industry unknown"]
    return sector, applied


# ------------------------------------------------------------------- dated lists
@dataclass(frozen=True)
class SectorList:
    """A dated constituents list's sectors: ``frame`` indexed by symbol (symbols of that
    day) with columns ``sector, sub_industry, date_added`` (NaT where not given)."""

    date: pd.Timestamp
    name: str
    frame: pd.DataFrame


def sector_lists(
    membership: Membership | None = None, pages: Iterable[str | Path] | None = None
) -> list[SectorList]:
    """The dated lists with sectors: the membership's snapshots (constituents-*.csv)
    and the saved Wikipedia pages of the data folder (or ``pages``), oldest first."""
    from mltrainer.data import wikipedia
    from mltrainer.data.membership import find_sources

    out = []
    for snap in getattr(membership, "snapshots", ()) or ():
        out.append(SectorList(snap.date, snap.name, _sector_frame(snap.frame)))
    for page in find_sources()["pages"] if pages is None else pages:
        tables = wikipedia.read_html_file(page)
        if tables.as_of is not None and not tables.constituents.empty:
            out.append(
                SectorList(
                    pd.Timestamp(tables.as_of).normalize(),
                    Path(page).name,
                    _sector_frame(tables.constituents),
                )
            )
    return sorted(out, key=lambda s: s.date)


def _sector_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "sector": frame["sector"].where(frame["sector"].astype(bool), None),
            "sub_industry": (frame["sub_industry"] if "sub_industry" in frame else None),
            "date_added": pd.to_datetime(
                frame["date_added"] if "date_added" in frame else None, errors="coerce"
            ),
        }
    )
    out.index = pd.Index(frame["symbol"].map(normalise_symbol), name="symbol")
    out["sub_industry"] = out["sub_industry"].where(out["sub_industry"].astype(bool), None)
    return out[~out.index.duplicated()]


# --------------------------------------------------------------- sectors as of
@dataclass
class SectorsAsOf:
    """Members' sectors on ``date`` with where each came from.

    ``frame`` is indexed by the symbols asked for, columns ``sector``, ``list`` (the
    dated list used, "" when none), ``list_date``, ``changes`` (reclassifications
    applied, "; "-joined, "" when none).
    """

    date: pd.Timestamp
    frame: pd.DataFrame
    lists: list[str] = field(default_factory=list)

    @property
    def sectors(self) -> dict[str, str]:
        """Symbol -> sector name (``Unknown`` where no list tells)."""
        return self.frame["sector"].to_dict()

    @property
    def n_unknown(self) -> int:
        """How many of the symbols have sector ``Unknown``."""
        return int((self.frame["sector"] == UNKNOWN).sum())

    def provenance(self) -> str:
        """One sentence for a caption: lists used, changes applied, unknowns."""
        known = self.frame[self.frame["list"] != ""]
        parts = []
        for name, group in known.groupby("list", sort=False):
            later = group["list_date"].iloc[0] > self.date
            changed = group["changes"][(group["changes"] != "") & (group["sector"] != UNKNOWN)]
            labels = sorted({c for text in changed for c in text.split("; ")})
            notes = (["a later list"] if later else []) + (
                [
                    f"{len(changed)} mapped {'back' if later else 'forward'} through "
                    f"{' and '.join(labels)}"
                ]
                if labels
                else []
            )
            parts.append(f"{len(group)} from {name}" + (f" ({', '.join(notes)})" if notes else ""))
        unlisted = int((self.frame["list"] == "").sum())
        unmapped = self.n_unknown - unlisted
        text = f"GICS sectors on {self.date:%Y-%m-%d}: " + ("; ".join(parts) or "none known")
        if unlisted:
            text += f"; {unlisted} Unknown (in no dated list)"
        if unmapped:
            text += f"; {unmapped} Unknown (sub-industry needed to map back)"
        return text


@dataclass(frozen=True)
class _Entry:
    """A company as one dated list has it."""

    symbol: str
    sector: str
    sub_industry: str | None
    added: pd.Timestamp | None


def _company_rows(
    symbols: list[str],
    anchors: list[pd.Timestamp],
    lists: list[SectorList],
    history: SymbolHistory | None,
) -> list[list]:
    """Per list, each company's entry under its symbol on the list's date (None when
    the list does not have it or gives no sector)."""
    found = []
    for lst in lists:
        f = lst.frame
        entries = {
            sym: _Entry(
                sym,
                sec,
                sub if isinstance(sub, str) and sub else None,
                None if pd.isna(added) else added,
            )
            for sym, sec, sub, added in zip(
                f.index, f["sector"], f["sub_industry"], f["date_added"], strict=True
            )
            if isinstance(sec, str) and sec
        }
        row = []
        for sym, anchor in zip(symbols, anchors, strict=True):
            on = history.symbol_on(sym, anchor, lst.date) if history is not None else sym
            row.append(entries.get(on) or entries.get(sym))
        found.append(row)
    return found


def sectors_as_of(
    symbols: Iterable[str],
    date: DateLike,
    lists: list[SectorList] | None = None,
    history: SymbolHistory | None = None,
    anchors: Anchors = None,
) -> SectorsAsOf:
    """Each company's GICS sector on ``date`` (see the module docstring).

    Parameters
    ----------
    symbols : iterable of str
        Companies, by their symbol on ``anchors`` (default: on ``date``, the symbols
        of that day as :meth:`Membership.members_on` gives them).
    date : date-like
    lists : list of SectorList, optional
        Dated lists; default :func:`sector_lists` of the loaded membership.
    history : SymbolHistory, optional
        Walks a symbol to the one used on each list's date (FB in 2020 is META in
        2024); default the loaded membership's.
    anchors : date-like or mapping symbol -> date, optional
    """
    when = pd.Timestamp(date).normalize()
    symbols = list(symbols)
    if lists is None or history is None:
        from mltrainer.data.membership import load_membership

        membership = load_membership()
        lists = sector_lists(membership) if lists is None else lists
        history = membership.history if history is None else history
    lists = sorted(lists, key=lambda s: s.date)
    found = _company_rows(symbols, _anchor_dates(symbols, anchors, when), lists, history)
    return _resolve(symbols, when, lists, found)


def _anchor_dates(
    symbols: list[str], anchors: Anchors, default: pd.Timestamp
) -> list[pd.Timestamp]:
    """The date on which each of ``symbols`` names its company: ``anchors`` itself if
    one date, else the symbol's entry in it, else ``default``."""
    if anchors is None or isinstance(anchors, (str, pd.Timestamp)):
        return [pd.Timestamp(anchors or default)] * len(symbols)
    return [pd.Timestamp(anchors.get(s, default)) for s in symbols]


def sector_regimes(
    symbols: Iterable[str],
    start: DateLike,
    end: DateLike,
    lists: list[SectorList],
    history: SymbolHistory | None,
    anchors: Anchors = None,
) -> list[tuple[pd.Timestamp, SectorsAsOf]]:
    """Sectors of ``symbols`` on every date of ``[start, end]``, as the few spans over
    which they are constant: ``[(first date, SectorsAsOf), ...]``.

    A company's sector as of a date changes only where a dated list begins to apply or a
    reclassification takes effect, so each span starts at ``start`` or at one of those
    dates. ``anchors`` as in :func:`sectors_as_of` (default: ``end``).
    """
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    symbols = list(symbols)
    lists = sorted(lists, key=lambda s: s.date)
    found = _company_rows(symbols, _anchor_dates(symbols, anchors, hi), lists, history)
    breaks = sorted(
        {
            d
            for d in [*(x.date for x in lists), *(c.date for c in RECLASSIFICATIONS)]
            if lo < d <= hi
        }
    )
    starts = [lo, *breaks]
    ends = [*(b - pd.Timedelta(days=1) for b in breaks), hi]
    # a later list's company counts for the span if it was added by the span's end (it
    # is only shown while a member anyway: the membership mask decides that)
    return [
        (day, _resolve(symbols, day, lists, found, added_by=last))
        for day, last in zip(starts, ends, strict=True)
    ]


def _resolve(
    symbols: list[str],
    when: pd.Timestamp,
    lists: list[SectorList],
    found: list[list],
    added_by: pd.Timestamp | None = None,
) -> SectorsAsOf:
    dates = [lst.date for lst in lists]
    added_by = added_by or when
    rows = []
    for j, sym in enumerate(symbols):
        # a later list's company added to the index after the date is not the member of
        # that day: the symbol was reused (CEG in 2008 is not the 2022 spin-off)
        listed = [
            i
            for i, lst in enumerate(lists)
            if found[i][j] is not None
            and not (
                lst.date > when and found[i][j].added is not None and found[i][j].added > added_by
            )
        ]
        before = [i for i in listed if dates[i] <= when]
        after = [i for i in listed if dates[i] > when]
        pick = before[-1] if before else (after[0] if after else None)
        if pick is None:
            rows.append((sym, UNKNOWN, "", pd.NaT, ""))
            continue
        entry = found[pick][j]
        # sub-industries only under today's names: the nearest list that gives one, among
        # those with the same company as the picked list (a member already on its date:
        # CHTR's 2024 row, added 2016, is 2021's CHTR, so it maps CHTR back for 2010)
        same = [
            i
            for i, row in enumerate(found)
            if row[j] is not None and (row[j].added is None or row[j].added <= dates[pick])
        ]
        near = sorted(set(listed) | set(same), key=lambda i: abs((dates[i] - dates[pick]).days))
        sub = next((found[i][j].sub_industry for i in near if found[i][j].sub_industry), None)
        sector, applied = map_sector(entry.sector, sub, entry.symbol, dates[pick], when)
        rows.append((sym, sector, lists[pick].name, dates[pick], "; ".join(applied)))
    frame = pd.DataFrame(rows, columns=["symbol", "sector", "list", "list_date", "changes"])
    return SectorsAsOf(when, frame.set_index("symbol"), [lst.name for lst in lists])


def with_sector_periods(data: MarketData, membership: Membership | None = None) -> MarketData:
    """``data`` with its point-in-time sectors dated now (:func:`dated_sectors`)."""
    return replace(data, sector_periods=dated_sectors(data, membership))


def dated_sectors(data: MarketData, membership: Membership | None = None) -> tuple:
    """The point-in-time sector periods of ``data`` (:attr:`MarketData.sector_periods`)
    over its dates, each ticker named by its symbol on its anchor date (its last price
    date in what was loaded; the data's last date without one); empty, for today's
    sectors only, when no membership source loads. A sector the lists cannot place on a
    date (a media company before 2018, where the sub-industry would be needed) is absent
    there, not today's."""
    if data.adj_close.empty:
        return ()
    if membership is None:
        from mltrainer.data.membership import load_membership

        try:
            membership = load_membership()
        except DataError:
            return ()
    anchors = data.last_valid_dates().fillna(data.dates[-1])
    anchors.update(pd.Series(data.sector_anchors, dtype="datetime64[ns]"))
    spans = sector_regimes(
        data.tickers,
        data.dates[0],
        data.dates[-1],
        sector_lists(membership),
        membership.history,
        anchors,
    )
    return tuple(
        (day, {t: sec for t, sec in found.sectors.items() if sec and sec != UNKNOWN})
        for day, found in spans
    )
