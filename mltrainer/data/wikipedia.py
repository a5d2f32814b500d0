"""Wikipedia's "List of S&P 500 companies": the constituents and the changes table.

Tables, their header rows and their columns are found by content, never by position
or tag, because the page is edited by hand and its layout drifts: "Symbol" was "Ticker
symbol", "GICS Sub-Industry" was "GICS Sub Industry", "Security" is sometimes
"Company"; header rows may be ``<td>`` cells and may repeat inside the body; the
changes table has a two-row header (Date | Added: Ticker, Security | Removed: Ticker,
Security | Reason) that older copies flatten into one row. Cells spanning several rows
are expanded, footnote markers (``[12]``) are dropped.

The page is untrusted input, so the parser bounds its work and says what it dropped:
spans are clamped to the table's size (a browser does the same, the HTML standard
caps ``colspan`` at 1000), tables nested inside a cell are ignored, a page over
``MAX_PAGE_BYTES`` is refused, a table at most ``MAX_ROWS`` x ``MAX_COLS`` is read,
and a table the document ends inside of (a download cut short), a row whose symbol
is no ticker, or a missing changes table become messages in ``WikiTables.warnings``.

Fetching goes through :mod:`mltrainer.data.http` (User-Agent, retries) and the disk
cache (kind ``constituents``: fresh until the next quarterly rebalance). The cache
holds the parsed tables, so a page that fails to parse is never stored over a good one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from pathlib import Path

import pandas as pd
from lxml import etree

from mltrainer.data.cache import get_cache
from mltrainer.data.http import HttpClient, default_client, env_url
from mltrainer.errors import DataError

WIKIPEDIA_URL = "https://en.wikipedia.org/wiki/List_of_S%26P_500_companies"
URL_ENV = "MLTRAINER_WIKIPEDIA_URL"

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

# Bounds on untrusted input. The real page is 0.75 MB with tables of 503 x 8 and
# 355 x 6 cells; these leave room for decades of growth and keep any page to about a
# second of CPU (most of it libxml2 reading a page of 10 MB) and ~100 MB.
MAX_PAGE_BYTES = 16 * 2**20
MAX_ROWS = 2_000
MAX_COLS = 64
MAX_TABLES = 500
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
_FOOTNOTE = re.compile(r"\[(?:\d+|[a-z]|note \d+|citation needed)\]")
_SKIPPED_IN_CELLS = frozenset(["table", "sup", "style", "script"])  # nested tables, [4]


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


# ------------------------------------------------------------------ table grid
@dataclass
class _Grid:
    rows: list[list[str]]  # text, spans expanded, padded to one width
    all_th: list[bool]  # the row is made only of <th> cells
    own_cells: list[int]  # cells the row itself has (not spanned down into it)
    total_rows: int  # <tr> elements of the table, before MAX_ROWS


_OWN_ROWS = "tr|thead/tr|tbody/tr|tfoot/tr"  # not the rows of tables nested in cells
_FIRST_ROWS = etree.XPath(f"({_OWN_ROWS})[position() <= {MAX_ROWS}]")
_COUNT_ROWS = etree.XPath(f"count({_OWN_ROWS})")


@dataclass
class _Layout:
    """A table's first MAX_ROWS rows of cells, and the width its spans are clamped to."""

    cells: list[list]
    width: int
    total_rows: int

    @classmethod
    def of(cls, table) -> _Layout:
        cells = [_cells(tr) for tr in _FIRST_ROWS(table)]
        most = max((len(c) for c in cells), default=0)
        # each span is at least 1, so a row's first MAX_COLS cells decide its width
        width = min(
            MAX_COLS,
            max(
                (sum(min(_span(c, "colspan"), most) for c in row[:MAX_COLS]) for row in cells),
                default=0,
            ),
        )
        return cls(cells, width, int(_COUNT_ROWS(table)))


def _cells(tr) -> list:
    """The row's first MAX_COLS cells (each spans at least one column)."""
    return list(islice((c for c in tr if c.tag in ("td", "th")), MAX_COLS))


def _cell_text(cell) -> str:
    """The cell's text without nested tables, footnotes or scripts; iterative, so a
    deeply nested cell cannot exhaust the stack."""
    parts = [cell.text or ""]
    stack: list = list(reversed(cell))
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            parts.append(node)
            continue
        if node.tail:
            stack.append(node.tail)
        if node.tag in _SKIPPED_IN_CELLS or not isinstance(node.tag, str):
            continue
        if node.tag == "br":
            parts.append(" ")
        parts.append(node.text or "")
        stack.extend(reversed(node))
    return _FOOTNOTE.sub("", " ".join("".join(parts).split())).strip()


def _span(cell, name: str) -> int:
    value = str(cell.get(name, "1")).strip()[:12]
    return max(1, int(value)) if value.isdigit() else 1


