"""FRED against a local server: the real SP500 CSV download, the same rows in the API's
JSON format (paged), missing values, freshness, failures, and the key kept secret."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import numpy as np
import pandas as pd
import pytest

from mltrainer.data import fred
from mltrainer.data.cache import get_cache
from mltrainer.data.http import USER_AGENT, HttpClient, RetryPolicy
from mltrainer.errors import DataError, SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
KEY = "fredkey0123456789abcdef0123456789"
CSV = "/graph/fredgraph.csv"
API = "/fred/series/observations"


@pytest.fixture
def csv_path(shared_data_dir):
    return shared_data_dir / "fred" / "SP500.csv"


@pytest.fixture
def local_fred(http_server, monkeypatch):
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.delenv(fred.CSV_ENV, raising=False)
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    return http_server


def fast() -> HttpClient:
    return HttpClient(
        timeout=(2.0, 5.0), retry=RetryPolicy(max_attempts=3, backoff=0.01), sleep=lambda s: None
    )


def api_pages(csv_path, page: int) -> list[dict]:
    """The real CSV rows in the API's JSON layout ("." for missing), ``page`` per reply."""
    rows = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    obs = [
        {"realtime_start": "2026-02-12", "realtime_end": "2026-02-12", "date": d, "value": v or "."}
        for d, v in zip(rows["observation_date"], rows["SP500"], strict=True)
    ]
    return [
        {
            "realtime_start": "2026-02-12",
            "realtime_end": "2026-02-12",
            "observation_start": "1600-01-01",
            "observation_end": "9999-12-31",
            "units": "lin",
            "output_type": 1,
            "file_type": "json",
            "order_by": "observation_date",
            "sort_order": "asc",
            "count": len(obs),
            "offset": i,
            "limit": page,
            "observations": obs[i : i + page],
        }
        for i in range(0, len(obs), page)
    ]


# ------------------------------------------------------------------ CSV, no key
def test_public_csv_download(local_fred, csv_path):
    local_fred.route(CSV, Reply.file(csv_path))
    series = fred.load_fred("SP500", client=fast())
    assert series.name == "SP500" and series.attrs["source"] == "fred-csv"
    assert len(series) == 2609 and int(series.isna().sum()) == 95  # holidays are empty
    assert series.index[0] == pd.Timestamp("2016-02-12") and series.iloc[0] == 1864.78
    assert np.isnan(series["2016-02-15"])  # Presidents' Day
    assert series.index[-1] == pd.Timestamp("2026-02-11")
    (seen,) = local_fred.hits(CSV)
    assert seen.query == {"id": "SP500"} and seen.headers["User-Agent"] == USER_AGENT
    part = fred.load_fred("sp500", start="2020-03-01", end="2020-03-31", client=fast())
    assert part.index.min() >= pd.Timestamp("2020-03-01") and len(part) == 22
    assert len(local_fred.hits(CSV)) == 1  # the whole series is cached once


