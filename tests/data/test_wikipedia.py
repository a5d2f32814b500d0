"""The Wikipedia S&P 500 parser on the real saved page, on older header layouts, and
the live fetch through a local server (User-Agent, cache, stale fallback)."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest

from mltrainer.data import wikipedia
from mltrainer.data.cache import get_cache
from mltrainer.data.gics import GICS_SECTORS
from mltrainer.data.http import USER_AGENT, HttpClient, RetryPolicy
from mltrainer.errors import DataError, SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
PAGE = "wikipedia/List_of_S&P_500_companies-2024-10-10.html"


@pytest.fixture(scope="module")
def page_path(shared_data_dir):
    return shared_data_dir / PAGE


@pytest.fixture(scope="module")
def saved(page_path):
    return wikipedia.read_html_file(page_path)


def fast_client() -> HttpClient:
    return HttpClient(timeout=(2.0, 5.0), retry=RetryPolicy(max_attempts=2, backoff=0.01))


# ---------------------------------------------------------------- the real page
def test_saved_page_counts_and_date(saved):
    assert len(saved.constituents) == 503
    assert len(saved.changes) == 353
    assert saved.as_of == pd.Timestamp("2024-10-09")  # "last edited on 9 October 2024"
    assert list(saved.constituents.columns) == list(wikipedia.CONSTITUENT_COLUMNS)
    assert list(saved.changes.columns) == list(wikipedia.CHANGE_COLUMNS)
    assert saved.warnings == []


def test_saved_page_known_rows(saved):
    c = saved.constituents.set_index("symbol")
    mmm = c.loc["MMM"]
    assert (mmm["name"], mmm["sector"], mmm["sub_industry"]) == (
        "3M",
        "Industrials",
        "Industrial Conglomerates",
    )
    assert (mmm["headquarters"], mmm["date_added"], mmm["cik"], mmm["founded"]) == (
        "Saint Paul, Minnesota",
        "1957-03-04",
        "0000066740",
        "1902",
    )
    assert c.loc["BRK.B", "sector"] == "Financials" and c.loc["BF.B", "name"] == "Brown–Forman"
    assert set(c["sector"]) == set(GICS_SECTORS)

    ch = saved.changes
    # a known 2024 addition: Palantir replaced American Airlines on 23 September 2024
    pltr = ch[ch["added_ticker"] == "PLTR"].iloc[0]
    assert pltr["date"] == pd.Timestamp("2024-09-23")
    assert (pltr["added_security"], pltr["removed_ticker"]) == ("Palantir Technologies", "AAL")
    # newest row: a removal with no addition
    first = ch.iloc[0]
    assert first["date"] == pd.Timestamp("2024-10-01") and first["removed_ticker"] == "BBWI"
    assert pd.isna(first["added_ticker"])
    # oldest row, footnote marker stripped and words kept apart
    last = ch.iloc[-1]
    assert (last["date"], last["added_ticker"], last["removed_ticker"]) == (
        pd.Timestamp("1997-06-17"),
        "CCI",
        "USL",
    )
    assert last["reason"] == "AIG acquired USLife."
    assert not ch["reason"].dropna().str.contains(r"\[\d+\]").any()


def test_saved_page_matches_pandas_read_html(page_path, saved):
    """pandas' own lxml table reader is an independent oracle for both tables."""
    ref = pd.read_html(page_path, attrs={"id": "constituents"})[0]
    ours = saved.constituents
    assert ours["symbol"].tolist() == ref["Symbol"].tolist()
    assert ours["sector"].tolist() == ref["GICS Sector"].tolist()
    assert ours["sub_industry"].tolist() == ref["GICS Sub-Industry"].tolist()
    assert ours["cik"].astype(int).tolist() == ref["CIK"].astype(int).tolist()

    ref = pd.read_html(page_path, attrs={"id": "changes"})[0]
    ref.columns = ["date", "added", "added_security", "removed", "removed_security", "reason"]
    assert saved.changes["date"].tolist() == pd.to_datetime(ref["date"]).tolist()
    assert saved.changes["added_ticker"].fillna("").tolist() == ref["added"].fillna("").tolist()
    assert saved.changes["removed_ticker"].fillna("").tolist() == ref["removed"].fillna("").tolist()