def _grid(table, limit: int = MAX_ROWS, layout: _Layout | None = None) -> _Grid:
    """The first ``limit`` rows of ``table`` as text, spans expanded and clamped.

    A colspan is clamped to the widest row's cell count (so ``colspan=100000000`` on a
    two-column table spans two columns), the table to MAX_COLS columns, a rowspan to
    the rows left in the table.
    """
    layout = layout or _Layout.of(table)
    cells, width, n_rows = layout.cells, layout.width, len(layout.cells)
    carry: list[tuple[str, int] | None] = [None] * width  # text, rows still to fill
    grid = _Grid([], [], [], layout.total_rows)
    for i, row in enumerate(cells[:limit]):
        last_carried = max((j for j, c in enumerate(carry) if c), default=-1)
        out: list[str] = []
        k = 0
        while len(out) < width:
            col = len(out)
            if carry[col] is not None:
                text, left = carry[col]
                out.append(text)
                carry[col] = (text, left - 1) if left > 1 else None
            elif k < len(row):
                cell = row[k]
                k += 1
                text = _cell_text(cell)
                down = min(_span(cell, "rowspan"), n_rows - i)
                for _ in range(min(_span(cell, "colspan"), width - col)):
                    if down > 1:
                        carry[len(out)] = (text, down - 1)
                    out.append(text)
            elif col <= last_carried:
                out.append("")  # the row ends before a cell spanning down from above
            else:
                break
        if out:
            grid.rows.append(out)
            grid.all_th.append(bool(row) and all(c.tag == "th" for c in row))
            grid.own_cells.append(len(row))
    size = max((len(r) for r in grid.rows), default=0)
    grid.rows = [r + [""] * (size - len(r)) for r in grid.rows]
    return grid


def table_grid(table) -> tuple[list[list[str]], int]:
    """All rows of a table as text, with row- and column-spans expanded.

    ``table`` is an lxml element (or a BeautifulSoup tag, re-read with lxml). Returns
    ``(rows, n_header)``: ``n_header`` counts the leading rows made only of ``<th>``
    cells (the parser itself finds header rows by their text). A short row is padded
    with empty strings.
    """
    if not isinstance(table, etree._Element):
        table = next(_document(str(table))[0].iter("table"))
    grid = _grid(table)
    n_header = 0
    while n_header < len(grid.rows) and grid.all_th[n_header]:
        n_header += 1
    return grid.rows, n_header


def normalise_header(text: str) -> str:
    text = re.sub(r"\[[^\]]*\]", "", text)  # footnote markers left in header text
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _headers(rows: list[list[str]]) -> list[str]:
    """One name per column: the header rows of that column joined ("Added Ticker")."""
    names = []
    for j in range(len(rows[0]) if rows else 0):
        parts: list[str] = []
        for row in rows:
            part = normalise_header(row[j])
            if part and (not parts or parts[-1] != part):
                parts.append(part)
        names.append(" ".join(parts))
    return names


def _continues_header(grid: _Grid, i: int) -> bool:
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

    grid: _Grid
    body: list[int]  # grid row indices of data rows (repeated headers skipped)
    columns: dict[str, int]
    table: object
    spanning: int = 0  # one-cell rows across the table, left out of ``body``


def _locate(page: _Page, match, prefer: str) -> _Found | None:
    """The first table (id ``prefer`` first, then top-level ones, then nested ones)
    whose header rows, found among its first rows, give the columns ``match`` needs."""
    for table in page.candidates(prefer):
        layout = page.layout(table)
        head = _grid(table, _HEAD_ROWS, layout)
        for i in range(len(head.rows)):
            end = i + 1
            while (
                end < len(head.rows) and end - i < _MAX_HEADER_ROWS and _continues_header(head, end)
            ):
                end += 1
            for stop in range(end, i, -1):  # the deepest header that still matches
                columns = match(_headers(head.rows[i:stop]))
                if columns:
                    grid = _grid(table, MAX_ROWS, layout)
                    body, spanning = _body(grid, i, stop, columns)
                    return _Found(grid, body, columns, table, spanning)
    return None


def _body(grid: _Grid, start: int, stop: int, columns: dict[str, int]) -> tuple[list[int], int]:
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


def _check_cut(page: _Page, found: _Found, what: str, warnings: list[str]) -> None:
    """Warn (and drop the last, incomplete row) if the document ends inside the table,
    or say so if the table is longer than MAX_ROWS."""
    if page.ends_inside(found.table):
        note = f"the page ends inside the {what} table: it looks cut short"
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


# --------------------------------------------------------------- constituents
def match_constituent_columns(names: list[str]) -> dict[str, int] | None:
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
    return _constituents_from(_Page.read(html, source), warnings if warnings is not None else [])


