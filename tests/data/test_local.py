"""The local folder source on the real 504-ticker files, and on broken copies of them."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.local import list_files, load_local, read_bars
from mltrainer.errors import DataError


def _raw(sp500_dir, ticker):
    return pd.read_csv(sp500_dir / f"{ticker}.csv.gz", parse_dates=["timestamp"])


def test_panel_matches_the_files(panel, sp500_dir):
    assert panel.n_tickers == 504
    assert panel.dates[0] == pd.Timestamp("1999-11-01")
    assert panel.dates[-1] == pd.Timestamp("2021-04-21")
    for ticker in ("AAPL", "BRK.B", "TSLA"):
        raw = _raw(sp500_dir, ticker).set_index("timestamp").sort_index()
        col = panel.adj_close[ticker].dropna()
        assert col.index.equals(pd.DatetimeIndex(raw.index, name="date"))
        np.testing.assert_array_equal(col.to_numpy(), raw["adjusted_close"].to_numpy())
        np.testing.assert_array_equal(panel.close[ticker].dropna().to_numpy(), raw["close"])
        np.testing.assert_array_equal(panel.volume[ticker].dropna().to_numpy(), raw["volume"])
    # TSLA listed in June 2010: NaN before, values after
    tsla = panel.adj_close["TSLA"]
    assert tsla.first_valid_index() == pd.Timestamp("2010-06-29")
    assert tsla.loc[:"2010-06-28"].isna().all()
    assert panel.sectors["AAPL"] == "Information Technology"


def test_split_adjustment_on_real_apple_split(basket):
    # AAPL split 4:1 on 2020-08-31: as traded the close falls ~75%, adjusted it does not.
    aapl = basket.select(tickers=["AAPL"], start="2020-08-27", end="2020-09-01")
    close = aapl.close["AAPL"]
    assert close.loc["2020-08-28"] / close.loc["2020-08-31"] > 3.5
    assert aapl.splits["AAPL"].loc["2020-08-31"] == 4.0
    split_adj = aapl.split_adjusted()
    ratio = split_adj.close["AAPL"].loc["2020-08-28"] / split_adj.close["AAPL"].loc["2020-08-31"]
    assert ratio == pytest.approx(close.loc["2020-08-28"] / 4 / close.loc["2020-08-31"])
    assert split_adj.volume["AAPL"].loc["2020-08-28"] == aapl.volume["AAPL"].loc["2020-08-28"] * 4
    adj = aapl.adjusted()
    # OHLC on the adjusted-close scale: high >= close >= low still holds bar by bar
    assert (adj.high["AAPL"] >= adj.close["AAPL"] - 1e-9).all()
    assert (adj.low["AAPL"] <= adj.close["AAPL"] + 1e-9).all()
    np.testing.assert_allclose(adj.close["AAPL"], aapl.adj_close["AAPL"])


def test_select_and_errors(basket):
    sub = basket.select(tickers=["msft", "AAPL"], start="2015-01-01", end="2015-12-31")
    assert sub.tickers == ["MSFT", "AAPL"]
    assert sub.dates[0] == pd.Timestamp("2015-01-02")
    assert sub.dates[-1] == pd.Timestamp("2015-12-31")
    with pytest.raises(DataError, match="unknown ticker.*NOPE"):
        basket.select(tickers=["AAPL", "NOPE"])
    with pytest.raises(DataError, match="no trading dates"):
        basket.select(start="2030-01-01")
    with pytest.raises(DataError, match="after end"):
        basket.select(start="2020-01-01", end="2019-01-01")


def test_chosen_tickers_listed_late_start_the_range_at_their_first_price(panel, sp500_dir):
    """CARR and OTIS trade from 2020-03-19. Chosen from the whole panel (dates from 1999),
    the range starts there, as a cold load of their two files does; without them the
    Model Lab labelled a one-year backtest 2011-2021 and annualised ten years of cash."""
    late = panel.select(tickers=["CARR", "OTIS"], start="2015-01-01")
    cold = load_local(sp500_dir, tickers=["CARR", "OTIS"], start="2015-01-01")
    assert late.dates[0] == cold.dates[0] == pd.Timestamp("2020-03-19")
    assert late.dates.equals(cold.dates) and late.adj_close.iloc[0].notna().all()
    # with an early ticker among them nothing is cut; without tickers, neither
    both = panel.select(tickers=["CARR", "AAPL"], start="2015-01-01")
    assert both.dates[0] == pd.Timestamp("2015-01-02")
    assert panel.select(start="2015-01-01").dates[0] == pd.Timestamp("2015-01-02")
    # none of them trades in the range: an error that says when they do, not a backtest
    # of ten years of nothing reported as 0% returns
    with pytest.raises(DataError) as caught:
        panel.select(tickers=["CARR", "OTIS"], start="2010-01-01", end="2019-12-31")
    assert str(caught.value) == (
        "no price for CARR, OTIS from 2010-01-04 to 2019-12-31; their prices run from "
        "2020-03-19 to 2021-04-21"
    )
    with pytest.raises(DataError, match="no price for CARR .*; its prices run from 2020-03-19"):
        panel.select(tickers=["CARR"], end="2019-12-31")
    # an empty (or blank) list names the problem, not "no price for  from ..."
    for empty in ([], ["", " "]):
        with pytest.raises(DataError, match="^no tickers selected: name at least one$"):
            panel.select(tickers=empty, start="2010-01-01")


def test_chosen_tickers_gone_before_the_end_end_the_range_at_their_last_price(panel, sp500_dir):
    """VAR (Varian, bought by Siemens Healthineers) last trades on 2021-04-16, three
    trading days before the panel ends. Chosen alone, the range ends there, as a cold load
    of its file does; a backtest does not hold cash after the name is gone and count
    those days. With a ticker that trades on, nothing is cut."""
    gone = panel.select(tickers=["VAR"], start="2021-01-01")
    cold = load_local(sp500_dir, tickers=["VAR"], start="2021-01-01")
    assert panel.dates[-1] == pd.Timestamp("2021-04-21")
    assert gone.dates[-1] == cold.dates[-1] == pd.Timestamp("2021-04-16")
    assert gone.dates.equals(cold.dates) and gone.adj_close.iloc[-1].notna().all()
    both = panel.select(tickers=["VAR", "AAPL"], start="2021-01-01")
    assert both.dates[-1] == pd.Timestamp("2021-04-21")
    assert both.adj_close["VAR"].iloc[-3:].isna().all()  # VAR's gap is kept, not filled
    with pytest.raises(DataError, match="no price for VAR from 2021-04-19 to 2021-04-21"):
        panel.select(tickers=["VAR"], start="2021-04-19")


def test_unknown_ticker_and_missing_folder(sp500_dir, tmp_path):
    with pytest.raises(DataError, match="unknown ticker.*ZZZZ"):
        load_local(sp500_dir, tickers=["AAPL", "ZZZZ"])
    with pytest.raises(DataError, match="does not exist"):
        load_local(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no bar files"):
        load_local(tmp_path)


@pytest.fixture()
def broken_dir(sp500_dir, tmp_path):
    """Copies of real files, each broken in one way a user's folder can be."""
    folder = tmp_path / "bars"
    folder.mkdir()
    for ticker in ("AAPL", "MSFT"):
        shutil.copy(sp500_dir / f"{ticker}.csv.gz", folder)
    text = gzip.decompress((sp500_dir / "KO.csv.gz").read_bytes()).decode()
    lines = text.splitlines(keepends=True)
    (folder / "TRUNC.csv.gz").write_bytes((sp500_dir / "KO.csv.gz").read_bytes()[:5000])
    (folder / "EMPTY.csv").write_text(lines[0])
    (folder / "DUP.csv").write_text("".join(lines[:50] + [lines[20]] + lines[50:100]))
    bad = lines[30].split(",")
    bad[4] = "0.0"  # close
    (folder / "ZERO.csv").write_text("".join(lines[:30] + [",".join(bad)] + lines[31:60]))
    return folder


