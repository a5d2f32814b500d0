"""Wikipedia's "List of S&P 500 companies": the constituents and the changes table.

Tables and columns are found by their header text, never by position, because the page
is edited by hand and its layout drifts: "Symbol" was "Ticker symbol", "GICS
Sub-Industry" was "GICS Sub Industry", "Security" is sometimes "Company"; the changes
table has a two-row header (Date | Added: Ticker, Security | Removed: Ticker, Security
| Reason) that older copies flatten into one row. Cells spanning several rows are
expanded, footnote markers (``[12]``) are dropped.

Fetching goes through :mod:`mltrainer.data.http` (User-Agent, retries) and the disk
cache (kind ``constituents``: fresh until the next quarterly rebalance). The cache
holds the parsed tables, so a page that fails to parse is never stored over a good one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
from bs4 import BeautifulSoup, SoupStrainer, Tag

from mltrainer.data.cache import get_cache
from mltrainer.data.http import HttpClient, default_client, env_url
from mltrainer.errors import DataError

WIKIPEDIA_URL = "https://en.wikipedia.org/wiki/List_of_S%26P_500_companies"
URL_ENV = "MLTRAINER_WIKIPEDIA_URL"

CONSTITUENT_COLUMNS = ("symbol", "name", "sector", "sub_industry", "headquarters",
                       "date_added", "cik", "founded")
CHANGE_COLUMNS = ("date", "added_ticker", "added_security", "removed_ticker",
                  "removed_security", "reason")

# Column -> accepted header texts (normalised: lower case, punctuation to spaces).
# Tried in order; the first header equal to one of them wins, then the first that
# contains one of the ``contains`` fragments.
_CONSTITUENT_HEADERS = {
    "symbol": (("symbol", "ticker symbol", "ticker", "ticker symbols"), ("symbol",)),
    "name": (("security", "company", "name", "company name", "security name"), ("security",)),
    "sector": (("gics sector", "sector"), ("sector",)),
    "sub_industry": (("gics sub industry", "gics subindustry", "sub industry", "industry"),
                     ("sub industry", "subindustry")),
    "headquarters": (("headquarters location", "headquarters", "address of headquarters",
                      "location"), ("headquarters",)),
    "date_added": (("date added", "date first added", "added"), ("date added", "first added")),
    "cik": (("cik", "central index key"), ("cik",)),
    "founded": (("founded", "year founded"), ("founded",)),
}


@dataclass
class WikiTables:
    """The two tables of the page, plus where they came from."""

    constituents: pd.DataFrame
    changes: pd.DataFrame
    source: str
    as_of: pd.Timestamp | None


# ------------------------------------------------------------------ table grid
def _cell_text(cell: Tag) -> str:
    text = " ".join(cell.get_text().split())
    return re.sub(r"\[(?:\d+|[a-z]|note \d+|citation needed)\]", "", text).strip()


def table_grid(table: Tag) -> tuple[list[list[str]], int]:
    """All rows of a table as text, with row- and column-spans expanded.

    Returns ``(rows, n_header_rows)``: header rows are the leading rows made only of
    ``<th>`` cells. A short row is padded with empty strings.
    """
    for sup in table.find_all("sup"):
        sup.decompose()  # footnote markers: <sup class="reference">[4]</sup>
    rows: list[list[str]] = []
    n_header = 0
    in_header = True
    pending: dict[int, tuple[str, int]] = {}  # column -> (text, rows still to fill)
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # a row of a nested table
        cells = tr.find_all(["td", "th"], recursive=False)
        is_header = bool(cells) and all(c.name == "th" for c in cells)
        out: list[str] = []
        col = 0
        queue = list(cells)
        while queue or any(c >= col for c in pending):
            if col in pending:
                text, left = pending.pop(col)
                out.append(text)
                if left > 1:
                    pending[col] = (text, left - 1)
                col += 1
                continue
            if not queue:  # the row ends before a cell spanning down from above
                out.append("")
                col += 1
                continue
            cell = queue.pop(0)
            text = _cell_text(cell)
            span = _int_attr(cell, "colspan")
            down = _int_attr(cell, "rowspan")
            for _ in range(span):
                out.append(text)
                if down > 1:
                    pending[col] = (text, down - 1)
                col += 1
        if not out:
            continue
        if in_header and is_header:
            n_header += 1
        else:
            in_header = False
        rows.append(out)
    width = max((len(r) for r in rows), default=0)
    return [r + [""] * (width - len(r)) for r in rows], n_header


def _int_attr(cell: Tag, name: str) -> int:
    try:
        return max(1, int(str(cell.get(name, "1")).strip() or 1))
    except ValueError:
        return 1


def normalise_header(text: str) -> str:
    text = re.sub(r"\[[^\]]*\]", "", text)  # footnote markers left in header text
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _headers(rows: list[list[str]], n_header: int) -> list[str]:
    """One name per column: the header rows of that column joined ("Added Ticker")."""
    if n_header == 0:
        n_header = 1 if rows else 0
    names = []
    for j in range(len(rows[0]) if rows else 0):
        parts: list[str] = []
        for i in range(n_header):
            part = normalise_header(rows[i][j])
            if part and (not parts or parts[-1] != part):
                parts.append(part)
        names.append(" ".join(parts))
    return names


def _find_column(names: list[str], exact: tuple, contains: tuple, taken: set) -> int | None:
    for j, name in enumerate(names):
        if j not in taken and name in exact:
            return j
    for j, name in enumerate(names):
        if j not in taken and any(frag in name for frag in contains):
            return j
    return None


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


def parse_constituents(html: str, source: str = "the page") -> pd.DataFrame:
    """The constituents table: one row per listed security, columns CONSTITUENT_COLUMNS.

    Raises DataError naming ``source`` if no table has Symbol and GICS Sector headers.
    """
    soup = _soup(html)
    return _constituents_from(soup, source)


def _constituents_from(soup: BeautifulSoup, source: str) -> pd.DataFrame:
    tables = _tables(soup, prefer="constituents")
    seen_headers = []
    for table in tables:
        rows, n_header = table_grid(table)
        if not rows:
            continue
        names = _headers(rows, n_header)
        seen_headers.append(", ".join(n for n in names if n)[:80])
        cols = match_constituent_columns(names)
        if cols is None:
            continue
        body = rows[max(n_header, 1):]
        records = []
        for row in body:
            rec = {key: row[j] for key, j in cols.items()}
            symbol = rec["symbol"].strip().upper().replace(" ", "")
            if not symbol:
                continue
            rec["symbol"] = symbol
            records.append(rec)
        frame = pd.DataFrame.from_records(records)
        for key in CONSTITUENT_COLUMNS:
            if key not in frame:
                frame[key] = None
        frame = frame[list(CONSTITUENT_COLUMNS)]
        frame["date_added"] = frame["date_added"].map(iso_date)
        frame["cik"] = frame["cik"].map(cik)
        frame["founded"] = frame["founded"].map(lambda v: v or None)
        if frame.empty:
            raise DataError(f"{source}: the S&P 500 constituents table has no rows")
        return frame.reset_index(drop=True)
    listed = "; ".join(seen_headers[:5]) or "none"
    raise DataError(
        f"{source}: no S&P 500 constituents table found (looked for a table whose headers "
        f"include Symbol and GICS Sector; the page has {len(tables)} table(s), headers: "
        f"{listed})"
    )


def iso_date(text) -> str | None:
    if not text:
        return None
    m = re.search(r"\d{4}-\d{2}-\d{2}", str(text))
    if m:
        return m.group(0)
    stamp = pd.to_datetime(str(text), errors="coerce")
    return None if pd.isna(stamp) else stamp.date().isoformat()


def cik(text) -> str | None:
    digits = re.sub(r"\D", "", str(text or ""))
    return digits.zfill(10) if digits else None


# -------------------------------------------------------------------- changes
def _change_columns(names: list[str]) -> dict[str, int] | None:
    def pick(side: str, what: tuple) -> int | None:
        for j, name in enumerate(names):
            if name.startswith(side) and any(w in name for w in what):
                return j
        return None

    date = next((j for j, n in enumerate(names) if n in ("date", "effective date")
                 or n.startswith("date")), None)
    cols = {
        "date": date,
        "added_ticker": pick("added", ("ticker", "symbol")),
        "added_security": pick("added", ("security", "company", "name")),
        "removed_ticker": pick("removed", ("ticker", "symbol")),
        "removed_security": pick("removed", ("security", "company", "name")),
        "reason": next((j for j, n in enumerate(names) if n.startswith("reason")), None),
    }
    # a one-column "Added" / "Removed" header holds the ticker
    for side in ("added", "removed"):
        if cols[f"{side}_ticker"] is None:
            cols[f"{side}_ticker"] = next((j for j, n in enumerate(names) if n == side), None)
    if cols["date"] is None or cols["added_ticker"] is None or cols["removed_ticker"] is None:
        return None
    return {k: v for k, v in cols.items() if v is not None}


def parse_changes(html: str, source: str = "the page") -> pd.DataFrame:
    """The "Selected changes" table, newest first as on the page; columns CHANGE_COLUMNS.

    ``date`` is a Timestamp; empty ticker cells are None. A page without the table
    gives an empty frame (older copies of the page had none).
    """
    return _changes_from(_soup(html), source)


def _changes_from(soup: BeautifulSoup, source: str) -> pd.DataFrame:
    for table in _tables(soup, prefer="changes"):
        rows, n_header = table_grid(table)
        if not rows:
            continue
        names = _headers(rows, n_header)
        cols = _change_columns(names)
        if cols is None:
            continue
        records = []
        for row in rows[max(n_header, 1):]:
            rec = {key: (row[j] or None) for key, j in cols.items()}
            for key in ("added_ticker", "removed_ticker"):
                if rec.get(key):
                    rec[key] = rec[key].strip().upper().replace(" ", "")
            if not (rec.get("added_ticker") or rec.get("removed_ticker")):
                continue
            records.append(rec)
        frame = pd.DataFrame.from_records(records, columns=list(CHANGE_COLUMNS))
        dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
        bad = frame.loc[dates.isna(), "date"]
        if len(bad):
            raise DataError(
                f"{source}: {len(bad)} row(s) of the S&P 500 changes table have an unreadable "
                f"date, e.g. {bad.iloc[0]!r}"
            )
        frame["date"] = dates.dt.normalize()
        return frame.reset_index(drop=True)
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "date" else object)
                         for c in CHANGE_COLUMNS})


# ------------------------------------------------------------------ page level
def _soup(html: str | bytes) -> BeautifulSoup:
    # Only tables are kept: building the tree of the whole 700 kB page costs 3x more.
    return BeautifulSoup(html, "lxml", parse_only=SoupStrainer("table"))


def _tables(soup: BeautifulSoup, prefer: str) -> list[Tag]:
    """Every table, the one with ``id=prefer`` first (the page's own anchor)."""
    tables = soup.find_all("table")
    return sorted(tables, key=lambda t: t.get("id") != prefer)


def page_date(html: str | bytes) -> pd.Timestamp | None:
    """The "last edited on 9 October 2024" date in the page footer, if present."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    m = re.search(r"last edited on (\d{1,2} [A-Z][a-z]+ \d{4})", text)
    if not m:
        return None
    stamp = pd.to_datetime(m.group(1), format="%d %B %Y", errors="coerce")
    return None if pd.isna(stamp) else stamp


def parse_page(html: str | bytes, source: str = "the page") -> WikiTables:
    """Both tables of the S&P 500 page; DataError if it has no constituents table."""
    soup = _soup(html)
    constituents = _constituents_from(soup, source)
    changes = _changes_from(soup, source)
    return WikiTables(constituents, changes, source, page_date(html))


def read_html_file(path: str | Path) -> WikiTables:
    """Parse a saved copy of the page (as_of: its last-edited date, else the date in the
    file name, else the file's modification time). Parsed once per file version."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected a saved copy of the Wikipedia "
                        "'List of S&P 500 companies' page)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    tables = _parse_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(path))
    return WikiTables(tables.constituents.copy(), tables.changes.copy(), tables.source,
                      tables.as_of)


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
        tables.as_of = (pd.Timestamp(m.group(1)) if m
                        else pd.Timestamp(mtime_ns, unit="ns").normalize())
    return tables


def page_url() -> str:
    """The page URL (``MLTRAINER_WIKIPEDIA_URL`` overrides it, e.g. for tests)."""
    return env_url(URL_ENV, WIKIPEDIA_URL)


def fetch_sp500_tables(url: str | None = None, client: HttpClient | None = None,
                       use_cache: bool = True) -> tuple[WikiTables, str | None]:
    """The live page's tables through the cache, and the cache's warning if it served a
    stale copy because the page could not be fetched or parsed."""
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
        "constituents": tables.constituents.astype(object).where(
            tables.constituents.notna(), None).to_dict("records"),
        "changes": changes.astype(object).where(changes.notna(), None).to_dict("records"),
    }


def tables_from_json(doc: dict, source: str) -> WikiTables:
    constituents = pd.DataFrame.from_records(doc["constituents"], columns=list(CONSTITUENT_COLUMNS))
    changes = pd.DataFrame.from_records(doc["changes"], columns=list(CHANGE_COLUMNS))
    changes["date"] = pd.to_datetime(changes["date"])
    return WikiTables(constituents, changes, source, pd.Timestamp(doc["as_of"]))


__all__ = ["WIKIPEDIA_URL", "WikiTables", "cik", "fetch_sp500_tables", "iso_date",
           "match_constituent_columns", "normalise_header", "page_url", "parse_changes",
           "parse_constituents", "parse_page", "read_html_file", "table_grid",
           "tables_from_json"]
