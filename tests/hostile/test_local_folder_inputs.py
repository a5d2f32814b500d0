"""A local bar folder a user made, or that was damaged: copies of REAL files from the shared
data folder, cut, renamed or altered (never invented prices), and special files (pipes) in
the places where a bar or constituents file is looked for."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from mltrainer.config import PROJECT_ROOT
from mltrainer.data import local
from mltrainer.data.local import load_local, read_bars
from mltrainer.data.sources import load_market_data, local_sectors
from mltrainer.errors import DataError


@pytest.fixture()
def folder(tmp_path):
    path = tmp_path / "sp500_daily"
    path.mkdir()
    return path


def _real_text(sp500_dir, ticker: str) -> str:
    return gzip.decompress((sp500_dir / f"{ticker}.csv.gz").read_bytes()).decode()


# ------------------------------------------------------------- size: a bound on bytes read
def test_a_file_expanding_past_the_bound_is_skipped_naming_the_limit(
    sp500_dir, folder, monkeypatch
):
    # AAPL is 130 KB compressed, 366 KB decompressed: with a 0.2 MB bound it is a "bomb"
    shutil.copy(sp500_dir / "AAPL.csv.gz", folder)
    shutil.copy(sp500_dir / "TSLA.csv.gz", folder)  # 163 KB decompressed
    monkeypatch.setattr(local, "MAX_BAR_BYTES", 200 * 2**10)
    data = load_local(folder, on_error="skip")
    assert data.tickers == ["TSLA"]
    (warning,) = data.warnings
    assert "AAPL.csv.gz: over 0.195 MB decompressed" in warning
    assert "at most 0.195 MB of a file are read" in warning
    with pytest.raises(DataError, match="AAPL.csv.gz: over .* decompressed, too large"):
        read_bars(folder / "AAPL.csv.gz")


def test_a_plain_csv_over_the_bound_and_the_real_limit(sp500_dir, folder, monkeypatch):
    (folder / "AAPL.csv").write_text(_real_text(sp500_dir, "AAPL"))
    assert len(read_bars(folder / "AAPL.csv")["date"]) > 5000  # the real bound reads it
    monkeypatch.setattr(local, "MAX_BAR_BYTES", 100_000)
    with pytest.raises(DataError, match="AAPL.csv: over 0.0954 MB on disk, too large"):
        read_bars(folder / "AAPL.csv")


def test_a_parquet_file_is_bounded_in_rows_and_bytes(sp500_dir, folder, monkeypatch):
    pd.read_csv(sp500_dir / "JPM.csv.gz").to_parquet(folder / "JPM.parquet")
    assert len(read_bars(folder / "JPM.parquet")["date"]) > 5000
    monkeypatch.setattr(local, "MAX_BAR_ROWS", 1000)
    with pytest.raises(DataError, match=r"JPM.parquet: \d+ rows, too many .*at most 1000"):
        read_bars(folder / "JPM.parquet")
    monkeypatch.setattr(local, "MAX_BAR_BYTES", 50_000)
    with pytest.raises(DataError, match="JPM.parquet: over 0.0477 MB (on disk|uncompressed)"):
        read_bars(folder / "JPM.parquet")


# ------------------------------------------------------------- names: not valid UTF-8
def test_a_file_name_that_is_not_utf8_is_skipped_and_named_safely(sp500_dir, folder):
    shutil.copy(sp500_dir / "AAPL.csv.gz", folder)
    shutil.copy(sp500_dir / "KO.csv.gz", os.fsdecode(os.fsencode(folder) + b"/K\xffO.csv.gz"))
    expected = f"skipped {folder}/K\\xffO.csv.gz: the file name is not valid UTF-8"
    for _ in range(2):  # cold, then from the cached panel
        data = load_market_data("local", folder)
        assert data.tickers == ["AAPL"]
        (warning,) = data.warnings
        assert warning.startswith(expected)
        warning.encode("utf-8")  # printable
    assert load_local(folder, tickers=["AAPL"]).warnings == ()


def test_a_folder_of_only_undecodable_names_says_so(sp500_dir, folder):
    shutil.copy(sp500_dir / "KO.csv.gz", os.fsdecode(os.fsencode(folder) + b"/K\xffO.csv.gz"))
    with pytest.raises(DataError, match="no bar files \\(1 with a name that is not valid UTF-8"):
        load_market_data("local", folder)


# ------------------------------------------------------------- named pipes: never opened
def _cli(argv: list[str], cwd) -> subprocess.CompletedProcess:
    """The CLI in a child: a regression hangs there (and times out), not the whole suite."""
    env = {**os.environ, "MLTRAINER_OFFLINE": "1", "MLTRAINER_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "mltrainer", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "stress", "--tickers", "AAPL,MSFT", "--out", "{out}"],
        ["universe", "export", "--out", "{out}"],
        ["models", "run", "momentum/SimpleMomentumModel", "--out", "{out}"],
    ],
    ids=["report", "universe", "models"],
)
def test_an_output_that_is_a_named_pipe_is_refused_before_any_work(shared_data_dir, tmp_path, argv):
    """Writing to a pipe nobody reads waits forever: the command hung after its work."""
    out = tmp_path / "x.html"
    os.mkfifo(out)
    proc = _cli([a.replace("{out}", str(out)) for a in argv], tmp_path)
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr.strip() == (
        f"error: --out {out} is not a regular file (a named pipe, a socket or a block "
        "device): "
        f"give a file (see python -m mltrainer {argv[0]} {argv[1]} --help)"
    )


def test_a_constituents_name_on_a_pipe_does_not_hang_the_load(sp500_dir, tmp_path):
    """``constituents-*.csv`` beside the bar folder gives the sectors: a pipe so named hung
    every load; it is passed over and the real list beside it still names the sectors."""
    folder = tmp_path / "data" / "sp500_daily"
    folder.mkdir(parents=True)
    shutil.copy(sp500_dir / "AAPL.csv.gz", folder)
    shutil.copy(sp500_dir.parent / "constituents-2021-04-23.csv", folder.parent)
    os.mkfifo(folder.parent / "constituents-2020-01-01.csv")
    proc = _cli(["data", "load", "--data-dir", str(folder.parent), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert local_sectors(folder)["AAPL"] == "Information Technology"


# ------------------------------------------------------------- dates: the file's own calendar
def _with_dates(text: str, rewrite) -> str:
    """The real file with each row's date (first field) replaced by ``rewrite(date)``."""
    header, *rows = text.splitlines(keepends=True)
    return header + "".join(rewrite(r.split(",", 1)[0]) + "," + r.split(",", 1)[1] for r in rows)


