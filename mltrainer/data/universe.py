"""The S&P 500 universe: who is in the index, in which sector, with what weight, and when.

:class:`SP500Universe` holds a constituents list and (when the source has one) the
Wikipedia changes table, from which membership on any past date is rebuilt by walking
the changes back from the current list. :class:`SP500UniverseManager` loads a universe
from Wikipedia (through the cache, fresh for one quarter), a saved copy of the page, a
constituents CSV, or the list bundled in ``pytickersymbols`` (the offline default), and
knows the quarterly rebalance calendar.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mltrainer import config
from mltrainer.data import wikipedia
from mltrainer.data.cache import get_cache, next_rebalance
from mltrainer.data.constituents import (
    SP500Stock,
    date_in_name,
    empty_changes,
    gics_sector,
    read_csv,
    records,
    snapshot_caps,
    stocks_from_frame,
)
from mltrainer.data.http import HttpClient
from mltrainer.errors import DataError, SourceError
from mltrainer.outputs import is_device, parquet_writer, write_atomic
from mltrainer.validate import DateLike

if TYPE_CHECKING:  # membership is built on demand: its sources are read then
    from mltrainer.data.membership_combined import Membership


@dataclass
class SP500Universe:
    """A constituents list, the changes table (may be empty), its date and source."""

    constituents: list[SP500Stock]
    changes: pd.DataFrame = field(default_factory=empty_changes)
    as_of: pd.Timestamp | None = None
    source: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    # set by SP500UniverseManager.update when Wikipedia could not give a fresh list
    update_failed: bool = field(default=False, compare=False)
    _memo: tuple | None = field(default=None, init=False, repr=False, compare=False)

    # ------------------------------------------------------------- basics
    @property
    def symbols(self) -> list[str]:
        """The members' symbols, in list order."""
        return [s.symbol for s in self.constituents]

    def __len__(self) -> int:
        return len(self.constituents)

    def get(self, symbol: str) -> SP500Stock | None:
        """The member with this symbol (any case, spaces ignored), or None."""
        symbol = symbol.strip().upper()
        return next((s for s in self.constituents if s.symbol == symbol), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per member, columns as :class:`SP500Stock`'s fields."""
        names = [f.name for f in fields(SP500Stock)]
        return pd.DataFrame([asdict(s) for s in self.constituents], columns=names)

    def summary(self) -> dict:
        """JSON-ready counts, dates and sector distribution."""
        today = dt.date.today()
        as_of = None if self.as_of is None else self.as_of.date()
        return {
            "source": self.source,
            "as_of": None if as_of is None else as_of.isoformat(),
            "n_constituents": len(self),
            "n_changes": int(len(self.changes)),
            "changes_from": None
            if self.changes.empty
            else self.changes["date"].min().date().isoformat(),
            "sectors": {k: int(v) for k, v in self.sectors().items()},
            # a list with no date (pytickersymbols) cannot say when it goes out of date
            "next_update": None
            if as_of is None
            else SP500UniverseManager.next_update(as_of).isoformat(),
            "stale": None if as_of is None else SP500UniverseManager.is_stale(as_of, today),
            "warnings": list(self.warnings),
        }

    # ------------------------------------------------------------ sectors
    def sectors(self) -> pd.Series:
        """Members per GICS sector, largest first (``Unknown`` where none is known)."""
        counts = pd.Series([s.sector or "Unknown" for s in self.constituents]).value_counts()
        counts.index.name = "sector"
        return counts.rename("count")

    def equal_weights(self) -> pd.Series:
        """``1/n`` for each of the ``n`` members, indexed by symbol; DataError if none."""
        n = len(self)
        if n == 0:
            raise DataError(f"the universe from {self.source} has no constituents")
        return pd.Series(1.0 / n, index=pd.Index(self.symbols, name="symbol"), name="weight")

    def cap_weights(self) -> pd.Series:
        """Market-cap weights of the members with a known cap (they sum to 1).

        Uses the caps already attached (:meth:`with_market_caps`); if none are, reads
        the constituents-financials snapshot in the data folder. Members without a cap
        are left out and listed in :attr:`warnings`.
        """
        universe = self
        if not any(s.market_cap for s in self.constituents):
            universe = self.with_market_caps("snapshot")
            self.warnings.extend(w for w in universe.warnings if w not in self.warnings)
        caps = pd.Series({s.symbol: s.market_cap for s in universe.constituents}, dtype=float)
        caps = caps[caps > 0]
        if caps.empty:
            raise DataError(
                f"no market caps for the {self.source} constituents: the data folder's "
                "constituents-financials snapshot does not cover them"
            )
        weights = (caps / caps.sum()).rename("weight")
        weights.index.name = "symbol"
        return weights

    def sector_weights(self, kind: str = "cap") -> pd.Series:
        """Index weight of each sector, ``kind`` "cap" (market cap) or "equal"."""
        if kind not in ("cap", "equal"):
            raise DataError(f"sector_weights kind must be 'cap' or 'equal' (got {kind!r})")
        weights = self.cap_weights() if kind == "cap" else self.equal_weights()
        sectors = sector_map(self)
        by = pd.Series([sectors.get(t, "Unknown") for t in weights.index], index=weights.index)
        out = weights.groupby(by).sum().sort_values(ascending=False)
        out.index.name = "sector"
        return out.rename("weight")

    def with_market_caps(
        self, source: str = "snapshot", path: str | Path | None = None, **kw
    ) -> SP500Universe:
        """A copy with ``market_cap`` filled from ``source``.

        ``snapshot``: the constituents-financials CSV (``path`` or the newest
        ``constituents-financials-*.csv`` in the data folder; its Sector column holds
        sub-industries, so only Market Cap is taken, joined on Symbol). ``polygon``:
        Polygon's ticker reference (needs POLYGON_API_KEY). ``yahoo``: yfinance.
        """
        symbols = self.symbols
        if source == "snapshot":
            caps, note = snapshot_caps(path)
        elif source == "polygon":
            from mltrainer.data.polygon import market_caps

            caps, notes = market_caps(symbols, **kw)
            note = "; ".join(notes) or None
        elif source == "yahoo":
            from mltrainer.data.yahoo import yahoo_market_caps

            caps, notes = yahoo_market_caps(symbols, **kw)
            note = "; ".join(notes) or None
        else:
            raise DataError(f"unknown market-cap source {source!r}; use snapshot, polygon or yahoo")
        members = [replace(s, market_cap=caps.get(s.symbol)) for s in self.constituents]
        missing = [s.symbol for s in members if not s.market_cap]
        warnings = list(self.warnings)
        if note:
            warnings.append(note)
        if missing:
            warnings.append(
                f"{len(missing)} member(s) have no market cap from {source} "
                f"({', '.join(missing[:8])}{'...' if len(missing) > 8 else ''}); "
                "cap weights leave them out"
            )
        return replace(self, constituents=members, warnings=warnings)

    # ------------------------------------------------------- point in time
    @property
    def history_start(self) -> pd.Timestamp | None:
        """Oldest change in the table: membership before it is the state at that date."""
        return None if self.changes.empty else self.changes["date"].min()

    def membership(self) -> Membership:
        """Point-in-time membership rebuilt from this list and its changes table alone,
        under the symbols of each day (:mod:`mltrainer.data.membership`). For every
        source in the data folder combined, use :func:`membership.load_membership`."""
        from mltrainer.data.membership import combine, part_from_wikipedia
        from mltrainer.data.symbols import SymbolHistory

        key = (id(self.changes), len(self.changes), tuple(self.symbols), self.as_of)
        if self._memo is None or self._memo[0] != key:
            self._require_changes(self.as_of)
            history = SymbolHistory.default()
            as_of = (
                self.as_of if self.as_of is not None else self.changes["date"].max()
            ).normalize()
            part = part_from_wikipedia(self.symbols, self.changes, as_of, history, self.source)
            self._memo = (key, combine([part], history))
        return self._memo[1]

    def members_on(self, date: DateLike) -> list[str]:
        """Members on ``date`` (sorted) under the symbols of that day, rebuilt from the
        changes table. Dates on or after :attr:`as_of` give the current list. The table
        lists "selected" changes, so far back (before about 2008) the count drifts."""
        when = pd.Timestamp(date).normalize()
        if self.as_of is not None and when >= self.as_of.normalize():
            return sorted(self.symbols)
        self._require_changes(when)
        return self.membership().members_on(when)

    def membership_frame(
        self,
        dates: Iterable[DateLike],
        tickers: Iterable[str] | None = None,
        key_date: DateLike | None = None,
    ) -> pd.DataFrame:
        """Boolean (dates x tickers) frame: True where the ticker's company was a member.

        ``tickers`` default to every symbol that was ever a member; they are symbols as of
        ``key_date`` (default: this list's date), followed through renames, so FB in
        2021 data takes Facebook's membership and GOOG (class C) none before 2014.
        """
        self._require_changes(None if not len(dates) else pd.Timestamp(min(dates)))
        membership = self.membership()
        if tickers is None:
            frame = membership.symbol_frame(dates)
            frame.index.name = "date"
            return frame
        return membership.mask(
            pd.DatetimeIndex(pd.to_datetime(dates), name="date"),
            [str(t).strip().upper() for t in tickers],
            key_date or self.as_of,
        )

    def _require_changes(self, when: DateLike | None) -> None:
        if self.changes.empty:
            shown = "a past date" if when is None else str(pd.Timestamp(when).date())
            raise DataError(
                f"the universe from {self.source} has no changes table, so membership on "
                f"{shown} cannot be rebuilt; load it from Wikipedia "
                "(`python -m mltrainer universe update`) or a saved page (--html FILE)"
            )

    # --------------------------------------------------------------- export
    def export(self, path: str | Path) -> Path:
        """Write the constituents as .csv, .parquet or .json (JSON adds the changes); CSV
        to a character device whose name has none of these suffixes."""
        path = Path(path)
        suffix = path.suffix.lower()
        if path.is_dir():  # its name is no format: say what it is
            raise DataError(f"{path} is a folder; name a .csv, .parquet or .json file in it")
        frame = self.to_frame()
        writers = {
            ".csv": lambda tmp: frame.to_csv(tmp, index=False),
            ".parquet": parquet_writer(frame, index=False),
            ".json": lambda tmp: tmp.write_text(json.dumps(self.to_json(), indent=2)),
        }
        if suffix not in writers and is_device(path):
            suffix = ".csv"  # /dev/null, a terminal: the name says no format
        if suffix not in writers:
            raise DataError(
                f"{path}: unknown export format {suffix or '(none)'!r}; use .csv, .parquet or .json"
            )
        write_atomic(path, writers[suffix])  # a failed write leaves the last export whole
        return path

    def to_json(self) -> dict:
        """JSON-ready: source, as_of (ISO date), the members and the changes table."""
        changes = self.changes.copy()
        changes["date"] = changes["date"].dt.strftime("%Y-%m-%d")
        return {
            "source": self.source,
            "as_of": None if self.as_of is None else self.as_of.date().isoformat(),
            "constituents": [asdict(s) for s in self.constituents],
            "changes": records(changes),
        }


def sector_map(universe: SP500Universe) -> dict[str, str]:
    """Ticker -> GICS sector for every member whose sector is known."""
    return {s.symbol: s.sector for s in universe.constituents if s.sector}


def _universe_from_tables(tables: wikipedia.WikiTables, source: str) -> SP500Universe:
    return SP500Universe(
        stocks_from_frame(tables.constituents),
        tables.changes.copy(),
        tables.as_of,
        source,
        warnings=list(tables.warnings),
    )


class SP500UniverseManager:
    """Loads the universe from one of its sources and knows when it is due an update.

    Sources: ``wikipedia`` (live, through the cache: fresh until the next quarterly
    rebalance), ``html`` (a saved copy of the page), ``csv`` (a constituents CSV with
    Symbol and (GICS) Sector columns), ``pytickersymbols`` (bundled, offline), and
    ``auto`` (what the CLI and the app use): the cached Wikipedia copy if there is one
    (never the network), else the newer of the data folder's newest saved page (in
    ``wikipedia/``; it also has the changes table, so it wins a tie) and its newest
    ``constituents-YYYY-MM-DD.csv``, else pytickersymbols. Point-in-time membership
    combines every source found (:func:`mltrainer.data.membership.load_membership`).
    """

    SOURCES = ("auto", "wikipedia", "html", "csv", "pytickersymbols")

    def __init__(self, url: str | None = None, client: HttpClient | None = None):
        self.url = url
        self.client = client

    # -------------------------------------------------------------- loading
    def load(self, source: str = "auto", path: str | Path | None = None) -> SP500Universe:
        """The universe from one of :attr:`SOURCES` (see the class docstring); ``path`` is
        the file of the ``html`` and ``csv`` sources."""
        if source not in self.SOURCES:
            raise DataError(
                f"unknown universe source {source!r}; choose one of {', '.join(self.SOURCES)}"
            )
        if source in ("html", "csv") and path is None:
            raise DataError(f"the {source} universe source needs a file path")
        if source == "html":
            return self.from_html(path)
        if source == "csv":
            return self.from_csv(path)
        if source == "wikipedia":
            return self.update()
        if source == "pytickersymbols":
            return self.from_pytickersymbols()
        cached = self.cached_wikipedia()
        if cached is not None:
            return cached
        found = _local_lists()
        page = self.from_html(found["pages"][-1]) if found["pages"] else None
        if found["snapshots"]:
            listed = date_in_name(found["snapshots"][-1])
            # a saved page has the changes table too; a newer list has the newer members
            if page is None or page.as_of is None or (listed is not None and listed > page.as_of):
                return self.from_csv(found["snapshots"][-1])
        return page if page is not None else self.from_pytickersymbols()

    def from_html(self, path: str | Path) -> SP500Universe:
        """The universe of a saved Wikipedia page: its list, changes table and date."""
        tables = wikipedia.read_html_file(path)
        return _universe_from_tables(tables, f"Wikipedia page saved in {Path(path).name}")

    def from_csv(self, path: str | Path) -> SP500Universe:
        """The universe of a constituents CSV (columns found by their headers, as on the
        Wikipedia page), dated by the date in its name, else its modification time; it
        has no changes table."""
        path = Path(path)
        table = read_csv(path)
        names = [wikipedia.normalise_header(str(c)) for c in table.columns]
        cols = wikipedia.match_constituent_columns(names)
        if cols is None:
            raise DataError(
                f"{path}: not a constituents list (needs Symbol and Sector or GICS "
                f"Sector columns; found {', '.join(map(str, table.columns))})"
            )
        # the financials file has market caps, a Sector of sub-industries and no
        # sub-industry column; `universe export` writes market_cap beside both
        subs = any("sub industry" in n for n in names)
        if "market cap" in names and "gics sector" not in names and not subs:
            raise DataError(
                f"{path}: looks like the constituents-financials file, whose Sector "
                "column holds sub-industries; use it with with_market_caps()"
            )
        frame = pd.DataFrame({key: table.iloc[:, j] for key, j in cols.items()})
        if "date_added" in frame:
            frame["date_added"] = frame["date_added"].map(wikipedia.iso_date)
        if "cik" in frame:
            frame["cik"] = frame["cik"].map(wikipedia.cik)
        as_of = date_in_name(path) or pd.Timestamp(path.stat().st_mtime, unit="s").normalize()
        return SP500Universe(
            stocks_from_frame(frame), empty_changes(), as_of, f"constituents file {path.name}"
        )

    def from_pytickersymbols(self) -> SP500Universe:
        """The list bundled in ``pytickersymbols`` (offline; no date, no changes table)."""
        import importlib.metadata

        from pytickersymbols import PyTickerSymbols

        stocks = [
            SP500Stock(
                symbol=str(s["symbol"]).strip().upper(),
                name=s.get("name") or "",
                sector=gics_sector(s.get("industries")),
            )
            for s in PyTickerSymbols().get_stocks_by_index("S&P 500")
        ]
        version = importlib.metadata.version("pytickersymbols")
        return SP500Universe(stocks, empty_changes(), None, f"pytickersymbols {version}")

    def _key(self) -> str:
        return f"wikipedia:sp500:{self.url or wikipedia.page_url()}"

    def cached_wikipedia(self) -> SP500Universe | None:
        """The last Wikipedia copy in the cache, however old (no network), or None."""
        hit = get_cache().get(self._key())
        if hit is None:
            return None
        tables = wikipedia.tables_from_json(hit.value, self.url or wikipedia.page_url())
        universe = _universe_from_tables(tables, "Wikipedia (cached)")
        if hit.stale:
            universe.warnings.append(
                f"the cached constituents list is from {universe.as_of.date()}, before the "
                "last quarterly rebalance; run `python -m mltrainer universe update`"
            )
        return universe

    def update(self) -> SP500Universe:
        """Refresh from Wikipedia through the cache (a fresh copy is reused until the next
        rebalance). If the page cannot be fetched or parsed: the cached copy with a
        warning, or with nothing cached what ``load("auto")`` finds (the data folder's
        newer list, else the bundled pytickersymbols list), with a warning."""
        try:
            tables, warning = wikipedia.fetch_sp500_tables(url=self.url, client=self.client)
        except (SourceError, DataError, OSError) as exc:
            universe = self.load("auto")
            dated = f" of {universe.as_of.date()}" if universe.as_of is not None else ""
            universe.warnings.append(
                f"could not load the list from Wikipedia ({config.scrub(str(exc))}); "
                f"using the {universe.source} list{dated}"
                + (", which has no changes table" if universe.changes.empty else "")
            )
            universe.update_failed = True
            return universe
        universe = _universe_from_tables(tables, "Wikipedia")
        if warning:  # the page failed and the cache served its stale copy
            universe.warnings.append(warning)
            universe.update_failed = True
        return universe

    def load_history(self, html: str | Path | None = None) -> SP500Universe:
        """A universe with a changes table, for point-in-time membership: the saved page
        ``html`` if given, else the cached Wikipedia copy, else a live update, else the
        newest saved page in the data folder's ``wikipedia/``."""
        if html is not None:
            return self.from_html(html)
        cached = self.cached_wikipedia()
        if cached is not None:
            return cached
        universe = self.update()
        if not universe.changes.empty:
            return universe
        root = config.data_dir()
        pages = sorted((root / "wikipedia").glob("*.html")) if root else []
        if pages:
            saved = self.from_html(pages[-1])
            saved.warnings = universe.warnings + [f"using the saved page {pages[-1].name}"]
            return saved
        raise DataError(
            "no S&P 500 changes table available: Wikipedia could not be "
            "reached and no saved page was given (--html FILE)"
        )

    # ------------------------------------------------------------- schedule
    @staticmethod
    def next_update(today: dt.date | None = None) -> dt.date:
        """First trading day after the next quarterly rebalance (third Friday of Mar, Jun,
        Sep, Dec), when a list fetched ``today`` goes out of date."""
        return next_rebalance(_as_date(today or dt.date.today()))

    @staticmethod
    def is_stale(last_update: DateLike, today: dt.date | None = None) -> bool:
        """Whether a rebalance has taken effect since ``last_update``."""
        return _as_date(today or dt.date.today()) >= next_rebalance(_as_date(last_update))


def _local_lists() -> dict:
    from mltrainer.data.membership import find_sources

    return find_sources()


def _as_date(value: DateLike) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


__all__ = ["SP500Stock", "SP500Universe", "SP500UniverseManager", "gics_sector", "sector_map"]