def _constituents_from(page: _Page, warnings: list[str]) -> pd.DataFrame:
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
    if not 400 <= len(records) <= 600:
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


def iso_date(text) -> str | None:
    if not text:
        return None
    m = re.search(r"\d{4}-\d{2}-\d{2}", str(text))
    if m:
        return m.group(0)
    stamp = pd.to_datetime(str(text), errors="coerce")
    return None if pd.isna(stamp) else stamp.date().isoformat()


def cik(text) -> str | None:
    digits = re.sub(r"\D", "", str(text or ""))[:10]
    return digits.zfill(10) if digits else None


# -------------------------------------------------------------------- changes
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
    return _changes_from(_Page.read(html, source), warnings if warnings is not None else [])


def _empty_changes() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns]" if c == "date" else object) for c in CHANGE_COLUMNS}
    )


def _changes_from(page: _Page, warnings: list[str]) -> pd.DataFrame:
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


# ------------------------------------------------------------------ page level


def _document(html: str | bytes) -> tuple[etree._Element | None, list[str]]:
    """The parsed document (None if it has no elements) and why parsing stopped early.

    libxml2's HTML parser is used directly (not through BeautifulSoup): it is ten times
    faster, and its own limits (no network, a nesting depth of 256) bound the work."""
    data = html.encode("utf-8", "replace") if isinstance(html, str) else html
    parser = etree.HTMLParser(
        encoding="utf-8", recover=True, no_network=True, remove_comments=True, remove_pis=True
    )
    try:
        root = etree.fromstring(data, parser) if data.strip() else None
    except etree.ParserError:  # "Document is empty"
        root = None
    stopped = [
        f"the HTML parser stopped early ({e.message.split(',')[0].strip()})"
        for e in parser.error_log
        if e.type_name == "ERR_RESOURCE_LIMIT"
    ]
    return root, stopped[:1]


class _Page:
    """A parsed page: its tables in the order to try them, and how the document ends."""

    def __init__(self, html: str | bytes, source: str):
        if len(html) > MAX_PAGE_BYTES:
            raise DataError(
                f"{source}: {len(html) / 2**20:.0f} MB is too large to be the S&P "
                f"500 page (at most {MAX_PAGE_BYTES // 2**20} MB are read; the "
                "real page is under 1 MB)"
            )
        if isinstance(html, bytes):
            try:
                html = html.decode("utf-8")
            except UnicodeDecodeError:  # a copy saved in a legacy code page
                html = html.decode("cp1252", "replace")
        self.source = source
        self.text = html
        root, self.notes = _document(html)
        tables = [] if root is None else list(root.iter("table"))
        self.n_tables = len(tables)
        self.top: list = []  # not inside another table, in document order
        self.nested: list = []
        self.by_id: dict = {}
        for table in tables:
            if table.get("id"):
                self.by_id.setdefault(table.get("id"), table)
            if len(self.top) < MAX_TABLES:  # beyond that, no nested table is tried
                inside = next(table.iterancestors("table"), None) is not None
                (self.nested if inside else self.top).append(table)
        # The document ends inside a table when it opens more tables than it closes: a
        # download or a save cut short. Then it ends inside a row if the last <tr> is
        # not closed (the row's cells may be cut mid-word).
        lower = html.lower()
        self.cut = lower.count("<table") > lower.count("</table")
        self.ends_inside_row = self.cut and lower.rfind("<tr") > lower.rfind("</tr")
        self._layouts: dict = {}

    def layout(self, table) -> _Layout:
        if table not in self._layouts:  # both tables are looked for in every table
            self._layouts[table] = _Layout.of(table)
        return self._layouts[table]

    @classmethod
    def read(cls, html: str | bytes, source: str) -> _Page:
        return cls(html, source)

    def candidates(self, prefer: str) -> list:
        """Tables with id ``prefer`` first, then top-level ones, then nested ones (a
        page laid out in a table); at most MAX_TABLES."""
        first = self.by_id.get(prefer)
        out = [] if first is None else [first]
        out += [t for t in self.top[:MAX_TABLES] if t is not first]
        out += [t for t in self.nested[:MAX_TABLES] if t is not first]
        return out[:MAX_TABLES]

    def ends_inside(self, table) -> bool:
        if not self.cut or not self.top:
            return False
        last = self.top[-1]
        return table is last or any(a is last for a in table.iterancestors("table"))

    def describe(self) -> str:
        if not self.n_tables:
            what = "no tables"
        else:
            heads = []
            for table in self.top[:5]:
                grid = _grid(table, 1, self.layout(table))
                heads.append(", ".join(n for n in _headers(grid.rows[:1]) if n)[:80])
            what = f"{self.n_tables} table(s), headers: " + (
                "; ".join(h for h in heads if h) or "none"
            )
        if self.n_tables > MAX_TABLES:
            what += f"; only the first {MAX_TABLES} tables were examined"
        return "; ".join([what, *self.notes])


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
    page = _Page.read(html, source)
    warnings = list(page.notes)
    constituents = _constituents_from(page, warnings)
    changes = _changes_from(page, warnings)
    return WikiTables(constituents, changes, source, page_date(page.text), warnings)