# ------------------------------------------------------------- header layouts
OLD_LAYOUT = """
<html><body>
<table class="infobox"><tr><th>Founded</th><td>1957</td></tr></table>
<table class="wikitable sortable">
<tr><th>Ticker symbol<sup>[1]</sup></th><th>Security</th><th>SEC filings</th>
    <th>GICS Sector</th><th>GICS Sub Industry</th><th>Address of Headquarters</th>
    <th>Date first added</th><th>CIK</th></tr>
<tr><td><a href="#">MMM</a></td><td>3M Company</td><td>reports</td><td>Industrials</td>
    <td>Industrial Conglomerates</td><td>St. Paul, Minnesota</td><td>1976-08-09</td>
    <td>66740</td></tr>
<tr><td>ABT</td><td>Abbott Laboratories<sup class="reference">[3]</sup></td><td>reports</td>
    <td>Health Care</td><td>Health Care Equipment</td><td>North Chicago, Illinois</td>
    <td>1964-03-31</td><td>1800</td></tr>
</table>
<table class="wikitable">
<tr><th>Date</th><th>Added Ticker</th><th>Added Security</th><th>Removed Ticker</th>
    <th>Removed Security</th><th>Reason</th></tr>
<tr><td>June 19, 2017</td><td>BHF</td><td>Brighthouse Financial</td><td>SIG</td>
    <td>Signet Jewelers</td><td>Spin-off.<sup>[7]</sup></td></tr>
</table>
</body></html>
"""

REORDERED = """
<table class="wikitable">
<tr><th>GICS Sector</th><th>Company</th><th>Symbol</th><th>GICS Sub-Industry</th></tr>
<tr><td>Energy</td><td>Exxon Mobil</td><td>XOM</td><td>Integrated Oil &amp; Gas</td></tr>
</table>
<table class="wikitable">
<tr><th rowspan="2">Effective Date</th><th colspan="2">Added</th><th colspan="2">Removed</th>
    <th rowspan="2">Reason</th></tr>
<tr><th>Symbol</th><th>Company</th><th>Symbol</th><th>Company</th></tr>
<tr><td rowspan="2">March 18, 2024</td><td>SMCI</td><td>Super Micro Computer</td>
    <td>WHR</td><td>Whirlpool</td><td rowspan="2">Market capitalization change.</td></tr>
<tr><td>DECK</td><td>Deckers Brands</td><td>ZION</td><td>Zions Bancorporation</td></tr>
<tr><td>April 3, 2023</td><td></td><td></td><td>SIVB</td></tr>
</table>
"""


def test_older_single_row_headers_are_matched_by_text():
    tables = wikipedia.parse_page(OLD_LAYOUT, "old.html")
    c = tables.constituents
    assert c["symbol"].tolist() == ["MMM", "ABT"]
    assert c["name"].tolist() == ["3M Company", "Abbott Laboratories"]  # footnote dropped
    assert c["sector"].tolist() == ["Industrials", "Health Care"]
    assert c["sub_industry"].tolist() == ["Industrial Conglomerates", "Health Care Equipment"]
    assert c["headquarters"].iloc[0] == "St. Paul, Minnesota"
    assert c["date_added"].tolist() == ["1976-08-09", "1964-03-31"]
    assert c["cik"].tolist() == ["0000066740", "0000001800"]
    assert c["founded"].isna().all()  # the column does not exist in this layout
    ch = tables.changes
    assert len(ch) == 1
    row = ch.iloc[0]
    assert (row["date"], row["added_ticker"], row["removed_ticker"]) == (
        pd.Timestamp("2017-06-19"),
        "BHF",
        "SIG",
    )
    assert row["reason"] == "Spin-off."


