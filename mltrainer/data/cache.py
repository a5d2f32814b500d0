"""The one disk cache every network result (and every loaded panel) goes through.

Built on diskcache, with three rules of our own:

- No pickles. Values are bytes we encode ourselves (Arrow IPC for frames, JSON for
  the rest) and the :class:`SafeDisk` refuses to unpickle anything it reads, so a
  person who can write the cache folder cannot make the app run code.
- Freshness per kind of data (prices until the next close, constituents until the
  next quarterly rebalance, FRED by series frequency). Expired entries are kept: when
  the source fails, :meth:`DataCache.fetch` serves the stale copy with a warning.
- Atomic entries. diskcache writes a large value to its own file first and only then
  commits the row that points at it in one SQLite transaction, so a process killed
  mid-write leaves at worst an orphan file, never a half-written entry; every entry
  also carries a CRC32 of its header and payload that is checked on read (the header
  holds a panel's dates and tickers, so a flipped byte there must not pass either).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import diskcache
import numpy as np
import pandas as pd
import pyarrow as pa

from mltrainer import config
from mltrainer.data.cache_readonly import LayeredStore, open_read_only
from mltrainer.errors import DataError, MLTrainerError, SourceError

log = logging.getLogger(__name__)

_MAGIC = b"MLTC2"
_OLD_MAGIC = b"MLTC1"  # version 1: a CRC of the payload only
_HEADER = struct.Struct(">5sII")  # magic, header length, crc32 of header and payload


class UnsafeEntry(MLTrainerError):
    """A cache row the app refuses to read: a pickle, or a file outside the cache."""


# The only names diskcache gives value files (Disk.filename): two hex folder levels and a
# 28-hex-digit name. A row whose filename is anything else was not written by diskcache.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")


class SafeDisk(diskcache.Disk):
    """A diskcache Disk that stores only str/bytes/int/float and never unpickles, reads
    or deletes only its own value files, and writes them owner-only.

    Why the overrides: diskcache trusts ``cache.db``. A pickled row would run code when
    read, and the ``filename`` column is joined to the cache folder as given, so a row
    naming ``../../home/me/notes.txt`` (or an absolute path) makes :meth:`fetch` read that
    file and, once the entry is evicted or overwritten, :meth:`remove` delete it and its
    empty parent folders. Here every filename is checked against the names diskcache
    itself generates and must resolve (symlinks followed) inside the folder; anything else
    raises :class:`UnsafeEntry` on read and is left untouched on removal.
    """

    def store(
        self, value: bytes | str | int | float, read: bool, key: object = diskcache.core.UNKNOWN
    ) -> tuple[int, int, str | None, object]:
        if not read and not isinstance(value, (bytes, str, int, float)):
            raise TypeError("the mltrainer cache stores only bytes (Arrow/JSON), never pickles")
        size, mode, filename, db_value = super().store(value, read, key=key)
        if filename is not None:
            _owner_only(Path(self._directory, filename))
        return size, mode, filename, db_value

    def fetch(self, mode: int, filename: str | None, value: object, read: bool) -> object:
        if mode == diskcache.core.MODE_PICKLE:
            raise UnsafeEntry(
                "refusing to unpickle a cache entry; the cache folder was written by something else"
            )
        if filename is not None and self._inside(filename) is None:
            raise UnsafeEntry(
                "refusing to read a cache entry whose file is not one of the "
                "cache's own value files"
            )
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: str) -> None:
        """Delete a value file and its emptied sub-folders, never anything else."""
        full = self._inside(file_path)
        if full is None:
            log.warning(
                "cache: not deleting %r, which is not one of the cache's own value files",
                str(file_path)[:200],
            )
            return
        with contextlib.suppress(OSError):  # another process may have removed it first
            full.unlink()
        for folder in (full.parent, full.parent.parent):  # the two hex levels, if empty
            with contextlib.suppress(OSError):
                folder.rmdir()

    def put(self, key: str | bytes | int | float) -> tuple[object, bool]:
        if not isinstance(key, (str, bytes, int, float)):
            raise TypeError("cache keys must be strings")
        return super().put(key)

    def get(self, key: object, raw: bool) -> str | bytes | int | float:
        if not raw:
            raise UnsafeEntry("refusing to unpickle a cache key")
        return super().get(key, raw)

    def _inside(self, filename: str) -> Path | None:
        """The resolved path of a value file of this cache, or None."""
        name = str(filename).replace(os.sep, "/")
        if not _VALUE_FILE.fullmatch(name):
            return None
        root = Path(self._directory).resolve()
        full = (root / name).resolve()
        return full if full.is_relative_to(root) and full != root else None


def _owner_only(path: Path) -> None:
    """chmod 0600 (files) / 0700 (folders). The cache folder is already 0700, so this is
    a second line: the files stay private if the folder is ever copied or opened up."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
        for folder in (path.parent, path.parent.parent):
            os.chmod(folder, 0o700)