def read_html_file(path: str | Path) -> WikiTables:
    """Parse a saved copy of the page (as_of: its last-edited date, else the date in the
    file name, else the file's modification time). Parsed once per file version."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file (expected a saved copy of the Wikipedia "
            "'List of S&P 500 companies' page)"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.st_size > MAX_PAGE_BYTES:
        raise DataError(
            f"{path}: {stat.st_size / 2**20:.0f} MB is too large to be the S&P "
            f"500 page (at most {MAX_PAGE_BYTES // 2**20} MB are read)"
        )
    tables = _parse_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(path))
    return WikiTables(
        tables.constituents.copy(),
        tables.changes.copy(),
        tables.source,
        tables.as_of,
        list(tables.warnings),
    )


@lru_cache(maxsize=8)
def _parse_file(resolved: str, mtime_ns: int, size: int, shown: str) -> WikiTables:
    path = Path(resolved)
    try:
        html = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    tables = parse_page(html, source=shown)
    if tables.as_of is None:
        m = re.search(r"(\d{4}-\d{2}-\d{2})", path.name)
        if m:
            tables.as_of = pd.Timestamp(m.group(1))
        elif not tables.changes.empty:
            # a page saved long ago may carry no date: its list is at least as new as its
            # latest change, and a file's modification time says nothing about it
            tables.as_of = tables.changes["date"].max()
            tables.warnings.append(
                f"{shown}: the page has no 'last edited' date; its list is taken as of its "
                f"latest change, {tables.as_of.date()} (rename the file ...-YYYY-MM-DD.html "
                "to give its date)"
            )
        else:
            tables.as_of = pd.Timestamp(mtime_ns, unit="ns").normalize()
            tables.warnings.append(
                f"{shown}: the page has no date and no changes table; "
                "its list is dated by the file's modification time"
            )
    return tables


def page_url() -> str:
    """The page URL (``MLTRAINER_WIKIPEDIA_URL`` overrides it, e.g. for tests)."""
    return env_url(URL_ENV, WIKIPEDIA_URL)


def fetch_sp500_tables(
    url: str | None = None, client: HttpClient | None = None, use_cache: bool = True
) -> tuple[WikiTables, str | None]:
    """The live page's tables through the cache, and the cache's warning if it served a
    stale copy because the page could not be fetched or parsed. The parser's own
    warnings travel (through the cache too) in ``WikiTables.warnings``."""
    url = url or page_url()
    client = client or default_client()

    def produce() -> dict:
        html = client.get_text(url)
        tables = parse_page(html, source=url)
        return _to_json(tables, fetched=pd.Timestamp.now(tz="UTC").tz_localize(None))

    if not use_cache:
        return tables_from_json(produce(), url), None
    hit = get_cache().fetch(f"wikipedia:sp500:{url}", produce, kind="constituents", fmt="json")
    return tables_from_json(hit.value, url), hit.warning


def _to_json(tables: WikiTables, fetched: pd.Timestamp) -> dict:
    changes = tables.changes.copy()
    changes["date"] = changes["date"].dt.strftime("%Y-%m-%d")
    return {
        "as_of": fetched.isoformat(),
        "edited": None if tables.as_of is None else tables.as_of.isoformat(),
        "constituents": tables.constituents.astype(object)
        .where(tables.constituents.notna(), None)
        .to_dict("records"),
        "changes": changes.astype(object).where(changes.notna(), None).to_dict("records"),
        "warnings": list(tables.warnings),
    }


def tables_from_json(doc: dict, source: str) -> WikiTables:
    constituents = pd.DataFrame.from_records(doc["constituents"], columns=list(CONSTITUENT_COLUMNS))
    changes = pd.DataFrame.from_records(doc["changes"], columns=list(CHANGE_COLUMNS))
    changes["date"] = pd.to_datetime(changes["date"])
    return WikiTables(
        constituents, changes, source, pd.Timestamp(doc["as_of"]), list(doc.get("warnings") or [])
    )


__all__ = [
    "MAX_PAGE_BYTES",
    "MAX_ROWS",
    "WIKIPEDIA_URL",
    "WikiTables",
    "cik",
    "fetch_sp500_tables",
    "iso_date",
    "match_constituent_columns",
    "normalise_header",
    "page_url",
    "parse_changes",
    "parse_constituents",
    "parse_page",
    "read_html_file",
    "table_grid",
    "tables_from_json",
]