def test_reordered_columns_rowspans_and_missing_cells():
    tables = wikipedia.parse_page(REORDERED, "variant.html")
    c = tables.constituents.iloc[0]
    assert (c["symbol"], c["name"], c["sector"], c["sub_industry"]) == (
        "XOM",
        "Exxon Mobil",
        "Energy",
        "Integrated Oil & Gas",
    )
    ch = tables.changes
    assert ch["date"].tolist() == [pd.Timestamp("2024-03-18")] * 2 + [pd.Timestamp("2023-04-03")]
    assert ch["added_ticker"].tolist()[:2] == ["SMCI", "DECK"]
    assert ch["added_security"].tolist()[:2] == ["Super Micro Computer", "Deckers Brands"]
    assert ch["removed_ticker"].tolist() == ["WHR", "ZION", "SIVB"]
    assert ch["reason"].tolist()[:2] == ["Market capitalization change."] * 2  # row-spanned
    assert pd.isna(ch["added_ticker"].iloc[2]) and pd.isna(ch["reason"].iloc[2])


def test_table_grid_expands_spans():
    from bs4 import BeautifulSoup

    html = (
        "<table><tr><th rowspan=2>A</th><th colspan=2>B</th></tr>"
        "<tr><th>b1</th><th>b2</th></tr>"
        "<tr><td rowspan=2>x</td><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>"
    )
    rows, n_header = wikipedia.table_grid(BeautifulSoup(html, "lxml").find("table"))
    assert n_header == 2
    assert rows == [["A", "B", "B"], ["A", "b1", "b2"], ["x", "1", "2"], ["x", "3", ""]]


def test_page_without_constituents_table_is_a_data_error():
    html = "<html><body><table><tr><th>Year</th><th>Return</th></tr></table></body></html>"
    with pytest.raises(DataError) as err:
        wikipedia.parse_page(html, "https://example.org/wrong-page")
    text = str(err.value)
    assert "https://example.org/wrong-page" in text
    assert "no S&P 500 constituents table" in text and "year, return" in text


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match="nope.html: no such file"):
        wikipedia.read_html_file(tmp_path / "nope.html")


# -------------------------------------------- older layouts, made from the real page
def _split_table(text: str, table_id: str) -> tuple[str, str, list[str], str, str]:
    """(before, opening tag, rows, closing tags, after) of the table with ``table_id``."""
    start = text.index(f'id="{table_id}"')
    start = text.rindex("<table", 0, start)
    end = text.index("</table>", start) + len("</table>")
    table = text[start:end]
    opening, rest = table.split("<tbody>", 1)
    rows = ["<tr>" + r for r in rest.removesuffix("</tbody></table>").split("<tr>")[1:]]
    return text[:start], opening + "<tbody>", rows, "</tbody></table>", text[end:]


def _rewrite(text: str, table_id: str, n_header: int, edit) -> str:
    before, opening, rows, closing, after = _split_table(text, table_id)
    head, body = edit(rows[:n_header], rows[n_header:])
    return before + opening + "".join(head + body) + closing + after


def _header_td(head, body):
    return [re.sub(r"<(/?)th\b", r"<\1td", r) for r in head], body


def _repeat_header(head, body):
    out = []
    for i in range(0, len(body), 50):
        out += body[i : i + 50] + (head if i + 50 < len(body) else [])
    return head, out


def _renamed(head, body):
    renames = {
        ">Symbol</a>": ">Ticker symbol</a>",
        "GICS Sub-Industry": "GICS Sub Industry",
        "Headquarters Location": "Address of Headquarters",
        "Date added": "Date first added",
    }
    row = head[0]
    for old, new in renames.items():
        assert old in row
        row = row.replace(old, new)
    return [row], body


