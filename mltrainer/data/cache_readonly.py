"""A cache folder this process cannot write, still read.

A deployment may ship a pre-warmed cache on a read-only volume, and a user may make
theirs read-only (``chmod -R a-w``) or run as someone who cannot write it. diskcache
cannot open such a folder (it writes its settings and journal on opening), so
:func:`mltrainer.data.cache.get_cache` caches in a temporary folder instead and puts a
:class:`ReadOnlyStore` of the folder behind it (:class:`LayeredStore`): its entries are
still served, and what is fetched now goes to the temporary folder. Nothing in the
read-only folder is ever written, deleted or chmod-ed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import diskcache

_MISSING = object()


class ReadOnlyStore:
    """The entries of a diskcache folder, read through SQLite's read-only modes.

    ``disk`` (a :class:`~mltrainer.data.cache.SafeDisk` of the same folder) decodes a row,
    with its refusals of pickles and of files outside the folder. Rows only read as str
    keys, as the cache writes them. An entry :meth:`hide` was called for reads as a miss
    (the cache evicts what it cannot use; here it can only stop reading it).
    """

    def __init__(self, directory: Path, disk: diskcache.Disk):
        self.directory = Path(directory)
        self._disk = disk
        self._hidden: set[str] = set()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.count = int(self._query("SELECT count(*) FROM Cache")[0][0])

    def _connect(self) -> sqlite3.Connection:
        """``mode=ro`` (consistent while another process writes the folder), else
        ``immutable=1``: ``mode=ro`` fails on a WAL database whose folder cannot hold its
        ``-shm`` file, the usual state of a read-only volume."""
        path = quote(str(self.directory / diskcache.core.DBNAME))
        error: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"file:{path}?{flags}", uri=True, check_same_thread=False)
            try:
                db.execute("SELECT count(*) FROM Cache").fetchone()
                return db
            except sqlite3.Error as exc:
                db.close()
                error = exc
        raise error  # type: ignore[misc]

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            if self._db is None:
                self._db = self._connect()
            return self._db.execute(sql, args).fetchall()

    def get(self, key: str, default: object = None, retry: bool = False) -> object:
        """The stored bytes of ``key`` (SafeDisk's refusals raise), else ``default``."""
        if not isinstance(key, str) or key in self._hidden:
            return default
        rows = self._query(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
            " AND (expire_time IS NULL OR expire_time > ?)",
            (key, time.time()),
        )
        if not rows:
            return default
        mode, filename, value = rows[0]
        return self._disk.fetch(mode, filename, value, False)

    def iterkeys(self) -> Iterator[str]:
        """The str keys, in the order they were stored (none if the database cannot be
        read: another process may be rewriting a folder opened as immutable)."""
        try:
            rows = self._query("SELECT key FROM Cache WHERE raw = 1 ORDER BY rowid")
        except sqlite3.Error:
            rows = []
        for (key,) in rows:
            if isinstance(key, str) and key not in self._hidden:
                yield key

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or key in self._hidden:
            return False
        try:
            return bool(self._query("SELECT 1 FROM Cache WHERE key = ? AND raw = 1", (key,)))
        except sqlite3.Error:
            return False

    def hide(self, key: str) -> None:
        """Read ``key`` as a miss from now on (the folder itself is not touched)."""
        self._hidden.add(key)

    def close(self) -> None:
        """Close the connection (it reopens on the next read)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class LayeredStore:
    """A writable diskcache in front of a :class:`ReadOnlyStore`: reads try the writable
    one first, writes go to it, and a delete also hides the read-only copy.

    It offers the part of :class:`diskcache.Cache` that
    :class:`~mltrainer.data.cache.DataCache` uses.
    """

    def __init__(self, front: diskcache.Cache, back: ReadOnlyStore):
        self.front = front
        self.back = back
        self._disk = front._disk

    def get(self, key: str, default: object = None, retry: bool = False) -> object:
        """The writable store's value, else the read-only one's, else ``default``."""
        value = self.front.get(key, default=_MISSING, retry=retry)
        return self.back.get(key, default) if value is _MISSING else value

    def set(self, key: str, value: object, retry: bool = False) -> bool:
        """Store in the writable store."""
        return self.front.set(key, value, retry=retry)

    def delete(self, key: str, retry: bool = False) -> bool:
        """Delete from the writable store and stop reading the read-only copy."""
        self.back.hide(key)
        return self.front.delete(key, retry=retry)

    def iterkeys(self) -> Iterator[object]:
        """The writable store's keys, then the read-only keys it does not hold."""
        seen = set()
        for key in self.front.iterkeys():
            seen.add(key)
            yield key
        yield from (key for key in self.back.iterkeys() if key not in seen)

    def __contains__(self, key: object) -> bool:
        return key in self.front or key in self.back

    def close(self) -> None:
        """Close both stores."""
        self.front.close()
        self.back.close()


def open_read_only(directory: Path, disk: diskcache.Disk) -> ReadOnlyStore | None:
    """A :class:`ReadOnlyStore` of ``directory``, or None if it holds no readable cache
    (no folder, no ``cache.db``, not a diskcache database, or no entries)."""
    with contextlib.suppress(sqlite3.Error, OSError):
        if not (Path(directory) / diskcache.core.DBNAME).is_file():
            return None
        store = ReadOnlyStore(directory, disk)
        if store.count:
            return store
        store.close()
    return None


__all__ = ["LayeredStore", "ReadOnlyStore", "open_read_only"]
