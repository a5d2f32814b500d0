"""FRED's API against a local server answering wrongly: a count that never ends the
paging (6,629 requests in 20 s), malformed counts and observations (a ValueError or an
AttributeError that kept an expired cached copy from being served), and infinities."""

from __future__ import annotations

import re
import time

import pytest

from mltrainer.data import fred
from mltrainer.data.cache import get_cache
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply
from tests.data.test_fred import API, KEY, api_pages, fast

http_server = httpserver.http_server


@pytest.fixture
def local_api(http_server, monkeypatch):
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.setenv("FRED_API_KEY", KEY)
    return http_server


@pytest.fixture
def real_page(shared_data_dir) -> dict:
    """The first 100 rows of the real SP500 series in the API's JSON layout."""
    return api_pages(shared_data_dir / "fred" / "SP500.csv", 100)[0]


def test_a_count_that_never_ends_stops_at_once(local_api, real_page, monkeypatch):
    local_api.route(API, Reply.json(real_page | {"count": 10**18}))
    with pytest.raises(SourceError) as err:
        fred.load_fred("SP500", client=fast(), use_cache=False)
    assert "FRED says the series has 1000000000000000000 observations; at most 2000000" in str(
        err.value
    )
    assert len(local_api.hits(API)) == 1
    # a count just within the bound is read in MAX_PAGES pages at most
    monkeypatch.setattr(fred, "PAGE", 100)
    monkeypatch.setattr(fred, "MAX_PAGES", 5)
    local_api.route(API, Reply.json(real_page | {"count": 501}))
    with pytest.raises(SourceError, match="has 501 observations; at most 500 "):
        fred.load_fred("SP500", client=fast(), use_cache=False)
    local_api.route(API, Reply.json(real_page | {"count": 500}))
    assert len(fred.load_fred("SP500", client=fast(), use_cache=False)) == 100  # same rows
    assert len(local_api.hits(API)) == 2 + 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": "lots"}, "'count' is not a whole number ('lots')"),
        ({"count": 2.5}, "'count' is not a whole number ('2.5')"),
        ({"count": -1}, "'count' is negative (-1)"),
        ({"observations": [1, 2]}, "an observation is not an object ('1')"),
        (
            {"observations": [{"date": "2020-01-02", "value": "inf"}]},
            "1 observation(s) are infinite (first: 2020-01-02 = inf)",
        ),
        (
            {
                "observations": [
                    {"date": "2020-01-02", "value": "1"},
                    {"date": "2020-01-03", "value": "-1e999"},
                ]
            },
            "1 observation(s) are infinite (first: 2020-01-03 = -inf)",
        ),
    ],
)
def test_a_malformed_body_serves_the_expired_copy(local_api, real_page, change, message):
    local_api.route(API, Reply.json(real_page))
    assert len(fred.load_fred("SP500", client=fast())) == 100
    cache = get_cache()
    key = "fred:series:SP500"
    cache.put_frame(key, cache.get(key).value, kind="fred", expires_at=time.time() - 1)
    local_api.route(API, Reply.json(real_page | change))
    series = fred.load_fred("SP500", client=fast())
    assert len(series) == 100 and "cached data" in series.attrs["warning"]
    assert message in series.attrs["warning"] and KEY not in series.attrs["warning"]
    with pytest.raises(SourceError, match=re.escape(message)):
        fred.load_fred("SP500", client=fast(), use_cache=False)


def test_infinite_values_in_the_csv_are_refused():
    text = "observation_date,SP500\n2020-01-02,3257.85\n2020-01-03,inf\n"
    with pytest.raises(SourceError, match=r"1 observation\(s\) are infinite \(first: 2020-01-03"):
        fred.parse_fred_csv(text, "SP500", "file")
