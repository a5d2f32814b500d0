"""A cached panel whose stored bytes were changed.

A panel's tickers and dates live in its entry's header, so the checksum covers the header
as well as the values: "AAPL" rewritten to "AAPM" must not serve AAPL's prices under a
ticker that has none, and a panel whose dates cannot be used (unsorted) must be dropped
and rebuilt from the files, not fail every later run. Real price files throughout.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
import zlib

import pandas as pd
import pytest

from mltrainer import config
from mltrainer.data import sources
from mltrainer.data.cache import get_cache
from mltrainer.data.local import load_local

TICKERS = ["AAPL", "KO", "MSFT"]


@pytest.fixture
def folder(sp500_dir, tmp_path):
    out = tmp_path / "bars"
    out.mkdir()
    for t in TICKERS:
        shutil.copy(sp500_dir / f"{t}.csv.gz", out)
    return out


@pytest.fixture
def truth(folder):
    return load_local(folder, tickers=TICKERS, sectors=sources.local_sectors(folder))


def stored_file(folder):
    """The value file of the folder's cached panel (the only entry in a fresh cache)."""
    sources.load_local_panel(folder)
    (path,) = config.cache_dir().rglob("*.val")
    return path


def assert_rebuilt(folder, truth, why: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="mltrainer.data.cache")
    data = sources.load_local_panel(folder)
    assert data.tickers == TICKERS
    pd.testing.assert_frame_equal(data.adj_close, truth.adj_close, check_freq=False)
    (note,) = [w for w in data.warnings if "cached copy" in w]
    assert why in note and "dropped" in note
    assert any(why in r.getMessage() for r in caplog.records)
    again = sources.load_local_panel(folder)  # rebuilt and cached again: no warning now
    assert not any("cached copy" in w for w in again.warnings)
    pd.testing.assert_frame_equal(again.close, truth.close, check_freq=False)


def test_a_renamed_ticker_in_the_header_is_caught(folder, truth, caplog):
    path = stored_file(folder)
    blob = path.read_bytes()
    assert blob.count(b'"AAPL"') == 1
    path.write_bytes(blob.replace(b'"AAPL"', b'"AAPM"'))
    assert_rebuilt(folder, truth, "checksum mismatch", caplog)


def test_unsorted_date_labels_in_the_header_are_caught(folder, truth, caplog):
    path = stored_file(folder)
    blob = path.read_bytes()
    labels = json.loads(blob[13 : 13 + struct.unpack(">I", blob[5:9])[0]])["meta"]["labels"]
    first, second = labels["index"][:2]
    assert len(first) == len(second)
    head = f'"{first}","{second}"'.encode()
    path.write_bytes(blob.replace(head, f'"{second}","{first}"'.encode(), 1))
    assert_rebuilt(folder, truth, "checksum mismatch", caplog)


def test_a_panel_that_fails_validation_is_evicted_and_rebuilt(folder, truth, caplog):
    """A well-formed entry (its checksum right) whose dates are not sorted: written by an
    older version or a bug, it failed every run with the same DataError, never evicted."""
    sources.load_local_panel(folder)
    skipped: list[str] = []
    key = sources._folder_key(folder, sources.list_files(folder, skipped), skipped)
    frames = {name: frame.iloc[::-1] for name, frame in truth.frames().items()}
    get_cache().put_frames(key, frames, kind="panel", meta={"as_of": str(truth.as_of)})
    assert_rebuilt(folder, truth, "must be sorted and unique", caplog)


def test_an_entry_of_the_previous_format_is_still_read(folder, truth, caplog):
    """An entry of the previous format (its CRC over the values only) is read, not dropped:
    an upgrade must not leave an offline user without the copies cached before it. Its
    values are still checked."""
    path = stored_file(folder)
    blob = path.read_bytes()
    hlen = struct.unpack(">I", blob[5:9])[0]
    payload = blob[13 + hlen :]
    path.write_bytes(struct.pack(">5sII", b"MLTC1", hlen, zlib.crc32(payload)) + blob[13:])
    again = sources.load_local_panel(folder)
    assert again.adj_close.equals(truth.adj_close) and again.warnings == truth.warnings
    cut = bytearray(path.read_bytes())
    cut[-100] ^= 0xFF  # a flipped byte in its values
    path.write_bytes(bytes(cut))
    assert_rebuilt(folder, truth, "checksum mismatch", caplog)


def test_a_changed_folder_replaces_its_panel_in_the_cache(folder, sp500_dir, tmp_path):
    """Each update of the files stored a new ~170 MB panel and kept every older one (they
    never expire) until the cache's 8 GB limit; a folder's older panels now go, and a
    folder whose name extends this one's keeps its own."""
    cache = get_cache()
    sources.load_local_panel(folder)
    (first,) = cache.keys("panel:")
    twin = tmp_path / "bars:2"  # its key starts with this folder's key prefix
    twin.mkdir()
    shutil.copy(sp500_dir / "KO.csv.gz", twin)
    sources.load_local_panel(twin)
    shutil.copy(sp500_dir / "JNJ.csv.gz", folder)  # the folder's files change
    data = sources.load_local_panel(folder)
    assert data.tickers == ["AAPL", "JNJ", "KO", "MSFT"]
    panels = cache.keys("panel:")
    assert first not in panels and len(panels) == 2
    assert sources.load_local_panel(twin).tickers == ["KO"]
    assert sorted(cache.keys("panel:")) == sorted(panels)  # served from the cache
