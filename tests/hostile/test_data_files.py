"""Hostile price files: copies of REAL files from the shared data folder with a few values
altered (never invented prices). An impossible price rejects the file; a bar that cannot
be right is dropped; either way a warning names the file, the date(s) and the count, and
nothing downstream (as_of, the dashboard's window, a backtest) silently goes wrong.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mltrainer.backtest.engine import run_backtest
from mltrainer.config import PROJECT_ROOT
from mltrainer.data.local import load_local, read_bars
from mltrainer.errors import DataError
from tests.data import httpserver
from tests.ui.conftest import ENTRY
from tests.ui.pagetools import errors

http_server = httpserver.http_server

COLUMNS = (
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "volume",
    "dividend_amount",
    "split_coefficient",
)
ROW = 1000  # a data row in the middle of every basket file (they all start by 2010)


def _lines(sp500_dir, ticker: str) -> list[str]:
    return (
        gzip.decompress((sp500_dir / f"{ticker}.csv.gz").read_bytes())
        .decode()
        .splitlines(keepends=True)
    )


def _alter(line: str, **values) -> str:
    fields = line.rstrip("\n").split(",")
    assert len(fields) == len(COLUMNS)
    for name, value in values.items():
        fields[COLUMNS.index(name)] = str(value)
    return ",".join(fields) + "\n"


def _date(line: str) -> str:
    return line.split(",", 1)[0]


@pytest.fixture()
def folder(tmp_path):
    path = tmp_path / "sp500_daily"
    path.mkdir()
    return path


def _write(folder, ticker: str, lines: list[str]):
    path = folder / f"{ticker}.csv"
    path.write_text("".join(lines))
    return path


# ------------------------------------------------------------- impossible prices: reject
PRICE_COLUMNS = ("open", "high", "low", "close", "adjusted_close")
BAD_PRICES = ("inf", "-inf", "Infinity", "1e308", "1e400", "2e7", "0", "-5")


@pytest.mark.parametrize("column", PRICE_COLUMNS)
@pytest.mark.parametrize("value", BAD_PRICES)
def test_an_impossible_price_rejects_the_file_naming_date_and_count(
    sp500_dir, folder, column, value
):
    lines = _lines(sp500_dir, "KO")
    lines[ROW] = _alter(lines[ROW], **{column: value})
    path = _write(folder, "KO", lines)
    with pytest.raises(DataError) as info:
        read_bars(path)
    text = str(info.value)
    assert "KO.csv" in text and _date(lines[ROW]) in text and "(1 row(s))" in text, text


@pytest.mark.parametrize("ticker", ["AAPL", "BRK.B", "TSLA", "JPM"])
def test_a_1e308_ticker_is_skipped_from_the_panel_with_a_warning(sp500_dir, folder, ticker):
    """The 3e50% CAGR of the issue: the ticker never reaches a model."""
    shutil.copy(sp500_dir / "KO.csv.gz", folder)
    lines = _lines(sp500_dir, ticker)
    for row in (ROW, ROW + 5, ROW + 9):
        lines[row] = _alter(lines[row], close="1e308", adjusted_close="1e308")
    _write(folder, ticker, lines)
    data = load_local(folder, on_error="skip")
    assert data.tickers == ["KO"]
    (warning,) = data.warnings
    assert warning.startswith("skipped") and f"{ticker}.csv" in warning
    assert _date(lines[ROW]) in warning and "3 row(s)" in warning
    with pytest.raises(DataError, match=f"{ticker}.csv"):
        load_local(folder, tickers=[ticker, "KO"])  # asked for by name: refused, not dropped
    assert np.isfinite(data.returns().to_numpy()[1:]).all()


# --------------------------------------------------------- bars that cannot be right: drop
FUTURE = (
    "2099-01-04",
    "2030-06-28",
    str((pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=3)).date()),
)


@pytest.mark.parametrize("when", FUTURE)
@pytest.mark.parametrize("ticker", ["KO", "AAPL", "BRK.B"])
def test_a_bar_dated_after_today_is_dropped_and_as_of_stays(sp500_dir, folder, ticker, when):
    lines = _lines(sp500_dir, ticker)
    last = _date(lines[-1])
    _write(folder, ticker, lines + [_alter(lines[-1], timestamp=when)])
    shutil.copy(sp500_dir / "PEP.csv.gz", folder)
    data = load_local(folder)
    assert str(data.as_of.date()) == last and str(data.dates[-1].date()) <= last
    (warning,) = data.warnings
    assert (
        f"{ticker}.csv" in warning and when in warning and "1 bar(s) dated after today" in warning
    )


def test_only_future_bars_is_an_error_naming_the_file(sp500_dir, folder):
    lines = _lines(sp500_dir, "KO")
    path = _write(
        folder,
        "KO",
        [lines[0]]
        + [_alter(line, timestamp=f"2099-01-{d:02d}") for d, line in enumerate(lines[1:4], 4)],
    )
    with pytest.raises(DataError, match="KO.csv: no usable bar left"):
        read_bars(path)


@pytest.mark.parametrize("row", [1, 500, ROW, -1])
@pytest.mark.parametrize("ticker", ["KO", "XOM"])
def test_high_below_low_drops_that_bar(sp500_dir, folder, ticker, row):
    lines = _lines(sp500_dir, ticker)
    fields = lines[row].split(",")
    lines[row] = _alter(lines[row], high=fields[3], low=fields[2])  # swapped
    day = _date(lines[row])
    _write(folder, ticker, lines)
    notes: list[str] = []
    bars = read_bars(folder / f"{ticker}.csv", notes)
    assert np.datetime64(day) not in bars["date"] and len(bars["date"]) == len(lines) - 2
    assert notes == [
        f"{folder / ticker}.csv: dropped 1 bar(s) whose high is below their low ({day})"
    ]


@pytest.mark.parametrize("volume", ["-1", "-4212600", "-1e12"])
@pytest.mark.parametrize("row", [2, ROW])
def test_a_negative_volume_becomes_missing(sp500_dir, folder, volume, row):
    lines = _lines(sp500_dir, "KO")
    lines[row] = _alter(lines[row], volume=volume)
    _write(folder, "KO", lines)
    data = load_local(folder)
    day = pd.Timestamp(_date(lines[row]))
    assert np.isnan(data.volume.loc[day, "KO"]) and np.isfinite(data.adj_close.loc[day, "KO"])
    assert (data.volume["KO"].dropna() >= 0).all()
    (warning,) = data.warnings
    assert "KO.csv" in warning and _date(lines[row]) in warning and "1 bar(s)" in warning


@pytest.mark.parametrize("n", [1, 3, 300])
def test_a_run_of_missing_closes_is_dropped_and_reported(sp500_dir, folder, n):
    """300 empty prices used to load and backtest without a word."""
    lines = _lines(sp500_dir, "KO")
    for i in range(ROW, ROW + n):
        lines[i] = _alter(lines[i], close="", adjusted_close="")
    _write(folder, "KO", lines)
    data = load_local(folder)
    (warning,) = data.warnings
    first, last = _date(lines[ROW]), _date(lines[ROW + n - 1])
    assert f"dropped {n} bar(s) with no close price" in warning and first in warning
    assert f"longest gap {n} bar(s) from {first}" in warning and last in warning
    assert len(data.dates) == len(lines) - 1 - n


def test_several_problems_in_one_file_each_get_a_line(sp500_dir, folder):
    lines = _lines(sp500_dir, "KO")
    lines[10] = _alter(lines[10], volume="-7")
    lines[20] = _alter(lines[20], adjusted_close="", close="")
    fields = lines[30].split(",")
    lines[30] = _alter(lines[30], high=fields[3], low=fields[2])
    _write(folder, "KO", lines + [_alter(lines[-1], timestamp="2099-12-31")])
    data = load_local(folder)
    assert len(data.warnings) == 4
    assert all("KO.csv" in w for w in data.warnings)
    assert str(data.as_of.date()) == _date(lines[-1])


# ------------------------------------------------ the dashboard on a folder with a 2099 bar
@pytest.fixture()
def app():
    return AppTest.from_file(ENTRY, default_timeout=180)


@pytest.fixture()
def future_bar_folder(sp500_dir, tmp_path, monkeypatch):
    """Real files for the default tickers, KO with one extra bar dated 2099."""
    root = tmp_path / "data"
    (root / "sp500_daily").mkdir(parents=True)
    for ticker in ("AAPL", "MSFT", "JPM", "XOM", "JNJ", "PEP"):
        shutil.copy(sp500_dir / f"{ticker}.csv.gz", root / "sp500_daily")
    lines = _lines(sp500_dir, "KO")
    _write(root / "sp500_daily", "KO", lines + [_alter(lines[-1], timestamp="2099-01-02")])
    for csv in sp500_dir.parent.glob("constituents-*.csv"):
        shutil.copy(csv, root)
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(root))
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield root
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize("page", ["home", "regimes"])
def test_home_and_regimes_run_on_a_folder_with_a_2099_bar(app, future_bar_folder, page):
    at = app.run()
    assert not at.exception, at.exception
    if page != "home":
        at.switch_page(str(PROJECT_ROOT / "pages" / f"{page}.py")).run()
    assert not errors(at), errors(at)
    start, end = at.sidebar.date_input(key="g_dates").value
    assert str(end) == "2021-04-21"  # the real last bar, not 2099 (nor a window in 2089)
    assert start == dt.date(2021, 4, 21) - dt.timedelta(days=3650)
    notices = " ".join(w.value for w in at.sidebar.warning)
    assert "KO.csv" in notices and "2099-01-02" in notices


# ------------------------------------------------ the engine: a held ticker with no price
def test_a_position_held_without_a_price_counts_toward_the_gross_limit(sp500_dir):
    """2006-08-11: WELL has no price, KO has one. Before, KO got the full 1.0 and WELL's
    held 0.5 came on top (gross 1.50 with a limit of 1.0) and strict said nothing."""
    data = load_local(sp500_dir, tickers=["WELL", "KO"], start="2006-07-01", end="2006-09-29")
    assert np.isnan(data.adj_close.loc["2006-08-11", "WELL"])
    signal = pd.DataFrame(1.0, index=data.dates, columns=data.tickers)
    for costs in (0.0, 10.0):
        result = run_backtest(signal, data, gross_limit=1.0, commission_bps=costs)
        gross = result.positions.abs().sum(axis=1)
        assert gross.max() <= 1.0 + 1e-9
        assert gross.loc["2006-08-11"] == pytest.approx(1.0, abs=1e-9)
        # WELL is held (it cannot trade), KO gets what is left of the limit
        held = result.positions.loc["2006-08-11"]
        assert held["KO"] == pytest.approx(1.0 - held["WELL"], abs=1e-9) and held["WELL"] > 0.45
        assert any("2006-07-26" in w and "WELL" in w for w in result.warnings)
    with pytest.raises(DataError, match="held without a price: WELL"):
        run_backtest(signal, data, gross_limit=1.0, strict=True)


def test_a_weights_frame_with_a_gap_is_capped_the_same_way(sp500_dir):
    data = load_local(sp500_dir, tickers=["WELL", "KO"], start="2006-07-01", end="2006-09-29")
    weights = pd.DataFrame({"WELL": 0.6, "KO": 0.4}, index=data.dates)
    result = run_backtest(weights, data, weighting="weights", gross_limit=1.0)
    assert result.positions.abs().sum(axis=1).max() <= 1.0 + 1e-9
    # where nothing is missing, the weights are untouched
    full = data.adj_close.notna().all(axis=1) & data.adj_close.shift().notna().all(axis=1)
    np.testing.assert_allclose(result.positions.loc[full.to_numpy(), "KO"], 0.4)


# ---------------------------------------------- a live source that sends corrupt bars
def test_a_polygon_response_with_corrupt_bars_drops_them_with_warnings(
    http_server, shared_data_dir, monkeypatch
):
    """The real AAPL aggregates with one bar's close set to 1e308 and the other's high
    below its low: both dropped, each named with ticker, date and count."""
    import json

    from mltrainer.data import polygon
    from tests.data.httpserver import Reply
    from tests.data.test_polygon import AAPL_2005, KEY, NO_DIVIDENDS, client_for

    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    body = json.loads(
        (shared_data_dir / "polygon/aggs-AAPL-1-day-2005-04-01-2005-04-04.json").read_text()
    )
    assert len(body["results"]) == 2
    body["results"][0]["c"] = 1e308
    http_server.route("/v3/reference/dividends", Reply.json(NO_DIVIDENDS))
    http_server.route(AAPL_2005, Reply.json(body))
    data = polygon.load_polygon(
        ["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server)
    )
    assert data.dates.tolist() == [pd.Timestamp("2005-04-04")]
    text = " ".join(data.warnings)
    assert "polygon AAPL: 1 bar(s) with a price that is not a positive finite" in text
    assert "2005-04-01" in text


def test_a_polygon_response_with_no_usable_bar_is_a_clear_error(
    http_server, shared_data_dir, monkeypatch
):
    import json

    from mltrainer.data import polygon
    from tests.data.httpserver import Reply
    from tests.data.test_polygon import AAPL_2005, KEY, NO_DIVIDENDS, client_for

    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    body = json.loads(
        (shared_data_dir / "polygon/aggs-AAPL-1-day-2005-04-01-2005-04-04.json").read_text()
    )
    body["results"][0]["c"] = -1.0
    body["results"][1]["h"] = body["results"][1]["l"] / 2
    http_server.route("/v3/reference/dividends", Reply.json(NO_DIVIDENDS))
    http_server.route(AAPL_2005, Reply.json(body))
    with pytest.raises(DataError, match="no usable rows.*high below the low.*2005-04-04"):
        polygon.load_polygon(["AAPL"], "2005-04-01", "2005-04-04", client=client_for(http_server))