# ------------------------------------------------------------ API, with a key
def test_api_observations_paged_equal_the_csv(local_fred, csv_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FRED_API_KEY", KEY)
    monkeypatch.setattr(fred, "PAGE", 1000)
    for page in api_pages(csv_path, 1000):
        local_fred.route(API, Reply.json(page), query={"offset": page["offset"]})
    series = fred.load_fred("SP500", client=fast())
    reference = fred.parse_fred_csv(csv_path.read_text(), "SP500", "file")
    pd.testing.assert_series_equal(series, reference, check_freq=False)
    assert series.attrs["source"] == "fred-api"
    seen = local_fred.hits(API)
    assert [r.query["offset"] for r in seen] == ["0", "1000", "2000"]
    assert all(r.query["api_key"] == KEY and r.query["file_type"] == "json" for r in seen)
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert [e["key"] for e in get_cache().status()] == ["fred:series:SP500"]


def test_api_failures_never_show_the_key(local_fred, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FRED_API_KEY", KEY)
    local_fred.route(
        API,
        Reply.json(
            {"error_code": 400, "error_message": "Bad Request.  The series does not exist."},
            status=400,
        ),
    )
    with pytest.raises(SourceError) as err:
        fred.load_fred("NOSUCH", client=fast())
    text = str(err.value)
    assert "HTTP 400" in text and "series does not exist" in text and "series_id=NOSUCH" in text
    assert KEY not in text and "api_key" not in text

    local_fred.route(API, Reply.error(500))
    with pytest.raises(SourceError) as err:
        fred.load_fred("DGS10", client=fast())
    assert "gave up after 3" in str(err.value) and KEY not in str(err.value)

    local_fred.route(API, Reply.garbage())
    with pytest.raises(SourceError) as err:
        fred.load_fred("DGS10", client=fast())
    assert "not valid JSON" in str(err.value) and KEY not in str(err.value)
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert all(KEY not in e["key"] for e in get_cache().status())


def test_429_then_success(local_fred, csv_path):
    local_fred.route(CSV, Reply.rate_limited("0"), Reply.file(csv_path))
    assert len(fred.load_fred("SP500", client=fast())) == 2609


def test_not_a_csv(local_fred):
    local_fred.route(CSV, Reply.text("<!DOCTYPE html><html>Series not found</html>", "text/html"))
    with pytest.raises(SourceError) as err:
        fred.load_fred("NOSUCH", client=fast())
    assert "not a FRED CSV" in str(err.value) and f"{CSV}?id=NOSUCH" in str(err.value)
    local_fred.route(CSV, Reply.text("observation_date,EMPTY\n"))
    with pytest.raises(SourceError, match="no observations for EMPTY"):
        fred.load_fred("EMPTY", client=fast())


def test_bad_series_id():
    with pytest.raises(DataError, match="not valid"):
        fred.load_fred("SP500&api_key=x")


# ---------------------------------------------------------- freshness, stale
def test_frequency_inference_on_real_dates(csv_path):
    daily = fred.parse_fred_csv(csv_path.read_text(), "SP500", "file")
    assert fred.infer_frequency(daily) == "D"
    assert fred.infer_frequency(daily.resample("MS").first()) == "M"
    assert fred.infer_frequency(daily.resample("QS").first()) == "Q"
    assert fred.infer_frequency(daily[daily.index.day_of_week == 4]) == "W"


def test_expiry_follows_frequency_and_stale_copy_is_served(local_fred, csv_path):
    local_fred.route(CSV, Reply.file(csv_path))
    fred.load_fred("SP500", client=fast())
    cache = get_cache()
    (entry,) = cache.status()
    expires = dt.datetime.fromisoformat(entry["expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)

    key = "fred:series:SP500"
    cache.put_frame(key, cache.get(key).value, kind="fred", expires_at=time.time() - 1)
    local_fred.route(CSV, Reply.slow(1.0))
    client = HttpClient(timeout=(1.0, 0.1), retry=RetryPolicy(max_attempts=2, backoff=0.01))
    series = fred.load_fred("SP500", client=client)
    assert len(series) == 2609
    assert "cached data" in series.attrs["warning"] and "timed out" in series.attrs["warning"]

    local_fred.route(CSV, Reply.file(csv_path))
    cache.put_frame(key, cache.get(key).value, kind="fred", expires_at=time.time() - 1)
    fred.load_fred("SP500", frequency="M", client=fast())
    expires = dt.datetime.fromisoformat(cache.status()[0]["expires_at"])
    assert expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=30)


def test_api_json_helpers_read_missing_values():
    body = json.loads(
        '{"count": 2, "observations": [{"date": "2024-01-01", "value": "."},'
        '{"date": "2024-01-02", "value": "4713.5"}]}'
    )
    series, count = fred.parse_observations(body, "SP500", "x")
    assert count == 2 and np.isnan(series.iloc[0]) and series.iloc[1] == 4713.5
    with pytest.raises(SourceError, match="no 'observations' list"):
        fred.parse_observations({"error": "x"}, "SP500", "somewhere")
