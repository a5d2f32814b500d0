"""Paths a hostile user gives: names that are not UTF-8, empty folder options."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from mltrainer.cli import main

MODEL = "momentum/SimpleMomentumModel"
RUN = ["models", "run", MODEL, "--source", "local", "--tickers", "KO", "--start", "2021-01-01"]


def _not_utf8(folder, name: str) -> str:
    """``folder/name`` with a byte that is not UTF-8 before the name (as argv gives it)."""
    return os.fsdecode(os.fsencode(folder) + b"/\xff" + name.encode())


@pytest.mark.parametrize(
    "argv,columns",
    [(RUN, 2), (["universe", "export"], None)],
    ids=["models-run", "universe-export"],
)
def test_a_parquet_output_whose_name_is_not_utf8_is_written(
    capsys, shared_data_dir, tmp_path, argv, columns
):
    """pyarrow cannot open such a name: the command ended in a UnicodeEncodeError
    traceback (CSV and JSON exports of the same name were written)."""
    out = _not_utf8(tmp_path, "x.parquet")
    code = main([*argv, "--out", out])
    _, err = capsys.readouterr()
    assert code == 0 and not err, err[-800:]
    with open(out, "rb") as handle:
        frame = pd.read_parquet(handle)
    assert len(frame) > 50 and (columns is None or frame.shape[1] == columns)


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "load", "--source", "local", "--tickers", "KO"],
        ["universe", "members", "--date", "2010-06-30"],
        ["leaderboard", "--models", MODEL, "--tickers", "KO", "--results-dir"],
    ],
    ids=["data-load", "universe-members", "leaderboard"],
)
@pytest.mark.parametrize("kind", ["empty", "not-utf8"])
def test_a_folder_option_refuses_empty_and_non_utf8_names(capsys, tmp_path, argv, kind):
    """``--data-dir ''`` was read as the current folder ("data folder . has no bar
    files"); a folder whose name is not UTF-8 ended in pyarrow's traceback."""
    option = argv[-1] if argv[-1].startswith("--") else "--data-dir"
    value = "" if kind == "empty" else _not_utf8(tmp_path, "data")
    if kind == "not-utf8":
        os.mkdir(value)
    args = argv + [value] if argv[-1] == option else [*argv, option, value]
    code = main(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-800:]
    expected = "is empty" if kind == "empty" else "\\xffdata: the name is not valid UTF-8"
    assert lines[0].startswith(f"error: {option} ") and expected in lines[0], lines[0]


def test_a_name_that_is_not_utf8_is_printed_with_its_byte_escaped(capsys, tmp_path):
    """The export was written, then printing its name on a strict stdout (pytest's, or a
    terminal under en_US.UTF-8) raised UnicodeEncodeError: a traceback and exit 1."""
    out = _not_utf8(tmp_path, "x.csv")
    code = main(["universe", "export", "--out", out])
    printed, err = capsys.readouterr()
    assert code == 0 and not err, err[-800:]
    assert printed.rstrip().endswith(f"to {tmp_path}/\\xffx.csv"), printed
    assert os.path.getsize(out) > 10_000
