"""Wikipedia's "List of S&P 500 companies": getting the page and its two tables.

A saved copy of the page is parsed once per file version (:func:`read_html_file`); the
live page is fetched through :mod:`mltrainer.data.http` (User-Agent, retries) and the
disk cache (kind ``constituents``: fresh until the next quarterly rebalance). The cache
holds the parsed tables, so a page that fails to parse is never stored over a good one.

Parsing is :mod:`mltrainer.data.wikipedia_tables` (which tables and columns, what is
dropped) over :mod:`mltrainer.data.html_grid` (a table as a grid of text, with bounded
work on an untrusted page); their public names are importable from here as well.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mltrainer.data.cache import get_cache
from mltrainer.data.files import read_bounded, regular_file
from mltrainer.data.html_grid import MAX_ROWS, normalise_header, table_grid
from mltrainer.data.http import HttpClient, default_client, env_url
from mltrainer.data.wikipedia_tables import (
    CHANGE_COLUMNS,
    CONSTITUENT_COLUMNS,
    CUT_SHORT,
    MAX_PAGE_BYTES,
    MEMBERS,
    WikiTables,
    cik,
    iso_date,
    match_constituent_columns,
    page_date,
    parse_changes,
    parse_constituents,
    parse_page,
)
from mltrainer.errors import DataError, SourceError

WIKIPEDIA_URL = "https://en.wikipedia.org/wiki/List_of_S%26P_500_companies"
URL_ENV = "MLTRAINER_WIKIPEDIA_URL"


_PAGE = "a saved copy of the Wikipedia 'List of S&P 500 companies' page"


def read_html_file(path: str | Path) -> WikiTables:
    """Parse a saved copy of the page (as_of: its last-edited date, else the date in the
    file name, else the file's modification time). Parsed once per file version."""
    path = Path(path)
    info = regular_file(path, _PAGE)  # a device or a pipe reports size 0 and never ends
    if info.st_size > MAX_PAGE_BYTES:
        raise DataError(
            f"{path}: {info.st_size / 2**20:.0f} MB is too large to be the S&P "
            f"500 page (at most {MAX_PAGE_BYTES // 2**20} MB are read)"
        )
    tables = _parse_file(str(path.resolve()), info.st_mtime_ns, info.st_size, str(path))
    return WikiTables(
        tables.constituents.copy(),
        tables.changes.copy(),
        tables.source,
        tables.as_of,
        list(tables.warnings),
    )


@lru_cache(maxsize=8)
def _parse_file(resolved: str, mtime_ns: int, size: int, shown: str) -> WikiTables:
    # mtime_ns and size are only in the key, so that an edited file is parsed again
    path = Path(resolved)
    html = read_bounded(path, MAX_PAGE_BYTES, _PAGE)  # bounded even if it grew since
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
        _refuse_partial(tables, url)
        return _to_json(tables, fetched=pd.Timestamp.now(tz="UTC").tz_localize(None))

    if not use_cache:
        return tables_from_json(produce(), url), None
    hit = get_cache().fetch(f"wikipedia:sp500:{url}", produce, kind="constituents", fmt="json")
    return tables_from_json(hit.value, url), hit.warning


def _refuse_partial(tables: WikiTables, url: str) -> None:
    """SourceError for a live page that ends inside a table (a transfer cut short with no
    Content-Length to tell) or lists far from 500 members (a damaged page): taken, it
    replaced the cached list and changes until the next rebalance. A saved file with
    the same faults is still read, with the parser's warnings."""
    doubts = [w for w in tables.warnings if CUT_SHORT in w]
    if not MEMBERS[0] <= len(tables.constituents) <= MEMBERS[1]:
        doubts.append(f"{len(tables.constituents)} constituents, not about 500")
    if doubts:
        raise SourceError(f"{url}: the page looks incomplete, not used ({'; '.join(doubts)})")


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
    """The tables back from the cache's JSON document (as written by ``_to_json``);
    ``as_of`` is when the page was fetched."""
    constituents = pd.DataFrame.from_records(doc["constituents"], columns=list(CONSTITUENT_COLUMNS))
    changes = pd.DataFrame.from_records(doc["changes"], columns=list(CHANGE_COLUMNS))
    changes["date"] = pd.to_datetime(changes["date"])
    return WikiTables(
        constituents, changes, source, pd.Timestamp(doc["as_of"]), list(doc.get("warnings") or [])
    )


__all__ = [
    "CHANGE_COLUMNS",
    "CONSTITUENT_COLUMNS",
    "MAX_PAGE_BYTES",
    "MAX_ROWS",
    "URL_ENV",
    "WIKIPEDIA_URL",
    "WikiTables",
    "cik",
    "fetch_sp500_tables",
    "iso_date",
    "match_constituent_columns",
    "normalise_header",
    "page_date",
    "page_url",
    "parse_changes",
    "parse_constituents",
    "parse_page",
    "read_html_file",
    "table_grid",
    "tables_from_json",
]
