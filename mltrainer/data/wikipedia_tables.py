"""The S&P 500 page's two tables, found by their headers and cleaned: html -> WikiTables.

Tables, their header rows and their columns are found by content, never by position
or tag, because the page is edited by hand and its layout drifts: "Symbol" was "Ticker
symbol", "GICS Sub-Industry" was "GICS Sub Industry", "Security" is sometimes
"Company"; header rows may be ``<td>`` cells and may repeat inside the body; the
changes table has a two-row header (Date | Added: Ticker, Security | Removed: Ticker,
Security | Reason) that older copies flatten into one row. The grid of each table
(spans expanded, footnotes dropped, bounded work) comes from
:mod:`mltrainer.data.html_grid`.

The page is untrusted input, so the parser says what it dropped: a page over
``MAX_PAGE_BYTES`` is refused, and a table the document ends inside of (a download cut
short), a row whose symbol is no ticker, or a missing changes table become messages in
``WikiTables.warnings``. Fetching and caching the page is :mod:`mltrainer.data.wikipedia`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from lxml import etree

from mltrainer.data.html_grid import (
    MAX_ROWS,
    Grid,
    HtmlPage,
    column_names,
    normalise_header,
    read_grid,
)
from mltrainer.errors import DataError

CONSTITUENT_COLUMNS = (
    "symbol",
    "name",
    "sector",
    "sub_industry",
    "headquarters",
    "date_added",
    "cik",
    "founded",
)
CHANGE_COLUMNS = (
    "date",
    "added_ticker",
    "added_security",
    "removed_ticker",
    "removed_security",
    "reason",
)

# The real page is 0.75 MB; a page 20 times that size is refused before parsing.
MAX_PAGE_BYTES = 16 * 2**20
CUT_SHORT = "it looks cut short"  # in the warning about a page that ends inside a table
MEMBERS = (400, 600)  # a constituents table outside this many rows is doubted
_HEAD_ROWS = 10  # a header is looked for among a table's first rows
_MAX_HEADER_ROWS = 3

# Column -> accepted header texts (normalised: lower case, punctuation to spaces).
# Tried in order; the first header equal to one of them wins, then the first that
# contains one of the ``contains`` fragments.
_CONSTITUENT_HEADERS = {
    "symbol": (("symbol", "ticker symbol", "ticker", "ticker symbols"), ("symbol",)),
    "name": (("security", "company", "name", "company name", "security name"), ("security",)),
    "sector": (("gics sector", "sector"), ("sector",)),
    "sub_industry": (
        ("gics sub industry", "gics subindustry", "sub industry", "industry"),
        ("sub industry", "subindustry"),
    ),
    "headquarters": (
        ("headquarters location", "headquarters", "address of headquarters", "location"),
        ("headquarters",),
    ),
    "date_added": (("date added", "date first added", "added"), ("date added", "first added")),
    "cik": (("cik", "central index key"), ("cik",)),
    "founded": (("founded", "year founded"), ("founded",)),
}
_DATE_HEADERS = ("date", "effective date")
# Words a second header row is made of ("Ticker | Security" under "Added | Removed").
_HEADER_WORDS = frozenset(
    [w for exact, _ in _CONSTITUENT_HEADERS.values() for w in exact]
    + [*_DATE_HEADERS, "added", "removed", "ticker", "security", "reason", "sec filings"]
)

# A ticker: letters and digits, optionally a share-class suffix (BRK.B, BF-B).
_TICKER = re.compile(r"[A-Z0-9]{1,7}(?:[./-][A-Z0-9]{1,3})?")


@dataclass
class WikiTables:
    """The two tables of the page, plus where they came from.

    ``warnings`` holds one sentence per thing the parser dropped or doubts (a table
    the page ends inside of, rows whose symbol is not a ticker, no changes table),
    for the caller to show beside the figures.
    """

    constituents: pd.DataFrame
    changes: pd.DataFrame
    source: str
    as_of: pd.Timestamp | None
    warnings: list[str] = field(default_factory=list)


def read_page(html: str | bytes, source: str) -> HtmlPage:
    """The page parsed, or DataError naming ``source`` if it is over MAX_PAGE_BYTES."""
    if len(html) > MAX_PAGE_BYTES:
        raise DataError(
            f"{source}: {len(html) / 2**20:.0f} MB is too large to be the S&P "
            f"500 page (at most {MAX_PAGE_BYTES // 2**20} MB are read; the "
            "real page is under 1 MB)"
        )
    return HtmlPage(html, source)


def _continues_header(grid: Grid, i: int) -> bool:
    """A second or third header row: only <th> cells, or only header words."""
    words = [normalise_header(c) for c in grid.rows[i]]
    return grid.all_th[i] or (any(words) and all(w in _HEADER_WORDS for w in words if w))


def _find_column(names: list[str], exact: tuple, contains: tuple, taken: set) -> int | None:
    for j, name in enumerate(names):
        if j not in taken and name in exact:
            return j
    for j, name in enumerate(names):
        if j not in taken and any(frag in name for frag in contains):
            return j
    return None


@dataclass
class _Found:
    """A table recognised by its header: its grid, where the body starts, its columns."""

    grid: Grid
    body: list[int]  # grid row indices of data rows (repeated headers skipped)
    columns: dict[str, int]
    table: etree._Element
    spanning: int = 0  # one-cell rows across the table, left out of ``body``


def _locate(
    page: HtmlPage, match: Callable[[list[str]], dict[str, int] | None], prefer: str
) -> _Found | None:
    """The first table (id ``prefer`` first, then top-level ones, then nested ones)
    whose header rows, found among its first rows, give the columns ``match`` needs."""
    for table in page.candidates(prefer):
        layout = page.layout(table)
        head = read_grid(table, _HEAD_ROWS, layout)
        for i in range(len(head.rows)):
            end = i + 1
            while (
                end < len(head.rows) and end - i < _MAX_HEADER_ROWS and _continues_header(head, end)
            ):
                end += 1
            for stop in range(end, i, -1):  # the deepest header that still matches
                columns = match(column_names(head.rows[i:stop]))
                if columns:
                    grid = read_grid(table, MAX_ROWS, layout)
                    body, spanning = _body(grid, i, stop, columns)
                    return _Found(grid, body, columns, table, spanning)
    return None


def _body(grid: Grid, start: int, stop: int, columns: dict[str, int]) -> tuple[list[int], int]:
    """Data rows after the header, without header rows repeated inside the body (old
    copies repeat them every 50 rows), blank rows, or one-cell rows across the table."""
    key, words = (
        ("symbol", _CONSTITUENT_HEADERS["symbol"][0])
        if "symbol" in columns
        else ("date", _DATE_HEADERS)
    )
    seen = {tuple(normalise_header(c) for c in row) for row in grid.rows[start:stop]}
    width = len(grid.rows[0]) if grid.rows else 0
    body, spanning = [], 0
    for i in range(stop, len(grid.rows)):
        row = grid.rows[i]
        if normalise_header(row[columns[key]]) in words or not any(row):
            continue
        if grid.own_cells[i] == 1 and width > 1 and len(set(row)) == 1:
            spanning += 1  # a caption or section row, or a hostile colspan
            continue
        if grid.all_th[i] and tuple(normalise_header(c) for c in row) in seen:
            continue
        body.append(i)
    return body, spanning


def _ticker(text: str | None) -> str | None:
    """``text`` as a ticker, or None if it cannot be one."""
    symbol = (text or "").strip().upper()
    return symbol if _TICKER.fullmatch(symbol) else None


def _example(values: list) -> str:
    shown = [repr(v if len(v) <= 30 else v[:30] + "...") for v in values[:3]]
    return ", ".join(shown)


def _check_cut(page: HtmlPage, found: _Found, what: str, warnings: list[str]) -> None:
    """Warn (and drop the last, incomplete row) if the document ends inside the table,
    or say so if the table is longer than MAX_ROWS."""
    if page.ends_inside(found.table):
        note = f"the page ends inside the {what} table: {CUT_SHORT}"
        if page.ends_inside_row and found.body:
            found.body.pop()
            note += " (its last, incomplete row was dropped)"
        warnings.append(f"{note}; {len(found.body)} rows read")
    if found.spanning:
        warnings.append(
            f"skipped {found.spanning} row(s) of the {what} table made of one "
            "cell spanning the whole table"
        )
    if found.grid.total_rows > MAX_ROWS:
        warnings.append(
            f"the {what} table has {found.grid.total_rows:,} rows; only the "
            f"first {MAX_ROWS:,} were read"
        )


def match_constituent_columns(names: list[str]) -> dict[str, int] | None:
    """Column index of each constituent field among normalised header ``names``
    (:func:`~mltrainer.data.html_grid.normalise_header`), or None without both a
    symbol and a GICS sector column.

    Each field takes the first free header equal to one of its accepted texts, else
    the first containing one of its fragments; a "sub industry" header is never the
    sector. Fields with no header are left out of the result.
    """
    taken: set[int] = set()
    found: dict[str, int] = {}
    for key, (exact, contains) in _CONSTITUENT_HEADERS.items():
        j = _find_column(names, exact, contains, taken)
        if key == "sector" and j is not None and "sub" in names[j]:
            j = None
        if j is not None:
            found[key] = j
            taken.add(j)
    if "symbol" not in found or "sector" not in found:
        return None
    return found


def parse_constituents(
    html: str | bytes, source: str = "the page", warnings: list[str] | None = None
) -> pd.DataFrame:
    """The constituents table: one row per listed security, columns CONSTITUENT_COLUMNS.

    Raises DataError naming ``source`` if no table has Symbol and GICS Sector headers.
    What was dropped is appended to ``warnings`` if given.
    """
    return _constituents_from(read_page(html, source), warnings if warnings is not None else [])


def _constituents_from(page: HtmlPage, warnings: list[str]) -> pd.DataFrame:
    found = _locate(page, match_constituent_columns, prefer="constituents")
    if found is None:
        raise DataError(
            f"{page.source}: no S&P 500 constituents table found (looked for a table whose "
            f"headers include Symbol and GICS Sector; the page has {page.describe()})"
        )
    _check_cut(page, found, "constituents", warnings)
    records, bad, repeated, seen = [], [], [], set()
    for i in found.body:
        row = found.grid.rows[i]
        rec = {key: row[j] for key, j in found.columns.items()}
        symbol = _ticker(rec["symbol"])
        if symbol is None or symbol in seen:
            (bad if symbol is None else repeated).append(rec["symbol"])
            continue
        seen.add(symbol)
        rec["symbol"] = symbol
        records.append(rec)
    if bad:
        warnings.append(
            f"dropped {len(bad)} row(s) of the constituents table whose symbol "
            f"is not a ticker (empty, too long or with characters no ticker "
            f"has): {_example(bad)}"
        )
    if repeated:
        warnings.append(
            f"dropped {len(repeated)} row(s) of the constituents table repeating "
            f"a symbol listed above: {_example(repeated)}"
        )
    if not records:
        raise DataError(f"{page.source}: the S&P 500 constituents table has no rows")
    if not MEMBERS[0] <= len(records) <= MEMBERS[1]:
        warnings.append(
            f"the constituents table has {len(records)} rows; the S&P 500 has "
            "about 500 members, so the list may be incomplete"
        )
    frame = pd.DataFrame.from_records(records)
    for key in CONSTITUENT_COLUMNS:
        if key not in frame:
            frame[key] = None
    frame = frame[list(CONSTITUENT_COLUMNS)]
    frame["date_added"] = frame["date_added"].map(iso_date)
    frame["cik"] = frame["cik"].map(cik)
    frame["founded"] = frame["founded"].map(lambda v: v or None)
    return frame.reset_index(drop=True)


def iso_date(text: object) -> str | None:
    """A date cell as ``YYYY-MM-DD`` (the first such date in it, else whatever pandas
    reads), or None if empty or unreadable."""
    if not text:
        return None
    m = re.search(r"\d{4}-\d{2}-\d{2}", str(text))
    if m:
        return m.group(0)
    stamp = pd.to_datetime(str(text), errors="coerce")
    return None if pd.isna(stamp) else stamp.date().isoformat()


def cik(text: object) -> str | None:
    """The SEC Central Index Key in a cell: its first ten digits, zero-padded to ten,
    or None without a digit."""
    digits = re.sub(r"\D", "", str(text or ""))[:10]
    return digits.zfill(10) if digits else None


def _change_columns(names: list[str]) -> dict[str, int] | None:
    """Date, Added/Removed ticker and security, Reason; None without Date, Added and
    Removed. "Added" over one column is the ticker; over two (a colspan with no second
    header row) the ticker then the security."""
    taken: set[int] = set()

    def pick(test) -> int | None:
        j = next((j for j, n in enumerate(names) if j not in taken and test(n)), None)
        if j is not None:
            taken.add(j)
        return j

    cols = {"date": pick(lambda n: n in _DATE_HEADERS or n.startswith("date"))}
    for side in ("added", "removed"):
        cols[f"{side}_ticker"] = pick(
            lambda n, s=side: n.startswith(s) and ("ticker" in n or "symbol" in n)
        )
        cols[f"{side}_security"] = pick(
            lambda n, s=side: (
                n.startswith(s) and any(w in n for w in ("security", "company", "name"))
            )
        )
        if cols[f"{side}_ticker"] is None:
            cols[f"{side}_ticker"] = pick(lambda n, s=side: n == s)
        if cols[f"{side}_security"] is None:
            cols[f"{side}_security"] = pick(lambda n, s=side: n == s)
    cols["reason"] = pick(lambda n: n.startswith("reason"))
    if cols["date"] is None or cols["added_ticker"] is None or cols["removed_ticker"] is None:
        return None
    return {k: v for k, v in cols.items() if v is not None}


def parse_changes(
    html: str | bytes, source: str = "the page", warnings: list[str] | None = None
) -> pd.DataFrame:
    """The "Selected changes" table, newest first as on the page; columns CHANGE_COLUMNS.

    ``date`` is a Timestamp; empty ticker cells are None. A page without the table
    gives an empty frame and a message in ``warnings`` (if given), as do dropped rows.
    """
    return _changes_from(read_page(html, source), warnings if warnings is not None else [])


def _empty_changes() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns]" if c == "date" else object) for c in CHANGE_COLUMNS}
    )


def _changes_from(page: HtmlPage, warnings: list[str]) -> pd.DataFrame:
    found = _locate(page, _change_columns, prefer="changes")
    if found is None:
        warnings.append(
            "no S&P 500 changes table found (looked for a table whose headers "
            f"include Date, Added and Removed; the page has {page.describe()}): "
            "past membership cannot be rebuilt from this page"
        )
        return _empty_changes()
    _check_cut(page, found, "changes", warnings)
    records, bad, empty = [], [], 0
    for i in found.body:
        row = found.grid.rows[i]
        rec = {key: (row[j] or None) for key, j in found.columns.items()}
        for key in ("added_ticker", "removed_ticker"):
            if rec.get(key):
                ticker = _ticker(rec[key])
                if ticker is None:
                    bad.append(rec[key])
                rec[key] = ticker
        if rec.get("added_ticker") or rec.get("removed_ticker"):
            records.append(rec)
        else:
            empty += 1
    frame = pd.DataFrame.from_records(records, columns=list(CHANGE_COLUMNS))
    dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    undated = frame.loc[dates.isna(), "date"].fillna("").tolist()
    if bad:
        warnings.append(
            f"dropped {len(bad)} ticker(s) of the changes table that are not "
            f"tickers (too long or with characters no ticker has): {_example(bad)}"
        )
    if empty:
        warnings.append(
            f"dropped {empty} row(s) of the changes table with neither an added "
            "nor a removed ticker"
        )
    if undated:
        warnings.append(
            f"dropped {len(undated)} row(s) of the changes table with an "
            f"unreadable date: {_example(undated)}"
        )
    if frame.empty:
        warnings.append(
            "the changes table has no rows: past membership cannot be rebuilt from this page"
        )
    frame["date"] = dates.dt.normalize()
    return frame[dates.notna()].reset_index(drop=True)


def page_date(html: str | bytes) -> pd.Timestamp | None:
    """The "last edited on 9 October 2024" date in the page footer, if present."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    # MediaWiki wrote "last modified on" before 2016, and some skins "October 9, 2024"
    m = re.search(
        r"last (?:edited|modified) on (\d{1,2} [A-Z][a-z]+ \d{4}|"
        r"[A-Z][a-z]+ \d{1,2}, \d{4})",
        text,
    )
    if not m:
        return None
    form = "%d %B %Y" if m.group(1)[0].isdigit() else "%B %d, %Y"
    stamp = pd.to_datetime(m.group(1), format=form, errors="coerce")
    return None if pd.isna(stamp) else stamp


def parse_page(html: str | bytes, source: str = "the page") -> WikiTables:
    """Both tables of the S&P 500 page; DataError if it has no constituents table.

    Whatever was dropped or looks wrong (no changes table, a table the page ends
    inside of, symbols that are not tickers) is listed in ``WikiTables.warnings``.
    """
    page = read_page(html, source)
    warnings = list(page.notes)
    constituents = _constituents_from(page, warnings)
    changes = _changes_from(page, warnings)
    return WikiTables(constituents, changes, source, page_date(page.text), warnings)
