"""Polygon, FRED and Wikipedia against the faults the other network tests leave out.

Each source first loads a real answer from a server on 127.0.0.1 (the saved Polygon,
FRED and Wikipedia files), its cache entry is expired, and the server then turns
hostile: a redirect off this machine while MLTRAINER_OFFLINE is set, a redirect whose
Location is not a valid URL, JSON that is not a sound Polygon or FRED answer, gzip bombs,
a body longer than its Content-Length, a body with none cut mid-page, pages that never
end, and error texts carrying terminal escape codes.
Every call must end within seconds with the cached copy still served (and still in the
cache), an error naming the source's URL, and no API key or control character in it.
"""

from __future__ import annotations

import json
import time
import tracemalloc
import zlib

import pytest
import requests

from mltrainer.data import cache, fred, polygon, wikipedia
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import LocalServer, Reply

http_server = httpserver.http_server
KEY = "faultKEY0123456789abcdef"
MB = 2**20
AAPL = "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04"
CSV = "/graph/fredgraph.csv"
OBS = "/fred/series/observations"
WIKI = "/wiki/List_of_S%26P_500_companies"
SOURCES = ["polygon", "fred", "wikipedia"]
PATHS = {"polygon": AAPL, "fred": CSV, "wikipedia": WIKI}


def client(max_bytes: int = 64 * MB) -> HttpClient:
    return HttpClient(
        timeout=(2.0, 5.0),
        deadline=5.0,
        max_bytes=max_bytes,
        retry=RetryPolicy(max_attempts=2, backoff=0.01),
        sleep=lambda s: None,
    )


def load(source: str, server: LocalServer, http: HttpClient) -> tuple[list, list[str]]:
    """What the source's loader gives (values to compare) and its warnings."""
    if source == "polygon":
        pc = polygon.PolygonClient(key=KEY, base=server.url, http=http)
        data = polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=pc)
        return data.adj_close["AAPL"].tolist(), list(data.warnings)
    if source == "fred":
        series = fred.load_fred("SP500", client=http)
        return series.dropna().tolist(), [series.attrs.get("warning") or ""]
    tables, warning = wikipedia.fetch_sp500_tables(url=server.url + WIKI, client=http)
    return tables.constituents.iloc[:, 0].tolist(), [warning or ""]


@pytest.fixture
def csv_rows(shared_data_dir) -> list[tuple[str, str]]:
    """The real FRED SP500 rows: (date, value as written, empty where missing)."""
    lines = (shared_data_dir / "fred" / "SP500.csv").read_text().splitlines()[1:]
    return [tuple(line.split(",")) for line in lines]


@pytest.fixture
def warm(http_server, shared_data_dir, monkeypatch) -> dict:
    """Each source's real answer, loaded once and cached, its cache entry then expired:
    the next load asks the server again and falls back on that copy if it fails."""
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.delenv(fred.CSV_ENV, raising=False)
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    aggs = shared_data_dir / "polygon" / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"
    http_server.route(AAPL, Reply.file(aggs))  # the same real bars for both adjustments
    http_server.route("/v3/reference/dividends", Reply.json({"status": "OK", "results": []}))
    http_server.route(CSV, Reply.file(shared_data_dir / "fred" / "SP500.csv"))
    page = shared_data_dir / "wikipedia" / "List_of_S&P_500_companies-2024-10-10.html"
    http_server.route(WIKI, Reply.file(page))
    good = {source: load(source, http_server, client())[0] for source in SOURCES}
    store = cache.get_cache()
    for key in store.keys():
        header, payload = store.get_raw(key)
        store.put(
            key, bytes(payload), header["fmt"], header["kind"], time.time() - 1, header["meta"]
        )
    return good


def assert_served_from_cache(source: str, server, good: dict, http=None, path=None) -> str:
    """The expired copy served, a warning naming the URL (default: the source's), no key;
    the warning."""
    t0 = time.monotonic()
    value, warnings = load(source, server, http or client())
    assert time.monotonic() - t0 < 10
    assert value == good[source]
    (warning,) = [w for w in warnings if w]
    assert "showing cached data" in warning and (path or PATHS[source]) in warning
    assert KEY not in warning and warning.isprintable()
    assert len(cache.get_cache().keys()) == 3  # nothing cached was lost
    return warning