def _sec_filings_column(head, body):
    """Older copies had a "SEC filings" column after the symbol."""

    def insert(row, cell):
        return re.sub(
            r"(<t[dh]\b.*?</t[dh]>)", lambda m: m.group(1) + cell, row, count=1, flags=re.S
        )

    return (
        [insert(head[0], "<th>SEC filings</th>")],
        [insert(r, '<td><a href="#">reports</a></td>') for r in body],
    )


def _single_row_changes(head, body):
    return [
        "<tr><th>Date</th><th>Added Ticker</th><th>Added Security</th>"
        "<th>Removed Ticker</th><th>Removed Security</th><th>Reason</th></tr>\n"
    ], body


def _colspan_only_changes(head, body):
    return [
        '<tr><td>Date</td><td colspan="2">Added (Ticker, Security)</td>'
        '<td colspan="2">Removed (Ticker, Security)</td><td>Reason</td></tr>\n'
    ], body


def _no_ids(text: str) -> str:
    return text.replace(' id="constituents"', "").replace(' id="changes"', "")


LAYOUTS = {
    "header row of td cells": [("constituents", 1, _header_td), ("changes", 2, _header_td)],
    "header repeated every 50 rows": [
        ("constituents", 1, _repeat_header),
        ("changes", 2, _repeat_header),
    ],
    "older header names": [("constituents", 1, _renamed)],
    "SEC filings column": [("constituents", 1, _sec_filings_column)],
    "single-row changes header": [("changes", 2, _single_row_changes)],
    "colspan-only changes header": [("changes", 2, _colspan_only_changes)],
    "all of them, no table ids": [
        ("constituents", 1, _renamed),
        ("constituents", 1, _sec_filings_column),
        ("constituents", 1, _header_td),
        ("constituents", 1, _repeat_header),
        ("changes", 2, _single_row_changes),
        ("changes", 1, _header_td),
        ("changes", 1, _repeat_header),
        _no_ids,
    ],
}


@pytest.fixture(scope="module")
def page_text(page_path):
    return page_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_older_layouts_of_the_real_page_give_the_same_rows(layout, page_text, saved):
    text = page_text
    for step in LAYOUTS[layout]:
        text = step(text) if callable(step) else _rewrite(text, *step)
    assert text != page_text
    tables = wikipedia.parse_page(text, "old-layout.html")
    assert tables.warnings == []
    pd.testing.assert_frame_equal(tables.constituents, saved.constituents)
    pd.testing.assert_frame_equal(tables.changes, saved.changes)
    assert len(tables.constituents) == 503 and len(tables.changes) == 353


