"""Polygon against a local server when the answers are wrong or never come: bar
timestamps no date can hold, and a run of failing tickers that must end the requests
(503 tickers x ~7 s of retries each held the CLI for an hour)."""

from __future__ import annotations

import json
import time

import pytest

from mltrainer.data import polygon
from mltrainer.data.cache import get_cache
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply
from tests.data.test_polygon import (  # noqa: F401 (fixtures shared with test_polygon)
    AAPL_2005,
    AGGS,
    KEY,
    _key,
    client_for,
    serve_aapl_2005,
)

http_server = httpserver.http_server
REAL_AGGS = "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        (10**20, "'1" + "0" * 20),
        (1e20, "'1e+20'"),
        (-(10**20), "'-1"),
        (None, "'nan'"),
        ("soon", "'soon'"),
    ],
)
def test_a_bar_with_an_impossible_timestamp_names_the_ticker(http_server, poly_dir, stamp, shown):
    """``t: 1e20`` gave an OverflowError traceback (an int) or a NaT date (a float)."""
    body = json.loads((poly_dir / REAL_AGGS).read_text())
    body["results"][1]["t"] = stamp
    serve_aapl_2005(http_server, poly_dir)
    http_server.route(AAPL_2005, Reply.json(body), query={"adjusted": "false"})
    with pytest.raises(SourceError) as err:
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))
    text = str(err.value)
    assert "AAPL: skipped (AAPL (" in text and AAPL_2005 in text
    assert "1 bar(s) without a readable timestamp 't'" in text and f"(first: {shown}" in text


def _fail(server, *tickers: str) -> None:
    for t in tickers:
        path = AGGS.format(t=t, a="2005-04-01", b="2005-04-04")
        server.route(path, Reply.error(500), query={"adjusted": "false"})


def test_a_run_of_failing_tickers_stops_the_requests_and_keeps_the_cache(http_server, poly_dir):
    serve_aapl_2005(http_server, poly_dir)
    polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))
    _fail(http_server, "AA", "BB", "CC", "DD", "EE")
    n = len(http_server.requests)
    data = polygon.load_polygon(
        ["AA", "BB", "CC", "DD", "AAPL", "EE"],
        "2005-04-01",
        "2005-04-04",
        client=client_for(http_server),
        max_failures_in_a_row=3,
    )
    assert data.tickers == ["AAPL"]  # fresh in the cache: served without asking
    assert len(http_server.requests) - n == 3 * 3  # AA, BB, CC with 3 attempts each
    assert data.warnings[0] == (
        "stopped asking Polygon after 3 tickers in a row failed; "
        "2 ticker(s) neither asked nor cached: DD, EE"
    )
    assert [w.split(":")[0] for w in data.warnings[1:]] == ["AA", "BB", "CC"]

    # a stale copy served because Polygon failed counts as a failure, and is still served
    cache = get_cache()
    (key,) = [e["key"] for e in cache.status()]
    cache.put_frame(key, cache.get(key).value, kind="prices", expires_at=time.time() - 1)
    _fail(http_server, "AAPL")
    n = len(http_server.requests)
    data = polygon.load_polygon(
        ["AAPL", "AA", "BB", "CC"],
        "2005-04-01",
        "2005-04-04",
        client=client_for(http_server),
        max_failures_in_a_row=2,
    )
    assert data.tickers == ["AAPL"] and len(http_server.requests) - n == 2 * 3
    assert data.warnings[0].endswith("2 ticker(s) neither asked nor cached: BB, CC")
    assert "AAPL: showing cached data" in data.warnings[1]


def test_nothing_answering_is_one_bounded_error(http_server):
    tickers = [f"T{i:03d}" for i in range(50)]
    _fail(http_server, *tickers)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        polygon.load_polygon(tickers, "2005-04-01", "2005-04-04", client=client_for(http_server))
    assert len(http_server.requests) == 10 * 3 and time.monotonic() - started < 10
    assert str(err.value).startswith(
        "Polygon returned no data for any of 50 ticker(s): stopped asking Polygon after 10 "
        "tickers in a row failed; 40 ticker(s) neither asked nor cached: T010, T011,"
    )