@pytest.fixture
def elsewhere():
    """A second server on 127.0.0.2: on this machine, but not a host the offline setting
    allows (it allows localhost, 127.0.0.1 and ::1), so reaching it shows a redirect
    followed off the allowed hosts without touching the internet."""
    try:
        server = LocalServer(host="127.0.0.2")
    except OSError as exc:  # macOS has only 127.0.0.1 on its loopback interface
        pytest.skip(f"cannot listen on 127.0.0.2: {exc}")
    with server:
        yield server


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", SOURCES)
def test_offline_a_redirect_off_this_machine_is_not_followed(
    source, warm, http_server, elsewhere, monkeypatch
):
    """MLTRAINER_OFFLINE refused remote hosts only on the first request: a local server
    redirecting Wikipedia or the FRED CSV (no key: redirects may change host) elsewhere
    had the client contact that host."""
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    elsewhere.route(PATHS[source], Reply.text("answered"))
    http_server.route(PATHS[source], Reply.redirect(elsewhere.url + PATHS[source]))
    warning = assert_served_from_cache(source, http_server, warm)
    assert f"redirected to {elsewhere.url}, not contacted because MLTRAINER_OFFLINE" in warning
    assert elsewhere.requests == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("location", ["http://127.0.0.1:99999/x", "http://[::1/x"])
@pytest.mark.parametrize("source", SOURCES)
def test_a_redirect_to_a_malformed_url_serves_the_cached_copy(source, location, warm, http_server):
    """A port out of range or a broken IPv6 host in Location raised a bare ValueError out
    of the HTTP layer: no stale copy, a traceback in the CLI."""
    http_server.route(PATHS[source], Reply.redirect(location))
    warning = assert_served_from_cache(source, http_server, warm)
    assert "redirected to a malformed URL (" in warning and "); not followed" in warning


def _bars(**change) -> bytes:
    """Polygon's answer for AAPL with one bar's fields changed (raw JSON: NaN allowed)."""
    bar = {"v": 1.0e8, "o": 42.0, "c": 43.0, "h": 44.0, "l": 41.0, "t": 1112587200000} | change
    fields = ", ".join(f'"{k}": {v}' for k, v in bar.items())
    return f'{{"ticker": "AAPL", "status": "OK", "results": [{{{fields}}}]}}'.encode()


