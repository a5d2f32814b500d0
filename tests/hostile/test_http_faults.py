"""Hostile networks against the HTTP layer and the three sources that use it.

Each fault runs against a real server on 127.0.0.1 (``tests/data/httpserver.py``) and
must end in a clear SourceError, without the key in its text, well inside 60 s and with
bounded memory: a body trickling one byte every 2 s, a response announcing 2 GB, a body
with no length that never ends, a redirect that would carry the key to another host, and
a ``Retry-After`` of a day. Deadlines are set small here (the client takes them as
parameters); the defaults are what the app uses.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest

from mltrainer.data import fred, polygon, wikipedia
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import LocalServer, Reply

http_server = httpserver.http_server

KEY = "hostileKEY0123456789abcdef"
MB = 2**20
AAPL = "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04"
OBS = "/fred/series/observations"
CSV = "/graph/fredgraph.csv"
WIKI = "/wiki/List_of_S%26P_500_companies"
AGGS_FILE = "polygon/aggs-AAPL-1-day-2005-04-01-2005-04-04.json"
WIKI_FILE = "wikipedia/List_of_S&P_500_companies-2024-10-10.html"


def client(
    deadline: float = 3.0,
    max_bytes: int = 64 * MB,
    sleeps: list | None = None,
    retry: RetryPolicy | None = None,
) -> HttpClient:
    return HttpClient(
        timeout=(2.0, 5.0),
        deadline=deadline,
        max_bytes=max_bytes,
        retry=retry or RetryPolicy(max_attempts=3, backoff=0.01),
        sleep=(sleeps.append if sleeps is not None else time.sleep),
    )


class Measured:
    """Wall time and peak Python allocation of one call (tracemalloc sees every bytes
    object a response is read into)."""

    def __init__(self):
        self.seconds = self.peak_mb = 0.0

    def __enter__(self):
        tracemalloc.start()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self._t0
        self.peak_mb = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
        return False


def fetch(source: str, server: LocalServer, http: HttpClient):
    """One request through the source's own code path."""
    if source == "polygon":
        return polygon.PolygonClient(key=KEY, base=server.url, http=http).get(AAPL)
    if source == "fred":
        return fred.fetch_api("SP500", KEY, http)
    return wikipedia.fetch_sp500_tables(url=server.url + WIKI, client=http, use_cache=False)


@pytest.fixture
def sources(http_server, shared_data_dir, monkeypatch):
    """Paths and real-format bodies of the three sources on one local server."""
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    obs = {"count": 1, "observations": [{"date": "2024-01-02", "value": "4742.83"}]}
    return {
        "polygon": (AAPL, (shared_data_dir / AGGS_FILE).read_bytes()),
        "fred": (OBS, json.dumps(obs).encode()),
        "wikipedia": (WIKI, (shared_data_dir / WIKI_FILE).read_bytes()),
    }


def assert_clean(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert KEY not in text and "Traceback" not in text
    return text


# ------------------------------------------------------------------ slow bodies
@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["polygon", "fred", "wikipedia"])
def test_trickling_body_fails_at_the_deadline(source, http_server, sources):
    path, body = sources[source]
    http_server.route(path, Reply.trickling(body, interval=2.0))
    with Measured() as m, pytest.raises(SourceError) as err:
        fetch(source, http_server, client(deadline=3.0))
    text = assert_clean(err)
    assert "did not complete within the 3 s deadline" in text
    assert 2.9 <= m.seconds < 4.5, m.seconds  # the deadline, not the 30 s read timeout
    assert m.peak_mb < 500
    assert len(http_server.hits(path)) == 1  # a stalled server is not asked again


# ------------------------------------------------------------------- huge bodies
@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["polygon", "fred", "wikipedia"])
def test_huge_announced_body_is_refused_before_reading(source, http_server, sources):
    path, _ = sources[source]
    http_server.route(path, Reply.huge(announce=2 * 2**30, send=600 * MB))
    with Measured() as m, pytest.raises(SourceError) as err:
        fetch(source, http_server, client())
    text = assert_clean(err)
    assert "announces 2.0 GB, more than the 64.0 MB limit" in text
    assert m.seconds < 2 and m.peak_mb < 50
    assert len(http_server.hits(path)) == 1


@pytest.mark.timeout(60)
def test_huge_body_in_a_fresh_process_keeps_rss_small(http_server):
    """The 2 GB announcement with the app's default limits, in a child process whose
    peak RSS is its own (and whose address space is capped, so a regression cannot take
    the machine's memory with it)."""
    http_server.route("/big", Reply.huge(announce=2 * 2**30, send=700 * MB))
    child = textwrap.dedent(f"""
        import json, re, resource, time
        from pathlib import Path
        from mltrainer.data.http import HttpClient
        from mltrainer.errors import SourceError
        t0 = time.monotonic()
        try:
            HttpClient().get({http_server.url + "/big"!r})
            error = None
        except SourceError as exc:
            error = str(exc)
        seconds = time.monotonic() - t0
        # VmHWM is this program's own peak; ru_maxrss keeps the forked parent's after exec
        status = Path("/proc/self/status")
        found = re.search(r"VmHWM:\\s*(\\d+) kB", status.read_text()) if status.exists() else None
        kb = int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"seconds": seconds, "error": error, "rss_mb": kb / 1024,
                          "own_peak": found is not None}}))
    """)

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    out = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=os.getcwd(),
        preexec_fn=cap_memory,
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["error"] and "announces 2.0 GB" in doc["error"]
    assert doc["seconds"] < 2 and doc["rss_mb"] < 500, doc
    assert doc["own_peak"] or sys.platform != "linux"