@pytest.mark.parametrize("suffix", ["T00:00:00+09:00", "T00:00:00-05:00", " 16:00:00+0530", "Z"])
def test_a_date_with_a_utc_offset_keeps_its_own_calendar_day(sp500_dir, folder, suffix):
    """``2020-01-02T00:00:00+09:00`` was moved to UTC and loaded as 2020-01-01."""
    text = _real_text(sp500_dir, "KO")
    if suffix == "Z":
        text = _with_dates(text, lambda d: f"{d}T00:00:00Z")
    else:
        text = _with_dates(text, lambda d: d + suffix)
    (folder / "KO.csv").write_text(text)
    (folder / "REAL.csv").write_text(_real_text(sp500_dir, "KO"))
    got, real = read_bars(folder / "KO.csv"), read_bars(folder / "REAL.csv")
    assert (got["date"] == real["date"]).all()
    assert (got["adj_close"] == real["adj_close"]).all()


def test_parquet_dates_in_a_time_zone_keep_their_calendar_day(sp500_dir, folder):
    raw = pd.read_csv(sp500_dir / "JPM.csv.gz", parse_dates=["timestamp"])
    real = raw["timestamp"].to_numpy().astype("datetime64[D]")
    for zone in ("Europe/Berlin", "Asia/Tokyo", "America/New_York"):
        raw.assign(timestamp=raw["timestamp"].dt.tz_localize(zone)).to_parquet(
            folder / "JPM.parquet"
        )
        assert (read_bars(folder / "JPM.parquet")["date"] == real).all(), zone


