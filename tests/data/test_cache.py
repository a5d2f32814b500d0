"""The disk cache: no pickles, freshness, stale fallback, and surviving a killed writer."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import diskcache
import pandas as pd
import pytest

from mltrainer.data.cache import DataCache, expiry_for, next_close, next_rebalance
from mltrainer.errors import MLTrainerError, SourceError


def test_frames_round_trip_exactly(tmp_path, basket):
    cache = DataCache(tmp_path / "c")
    cache.put_frame("one", basket.adj_close, kind="prices")
    pd.testing.assert_frame_equal(cache.get("one").value, basket.adj_close, check_freq=False)
    cache.put_frames("many", basket.frames(), kind="panel", meta={"x": 1})
    frames, meta = cache.get_frames("many")
    assert meta == {"x": 1}
    for name, frame in basket.frames().items():
        pd.testing.assert_frame_equal(frames[name], frame, check_freq=False)
    assert oct(os.stat(tmp_path / "c").st_mode & 0o777) == "0o700"


def test_refuses_to_unpickle(tmp_path):
    """A pickle planted by someone who can write the folder is refused, not run."""
    folder = tmp_path / "c"
    DataCache(folder).close()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    plain = diskcache.Cache(str(folder))  # diskcache's default, pickling Disk
    plain.set("evil", Evil())
    plain.close()
    cache = DataCache(folder)
    assert cache.get("evil") is None  # refused, evicted: a miss the caller fetches again
    assert not marker.exists() and "evil" not in cache
    with pytest.raises(MLTrainerError, match="refusing to unpickle"):
        cache._store._disk.fetch(diskcache.core.MODE_PICKLE, None, b"", False)
    with pytest.raises(TypeError):
        cache._store.set("obj", {"a": 1})  # non-bytes values never reach pickle
    assert pickle  # (imported for the planted payload's protocol)


def test_corrupt_entry_is_a_miss_not_a_crash(tmp_path, basket):
    cache = DataCache(tmp_path / "c")
    cache.put_frame("x", basket.adj_close, kind="prices")
    files = [p for p in (tmp_path / "c").rglob("*.val")]
    assert files, "a large value is stored in its own file"
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2] + b"\0" * (len(data) - len(data) // 2))
    assert cache.get("x") is None
    assert "x" not in cache


def test_stale_copy_served_when_the_source_fails(tmp_path, basket):
    cache = DataCache(tmp_path / "c")
    frame = basket.adj_close.iloc[:50, :2]
    cache.put_frame("k", frame, kind="prices", expires_at=time.time() - 1)  # already stale

    def failing():
        raise SourceError("HTTP 500 from https://example.invalid/x")

    hit = cache.fetch("k", failing, kind="prices")
    assert hit.stale and "source failed" in hit.warning and "HTTP 500" in hit.warning
    pd.testing.assert_frame_equal(hit.value, frame, check_freq=False)
    assert "k" in cache  # nothing lost
    fresh = cache.fetch("k", lambda: frame * 2, kind="prices")
    assert not fresh.stale and cache.get("k").value.iloc[0, 0] == frame.iloc[0, 0] * 2
    with pytest.raises(SourceError):
        cache.fetch("absent", failing, kind="prices")


def test_freshness_rules():
    utc = dt.UTC
    # Friday 2024-10-11 15:00 New York (19:00 UTC): fresh until 16:00 NY the same day
    assert next_close(dt.datetime(2024, 10, 11, 19, 0, tzinfo=utc)) == dt.datetime(
        2024, 10, 11, 20, 0, tzinfo=utc
    )
    # after Friday's close: Monday's close
    assert next_close(dt.datetime(2024, 10, 11, 21, 0, tzinfo=utc)) == dt.datetime(
        2024, 10, 14, 20, 0, tzinfo=utc
    )
    # third Friday of September 2024 is the 20th; changes effective Monday the 23rd
    assert next_rebalance(dt.date(2024, 9, 1)) == dt.date(2024, 9, 23)
    assert next_rebalance(dt.date(2024, 9, 23)) == dt.date(2024, 12, 23)
    now = dt.datetime(2024, 1, 10, tzinfo=utc)
    assert expiry_for("fred", now, "M") - now.timestamp() == 31 * 86400
    assert expiry_for("fred", now, "D") - now.timestamp() == 86400


def test_a_writer_killed_mid_write_leaves_no_corrupt_entry(tmp_path, sp500_dir):
    folder = tmp_path / "c"
    keep = DataCache(folder)
    frame = pd.read_csv(sp500_dir / "AAPL.csv.gz")
    keep.put_frame("keep", frame, kind="prices")
    keep.close()
    writer = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from mltrainer.data.cache import DataCache
        from mltrainer.data.local import load_local
        data = load_local({str(sp500_dir)!r}, tickers=["AAPL", "MSFT", "KO", "XOM", "JPM"])
        big = pd.concat([data.adj_close] * 60, axis=1)
        big.columns = [f"c{{i}}" for i in range(big.shape[1])]
        cache = DataCache({str(folder)!r})
        print("ready", flush=True)
        i = 0
        while True:
            cache.put_frame(f"big{{i}}", big, kind="prices")
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, cwd=os.getcwd())
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = DataCache(folder)
    pd.testing.assert_frame_equal(cache.get("keep").value, frame)
    keys = [k for k in cache._store.iterkeys() if k != "keep"]
    assert keys, "the writer should have completed at least one entry before the kill"
    for key in keys:
        hit = cache.get(key)
        assert hit is not None and hit.value.shape[1] == 300


def test_an_unusable_cache_folder_falls_back_to_a_temporary_one(
    blocked_cache_dir, monkeypatch, basket, capsys
):
    """MLTRAINER_CACHE_DIR naming a file (or a folder the process cannot write): the
    cache works in a temporary folder for this process, and says why, instead of every
    page and command failing on FileExistsError."""
    from mltrainer.cli import main
    from mltrainer.data import cache

    blocked = blocked_cache_dir
    store = cache.get_cache()
    assert store.directory != blocked and store.directory.is_dir()
    frame = basket.adj_close.iloc[:50, :3]
    store.put_frame("k", frame, kind="prices")
    pd.testing.assert_frame_equal(cache.get_cache().get("k").value, frame)
    assert cache.cache_problem() == (
        f"the cache folder {blocked} cannot be used (a file of that name is there); this "
        "process caches in a temporary folder instead, deleted when it ends"
    )
    assert blocked.read_text().startswith("a file")  # left as it was

    monkeypatch.setattr(cache, "_CACHES", {})  # a new process: the CLI says it once
    monkeypatch.setattr(cache, "_PROBLEMS", {})
    capsys.readouterr()
    assert main(["data", "status"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {cache.cache_problem()}"], err
