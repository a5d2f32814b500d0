"""The HTTP layer against a local server: retries, backoff, Retry-After, safe errors."""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from mltrainer.data.http import (
    USER_AGENT,
    HttpClient,
    RetryPolicy,
    parse_retry_after,
    redact,
    redact_url,
)
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server

KEY = "sEcReT0123456789abcdef"


@pytest.fixture
def aggs_file(shared_data_dir):
    return shared_data_dir / "polygon" / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"


def client(sleeps: list, attempts: int = 4, timeout=(2.0, 2.0)) -> HttpClient:
    return HttpClient(
        timeout=timeout, retry=RetryPolicy(max_attempts=attempts, backoff=0.5), sleep=sleeps.append
    )


def test_success_sends_user_agent_and_decodes_real_json(http_server, aggs_file):
    http_server.route("/aggs", Reply.file(aggs_file))
    body = client([]).get_json(http_server.url + "/aggs")
    assert body["ticker"] == "AAPL" and body["resultsCount"] == 2
    assert body["results"][0]["c"] == 1.4604
    seen = http_server.hits("/aggs")
    assert len(seen) == 1
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("mltrainer/") and "python-requests" in USER_AGENT


def test_429_honours_retry_after_then_succeeds(http_server, aggs_file):
    http_server.route(
        "/aggs", Reply.rate_limited("3"), Reply.rate_limited("0"), Reply.file(aggs_file)
    )
    sleeps = []
    body = client(sleeps).get_json(http_server.url + "/aggs")
    assert body["status"] == "OK"
    assert sleeps == [3.0, 0.0]  # the server's Retry-After, not our own backoff
    assert len(http_server.hits("/aggs")) == 3


def test_429_without_retry_after_uses_exponential_backoff(http_server, aggs_file):
    http_server.route(
        "/aggs", Reply.rate_limited(None), Reply.rate_limited(None), Reply.file(aggs_file)
    )
    sleeps = []
    client(sleeps).get_json(http_server.url + "/aggs")
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_capped():
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.delay(1, retry_after=3600.0) == 10.0
    assert RetryPolicy(backoff=1.0, max_backoff=5.0).delay(10) == 5.0


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    # RFC 9110 example date; 'now' fixed 30 s before it
    import email.utils

    when = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=when - 30) == pytest.approx(30)


def test_500_exhaustion_names_url_status_and_attempts(http_server):
    http_server.route("/boom", Reply.error(500))
    sleeps = []
    with pytest.raises(SourceError) as err:
        client(sleeps, attempts=3).get_json(http_server.url + "/boom", params={"x": "1"})
    text = str(err.value)
    assert f"{http_server.url}/boom?x=1" in text
    assert "HTTP 500" in text and "Internal Server Error" in text
    assert "gave up after 3 attempt" in text
    assert len(http_server.hits("/boom")) == 3
    assert sleeps == [0.5, 1.0]


def test_500_then_success(http_server, aggs_file):
    http_server.route("/flaky", Reply.error(503, "Service Unavailable"), Reply.file(aggs_file))
    assert client([]).get_json(http_server.url + "/flaky")["ticker"] == "AAPL"


def test_timeout_retries_then_fails_clearly(http_server):
    http_server.route("/slow", Reply.slow(1.0))
    sleeps = []
    with pytest.raises(SourceError) as err:
        client(sleeps, attempts=2, timeout=(1.0, 0.2)).get(http_server.url + "/slow")
    assert "timed out" in str(err.value) and "/slow" in str(err.value)
    assert len(http_server.hits("/slow")) == 2 and sleeps == [0.5]


def test_timeout_then_success(http_server, aggs_file):
    http_server.route("/slow", Reply.slow(1.0), Reply.file(aggs_file))
    body = client([], timeout=(1.0, 0.2)).get_json(http_server.url + "/slow")
    assert body["ticker"] == "AAPL"


def test_garbage_body_is_a_source_error_without_retry(http_server):
    http_server.route("/junk", Reply.garbage())
    with pytest.raises(SourceError) as err:
        client([]).get_json(http_server.url + "/junk")
    assert "/junk" in str(err.value) and "not valid JSON" in str(err.value)
    assert len(http_server.hits("/junk")) == 1


def test_truncated_json_is_a_source_error(http_server, aggs_file):
    http_server.route("/cut", Reply.truncated_json(aggs_file))
    with pytest.raises(SourceError, match="not valid JSON"):
        client([]).get_json(http_server.url + "/cut")


def test_dropped_connection_is_retried(http_server, aggs_file):
    http_server.route("/drop", Reply.dropped(aggs_file), Reply.file(aggs_file))
    sleeps = []
    assert client(sleeps).get_json(http_server.url + "/drop")["ticker"] == "AAPL"
    assert sleeps == [0.5]


def test_client_errors_are_not_retried(http_server):
    http_server.route("/missing", Reply.json({"status": "NOT_FOUND"}, status=404))
    with pytest.raises(SourceError) as err:
        client([]).get(http_server.url + "/missing")
    assert "HTTP 404" in str(err.value) and "NOT_FOUND" in str(err.value)
    assert len(http_server.hits("/missing")) == 1