def test_layout_rewrites_change_what_they_claim(page_text):
    """The rewrites really produce the old markup (guards the test above)."""
    text = _rewrite(page_text, "constituents", 1, _header_td)
    _, _, rows, _, _ = _split_table(text, "constituents")
    assert "<th" not in rows[0] and ">Symbol<" in rows[0] and len(rows) == 504
    text = _rewrite(page_text, "changes", 2, _repeat_header)
    _, _, rows, _, _ = _split_table(text, "changes")
    assert len(rows) == 2 + 353 + 2 * (353 // 50) and sum(">Reason" in r for r in rows) == 8


def test_page_without_changes_table_warns(page_text):
    before, _, _, _, after = _split_table(page_text, "changes")
    tables = wikipedia.parse_page(before + after, "no-changes.html")
    assert len(tables.constituents) == 503 and tables.changes.empty
    assert list(tables.changes.columns) == list(wikipedia.CHANGE_COLUMNS)
    assert len(tables.warnings) == 1 and "no S&P 500 changes table" in tables.warnings[0]


def test_warnings_survive_the_cache_round_trip(page_text):
    before, _, _, _, after = _split_table(page_text, "changes")
    tables = wikipedia.parse_page(before + after, "no-changes.html")
    doc = wikipedia._to_json(tables, pd.Timestamp("2024-10-10"))
    again = wikipedia.tables_from_json(doc, "cached")
    assert again.warnings == tables.warnings and len(again.constituents) == 503


# -------------------------------------------------------------- live, locally
def test_fetch_through_local_server_and_cache(http_server, page_path, monkeypatch):
    url = http_server.url + "/wiki/List_of_S%26P_500_companies"
    monkeypatch.setenv(wikipedia.URL_ENV, url)
    http_server.route(
        "/wiki/List_of_S%26P_500_companies", Reply.rate_limited("0"), Reply.file(page_path)
    )
    tables, warning = wikipedia.fetch_sp500_tables(client=fast_client())
    assert warning is None and len(tables.constituents) == 503 and len(tables.changes) == 353
    hits = http_server.hits("/wiki/List_of_S%26P_500_companies")
    assert len(hits) == 2 and hits[-1].headers["User-Agent"] == USER_AGENT  # 429, then 200
    # fresh in the cache (until the next quarterly rebalance): no new request
    again, _ = wikipedia.fetch_sp500_tables(client=fast_client())
    assert len(http_server.hits("/wiki/List_of_S%26P_500_companies")) == 2
    assert again.changes["date"].tolist() == tables.changes["date"].tolist()
    assert again.constituents.equals(tables.constituents)


def test_failing_refresh_serves_stale_copy_with_warning(http_server, page_path, monkeypatch):
    path = "/wiki/List_of_S%26P_500_companies"
    url = http_server.url + path
    monkeypatch.setenv(wikipedia.URL_ENV, url)
    http_server.route(path, Reply.file(page_path))
    wikipedia.fetch_sp500_tables(client=fast_client())
    cache = get_cache()
    key = f"wikipedia:sp500:{url}"
    entry = cache.get(key)
    cache.put_json(key, entry.value, kind="constituents", expires_at=time.time() - 1)

    http_server.route(path, Reply.error(500))
    tables, warning = wikipedia.fetch_sp500_tables(client=fast_client())
    assert len(tables.constituents) == 503
    assert "cached data" in warning and "HTTP 500" in warning and path in warning
    # a page that parses to nothing is a failure too, and does not replace the good copy
    http_server.route(path, Reply.text("<html><body>Maintenance</body></html>", "text/html"))
    tables, warning = wikipedia.fetch_sp500_tables(client=fast_client())
    assert len(tables.constituents) == 503 and "no S&P 500 constituents table" in warning
    assert cache.get(key).value["constituents"] == entry.value["constituents"]


def test_failing_fetch_with_nothing_cached_raises(http_server, monkeypatch):
    monkeypatch.setenv(wikipedia.URL_ENV, http_server.url + "/wiki/x")
    http_server.route("/wiki/x", Reply.slow(1.0))
    client = HttpClient(timeout=(1.0, 0.1), retry=RetryPolicy(max_attempts=2, backoff=0.01))
    with pytest.raises(SourceError, match="timed out"):
        wikipedia.fetch_sp500_tables(client=client)


@pytest.mark.parametrize(
    ("footer", "expected"),
    [
        ("This page was last modified on 10 October 2014, at 12:34.", "2014-10-10"),
        ("This page was last edited on October 9, 2024, at 23:17", "2024-10-09"),
    ],
)
def test_older_footers_give_the_page_date(page_text, tmp_path, footer, expected):
    text = re.sub(r"This page was last edited on 9 October 2024, at 23:17", footer, page_text)
    assert text != page_text
    path = tmp_path / "saved.html"
    path.write_text(text, encoding="utf-8")
    assert str(wikipedia.read_html_file(path).as_of.date()) == expected


def test_a_page_without_a_date_is_dated_by_its_latest_change(page_text, tmp_path):
    """Not by the file's modification time: a 2014 page saved today is no list of today."""
    text = re.sub(r"This page was last edited on [^<]*", "", page_text)
    path = tmp_path / "saved.html"  # no date in the name either
    path.write_text(text, encoding="utf-8")
    tables = wikipedia.read_html_file(path)
    assert tables.as_of == tables.changes["date"].max() == pd.Timestamp("2024-10-01")
    assert any("no 'last edited' date" in w for w in tables.warnings)
