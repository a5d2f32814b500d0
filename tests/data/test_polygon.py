"""Polygon client against a local server: the real response files, real AAPL bars
re-shaped into Polygon's format (a split, a dividend, next_url pagination), rate limits,
server errors, timeouts, malformed bodies, and the key kept out of every text."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
import pytest

from mltrainer.data import polygon
from mltrainer.data.cache import get_cache
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
KEY = "pOlYgOnKeY_0123456789"
AGGS = "/v2/aggs/ticker/{t}/range/1/day/{a}/{b}"
AAPL_2005 = AGGS.format(t="AAPL", a="2005-04-01", b="2005-04-04")
AAPL_2020 = AGGS.format(t="AAPL", a="2020-07-01", b="2020-09-30")
NO_DIVIDENDS = {"results": [], "status": "OK", "request_id": "0"}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)


def client_for(server, attempts: int = 3, read_timeout: float = 5.0) -> polygon.PolygonClient:
    http = HttpClient(
        timeout=(2.0, read_timeout),
        retry=RetryPolicy(max_attempts=attempts, backoff=0.01),
        sleep=lambda s: None,
    )
    return polygon.PolygonClient(key=KEY, base=server.url, http=http)


def unadjusted_2005(poly_dir) -> dict:
    """The real adjusted response scaled back to as-traded prices: AAPL split 7:1 in 2014
    and 4:1 in 2020 after these bars, so as-traded = adjusted x 28."""
    body = json.loads((poly_dir / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json").read_text())
    body["adjusted"] = False
    for bar in body["results"]:
        for k in "ohlc":
            bar[k] = round(bar[k] * 28, 4)
        bar["v"] = bar["v"] / 28
    return body


def serve_aapl_2005(server, poly_dir):
    server.route(
        AAPL_2005,
        Reply.file(poly_dir / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json"),
        query={"adjusted": "true"},
    )
    server.route(AAPL_2005, Reply.json(unadjusted_2005(poly_dir)), query={"adjusted": "false"})
    server.route("/v3/reference/dividends", Reply.json(NO_DIVIDENDS))


# -------------------------------------------------------------- real responses
def test_real_aggs_file_gives_as_traded_and_adjusted_close(http_server, poly_dir, sp500_dir):
    serve_aapl_2005(http_server, poly_dir)
    data = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert data.source == "polygon" and data.tickers == ["AAPL"]
    assert data.dates.tolist() == [pd.Timestamp("2005-04-01"), pd.Timestamp("2005-04-04")]
    assert data.adj_close["AAPL"].tolist() == [1.4604, 1.4675]  # the file's "c"
    # oracle: the as-traded closes in the independent AlphaVantage export
    local = pd.read_csv(sp500_dir / "AAPL.csv.gz", index_col="timestamp", parse_dates=True)
    np.testing.assert_allclose(data.close["AAPL"], local.loc[data.dates, "close"], rtol=2e-4)
    assert data.splits["AAPL"].tolist() == [1.0, 1.0]
    assert data.dividends["AAPL"].tolist() == [0.0, 0.0]

    seen = http_server.hits(AAPL_2005)
    assert sorted(r.query["adjusted"] for r in seen) == ["false", "true"]
    for r in seen:
        assert r.headers["Authorization"] == f"Bearer {KEY}"  # the header, not the URL
        assert "apiKey" not in r.query and KEY not in json.dumps(r.query)


def test_reference_and_grouped_files(http_server, poly_dir):
    http_server.route(
        "/v3/reference/tickers/AAPL", Reply.file(poly_dir / "reference-ticker-AAPL.json")
    )
    http_server.route(
        "/v3/reference/tickers/NOPE",
        Reply.json(
            {"status": "NOT_FOUND", "request_id": "x", "message": "Ticker not found."}, status=404
        ),
    )
    caps, notes = polygon.market_caps(["AAPL", "NOPE"], client=client_for(http_server))
    assert caps == {"AAPL": 2488795282370.0}
    assert len(notes) == 1 and notes[0].startswith("NOPE:") and "HTTP 404" in notes[0]

    http_server.route(
        "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04",
        Reply.file(poly_dir / "grouped-us-stocks-2005-04-04.json"),
    )
    grouped = polygon.grouped_daily("2005-04-04", client=client_for(http_server))
    assert grouped.index.tolist() == ["GIK"]
    assert grouped.loc["GIK", ["open", "high", "low", "close", "volume"]].tolist() == [
        9.99,
        10.02,
        9.9,
        10.02,
        895345.0,
    ]


# ------------------------------------------- real bars in Polygon's format, paged
def _bars(rows: pd.DataFrame, divide_by) -> list[dict]:
    ms = rows.index.tz_localize("America/New_York").as_unit("ms").asi8
    return [
        {"v": float(v * d), "o": o / d, "h": h / d, "l": lo / d, "c": c / d, "t": int(t), "n": 1}
        for o, h, lo, c, v, d, t in zip(
            rows["open"],
            rows["high"],
            rows["low"],
            rows["close"],
            rows["volume"],
            divide_by,
            ms,
            strict=True,
        )
    ]


def serve_aapl_2020(server, sp500_dir) -> pd.DataFrame:
    """AAPL Jul-Sep 2020 (4:1 split on 2020-08-31, $0.82 dividend ex 2020-08-07) from the
    real daily file, as two pages per request joined by next_url."""
    local = pd.read_csv(sp500_dir / "AAPL.csv.gz", index_col="timestamp", parse_dates=True)
    rows = local.loc["2020-07-01":"2020-09-30"]
    split = np.where(rows.index < "2020-08-31", 4.0, 1.0)
    half = len(rows) // 2
    for flag, divide in (("false", np.ones(len(rows))), ("true", split)):
        bars = _bars(rows, divide)
        cursor = f"page2{flag}"
        nxt = (
            f"{server.url}{AGGS.format(t='AAPL', a=bars[half]['t'], b='2020-09-30')}"
            f"?cursor={cursor}"
        )
        server.route(
            AAPL_2020,
            Reply.json(
                {
                    "ticker": "AAPL",
                    "status": "OK",
                    "adjusted": flag == "true",
                    "results": bars[:half],
                    "next_url": nxt,
                }
            ),
            query={"adjusted": flag},
        )
        server.route(
            AGGS.format(t="AAPL", a=bars[half]["t"], b="2020-09-30"),
            Reply.json({"ticker": "AAPL", "status": "OK", "results": bars[half:]}),
            query={"cursor": cursor},
        )
    server.route(
        "/v3/reference/dividends",
        Reply.json(
            {
                "status": "OK",
                "request_id": "1",
                "results": [
                    {
                        "cash_amount": 0.82,
                        "currency": "USD",
                        "declaration_date": "2020-07-30",
                        "dividend_type": "CD",
                        "ex_dividend_date": "2020-08-07",
                        "frequency": 4,
                        "pay_date": "2020-08-13",
                        "record_date": "2020-08-10",
                        "ticker": "AAPL",
                    }
                ],
            }
        ),
    )
    return rows


def test_pagination_split_and_dividend_against_real_bars(http_server, sp500_dir):
    rows = serve_aapl_2020(http_server, sp500_dir)
    data = polygon.load_polygon(
        ["AAPL"], "2020-07-01", "2020-09-30", client=client_for(http_server)
    )
    assert len(data.dates) == len(rows) == 64  # both pages joined
    assert data.dates.equals(pd.DatetimeIndex(rows.index, name="date"))
    np.testing.assert_allclose(data.close["AAPL"], rows["close"], rtol=1e-12)
    np.testing.assert_allclose(data.volume["AAPL"], rows["volume"], rtol=1e-12)
    splits = data.splits["AAPL"]
    assert splits["2020-08-31"] == 4.0 and (splits.drop(pd.Timestamp("2020-08-31")) == 1).all()
    assert data.dividends["AAPL"]["2020-08-07"] == 0.82 and data.dividends["AAPL"].sum() == 0.82
    # the total-return series matches the independent adjusted close of the same rows
    ours = data.adj_close["AAPL"].pct_change().iloc[1:]
    ref = rows["adjusted_close"].pct_change().iloc[1:]
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), atol=1e-4)
    # the split shows up in MarketData's own split handling
    assert data.split_factor()["AAPL"]["2020-08-28"] == 4.0
    pages = [r for r in http_server.requests if "cursor" in r.query]
    assert len(pages) == 2 and all(r.headers["Authorization"] == f"Bearer {KEY}" for r in pages)


def test_dividend_factor_by_hand():
    close = pd.Series([100.0, 102.0, 101.0, 103.0])
    cash = pd.Series([0.0, 0.0, 2.02, 0.0])  # ex-date on day 2, previous close 102
    factor = polygon.dividend_factor(close, cash)
    assert factor.tolist() == pytest.approx([1 - 2.02 / 102, 1 - 2.02 / 102, 1.0, 1.0])
    coef = polygon.split_coefficients(
        pd.Series([300.0, 100.5, 101.0]), pd.Series([100.0, 100.5, 101.0])
    )
    assert coef.tolist() == [1.0, 3.0, 1.0]


# ------------------------------------------------------------------ failures
def test_429_then_success(http_server, poly_dir):
    serve_aapl_2005(http_server, poly_dir)
    body = (poly_dir / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json").read_bytes()
    http_server.route(
        AAPL_2005,
        Reply.rate_limited("0"),
        Reply.rate_limited(None),
        Reply(200, body, {"Content-Type": "application/json"}),
        query={"adjusted": "true"},
    )
    data = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert data.adj_close["AAPL"].tolist() == [1.4604, 1.4675] and not data.warnings
    assert len([r for r in http_server.hits(AAPL_2005) if r.query["adjusted"] == "true"]) == 3


def test_one_ticker_failing_is_reported_the_others_load(http_server, poly_dir, caplog):
    caplog.set_level(logging.DEBUG)
    serve_aapl_2005(http_server, poly_dir)
    msft = AGGS.format(t="MSFT", a="2005-04-01", b="2005-04-04")
    http_server.route(msft, Reply.error(500))
    data = polygon.load_polygon(
        ["AAPL", "MSFT"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert data.tickers == ["AAPL"]
    (warning,) = data.warnings
    assert warning.startswith("MSFT: skipped") and "HTTP 500" in warning
    assert msft in warning and "gave up after 3 attempt" in warning
    assert len(http_server.hits(msft)) == 3
    _assert_no_key(warning, caplog)


def test_all_failing_is_a_source_error(http_server, caplog):
    caplog.set_level(logging.DEBUG)
    path = AGGS.format(t="AAPL", a="2005-04-01", b="2005-04-04")
    http_server.route(path, Reply.garbage())
    with pytest.raises(SourceError) as err:
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))
    text = str(err.value)
    assert "no data for any of 1 ticker" in text and "not valid JSON" in text and path in text
    _assert_no_key(text, caplog)


def test_truncated_json_and_timeout(http_server, poly_dir):
    http_server.route(
        AAPL_2005, Reply.truncated_json(poly_dir / "aggs-AAPL-1-day-2005-04-01-2005-04-04.json")
    )
    with pytest.raises(SourceError, match="not valid JSON"):
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))
    http_server.route(AAPL_2005, Reply.slow(1.0))
    with pytest.raises(SourceError, match="timed out"):
        polygon.load_polygon(
            ["AAPL"],
            "2005-04-01",
            "2005-04-04",
            client=client_for(http_server, attempts=2, read_timeout=0.2),
        )


def test_polygon_error_status_in_body(http_server):
    http_server.route(
        AAPL_2005, Reply.json({"status": "ERROR", "request_id": "r", "error": "Unknown API Key"})
    )
    with pytest.raises(SourceError, match="Polygon says ERROR: Unknown API Key"):
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))


def test_next_url_to_another_host_is_refused(http_server):
    http_server.route(
        AAPL_2005,
        Reply.json({"status": "OK", "results": [], "next_url": "https://evil.example/steal"}),
    )
    client = client_for(http_server)
    with pytest.raises(SourceError, match="refusing to send the API key"):
        client.paged(AAPL_2005, {"adjusted": "false"})


def test_missing_key_says_where_to_set_it(monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY")
    with pytest.raises(SourceError) as err:
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04")
    assert "POLYGON_API_KEY" in str(err.value) and ".streamlit/secrets.toml" in str(err.value)


def test_env_override_of_base_url(http_server, poly_dir, monkeypatch):
    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    serve_aapl_2005(http_server, poly_dir)
    client = polygon.PolygonClient(http=client_for(http_server).http)
    assert client.base == http_server.url
    data = polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client)
    assert data.n_tickers == 1


# --------------------------------------------------------------------- cache
def test_cache_reuse_and_stale_copy_survives_failure(http_server, poly_dir, caplog):
    caplog.set_level(logging.DEBUG)
    serve_aapl_2005(http_server, poly_dir)
    first = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    n = len(http_server.requests)
    again = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert len(http_server.requests) == n  # fresh in the cache: no request
    assert again.adj_close.equals(first.adj_close)

    cache = get_cache()
    (key,) = [e["key"] for e in cache.status()]
    assert key == "polygon:daily:AAPL:2005-04-01:2005-04-04:tr" and KEY not in key
    cache.put_frame(key, cache.get(key).value, kind="prices", expires_at=time.time() - 1)
    http_server.route(AAPL_2005, Reply.error(502, "Bad Gateway"), query={"adjusted": "false"})
    stale = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert stale.adj_close.equals(first.adj_close)
    (warning,) = stale.warnings
    assert "cached data" in warning and "HTTP 502" in warning
    assert cache.get(key) is not None  # nothing cached was lost
    _assert_no_key(warning, caplog)


def _assert_no_key(text: str, caplog) -> None:
    assert KEY not in text
    for record in caplog.records:
        assert KEY not in record.getMessage()


def test_cli_backtest_asks_polygon_for_the_history_before_start(
    http_server, sp500_dir, monkeypatch, capsys
):
    """Polygon's default history is two years; a backtest from --start asks for the
    model's warm-up before it (a 5-day window needs 6 trading days: 6 x 7/5 + 14 = 22
    calendar days, from 2020-08-23), so it trades from its first day. The server answers
    that exact range only: any other request would fail the command."""
    from mltrainer.cli import main

    monkeypatch.setenv(polygon.URL_ENV, http_server.url)
    local = pd.read_csv(sp500_dir / "MSFT.csv.gz", index_col="timestamp", parse_dates=True)
    rows = local.loc["2020-08-24":"2020-09-30"]  # MSFT: no split or dividend in these days
    for flag in ("true", "false"):
        http_server.route(
            AGGS.format(t="MSFT", a="2020-08-23", b="2020-09-30"),
            Reply.json(
                {"ticker": "MSFT", "status": "OK", "results": _bars(rows, np.ones(len(rows)))}
            ),
            query={"adjusted": flag},
        )
    http_server.route("/v3/reference/dividends", Reply.json(NO_DIVIDENDS))
    code = main(
        [
            "backtest",
            "momentum/SimpleMomentumModel",
            "--param",
            "window=5",
            "--source",
            "polygon",
            "--tickers",
            "MSFT",
            "--start",
            "2020-09-14",
            "--end",
            "2020-09-30",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["first_date"] == "2020-09-14" and doc["last_date"] == "2020-09-30"