@pytest.mark.parametrize(
    "name,message",
    [
        ("TRUNC.csv.gz", "cannot be read"),
        ("EMPTY.csv", "no rows"),
        ("DUP.csv", "duplicated date"),
        ("ZERO.csv", "non-positive close"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(broken_dir, name, message):
    with pytest.raises(DataError, match=message) as info:
        read_bars(broken_dir / name)
    assert name in str(info.value)


def test_bad_files_raise_or_skip(broken_dir):
    with pytest.raises(DataError, match="4 bad file"):
        load_local(broken_dir)
    data = load_local(broken_dir, on_error="skip")
    assert data.tickers == ["AAPL", "MSFT"]
    assert len(data.warnings) == 4 and any("TRUNC" in w for w in data.warnings)


def test_yahoo_export_and_parquet_formats(sp500_dir, tmp_path, basket):
    raw = _raw(sp500_dir, "JPM")
    export = raw.rename(
        columns={
            "timestamp": "Date",
            "open": "Open",
            "high": "High",
            "low": "Low",
            "close": "Close",
            "adjusted_close": "Adj Close",
            "volume": "Volume",
        }
    )
    export = export[["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]]
    export.to_csv(tmp_path / "JPM.csv", index=False)
    export.iloc[::-1].to_parquet(tmp_path / "XOM.parquet")  # reversed order on purpose
    assert set(list_files(tmp_path)) == {"JPM", "XOM"}
    data = load_local(tmp_path)
    np.testing.assert_allclose(data.adj_close["JPM"].dropna(), basket.adj_close["JPM"].dropna())
    assert data.adj_close["XOM"].dropna().index.is_monotonic_increasing
    assert data.splits is None


def test_adjusted_volume_is_in_post_split_shares(basket):
    aapl = basket.select(tickers=["AAPL"], start="2020-08-27", end="2020-09-01")
    raw = aapl.volume["AAPL"]
    adj = aapl.adjusted().volume["AAPL"]
    assert adj.loc["2020-08-28"] == raw.loc["2020-08-28"] * 4  # before the 4:1 split
    assert adj.loc["2020-08-31"] == raw.loc["2020-08-31"]