DIVIDENDS = "/v3/reference/dividends"
JUNK = {  # id: (path, body, what the warning says)
    "proxy": (AAPL, b'{"message": "Service temporarily unavailable"}', "no 'status' text"),
    "empty": (AAPL, b"{}", "no 'status' text"),
    "status-object": (AAPL, b'{"status": {"code": 1}, "results": []}', "no 'status' text"),
    "close-null": (AAPL, _bars(c="null"), "bar(s) whose 'c' is not a number (first: 'None')"),
    "close-text": (AAPL, _bars(c='"43.0"'), "bar(s) whose 'c' is not a number (first: '43.0')"),
    "open-infinity": (AAPL, _bars(o="Infinity"), "bar(s) whose 'o' is not a number"),
    "high-nan": (AAPL, _bars(h="NaN"), "bar(s) whose 'h' is not a number"),
    "low-huge": (AAPL, _bars(l="1" + "0" * 400), "bar(s) whose 'l' is not a number"),
    "time-true": (AAPL, _bars(t="true"), "without a readable timestamp 't' (first: 'True'"),
    "next-url-number": (AAPL, b'{"status": "OK", "results": [], "next_url": 5}', "not a URL"),
    "dividend-text": (DIVIDENDS, b'{"status": "OK", "results": ["x"]}', "not an object ('x')"),
    "nested-json": (AAPL, b"[" * 100_000 + b"]" * 100_000, "not valid JSON (maximum recursion"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", JUNK.values(), ids=JUNK.keys())
def test_a_malformed_polygon_answer_keeps_the_cached_bars(case, warm, http_server):
    """200 answers that are JSON but not sound Polygon bars. Before: a body without
    'status' ({}, a proxy's JSON) or with a 'status' object read as "no bars", and a price
    of null, text, NaN or Infinity as a NaN bar, each cached over the good bars; a dividend
    that is not an object, a 'next_url' that is not text, an integer past the float range
    or JSON nested 100,000 deep raised AttributeError, TypeError, OverflowError or
    RecursionError out of the loader (no stale copy, a traceback in the CLI)."""
    path, body, said = case
    http_server.route(path, Reply(200, body, {"Content-Type": "application/json"}))
    assert said in assert_served_from_cache("polygon", http_server, warm, path=path)
    key = "polygon:daily:AAPL:2005-04-01:2005-04-04:tr"
    assert cache.get_cache().get(key).value["adj_close"].tolist() == warm["polygon"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["abc", "4742.83*", "--"])
def test_a_fred_csv_value_that_is_not_a_number_keeps_the_cached_series(value, warm, http_server):
    """A value FRED never writes (text, a footnote mark) read as a missing one: the
    series was cached as gaps over the good copy. Missing values stay '.' or empty."""
    http_server.route(CSV, Reply.text(f"observation_date,SP500\n2016-02-12,{value}\n"))
    warning = assert_served_from_cache("fred", http_server, warm)
    assert f"the value of 2016-02-12 is not a number ('{value}')" in warning


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "value", ['"abc"', '{"v": 1}', "true", "1" + "0" * 400], ids=["text", "object", "bool", "huge"]
)
def test_a_fred_api_value_that_is_not_a_number_keeps_the_cached_series(
    value, http_server, csv_rows, monkeypatch
):
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.setenv("FRED_API_KEY", KEY)
    obs = [{"date": d, "value": v or "."} for d, v in csv_rows]
    http_server.route(OBS, Reply.json({"count": len(obs), "observations": obs}))
    good = fred.load_fred("SP500", client=client())
    store = cache.get_cache()
    store.put_frame("fred:series:SP500", good.to_frame(), kind="fred", expires_at=time.time() - 1)
    first = f'{{"date": "2016-02-12", "value": {value}}}'
    http_server.route(OBS, Reply(200, f'{{"count": 1, "observations": [{first}]}}'.encode()))
    again = fred.load_fred("SP500", client=client())
    assert (
        again.equals(good) and "the value of 2016-02-12 is not a number" in again.attrs["warning"]
    )
    assert KEY not in again.attrs["warning"]
    assert store.get("fred:series:SP500").value["SP500"].equals(good)


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """256 MB of zeros gzipped to about 250 kB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MB)
    return b"".join([packer.compress(zeros) for _ in range(256)] + [packer.flush()])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("layers", [1, 2], ids=["gzip", "gzip-in-gzip"])
@pytest.mark.parametrize("source", SOURCES)
def test_a_gzip_bomb_stops_at_the_size_limit(source, layers, warm, http_server, bomb):
    body = bomb if layers == 1 else _gzip(bomb)
    encoding = ", ".join(["gzip"] * layers)
    http_server.route(PATHS[source], Reply(200, body, {"Content-Encoding": encoding}))
    tracemalloc.start()
    try:
        warning = assert_served_from_cache(source, http_server, warm, client(max_bytes=8 * MB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "larger than the 8.0 MB limit; download stopped" in warning
    assert peak < 40 * MB  # the 8 MB read, not the 256 MB the body inflates to


@pytest.mark.timeout(60)
def test_bytes_past_the_content_length_never_answer_the_next_request(http_server):
    """A body longer than its Content-Length, the surplus a complete fake response on the
    kept-alive connection: the answer is cut at its length, and the next request gets the
    server's own answer, not the planted one."""
    fake = json.dumps({"planted": True}).encode()
    planted = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(fake), fake)
    http_server.route("/a", Reply(200, b'{"a": 1}', extra=planted))
    http_server.route("/b", Reply.json({"b": 2}))
    http = client()
    assert http.get_json(http_server.url + "/a") == {"a": 1}
    assert [http.get_json(http_server.url + "/b") for _ in range(3)] == [{"b": 2}] * 3
    assert len(http_server.hits("/b")) == 3


