"""Polygon against a local server when the answers are wrong: bar timestamps no date
can hold."""

from __future__ import annotations

import json

import pytest

from mltrainer.data import polygon
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply
from tests.data.test_polygon import AAPL_2005, KEY, client_for, serve_aapl_2005

http_server = httpserver.http_server
REAL_AGGS = "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)


@pytest.fixture
def poly_dir(shared_data_dir):
    return shared_data_dir / "polygon"


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
