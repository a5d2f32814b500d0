"""Polygon's Ticker Events against a local server: renames from the real response format
(``polygon_ticker_events.json``: META is Polygon's documented sample, the others are
public ticker histories in the same format), failures as per-ticker warnings, the disk
cache, the key kept out of every text, and membership with the Polygon rows added."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from mltrainer.data import polygon
from mltrainer.data.cache import expiry_for, get_cache
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.data.membership import load_membership, read_snapshot
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
KEY = "pOlYgOnKeY_0123456789"
FIXTURE = Path(__file__).with_name("polygon_ticker_events.json")
BODIES = json.loads(FIXTURE.read_text())


def events(ticker: str) -> str:
    return polygon.EVENTS_PATH.format(ticker=ticker)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)


def client_for(server, attempts: int = 3) -> polygon.PolygonClient:
    http = HttpClient(
        timeout=(2.0, 5.0),
        retry=RetryPolicy(max_attempts=attempts, backoff=0.01),
        sleep=lambda s: None,
    )
    return polygon.PolygonClient(key=KEY, base=server.url, http=http)


def serve_fixture(server) -> None:
    for ticker, body in BODIES.items():
        server.route(events(ticker), Reply.json(body), query={"types": "ticker_change"})


def test_events_become_rename_rows(http_server):
    serve_fixture(http_server)
    seen = []
    rows, warnings = polygon.polygon_ticker_events(
        ["META", "ELV", "AAPL"],
        client=client_for(http_server),
        progress=lambda f, text: seen.append((f, text)),
    )
    assert warnings == []
    assert list(rows.columns) == ["old", "new", "date", "kind", "source", "note"]
    got = [
        (o, n, d.date().isoformat())
        for o, n, d in zip(rows["old"], rows["new"], rows["date"], strict=True)
    ]
    # oldest first; the earliest event of each company is its listing, not a rename;
    # AAPL has a single event: no rename at all
    assert got == [
        ("WLP", "ANTM", "2014-12-03"),
        ("FB", "META", "2022-06-09"),
        ("ANTM", "ELV", "2022-06-28"),
    ]
    assert (rows["kind"] == "rename").all()
    meta = rows[rows["new"] == "META"].iloc[0]
    assert meta["source"] == "Polygon ticker events for META"
    assert "CIK 0001326801" in meta["note"] and "Meta Platforms" in meta["note"]
    assert rows.attrs["answered"] == ["META", "ELV", "AAPL"]
    assert [f for f, _ in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])
    for ticker in ("META", "ELV", "AAPL"):
        (request,) = http_server.hits(events(ticker))
        assert request.query == {"types": "ticker_change"}  # the key is not in the URL
        assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_rows_agree_with_the_curated_symbol_table(http_server):
    """An oracle: the package's symbol table, curated from other sources, dates the same
    renames on the same days."""
    from mltrainer.data.symbols import reference_changes

    serve_fixture(http_server)
    rows, _ = polygon.polygon_ticker_events(["META", "ELV"], client=client_for(http_server))
    curated = reference_changes().set_index(["old", "new"])["date"]
    for old, new, date in zip(rows["old"], rows["new"], rows["date"], strict=True):
        assert curated[(old, new)] == date


def test_404_and_500_are_warnings_the_others_still_count(http_server, caplog):
    caplog.set_level(logging.DEBUG)
    serve_fixture(http_server)
    http_server.route(
        events("NOPE"),
        Reply.json(
            {"status": "NOT_FOUND", "request_id": "x", "message": "Ticker not found."}, status=404
        ),
    )
    http_server.route(events("MSFT"), Reply.error(500))
    http_server.route(
        events("KO"),
        Reply.rate_limited("0"),
        Reply.json(BODIES["AAPL"] | {"results": BODIES["AAPL"]["results"] | {"name": "Coca-Cola"}}),
    )
    rows, warnings = polygon.polygon_ticker_events(
        ["NOPE", "META", "MSFT", "KO"], client=client_for(http_server)
    )
    assert rows[["old", "new"]].values.tolist() == [["FB", "META"]]
    assert rows.attrs["answered"] == ["META", "KO"]  # the 429 was retried by the client
    assert len(http_server.hits(events("KO"))) == 2
    nope, msft = warnings
    assert nope.startswith("NOPE: no ticker events") and "HTTP 404" in nope
    assert msft.startswith("MSFT: no ticker events") and "HTTP 500" in msft
    assert len(http_server.hits(events("MSFT"))) == 3  # retried, then given up
    for text in warnings:
        assert KEY not in text
    for record in caplog.records:
        assert KEY not in record.getMessage()


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply.garbage(), "not valid JSON"),
        (Reply.truncated_json(FIXTURE), "not valid JSON"),
        (Reply.json([1, 2]), "expected a JSON object"),
        (Reply.json({"status": "OK", "request_id": "r"}), "'results' is missing"),
        (
            Reply.json(
                {"status": "OK", "results": {"name": "X", "events": {"date": "2022-06-09"}}}
            ),
            "'results.events' is missing or not a list",
        ),
        (
            Reply.json(
                {
                    "status": "OK",
                    "results": {
                        "events": [
                            {
                                "type": "ticker_change",
                                "date": "09/06/2022",
                                "ticker_change": {"ticker": "META"},
                            }
                        ]
                    },
                }
            ),
            "no valid date ('09/06/2022')",
        ),
        (
            Reply.json(
                {
                    "status": "OK",
                    "results": {
                        "events": [{"type": "ticker_change", "ticker_change": {"ticker": "META"}}]
                    },
                }
            ),
            "no valid date",
        ),
        (
            Reply.json(
                {
                    "status": "OK",
                    "results": {
                        "events": [
                            {"type": "ticker_change", "date": "2022-06-09", "ticker_change": {}}
                        ]
                    },
                }
            ),
            "no 'ticker_change.ticker'",
        ),
        (Reply.json({"status": "OK", "results": {"events": ["META"]}}), "not an object"),
    ],
)
def test_a_malformed_body_is_a_warning_not_a_crash(http_server, reply, says):
    serve_fixture(http_server)
    http_server.route(events("BAD"), reply)
    rows, warnings = polygon.polygon_ticker_events(["BAD", "META"], client=client_for(http_server))
    assert rows[["old", "new"]].values.tolist() == [["FB", "META"]]
    (warning,) = warnings
    assert warning.startswith("BAD: no ticker events") and says in warning, warning
    assert not [e for e in get_cache().status() if e["key"] == "polygon:events:BAD"]


def test_repeated_failures_stop_the_loop(http_server):
    """Polygon unreachable or the key refused: a few tickers fail, the rest are not asked
    (each failure costs the client's retries; 500 of them would take an hour)."""
    serve_fixture(http_server)
    for ticker in ("A", "B", "C", "D"):
        http_server.route(
            events(ticker),
            Reply.json(
                {"status": "ERROR", "request_id": "r", "error": "Unknown API Key"}, status=401
            ),
        )
    seen = []
    rows, warnings = polygon.polygon_ticker_events(
        ["META", "A", "B", "C", "D", "AAPL"],
        client=client_for(http_server),
        max_failures_in_a_row=3,
        progress=lambda f, text: seen.append(f),
    )
    assert rows[["old", "new"]].values.tolist() == [["FB", "META"]]
    assert [w.split(":")[0] for w in warnings] == [
        "A",
        "B",
        "C",
        "stopped after 3 tickers in a row failed; 2 ticker(s) not asked",
    ]
    assert "HTTP 401" in warnings[0] and KEY not in " ".join(warnings)
    assert http_server.hits(events("D")) == [] and http_server.hits(events("AAPL")) == []
    assert seen[-1] == 1.0


def test_other_event_types_are_skipped(http_server):
    body = json.loads(json.dumps(BODIES["META"]))
    body["results"]["events"].insert(
        1, {"type": "name_change", "date": "2021-10-28", "name_change": {"name": "Meta Platforms"}}
    )
    http_server.route(events("META"), Reply.json(body))
    rows, warnings = polygon.polygon_ticker_events(["META"], client=client_for(http_server))
    assert not warnings and rows[["old", "new"]].values.tolist() == [["FB", "META"]]


def test_results_are_cached_without_the_key(http_server):
    serve_fixture(http_server)
    first, _ = polygon.polygon_ticker_events(["META", "AAPL"], client=client_for(http_server))
    n = len(http_server.requests)
    again, warnings = polygon.polygon_ticker_events(
        ["META", "AAPL"], client=client_for(http_server)
    )
    assert len(http_server.requests) == n == 2  # the second call made no request
    assert not warnings
    pd.testing.assert_frame_equal(again, first)
    entries = {e["key"]: e for e in get_cache().status()}
    assert set(entries) == {"polygon:events:META", "polygon:events:AAPL"}
    assert all(KEY not in k for k in entries)
    hit = get_cache().get("polygon:events:META")
    assert KEY not in json.dumps(hit.value)
    assert hit.value["events"] == [["2012-05-18", "FB"], ["2022-06-09", "META"]]
    # kept until the next index rebalance (the constituents' freshness), not a day
    assert hit.expires_at == pytest.approx(expiry_for("constituents"), abs=60)


def test_a_dotted_class_ticker_keeps_its_dot(http_server):
    http_server.route(
        events("BRK.B"),
        Reply.json(
            {
                "status": "OK",
                "results": {
                    "name": "Berkshire Hathaway Inc. Class B",
                    "events": [
                        {
                            "type": "ticker_change",
                            "date": "1996-05-09",
                            "ticker_change": {"ticker": "BRK.B"},
                        },
                    ],
                },
            }
        ),
    )
    rows, warnings = polygon.polygon_ticker_events(["brk-b"], client=client_for(http_server))
    assert not warnings and rows.empty and rows.attrs["answered"] == ["BRK.B"]
    assert len(http_server.hits(events("BRK.B"))) == 1


# ----------------------------------------------------------------- membership
def test_membership_with_polygon_adds_the_rows(http_server, shared_data_dir, monkeypatch):
    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    offline = load_membership(shared_data_dir, use_cache=False)
    today = offline.members_on(offline.end)
    listing = BODIES["AAPL"]  # Polygon knows every member: one listing event, no rename
    for ticker in today:
        if ticker not in {"GOOG", "NWS"}:  # these two: Polygon's 404
            http_server.route(events(ticker), Reply.json(listing))
    serve_fixture(http_server)
    membership = load_membership(shared_data_dir, use_cache=False, polygon=True)
    asked = [r.path for r in http_server.requests]
    assert sorted(asked) == sorted(events(t) for t in today)  # one request per member

    changes = membership.history.changes
    from_polygon = changes[changes["source"].str.startswith("Polygon ticker events")]
    # the table's own rows (curated or derived from the data) win: FB -> META, WLP -> ANTM
    # and ANTM -> ELV are there; DWDP -> DD (2019-06-03) is not
    known = set(zip(offline.history.changes["old"], offline.history.changes["new"], strict=True))
    fixture_rows, _ = polygon.polygon_ticker_events(list(BODIES), use_cache=True)
    new = [
        [o, n, d]
        for o, n, d in fixture_rows[["old", "new", "date"]].values.tolist()
        if (o, n) not in known
    ]
    assert new, "every fixture rename is already in the symbol table: add a new one"
    assert ["DWDP", "DD", pd.Timestamp("2019-06-03")] in new
    assert from_polygon[["old", "new", "date"]].values.tolist() == new
    assert membership.symbol_sources == [f"Polygon ticker events ({len(today) - 2} tickers)"]
    assert membership.describe()["symbol_sources"] == membership.symbol_sources
    (warning,) = [w for w in membership.warnings if w.startswith("Polygon ticker events")]
    assert f"2 of {len(today)} ticker(s)" in warning and "HTTP 404" in warning
    assert "GOOG" in warning and "NWS" in warning
    assert all(KEY not in w for w in membership.warnings)

    # the real-data checks still hold
    members = membership.members_on("2021-04-23")
    snap = read_snapshot(shared_data_dir / "constituents-2021-04-23.csv")
    assert "FB" in members and "META" not in members
    assert len(set(members) & snap.symbols) / len(set(members) | snap.symbols) >= 0.99
    assert {"DWDP"} <= set(membership.members_on("2018-06-01"))
    assert "DD" in membership.members_on("2019-08-01")


def test_membership_without_a_key_or_without_asking_stays_offline(
    http_server, shared_data_dir, monkeypatch
):
    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    serve_fixture(http_server)
    default = load_membership(shared_data_dir, use_cache=False)
    assert http_server.requests == [] and default.symbol_sources == []
    monkeypatch.delenv("POLYGON_API_KEY")
    keyless = load_membership(shared_data_dir, use_cache=False, polygon=True)
    assert http_server.requests == []
    assert any(
        "Polygon ticker events not used" in w and "POLYGON_API_KEY" in w for w in keyless.warnings
    )
    monkeypatch.setenv("POLYGON_API_KEY", "short")  # set but refused: said so
    refused = load_membership(shared_data_dir, use_cache=False, polygon=True)
    assert http_server.requests == []
    (warning,) = [w for w in refused.warnings if "Polygon ticker events not used" in w]
    assert "POLYGON_API_KEY is ignored" in warning
