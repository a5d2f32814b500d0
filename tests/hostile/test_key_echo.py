"""A server that echoes the API key back in its error body.

Real APIs quote a rejected key in their JSON error (``"Unknown API Key: ..."``). In JSON
text the key can stand right after an escape such as ``\\n``, ``\\t`` or ``\\u0022``, be
followed by letters, or come back upper-cased. Wherever it stands it must not reach the
error text, the retry lines in the log or ``--json`` output.
"""

from __future__ import annotations

import json
import logging

import pytest

from mltrainer.cli import main
from mltrainer.data import polygon
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
KEY = "abcdef0123456789abcdef0123456789"
AAPL = "/v2/aggs/ticker/AAPL/range/1/day/2020-01-01/2020-02-01"

# error bodies as servers write them (the raw bytes, escapes and all)
BODIES = {
    "newline": json.dumps({"status": "ERROR", "error": f"invalid key:\n{KEY}"}),
    "tab": json.dumps({"status": "ERROR", "error": f"invalid key:\t{KEY}"}),
    "u0022": f'{{"status":"ERROR","error":"key\\u0022{KEY}\\u0022"}}',
    "trailing letters": json.dumps({"status": "ERROR", "error": f"key={KEY}xyz"}),
    "upper case": json.dumps({"status": "ERROR", "error": f"Unknown API Key: {KEY.upper()}"}),
}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)


def leaks(text: str) -> bool:
    return KEY in text.lower()


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("status", [401, 500])
def test_echoed_key_is_not_in_the_error_or_the_retry_log(http_server, caplog, body, status):
    assert leaks(body)  # the server really echoes it
    http_server.route(AAPL, Reply.text(body, "application/json", status=status))
    http = HttpClient(retry=RetryPolicy(max_attempts=2, backoff=0.01), sleep=lambda s: None)
    client = polygon.PolygonClient(key=KEY, base=http_server.url, http=http)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as err:
        client.get(AAPL)
    text = str(err.value)
    assert f"HTTP {status}" in text and "***" in text and not leaks(text)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    if status == 500:
        assert "retrying" in logged
    assert not leaks(logged)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_echoed_key_is_not_in_json_output(http_server, capsys, monkeypatch, body):
    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    http_server.route(AAPL, Reply.text(body, "application/json", status=401))
    argv = ["data", "load", "--source", "polygon", "--tickers", "AAPL"]
    code = main([*argv, "--start", "2020-01-01", "--end", "2020-02-01", "--json"])
    out, err = capsys.readouterr()
    assert code != 0 and http_server.hits(AAPL)
    assert json.loads(out)["type"] == "SourceError" and "HTTP 401" in out
    assert not leaks(out) and not leaks(err)