# ----------------------------------------------------------------- freshness
def next_close(now: dt.datetime | None = None) -> dt.datetime:
    """The next weekday 16:00 New York time after ``now`` (UTC-aware).

    Exchange holidays are not modelled: on a holiday the price entry simply expires a
    day early and is fetched again, which costs one request and is never wrong.
    """
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    now = (now or dt.datetime.now(dt.UTC)).astimezone(ny)
    close = now.replace(hour=16, minute=0, second=0, microsecond=0)
    if now >= close:
        close += dt.timedelta(days=1)
    while close.weekday() >= 5:
        close += dt.timedelta(days=1)
    return close.astimezone(dt.UTC)


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of ``month`` (the S&P quarterly rebalance and options expiry)."""
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def next_rebalance(today: dt.date) -> dt.date:
    """The first trading day after the next quarterly S&P rebalance (third Friday of
    March, June, September, December): changes take effect from the Monday after."""
    year = today.year
    for y in (year, year + 1):
        for m in (3, 6, 9, 12):
            effective = third_friday(y, m) + dt.timedelta(days=3)
            if effective > today:
                return effective
    raise AssertionError("unreachable")


_FRED_FREQ_DAYS = {"D": 1, "W": 7, "BW": 14, "M": 31, "Q": 92, "SA": 183, "A": 366}


def expiry_for(kind: str, now: dt.datetime | None = None, frequency: str | None = None) -> float:
    """Expiry time (epoch seconds) of an entry of a given kind stored at ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    if kind == "prices":
        return next_close(now).timestamp()
    if kind == "constituents":
        nxt = next_rebalance(now.date())
        return dt.datetime.combine(nxt, dt.time(), tzinfo=dt.UTC).timestamp()
    if kind == "fred":
        days = _FRED_FREQ_DAYS.get((frequency or "D").upper(), 1)
        return (now + dt.timedelta(days=days)).timestamp()
    if kind == "panel":  # derived from local files; invalidated by their fingerprint instead
        return float("inf")
    return (now + dt.timedelta(days=1)).timestamp()


# ------------------------------------------------------------------ encoding
def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """Arrow IPC stream bytes of a frame (index kept, column names as strings)."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def bytes_to_frame(payload: bytes | memoryview) -> pd.DataFrame:
    """The frame back from :func:`frame_to_bytes`'s Arrow IPC stream."""
    reader = pa.ipc.open_stream(pa.py_buffer(payload))
    return reader.read_all().to_pandas()


