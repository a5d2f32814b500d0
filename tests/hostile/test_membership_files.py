"""Hostile membership sources: copies of the real files cut, corrupted or emptied. Each
gives a clear error naming the file, or is left out with a warning while the other
sources still answer; never a traceback, never a silent empty answer."""

from __future__ import annotations

import shutil

import pytest

from mltrainer.cli import main
from mltrainer.data.membership import load_membership
from mltrainer.errors import DataError

INTERVALS = "membership/sp500_ticker_start_end.csv"
CHANGES = "membership/sp500_changes_since_2019.csv"
SNAPSHOT = "constituents-2021-04-23.csv"


def _folder(tmp_path, shared_data_dir, edits: dict) -> str:
    (tmp_path / "membership").mkdir()
    for name in (INTERVALS, CHANGES, SNAPSHOT):
        shutil.copy(shared_data_dir / name, tmp_path / name)
    for name, edit in edits.items():
        path = tmp_path / name
        before = path.read_bytes()
        after = edit(before)
        assert after != before, f"the edit of {name} changed nothing"
        path.write_bytes(after)
    return str(tmp_path)


BROKEN_INTERVALS = {
    "header only": lambda b: b.split(b"\n", 1)[0] + b"\n",
    "empty": lambda b: b"",
    "binary": lambda b: b"\x00\xff\xfe" * 1000,
    "bad date": lambda b: b.replace(b"AAPL,1996-01-02", b"AAPL,1996-13-45", 1),
    "end before start": lambda b: b.replace(
        b"AABA,1999-12-08,2017-06-19", b"AABA,2017-06-19,1999-12-08", 1
    ),
    "no symbol": lambda b: b.replace(b"\nA,2000-06-05,", b"\n,2000-06-05,", 1),
    "cut mid-row": lambda b: b[: len(b) // 2],
}


@pytest.mark.parametrize("case", BROKEN_INTERVALS, ids=list(BROKEN_INTERVALS))
def test_a_broken_intervals_file_is_left_out_with_a_warning(tmp_path, shared_data_dir, case):
    folder = _folder(tmp_path, shared_data_dir, {INTERVALS: BROKEN_INTERVALS[case]})
    membership = load_membership(folder, use_cache=False)
    if case == "cut mid-row":  # a cut file still parses: its rows up to the cut count
        assert membership.members_on("2021-04-23")
        return
    assert any("left out" in w or "ignored" in w for w in membership.warnings), case
    # the dated list still answers for its own date
    assert len(membership.members_on("2021-04-23")) == 505


@pytest.mark.parametrize("name", ["constituents-2020-13-45.csv", "constituents-2021-02-30.csv"])
def test_a_snapshot_with_an_impossible_date_is_left_out(tmp_path, shared_data_dir, name):
    folder = _folder(tmp_path, shared_data_dir, {})
    shutil.copy(shared_data_dir / SNAPSHOT, tmp_path / name)
    membership = load_membership(folder, use_cache=False)
    assert any(name in w and "not a calendar date" in w for w in membership.warnings)
    assert len(membership.members_on("2021-04-23")) == 505


def test_nothing_usable_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "membership").mkdir()
    (tmp_path / "membership" / "x.csv").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="no S&P 500 membership source.*x.csv"):
        load_membership(tmp_path, use_cache=False)
    assert main(["universe", "members", "--date", "2010-01-04", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "x.csv" in err and "Traceback" not in err


@pytest.mark.parametrize("date", ["2010-02-30", "1e9", "", "2010-01-01T00:00:00"])
def test_members_refuses_a_bad_date(capsys, shared_data_dir, date):
    assert main(["universe", "members", "--date", date]) == 2
    assert "--date" in capsys.readouterr().err
