"""Source selection (auto/local/bundled) and the warm path of the panel cache."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from mltrainer.data import sources
from mltrainer.data.sources import load_market_data
from mltrainer.errors import DataError


def test_local_through_the_cache_equals_the_files(sp500_dir, basket):
    # cold: only the two files are read; then the whole panel is cached and served warm
    cold = load_market_data("local", data_dir=sp500_dir.parent, tickers=["AAPL", "TSLA"])
    assert load_market_data("local", data_dir=sp500_dir).n_tickers == 504
    warm = load_market_data("local", data_dir=sp500_dir, tickers=["AAPL", "TSLA"])
    for data in (cold, warm):
        assert data.source == "local" and data.tickers == ["AAPL", "TSLA"]
        pd.testing.assert_frame_equal(
            data.adj_close, basket.adj_close[["AAPL", "TSLA"]].loc[data.dates], check_freq=False
        )
        assert data.sectors == {"AAPL": "Information Technology", "TSLA": "Consumer Discretionary"}
    pd.testing.assert_frame_equal(cold.splits, warm.splits)


def test_cache_key_follows_the_files(sp500_dir, tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    for t in ("KO", "PEP"):
        shutil.copy(sp500_dir / f"{t}.csv.gz", folder)
    first = load_market_data("local", data_dir=folder)
    assert first.tickers == ["KO", "PEP"]
    shutil.copy(sp500_dir / "MSFT.csv.gz", folder)  # a new file invalidates the entry
    assert load_market_data("local", data_dir=folder).tickers == ["KO", "MSFT", "PEP"]


def test_auto_prefers_the_local_folder(shared_data_dir):
    data = load_market_data("auto", tickers=["KO"])
    assert data.source == "local"


def test_auto_falls_back_to_bundled_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    sources.live_reachable.cache_clear()
    data = load_market_data("auto")
    sources.live_reachable.cache_clear()
    assert data.source == "bundled" and data.n_tickers == 20
    assert any("bundled" in w for w in data.warnings)
    # the variable is set, but wrong: the warning says so rather than "no data folder"
    assert any(
        f"MLTRAINER_DATA_DIR={tmp_path / 'absent'} does not exist" in w for w in data.warnings
    )


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p / "absent", "does not exist"),
        (lambda p: (p / "file").write_text("x") and p / "file", "is not a folder"),
        (lambda p: p, "has no sp500_daily folder of price files"),
    ],
    ids=["absent", "a-file", "no-prices"],
)
def test_a_wrong_data_dir_variable_is_named_with_what_is_wrong(monkeypatch, tmp_path, make, reason):
    path = make(tmp_path)
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(path))
    with pytest.raises(DataError) as caught:
        load_market_data("local", tickers=["KO"])
    assert str(caught.value) == f"MLTRAINER_DATA_DIR={path} {reason}; or pass --data-dir"
    monkeypatch.delenv("MLTRAINER_DATA_DIR")  # unset: the text says to set it
    assert "set MLTRAINER_DATA_DIR" in sources.config.data_dir_problem()


def test_bad_source_and_folder(tmp_path):
    with pytest.raises(DataError, match="unknown source"):
        load_market_data("excel")
    with pytest.raises(DataError, match="does not exist"):
        load_market_data("local", data_dir=tmp_path / "nope")
    (tmp_path / "prices.csv").write_text("Date,Close\n")
    with pytest.raises(DataError, match=r"prices.csv is not a folder$"):  # not "does not exist"
        load_market_data("local", data_dir=tmp_path / "prices.csv")