def test_numeric_dates_are_refused_not_read_as_nanoseconds(sp500_dir, folder):
    """YYYYMMDD integers all fell on 1970-01-01 ("duplicated date 1970-01-01"); a one-row
    file of epoch milliseconds loaded silently dated 1970."""
    text = _real_text(sp500_dir, "KO")
    (folder / "KO.csv").write_text(_with_dates(text, lambda d: d.replace("-", "")))
    first = text.splitlines()[1].split(",", 1)[0].replace("-", "")
    with pytest.raises(DataError, match=f"KO.csv: the dates are numbers \\(the first is {first}"):
        read_bars(folder / "KO.csv")
    header, row = text.splitlines(keepends=True)[:2]
    epoch_ms = int(pd.Timestamp(row.split(",", 1)[0]).timestamp() * 1000)
    (folder / "ONE.csv").write_text(header + f"{epoch_ms}," + row.split(",", 1)[1])
    with pytest.raises(DataError, match="write them as YYYY-MM-DD"):
        read_bars(folder / "ONE.csv")
    pd.read_csv(folder / "KO.csv").to_parquet(folder / "KO.parquet")
    with pytest.raises(DataError, match="KO.parquet: the dates are numbers"):
        read_bars(folder / "KO.parquet")


# ------------------------------------------------------------- no adjusted close: said
def test_a_file_without_an_adjusted_close_is_named_in_the_warnings(sp500_dir, folder):
    """``Date,Open,High,Low,Close,Volume`` was silently taken as adjusted: AAPL's 4:1 split
    of 2020-08-31 then reads as a 75% crash. The prices are used as they are, and said so."""
    raw = pd.read_csv(sp500_dir / "AAPL.csv.gz")
    raw = raw.rename(columns={"timestamp": "Date", "close": "Close", "volume": "Volume"})
    raw[["Date", "open", "high", "low", "Close", "Volume"]].to_csv(folder / "AAPL.csv", index=False)
    shutil.copy(sp500_dir / "MSFT.csv.gz", folder)
    data = load_local(folder)
    (warning,) = data.warnings
    assert warning == (
        f"{folder / 'AAPL.csv'}: no adjusted close column (found Date, open, high, low, Close, "
        "Volume); the close is used as the adjusted close, so splits and dividends are not "
        "adjusted for"
    )
    split = data.adj_close["AAPL"].loc["2020-08-28":"2020-08-31"]
    assert split.iloc[1] / split.iloc[0] < 0.3  # as traded: the split is in the series
    assert load_local(folder, tickers=["MSFT"]).warnings == ()


# ------------------------------------------------------------- the same answer, cached or not
def test_a_requested_file_the_cached_panel_skipped_gives_the_same_reason(sp500_dir, folder):
    """Before a full load, ``--tickers TRUNC`` said "Truncated compressed stream"; after one
    (the cached panel had skipped the file) it said "unknown ticker(s) TRUNC". And a load
    of AAPL alone listed every other file's warnings from the panel."""
    shutil.copy(sp500_dir / "AAPL.csv.gz", folder)
    (folder / "TRUNC.csv.gz").write_bytes((sp500_dir / "KO.csv.gz").read_bytes()[:5000])
    raw = pd.read_csv(sp500_dir / "MSFT.csv.gz").drop(columns="adjusted_close")
    raw.to_csv(folder / "MSFT.csv", index=False)
    with pytest.raises(DataError, match="Truncated compressed stream") as cold:
        load_market_data("local", folder, tickers=["TRUNC"])
    cold_msft = load_market_data("local", folder, tickers=["MSFT"]).warnings
    full = load_market_data("local", folder)  # reads every file and caches the panel
    assert full.tickers == ["AAPL", "MSFT"] and len(full.warnings) == 2
    for tickers in (["TRUNC"], ["aapl", "TRUNC"]):
        with pytest.raises(DataError) as warm:
            load_market_data("local", folder, tickers=tickers)
        assert str(warm.value) == str(cold.value)
    assert load_market_data("local", folder, tickers=["AAPL"]).warnings == ()
    warm_msft = load_market_data("local", folder, tickers=["MSFT", "AAPL"]).warnings
    assert warm_msft == cold_msft and "MSFT.csv: no adjusted close" in warm_msft[0]