@pytest.mark.timeout(60)
def test_a_redirect_to_an_unresolvable_host_names_that_host(http_server, monkeypatch):
    """The DNS failure named the first URL's host (127.0.0.1), not the one that failed."""
    monkeypatch.setenv("MLTRAINER_OFFLINE", "0")

    class NoDns(requests.Session):  # what requests raises when a name does not resolve
        def get(self, url, **kw):
            if "fred.example" in url:
                raise requests.ConnectionError(
                    "NameResolutionError: Failed to resolve 'fred.example' "
                    "([Errno -2] Name or service not known)"
                )
            return super().get(url, **kw)

    http_server.route(CSV, Reply.redirect("https://fred.example/graph/fredgraph.csv?id=SP500"))
    http = HttpClient(session=NoDns(), retry=RetryPolicy(max_attempts=3), sleep=lambda s: None)
    with pytest.raises(SourceError) as err:
        http.get(http_server.url + CSV)
    assert "cannot resolve fred.example (no network connection" in str(err.value)
    assert len(http_server.hits(CSV)) == 1  # not retried: it only makes the user wait


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mall is well\x1b[0m\u202e"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "reply",
    [
        Reply(403, ESCAPES.encode(), {"Content-Type": "text/plain; charset=utf-8"}),
        Reply.json({"status": "ERROR", "error": ESCAPES}),
    ],
    ids=["error-body", "polygon-error"],
)
def test_server_text_cannot_drive_the_terminal(reply, http_server, monkeypatch, capsys):
    """An error body (or Polygon's error field) carrying terminal escape codes reached the
    CLI's stderr as is: a server could retitle, clear or recolour the user's terminal and
    forge a line; a bidi override could reverse what follows it."""
    from mltrainer.cli import main

    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    http_server.route(AAPL, reply)
    argv = ["data", "load", "--source", "polygon", "--tickers", "AAPL"]
    assert main([*argv, "--start", "2005-04-01", "--end", "2005-04-04"]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "all is well" in text and ("HTTP 403" in text or "Polygon says ERROR" in text)
    assert all(c.isprintable() for c in text if c != "\n"), repr(text)
    assert KEY not in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("table", ["constituents", "changes"])
def test_a_wikipedia_page_cut_short_keeps_the_cached_tables(
    table, warm, http_server, shared_data_dir
):
    """A body with no Content-Length ends when the connection closes, so a transfer cut
    mid-page looks complete. The parser warned that the page ends inside a table, but the
    17 rows (or a third of the changes) were cached over the good 503 and 353, fresh until
    the next quarterly rebalance."""
    page = (
        shared_data_dir / "wikipedia" / "List_of_S&P_500_companies-2024-10-10.html"
    ).read_bytes()
    cut = page[: page.index(f'id="{table}"'.encode()) + 8000]
    http_server.route(WIKI, Reply(200, cut, {"Content-Type": "text/html"}, no_length=True))
    warning = assert_served_from_cache("wikipedia", http_server, warm)
    assert "the page looks incomplete, not used (" in warning
    assert f"the page ends inside the {table} table: it looks cut short" in warning
    tables, _ = wikipedia.fetch_sp500_tables(url=http_server.url + WIKI, client=client())
    assert (len(tables.constituents), len(tables.changes)) == (503, 353)


@pytest.mark.timeout(60)
def test_a_fred_csv_cut_mid_line_keeps_the_cached_series(warm, http_server, shared_data_dir):
    """The same with FRED's CSV, cut in the middle of 2021-02-09's value: 3911.2 for
    3911.23 and half the series were cached over the good copy without a warning."""
    body = (shared_data_dir / "fred" / "SP500.csv").read_bytes()
    cut = body[: body.index(b"2021-02-09,3911.23") + len("2021-02-09,3911.2")]
    http_server.route(CSV, Reply(200, cut, {"Content-Type": "text/csv"}, no_length=True))
    warning = assert_served_from_cache("fred", http_server, warm)
    assert "does not end with a line break (last line '2021-02-09,3911.2')" in warning


def _endless_pages(server, bars: list, delay: float = 0.0) -> None:
    """The aggregates URL answering ``bars`` with a ``next_url`` back to itself, forever."""
    body = {"ticker": "AAPL", "status": "OK", "results": bars, "next_url": server.url + AAPL}
    server.route(AAPL, Reply.json(body, delay=delay))


@pytest.mark.timeout(60)
def test_pages_without_end_stop_at_the_row_limit(warm, http_server, shared_data_dir, monkeypatch):
    """Up to 200 pages of up to 64 MB each were gathered before anything stopped them:
    gigabytes of bars in memory. Now a listing stops past MAX_RESULTS rows (set low here)."""
    aggs = shared_data_dir / "polygon" / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"
    monkeypatch.setattr(polygon, "MAX_RESULTS", 1_000)
    _endless_pages(http_server, json.loads(aggs.read_text())["results"] * 300)  # 600 bars
    asked = len(http_server.hits(AAPL))
    warning = assert_served_from_cache("polygon", http_server, warm)
    assert "1,200 rows in 2 pages and more to come; at most 1,000 rows" in warning
    assert len(http_server.hits(AAPL)) - asked == 2


@pytest.mark.timeout(60)
def test_pages_without_end_stop_at_the_time_limit(warm, http_server, monkeypatch):
    """Pages each well inside the request deadline, a next_url on every one: 200 of them
    at 119 s would have held the caller for 6.6 hours. Now MAX_SECONDS (set low here)."""
    monkeypatch.setattr(polygon, "MAX_SECONDS", 1.0)
    _endless_pages(http_server, [], delay=0.3)
    t0 = time.monotonic()
    warning = assert_served_from_cache("polygon", http_server, warm)
    assert time.monotonic() - t0 < 3
    assert "rows in " in warning and "and 1 s are taken for one request" in warning
