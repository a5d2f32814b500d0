"""A warmed cache folder this process cannot write is still read.

The real failures, not a mock: the folder made read-only with ``chmod -R a-w`` (as root,
the check runs in a process without CAP_DAC_OVERRIDE, which is what an ordinary user
is), and a read-only bind mount (a pre-warmed cache shipped on a read-only volume; needs
root and mount rights, skipped otherwise). The check runs in a fresh process, offline,
as the app and the CLI would.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mltrainer.data import cache, fred
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
ROOT = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent("""
    import json, sys
    from mltrainer.cli import main
    from mltrainer.data import cache
    from mltrainer.data.fred import load_fred

    series = load_fred("SP500")
    store = cache.get_cache()
    store.put_json("fetched-now", [1, 2], kind="other")
    print(json.dumps({
        "rows": len(series),
        "sum": float(series.sum()),
        "warning": series.attrs.get("warning"),
        "new": store.get("fetched-now").value,
        "problem": cache.cache_problem(),
    }))
    sys.exit(main(["data", "status"]))
""")


def _snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` (itself included): mode and size."""
    paths = [folder, *sorted(folder.rglob("*"))]
    return {str(p.relative_to(folder)): (p.stat().st_mode, p.stat().st_size) for p in paths}


def _run(how: str, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLTRAINER_CACHE_DIR": str(folder), "MLTRAINER_OFFLINE": "1"}
    command = [sys.executable, "-c", CHECK]
    if how == "chmod" and os.geteuid() == 0:  # root writes anyway: drop that right
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is missing: chmod cannot stop a write")
        drop = "--bounding-set=-dac_override,-dac_read_search"
        command = [setpriv, "--inh-caps=-all", drop, *command]
    elif how == "ro-mount":
        unshare = shutil.which("unshare")
        if os.geteuid() != 0 or unshare is None:
            pytest.skip("a read-only bind mount needs root and unshare")
        script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
        command = [unshare, "-m", "sh", "-c", script, str(folder), *command]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("how", ["chmod", "ro-mount"])
def test_a_read_only_cache_is_served_and_new_entries_go_to_a_temporary_one(
    how, http_server, monkeypatch, shared_data_dir, tmp_path
):
    folder = tmp_path / "warm-cache"
    monkeypatch.setenv("MLTRAINER_CACHE_DIR", str(folder))
    monkeypatch.setattr(cache, "_CACHES", {})
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.delenv(fred.CSV_ENV, raising=False)
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    http_server.route("/graph/fredgraph.csv", Reply.file(shared_data_dir / "fred" / "SP500.csv"))
    warmed = fred.load_fred("SP500")
    cache.get_cache().close()
    if how == "chmod":
        for path in [folder, *folder.rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    before = _snapshot(folder)
    try:
        proc = _run(how, folder)
        after = _snapshot(folder)
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
    if how == "ro-mount" and "mount" in proc.stderr and proc.returncode == 32:
        pytest.skip(f"no mount rights here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    assert after == before  # not made writable again, no journal files added
    out, _, status = proc.stdout.partition("\n")
    doc = json.loads(out)
    # the cached series itself, not a stale or refetched copy (no server is reachable)
    assert doc["rows"] == len(warmed) == 2609 and doc["sum"] == float(warmed.sum())
    assert doc["warning"] is None and doc["new"] == [1, 2]
    problem = doc["problem"]
    assert problem.startswith(f"the cache folder {folder} cannot be written (")
    assert problem.endswith(
        "this process reads its 1 entry and caches what it fetches in a temporary folder, "
        "deleted when it ends"
    )
    assert "fred:series:SP500" in status and "fetched-now" in status
    assert proc.stderr.strip().splitlines()[-1] == f"warning: {problem}"


def test_an_unusable_read_only_entry_is_skipped_and_left_in_place(tmp_path, basket):
    """Behind the temporary cache, a corrupt or pickled entry of the read-only folder reads
    as a miss (as the cache evicts one it can write) and its file is not deleted."""
    import diskcache

    from mltrainer.data.cache import DataCache, SafeDisk
    from mltrainer.data.cache_readonly import LayeredStore, open_read_only

    folder = tmp_path / "warm"
    warm = DataCache(folder)
    warm.put_frame("good", basket.adj_close.iloc[:300, :3], kind="panel")  # inline in the db
    warm.put_frame("bad", basket.adj_close, kind="panel")  # large: a file of its own
    warm.close()
    plain = diskcache.Cache(str(folder))  # diskcache's default, pickling Disk
    plain.set("pickled", {"not": "ours"})
    plain.close()
    (bad_file,) = folder.rglob("*.val")
    bad_file.write_bytes(bad_file.read_bytes()[:-10] + b"\0" * 10)
    before = _snapshot(folder)

    store = DataCache(tmp_path / "temporary")
    shelf = open_read_only(folder, SafeDisk(str(folder)))
    assert shelf is not None and shelf.count == 3
    store._store = LayeredStore(store._store, shelf)
    assert store.get("good").value.shape == (300, 3)
    assert store.get("bad") is None and "checksum" in store.eviction_note("bad")
    assert store.get("pickled") is None and "unpickle" in store.eviction_note("pickled")
    assert store.keys() == ["good"] and "bad" not in store
    store.close()
    # SQLite may add its -wal and -shm files to a folder it can write; nothing else changes
    after = {k: v for k, v in _snapshot(folder).items() if not k.startswith("cache.db-")}
    assert after == before


def test_a_read_only_database_that_breaks_later_reads_as_empty(tmp_path, basket):
    """The read-only folder's database damaged after it was opened (immutable mode does
    not see another process rewrite it): listing the cache and looking a key up answer
    "nothing there" instead of raising sqlite3.DatabaseError out of ``data status``."""
    from mltrainer.data.cache import DataCache, SafeDisk
    from mltrainer.data.cache_readonly import LayeredStore, open_read_only

    folder = tmp_path / "warm"
    warm = DataCache(folder)
    for i in range(40):  # enough rows for the table to span several database pages
        warm.put_frame(f"k{i}", basket.adj_close.iloc[:20, :3], kind="panel")
    warm.close()
    store = DataCache(tmp_path / "temporary")
    shelf = open_read_only(folder, SafeDisk(str(folder)))
    store._store = LayeredStore(store._store, shelf)
    assert len(store.keys()) == 40
    shelf.close()
    database = folder / "cache.db"
    data = bytearray(database.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # every page after the header destroyed
    database.write_bytes(bytes(data))
    assert store.keys() == [] and "k1" not in store and store.status() == []
    assert store.get("k1") is None