def test_connection_refused_names_the_url():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError) as err:
        client([], attempts=2).get(f"http://127.0.0.1:{port}/x")
    assert f"127.0.0.1:{port}/x" in str(err.value) and "connection refused" in str(err.value)


def test_unresolvable_host_fails_fast(monkeypatch):
    """Offline: DNS fails; retrying would only make the user wait. (The session is faked
    with urllib3's real message so that no test sends a DNS query.)"""
    monkeypatch.delenv("MLTRAINER_OFFLINE", raising=False)  # the setting would refuse first

    class Offline(requests.Session):
        def get(self, url, **kw):
            raise requests.ConnectionError(
                "HTTPSConnectionPool(host='en.wikipedia.org', port=443): Max retries exceeded "
                'with url: /wiki/x (Caused by NameResolutionError("<urllib3.connection.'
                "HTTPSConnection object>: Failed to resolve 'en.wikipedia.org' ([Errno -3] "
                'Temporary failure in name resolution)"))'
            )

    sleeps = []
    offline = HttpClient(session=Offline(), sleep=sleeps.append)
    with pytest.raises(SourceError) as err:
        offline.get("https://en.wikipedia.org/wiki/x")
    assert "cannot resolve en.wikipedia.org" in str(err.value) and sleeps == []


def test_offline_setting_contacts_nothing_beyond_this_machine(http_server, aggs_file, monkeypatch):
    """MLTRAINER_OFFLINE: a remote host is refused before any request (the session would
    count it); a server on 127.0.0.1 is still served."""

    class Counting(requests.Session):
        calls = 0

        def get(self, url, **kw):
            Counting.calls += 1
            raise AssertionError("no request may be sent")

    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    sleeps = []
    with pytest.raises(SourceError) as err:
        HttpClient(session=Counting(), sleep=sleeps.append).get(
            "https://api.polygon.io/v2/x", params={"apiKey": KEY}, secrets=(KEY,)
        )
    text = str(err.value)
    assert "MLTRAINER_OFFLINE is set" in text and "api.polygon.io" in text and KEY not in text
    assert Counting.calls == 0 and sleeps == []
    http_server.route("/aggs", Reply.file(aggs_file))
    assert client([]).get_json(http_server.url + "/aggs")["ticker"] == "AAPL"
    monkeypatch.setenv("MLTRAINER_OFFLINE", "0")
    with pytest.raises(AssertionError, match="no request may be sent"):
        HttpClient(session=Counting(), sleep=sleeps.append).get("https://api.polygon.io/v2/x")


def test_key_never_in_errors_or_logs(http_server, caplog, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)  # urllib3 logs full request lines at DEBUG
    http_server.route("/fred/series/observations", Reply.error(500))
    with pytest.raises(SourceError) as err:
        client([], attempts=2).get_json(
            http_server.url + "/fred/series/observations",
            params={"series_id": "SP500", "api_key": KEY, "file_type": "json"},
        )
    assert KEY not in str(err.value)
    assert "series_id=SP500" in str(err.value) and "api_key" not in str(err.value)
    assert http_server.hits("/fred/series/observations")[0].query["api_key"] == KEY  # it was sent
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "series_id=SP500" in logged  # urllib3's request line and our retry warning
    assert KEY not in logged


def test_redaction_helpers():
    url = f"https://api.example.com/v1/x?apiKey={KEY}&ticker=AAPL&api_key={KEY}"
    assert redact_url(url) == "https://api.example.com/v1/x?ticker=AAPL"
    assert KEY not in redact(f"failed: {url}")
    assert KEY not in redact(f"Authorization: Bearer {KEY}")
    assert redact("token=abc&x=1") == "token=***&x=1"
    assert KEY not in redact(f"plain {KEY} text", KEY)


def test_parse_retry_after_rejects_non_finite():
    assert parse_retry_after("inf") is None and parse_retry_after("nan") is None
    assert parse_retry_after("-5") == 0.0


def test_text_without_charset_is_utf8_then_detected(http_server):
    page = "Société Générale – 3M Company ✓".encode()
    http_server.route("/utf8", Reply(200, page, {"Content-Type": "text/html"}))
    http_server.route(
        "/latin",
        Reply(
            200,
            "Nestlé, Société".encode("latin-1"),
            {"Content-Type": "text/plain; charset=ISO-8859-1"},
        ),
    )
    assert client([]).get_text(http_server.url + "/utf8") == page.decode()
    assert client([]).get_text(http_server.url + "/latin") == "Nestlé, Société"


def test_body_size_limit_is_inclusive(http_server, aggs_file):
    """A body of exactly ``max_bytes`` is read; one byte over is refused."""
    http_server.route("/aggs", Reply.file(aggs_file))
    http = HttpClient(timeout=(2.0, 2.0), deadline=5.0, max_bytes=aggs_file.stat().st_size)
    for _ in range(3):
        assert http.get_json(http_server.url + "/aggs")["ticker"] == "AAPL"
    with pytest.raises(SourceError, match="announces 666 bytes, more than the 665 bytes"):
        HttpClient(max_bytes=665).get(http_server.url + "/aggs")
