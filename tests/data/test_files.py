"""Files a user names are read bounded: a regular file over its limit is refused by name
(sparse files here: the size is real to the file system, no disk is used)."""

from __future__ import annotations

import pytest

from mltrainer.data import constituents, wikipedia
from mltrainer.data.files import MAX_LIST_BYTES, read_bounded
from mltrainer.data.wikipedia_tables import MAX_PAGE_BYTES
from mltrainer.errors import DataError


def _sparse(path, size: int):
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def test_a_page_over_the_limit_is_refused_before_reading(tmp_path):
    page = _sparse(tmp_path / "page.html", MAX_PAGE_BYTES + 1)
    with pytest.raises(DataError, match=r"page.html: 16 MB is too large to be the S&P 500 page"):
        wikipedia.read_html_file(page)


def test_a_list_over_the_limit_reads_one_byte_past_it_and_stops(tmp_path):
    big = _sparse(tmp_path / "constituents.csv", MAX_LIST_BYTES + 10)
    with pytest.raises(DataError, match=r"constituents.csv: over 64 MB, too large to be a "):
        constituents.read_csv(big)
    exact = _sparse(tmp_path / "exact.bin", 1000)
    assert read_bounded(exact, 1000, "x") == bytes(1000)
    with pytest.raises(DataError, match="over 0 MB"):
        read_bounded(exact, 999, "x")