@pytest.mark.timeout(60)
def test_body_without_length_stops_at_the_limit(http_server):
    http_server.route("/endless", Reply.endless(send=300 * MB))
    with Measured() as m, pytest.raises(SourceError) as err:
        client(max_bytes=4 * MB).get_text(http_server.url + "/endless")
    assert "larger than the 4.0 MB limit; download stopped" in assert_clean(err)
    assert m.seconds < 5 and m.peak_mb < 20


def test_error_body_is_read_only_in_part(http_server):
    """A 500 whose body never ends still gives its reason, from the first bytes only."""
    http_server.route(
        "/err",
        Reply(
            500,
            b"<h1>Maintenance</h1>",
            {"Content-Type": "text/html"},
            filler=300 * MB,
            no_length=True,
        ),
    )
    with Measured() as m, pytest.raises(SourceError) as err:
        client(retry=RetryPolicy(max_attempts=1)).get(http_server.url + "/err")
    assert "HTTP 500" in str(err.value) and "Maintenance" in str(err.value)
    assert m.seconds < 5 and m.peak_mb < 20


# -------------------------------------------------------------------- redirects
@pytest.fixture
def other_host():
    """A second server, addressed as ``localhost``: another host than 127.0.0.1."""
    with LocalServer() as server:
        yield server


@pytest.mark.timeout(60)
def test_fred_redirect_to_another_host_keeps_the_key(http_server, other_host, monkeypatch):
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    stolen = f"{other_host.other_name_url}/collect?api_key={KEY}&series_id=SP500"
    http_server.route(OBS, Reply.redirect(stolen))
    with Measured() as m, pytest.raises(SourceError) as err:
        fred.fetch_api("SP500", KEY, client())
    text = assert_clean(err)
    assert "redirected to another host (http://localhost:" in text
    assert "refusing to send the API key there" in text
    assert other_host.requests == []  # the key never left for the other host
    assert m.seconds < 2


@pytest.mark.timeout(60)
def test_polygon_redirect_to_another_host_keeps_the_bearer(http_server, other_host):
    http_server.route(AAPL, Reply.redirect(other_host.other_name_url + AAPL, status=307))
    with pytest.raises(SourceError) as err:
        fetch("polygon", http_server, client())
    assert "another host" in assert_clean(err)
    assert other_host.requests == []


@pytest.mark.timeout(60)
def test_same_host_redirect_with_a_key_is_followed(http_server, monkeypatch):
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    obs = {"count": 1, "observations": [{"date": "2024-01-02", "value": "4742.83"}]}
    http_server.route(OBS, Reply.redirect(f"/v2{OBS}?series_id=SP500&api_key={KEY}"))
    http_server.route("/v2" + OBS, Reply.json(obs))
    series = fred.fetch_api("SP500", KEY, client())
    assert series.iloc[0] == 4742.83
    assert http_server.hits("/v2" + OBS)[0].query["api_key"] == KEY


@pytest.mark.timeout(60)
def test_redirect_loop_is_bounded(http_server):
    http_server.route("/loop", Reply.redirect("/loop"))
    with pytest.raises(SourceError, match="more than 5 redirects"):
        client().get(http_server.url + "/loop", secrets=(KEY,))
    assert len(http_server.hits("/loop")) == 6


@pytest.mark.timeout(60)
def test_redirect_without_a_key_may_change_host(http_server, other_host, shared_data_dir):
    """Wikipedia sends no key: its redirects (to the mobile site, say) are followed."""
    other_host.route(WIKI, Reply.file(shared_data_dir / WIKI_FILE))
    http_server.route(WIKI, Reply.redirect(other_host.other_name_url + WIKI, status=301))
    tables, _ = wikipedia.fetch_sp500_tables(
        url=http_server.url + WIKI, client=client(), use_cache=False
    )
    assert len(tables.constituents) == 503


# ------------------------------------------------------------------- retry waits
@pytest.mark.timeout(60)
@pytest.mark.parametrize("retry_after", ["100000", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_day_long_retry_after_fails_at_once(retry_after, http_server, sources):
    """The app's default policy and the real ``time.sleep``: no waiting at all."""
    http_server.route(AAPL, Reply.rate_limited(retry_after))
    http = HttpClient(timeout=(2.0, 5.0))
    with Measured() as m, pytest.raises(SourceError) as err:
        fetch("polygon", http_server, http)
    text = assert_clean(err)
    assert "HTTP 429" in text and "longer than the 60 s this client waits" in text
    assert "try again later" in text
    assert m.seconds < 2 and len(http_server.hits(AAPL)) == 1


def test_retry_waits_stay_within_the_budget(http_server):
    """Each Retry-After within the per-wait cap, but their sum not past the budget."""
    http_server.route("/rl", Reply.rate_limited("50"))
    sleeps = []
    http = client(sleeps=sleeps, retry=RetryPolicy(max_attempts=5))
    with pytest.raises(SourceError) as err:
        http.get(http_server.url + "/rl")
    assert sleeps == [50.0]  # a second 50 s wait would pass the 90 s budget
    assert "would pass the 90 s retry budget" in str(err.value)
    assert len(http_server.hits("/rl")) == 2
