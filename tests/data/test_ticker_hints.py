"""An unknown ticker's name in the data at hand: share-class spellings and renames, from
the curated symbol table and the real membership; the CLI's one-line error."""

from __future__ import annotations

import pytest

from mltrainer.data.symbols import SymbolHistory
from mltrainer.data.ticker_hints import ticker_hints
from mltrainer.errors import DataError

CURATED = SymbolHistory.default()


def test_a_share_class_spelling_is_named():
    assert ticker_hints(["BRK-B"], ["AAPL", "BRK.B"], CURATED) == ["BRK-B is BRK.B here"]
    assert ticker_hints(["BRK.B"], ["AAPL", "BRK-B"], CURATED) == ["BRK.B is BRK-B here"]


def test_today_s_symbol_and_an_old_one_name_each_other():
    """Local files use April-2021 symbols, Yahoo today's: each way round is named, with
    the dates of the symbol the data has."""
    assert ticker_hints(["META", "ELV"], ["FB", "ANTM", "AAPL"], CURATED) == [
        "META is FB here (its symbol until 2022-06-09)",
        "ELV is ANTM here (its symbol from 2014-12-03 to 2022-06-28)",
    ]
    assert ticker_hints(["FB", "WLP"], ["META", "ELV"], CURATED) == [
        "FB is META here (its symbol since 2022-06-09)",
        "WLP is ELV here (its symbol since 2022-06-28)",
    ]


def test_a_ticker_with_no_other_name_gets_no_hint():
    assert ticker_hints(["XYZQ", "AAPL"], ["MSFT", "FB"], CURATED) == []
    assert ticker_hints([], ["MSFT"], CURATED) == []


def test_the_cli_names_the_ticker_the_local_files_use(shared_data_dir, capsys):
    """`--tickers META,BRK-B` on the local files (April-2021 symbols) said only "unknown
    ticker(s)": it names FB and BRK.B, in one line, exit status 2."""
    from mltrainer.cli import main

    argv = ["backtest", "momentum/TimeSeriesMomentumModel", "--source", "local"]
    argv += ["--tickers", "META,BRK-B", "--start", "2015-01-02", "--end", "2016-01-04"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.endswith("META is FB here (its symbol until 2022-06-09); BRK-B is BRK.B here"), err


def test_the_folder_loader_names_them_too(shared_data_dir):
    from mltrainer.data.local import load_local

    with pytest.raises(DataError, match=r"no file for them in .*; META is FB here"):
        load_local(shared_data_dir / "sp500_daily", tickers=["META"])


def test_a_flood_of_unknown_tickers_is_looked_up_only_as_far_as_a_message_names():
    """A link or --tickers with thousands of bogus symbols cost about 1 ms each (12 s for
    10,000) before the error was shown: only the first few are looked up."""
    import time

    from mltrainer.data.ticker_hints import MAX_HINTED

    flood = [f"ZZ{i}" for i in range(10_000)] + ["META"]
    started = time.perf_counter()
    assert ticker_hints(flood, ["FB"], CURATED) == []  # META is past the first few
    assert time.perf_counter() - started < 1.0
    assert ticker_hints(["META", *flood[: MAX_HINTED - 1]], ["FB"], CURATED) == [
        "META is FB here (its symbol until 2022-06-09)"
    ]
