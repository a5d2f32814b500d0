"""Output files are written whole or not at all (mltrainer.outputs)."""

from __future__ import annotations

import errno

import pytest

from mltrainer.errors import DataError
from mltrainer.outputs import write_atomic


def test_a_write_that_fails_half_way_leaves_the_earlier_file_whole(tmp_path):
    """A full disk cut a 5.1 MB report to a 5,120,000-byte fragment under its own name and
    said only '[Errno 28] No space left on device'."""
    target = tmp_path / "report.html"
    target.write_text("the earlier, complete report")

    def full_disk(tmp):
        tmp.write_text("<html>half of a")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DataError, match=r"report.html: cannot be written \(No space left"):
        write_atomic(target, full_disk)
    assert target.read_text() == "the earlier, complete report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left
    write_atomic(target, lambda tmp: tmp.write_text("the new report"))
    assert target.read_text() == "the new report" and len(list(tmp_path.iterdir())) == 1