def _pack(header: dict, payload) -> bytes:
    """Header and payload in one bytes object (one copy of a buffer-protocol payload)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((_HEADER.pack(_MAGIC, len(head), crc), head, payload))


def _unpack(blob: bytes) -> tuple[dict, memoryview]:
    view = memoryview(blob)
    if len(view) < _HEADER.size:
        raise ValueError("truncated entry")
    magic, hlen, crc = _HEADER.unpack_from(view)
    if magic not in (_MAGIC, _OLD_MAGIC):
        raise ValueError("not an mltrainer cache entry")
    if _HEADER.size + hlen > len(view):
        raise ValueError("truncated entry")
    head = view[_HEADER.size : _HEADER.size + hlen]
    payload = view[_HEADER.size + hlen :]
    # a version-1 entry checked its payload only: still read (dropping every cached copy
    # on an upgrade would leave an offline user with nothing), rewritten as version 2
    # when next fetched
    start = zlib.crc32(head) if magic == _MAGIC else 0
    if zlib.crc32(payload, start) != crc:
        raise ValueError("checksum mismatch")
    header = json.loads(bytes(head))
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    return header, payload


@dataclass
class CacheHit:
    """A value read from the cache, with how fresh it is."""

    value: object
    stored_at: float
    expires_at: float
    stale: bool
    warning: str | None = None


class DataCache:
    """The project's disk cache (one diskcache store under ``cache/``).

    Keys are plain strings that must never contain an API key (callers build them from
    the source name and the request's public parameters).
    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else config.cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        # group and others lose their rights; the owner gains none (a folder made read-only
        # stays so); a foreign-owned folder still works, we just cannot tighten it
        with contextlib.suppress(OSError):
            os.chmod(self.directory, self.directory.stat().st_mode & 0o700)
        database = self.directory / diskcache.core.DBNAME
        with contextlib.suppress(FileExistsError, OSError):
            # created owner-only before SQLite opens it; SQLite gives its -wal and -shm
            # files the database file's permissions
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._store = diskcache.Cache(
            str(self.directory),
            disk=SafeDisk,
            size_limit=8 * 2**30,
            eviction_policy="least-recently-stored",
        )
        for path in self.directory.glob(diskcache.core.DBNAME + "*"):  # an older cache's too
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
        self._evicted: dict[str, str] = {}

    def close(self) -> None:
        """Close the underlying store (it reopens on the next use)."""
        self._store.close()

    # -------------------------------------------------------------- raw entries
    def put(
        self,
        key: str,
        payload: bytes | pa.Buffer,
        fmt: str,
        kind: str,
        expires_at: float | None = None,
        meta: dict | None = None,
    ) -> None:
        """Store ``payload`` (already encoded as ``fmt``) under ``key``, replacing any entry.

        ``expires_at`` (epoch seconds) defaults to the freshness of ``kind`` (see
        :func:`expiry_for`); ``meta`` is kept in the entry's header.
        """
        now = time.time()
        header = {
            "fmt": fmt,
            "kind": kind,
            "stored_at": now,
            "expires_at": expiry_for(kind) if expires_at is None else expires_at,
            "meta": meta or {},
        }
        if header["expires_at"] == float("inf"):
            header["expires_at"] = None
        self._store.set(key, _pack(header, payload), retry=True)

    def get_raw(self, key: str) -> tuple[dict, memoryview] | None:
        """Header and payload of an entry, or None.

        An entry that cannot be used is evicted (its row deleted, and its file if that is
        one of the cache's own) and reads as a miss, so the caller fetches it again; the
        reason is logged and kept for :meth:`fetch` to pass on as a warning.
        """
        try:
            blob = self._store.get(key, default=None, retry=True)
        except UnsafeEntry as exc:
            return self.evict(key, f"{exc}")
        except Exception as exc:  # unreadable file behind the row
            return self.evict(key, f"its file could not be read ({type(exc).__name__})")
        if blob is None:
            return None
        if not isinstance(blob, bytes):
            return self.evict(key, "it is not an mltrainer entry")
        try:
            return _unpack(blob)
        except (ValueError, json.JSONDecodeError) as exc:
            return self.evict(key, f"it is corrupt ({exc})")

    def evict(self, key: str, why: str) -> None:
        """Delete an entry that cannot be used (e.g. its decoded data failed validation),
        log ``why`` as a warning and keep it for :meth:`eviction_note`."""
        with contextlib.suppress(Exception):  # a row we cannot delete still reads as a miss
            self._store.delete(key, retry=True)
        message = f"the cached copy of {key[:120]} was dropped and fetched again: {why}"
        log.warning("cache: %s", message)
        self._evicted[key] = message

    def eviction_note(self, key: str) -> str | None:
        """Why the entry under ``key`` was last dropped (once; later calls give None)."""
        return self._evicted.pop(key, None)

    # ----------------------------------------------------------------- frames
    def put_frame(self, key: str, frame: pd.DataFrame, kind: str, **kw) -> None:
        """Store a frame as Arrow IPC (``kw`` as in :meth:`put`)."""
        self.put(key, frame_to_bytes(frame), "arrow", kind, **kw)

    def put_frames(self, key: str, frames: dict, kind: str, meta: dict | None = None, **kw) -> None:
        """Several frames sharing one index and one column set, in one atomic entry.

        Stored as one Arrow table with a flat float64 column per frame (row-major values)
        and the labels in the header, so reading back is a buffer view plus a reshape:
        the 504-ticker panel comes back in about a tenth of a second.
        """
        first = next(iter(frames.values()))
        for name, frame in frames.items():
            if not (frame.index.equals(first.index) and frame.columns.equals(first.columns)):
                raise ValueError(f"frame {name!r} is not aligned with the others")
        # column-major: the layout pandas keeps its blocks in, so reading needs no transpose
        table = pa.table(
            {
                name: np.ascontiguousarray(frame.to_numpy("float64").T).ravel()
                for name, frame in frames.items()
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        labels = {
            "index": [str(d) for d in first.index.astype("datetime64[ns]").asi8],
            "index_name": first.index.name,
            "columns": [str(c) for c in first.columns],
        }
        del table
        self.put(
            key, sink.getvalue(), "arrow-panel", kind, meta={**(meta or {}), "labels": labels}, **kw
        )

    def get_frames(self, key: str) -> tuple[dict, dict] | None:
        """``(frames, meta)`` of an entry written by :meth:`put_frames`, or None (an entry
        whose labels do not fit its values is evicted, as a corrupt one is)."""
        raw = self.get_raw(key)
        if raw is None or raw[0]["fmt"] != "arrow-panel":
            return None
        try:
            return _decode_frames(*raw)
        except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
            return self.evict(key, f"it could not be decoded ({type(exc).__name__}: {exc})")

    def put_json(self, key: str, value: object, kind: str, **kw) -> None:
        """Store a JSON-serialisable value (``kw`` as in :meth:`put`)."""
        self.put(key, json.dumps(value).encode(), "json", kind, **kw)

    def get(self, key: str) -> CacheHit | None:
        """The entry decoded (a frame, a JSON value, else bytes) with its freshness, or
        None if absent or unusable (see :meth:`get_raw`); a stale entry is returned too."""
        raw = self.get_raw(key)
        if raw is None:
            return None
        header, payload = raw
        if header["fmt"] == "arrow":
            value = bytes_to_frame(payload)
        elif header["fmt"] == "json":
            value = json.loads(bytes(payload))
        else:
            value = bytes(payload)
        expires = header["expires_at"]
        stale = expires is not None and time.time() >= expires
        return CacheHit(value, header["stored_at"], expires or float("inf"), stale)

    def fetch(
        self, key: str, producer: Callable[[], object], kind: str, fmt: str = "arrow", **kw
    ) -> CacheHit:
        """The fresh cached value, else ``producer()`` stored and returned.

        If the producer fails (network, rate limit, bad response) and a stale copy exists,
        the stale copy is returned with ``warning`` saying so; otherwise the error is raised.
        Nothing already cached is ever deleted by a failure.
        """
        hit = self.get(key)
        if hit is not None and not hit.stale:
            return hit
        dropped = self.eviction_note(key)
        try:
            value = producer()
        except (SourceError, DataError, OSError) as exc:
            if hit is None:
                raise
            age = dt.datetime.fromtimestamp(hit.stored_at, dt.UTC)
            hit.warning = (
                f"showing cached data from {age:%Y-%m-%d %H:%M} UTC because the source failed: "
                f"{config.scrub(str(exc))}"
            )
            return hit
        if fmt == "arrow":
            self.put_frame(key, value, kind, **kw)
        elif fmt == "json":
            self.put_json(key, value, kind, **kw)
        else:
            self.put(key, value, fmt, kind, **kw)
        return CacheHit(value, time.time(), float("inf"), False, warning=dropped)

    # ----------------------------------------------------------------- status
    def status(self) -> list[dict]:
        """One row per entry: key, kind, size, stored, expires, stale."""
        rows = []
        now = time.time()
        for key in self._store.iterkeys():
            raw = self.get_raw(key)
            if raw is None:
                continue
            header, payload = raw
            exp = header["expires_at"]
            rows.append(
                {
                    "key": key,
                    "kind": header["kind"],
                    "bytes": len(payload),
                    "stored_at": _iso(header["stored_at"]),
                    "expires_at": None if exp is None else _iso(exp),
                    "stale": exp is not None and now >= exp,
                    **_coverage(header, payload),
                }
            )
        return rows

    def __contains__(self, key: str) -> bool:
        return key in self._store

    def delete(self, key: str) -> None:
        """Remove the entry (nothing happens if there is none)."""
        self._store.delete(key, retry=True)

    def keys(self, prefix: str = "") -> list[str]:
        """The keys of the entries that start with ``prefix``."""
        return [k for k in self._store.iterkeys() if isinstance(k, str) and k.startswith(prefix)]


def _decode_frames(header: dict, payload: memoryview) -> tuple[dict, dict]:
    """The frames and meta of an ``arrow-panel`` entry (see :meth:`DataCache.put_frames`)."""
    meta = dict(header["meta"])
    labels = meta.pop("labels")
    index = pd.DatetimeIndex(
        np.array(labels["index"], dtype="int64").view("datetime64[ns]"),
        name=labels["index_name"],
    )
    columns = pd.Index(labels["columns"])
    shape = (len(columns), len(index))
    table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
    # the transposed view is F-contiguous; pandas' own copy of it is a plain memcpy
    frames = {
        name: pd.DataFrame(
            table.column(name).to_numpy().reshape(shape).T,
            index=index,
            columns=columns,
            copy=True,
        )
        for name in table.column_names
    }
    return frames, meta


def _coverage(header: dict, payload: memoryview) -> dict:
    """The dates and columns a frame entry holds (``first``/``last`` row, ``columns``): how
    current the cached data is, which its storage time does not say. Empty otherwise."""
    if header["fmt"] == "arrow-panel":
        labels = header["meta"]["labels"]
        index = pd.DatetimeIndex(np.array(labels["index"], dtype="int64").view("datetime64[ns]"))
        width = len(labels["columns"])
    elif header["fmt"] == "arrow":
        try:
            frame = bytes_to_frame(payload)
        except Exception:  # noqa: BLE001 (a listing must not fail on one odd entry)
            return {}
        index, width = frame.index, frame.shape[1]
    else:
        return {}
    if not isinstance(index, pd.DatetimeIndex) or index.empty:
        return {}
    return {
        "first": index.min().date().isoformat(),
        "last": index.max().date().isoformat(),
        "columns": width,
    }


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


_CACHES: dict[Path, DataCache] = {}
_PROBLEMS: dict[Path, str] = {}


def get_cache() -> DataCache:
    """The process-wide cache for the configured folder (re-read on each call, so tests
    that point ``MLTRAINER_CACHE_DIR`` elsewhere get their own store)."""
    directory = config.cache_dir()
    if directory not in _CACHES:
        try:
            _CACHES[directory] = DataCache(directory)
        except (OSError, sqlite3.Error) as exc:  # a file there, no rights, a read-only disk
            # the app and the CLI still work; what is fetched lasts for this process only
            reason = (
                "a file of that name is there"
                if directory.is_file()
                else getattr(exc, "strerror", None) or str(exc)
            )
            fallback = Path(tempfile.mkdtemp(prefix="mltrainer-cache-"))
            atexit.register(shutil.rmtree, fallback, ignore_errors=True)
            _CACHES[directory] = store = DataCache(fallback)
            # a read-only cache (a pre-warmed volume, a folder made read-only) is still read
            shelf = open_read_only(directory, SafeDisk(str(directory)))
            if shelf is not None:
                store._store = LayeredStore(store._store, shelf)
            _PROBLEMS[directory] = (
                f"the cache folder {directory} cannot be used ({reason}); this process "
                "caches in a temporary folder instead, deleted when it ends"
                if shelf is None
                else f"the cache folder {directory} cannot be written ({reason}); this process "
                f"reads its {shelf.count} entr{'y' if shelf.count == 1 else 'ies'} and caches "
                "what it fetches in a temporary folder, deleted when it ends"
            )
            log.info("%s", _PROBLEMS[directory])  # the CLI and the sidebar show it
    return _CACHES[directory]


def cache_problem(open_cache: bool = True) -> str | None:
    """Why the configured cache folder could not be used (:func:`get_cache` then caches
    in a temporary folder), or None. ``open_cache``: open it first if nothing has yet."""
    if open_cache:
        get_cache()
    return _PROBLEMS.get(config.cache_dir())


__all__ = [
    "DataCache",
    "CacheHit",
    "get_cache",
    "cache_problem",
    "frame_to_bytes",
    "bytes_to_frame",
]
