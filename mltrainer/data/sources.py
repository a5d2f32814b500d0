"""One entry point for market data: pick a source, load, say which source it was.

``auto`` picks a configured local folder (``--data-dir``, ``MLTRAINER_DATA_DIR`` or
``../shared/data``), else the live sources (Yahoo), else the data bundled in the
installed packages; the returned MarketData's ``source`` and ``warnings`` always tell
the user what they are looking at.
"""

from __future__ import annotations

import hashlib
import io
import socket
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mltrainer import config
from mltrainer.data.cache import DataCache, get_cache
from mltrainer.data.files import MAX_LIST_BYTES, read_bounded
from mltrainer.data.local import bad_files, list_files, load_local, safe_path
from mltrainer.data.market_data import FIELDS, MarketData, Progress
from mltrainer.errors import DataError, SourceError
from mltrainer.validate import DateLike

SOURCES = ("auto", "local", "bundled", "yahoo", "polygon")
_LIST = "a constituents CSV"


def resolve_local_dir(data_dir: str | Path | None = None) -> Path | None:
    """The per-ticker folder: ``data_dir`` itself, or its ``sp500_daily`` subfolder."""
    if data_dir is None:
        return config.sp500_daily_dir()
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data folder {path} {what}")
    sub = path / "sp500_daily"
    return sub if sub.is_dir() else path


def local_sectors(folder: Path) -> dict:
    """GICS sectors for a local folder, from constituents CSVs beside it (newest last wins
    only for tickers the older lists lack: the list nearest the data's era comes first)."""
    out: dict = {}
    for csv in sorted(folder.parent.glob("constituents-*.csv")):
        if "financials" in csv.name:
            continue
        try:  # a named pipe would wait forever: regular files only, bounded
            table = pd.read_csv(io.BytesIO(read_bounded(csv, MAX_LIST_BYTES, _LIST)))
        except (DataError, OSError, ValueError):
            continue
        sector_col = next((c for c in ("GICS Sector", "Sector") if c in table), None)
        if "Symbol" not in table or sector_col is None:
            continue
        for sym, sec in zip(table["Symbol"], table[sector_col], strict=True):
            out.setdefault(str(sym).upper(), sec)
    return out


def _folder_key(folder: Path, files: dict[str, Path], skipped: list[str]) -> str:
    """Cache key of a folder's panel: changes whenever any file is added, removed or edited."""
    h = hashlib.blake2b(digest_size=10)
    for ticker, path in files.items():
        st = path.stat()
        h.update(f"{ticker}:{st.st_size}:{st.st_mtime_ns};".encode())
    h.update("".join(skipped).encode())  # names that are not UTF-8: warned of in the panel
    return f"panel:local:{safe_path(folder.resolve())}:{h.hexdigest()}"


def load_local_panel(
    folder: Path, use_cache: bool = True, tickers: list[str] | None = None
) -> MarketData:
    """Every ticker in ``folder`` (bad files skipped with a warning), through the cache.

    With ``tickers`` and no cached panel yet, only those files are read (and nothing is
    cached): asking for two tickers should not cost a full 504-file parse. With
    ``tickers`` and a cached panel, the answer is the same as the files' own: a requested
    file the panel skipped raises its reason, and the other files' warnings are left out.
    A cached panel that is corrupt or whose data fails validation is dropped and rebuilt
    from the files, and the returned data's warnings say so.
    """
    skipped: list[str] = []
    files = list_files(folder, skipped)
    key = _folder_key(folder, files, skipped)
    cache = get_cache() if use_cache else None
    if cache is not None:
        data = _cached_panel(cache, key)
        note = cache.eviction_note(key)
        if data is None and tickers:
            data = load_local(folder, tickers=tickers, sectors=local_sectors(folder))
            return _noted(data, note)
        if data is not None:
            return _noted(_for_tickers(data, folder, files, tickers) if tickers else data, note)
    else:
        note = None
    data = load_local(folder, on_error="skip", sectors=local_sectors(folder))
    if cache is not None:
        cache.put_frames(
            key,
            data.frames(),
            kind="panel",
            meta={
                "as_of": str(data.as_of),
                "sectors": data.sectors,
                "warnings": list(data.warnings),
                "folder": str(folder),
            },
        )
        # the folder's panels of earlier files (~170 MB each, never expiring) would pile
        # up to the cache's size limit with every daily update of the files
        prefix = key.rsplit(":", 1)[0] + ":"
        for older in cache.keys(prefix):
            if older != key and ":" not in older[len(prefix) :]:  # not folder "<this>:x"
                cache.delete(older)
    return _noted(data, note)


def _cached_panel(cache: DataCache, key: str) -> MarketData | None:
    """The panel stored under ``key``, or None: absent, or evicted because it is corrupt
    or its frames fail MarketData's checks (unsorted dates, say), which would otherwise
    fail every later run the same way."""
    hit = cache.get_frames(key)
    if hit is None:
        return None
    frames, meta = hit
    try:
        return MarketData(
            **{f: frames[f] for f in FIELDS},
            dividends=frames.get("dividends"),
            splits=frames.get("splits"),
            source="local",
            as_of=pd.Timestamp(meta["as_of"]),
            sectors=meta.get("sectors", {}),
            warnings=tuple(meta.get("warnings", ())),
        )
    except (DataError, KeyError, TypeError, ValueError) as exc:
        cache.evict(key, f"its data failed validation ({exc})")
        return None


def _noted(data: MarketData, note: str | None) -> MarketData:
    """``data`` with ``note`` (why the cached copy was dropped) added to its warnings."""
    return data if note is None else replace(data, warnings=(*data.warnings, note))


def _for_tickers(
    data: MarketData, folder: Path, files: dict[str, Path], tickers: list[str]
) -> MarketData:
    """The cached panel ``data`` as a load of the ``tickers`` files alone would give it:
    DataError with the reason the panel skipped a requested file, and only the warnings
    that name a requested file (each panel warning starts with its file's path)."""
    names = dict.fromkeys(str(t).strip().upper() for t in tickers)
    wanted = [files[t] for t in names if t in files]
    heads = tuple(f"{head}{path}:" for path in wanted for head in ("", "skipped "))
    own = [w for w in data.warnings if w.startswith(heads)]
    problems = [w.removeprefix("skipped ") for w in own if w.startswith("skipped ")]
    if problems:
        raise bad_files(folder, problems)
    return replace(data, warnings=tuple(own))


@lru_cache(maxsize=1)
def live_reachable() -> bool:
    """Whether Yahoo answers at all (a one-second probe), unless offline is configured."""
    if config.offline():
        return False
    try:
        with socket.create_connection(("query1.finance.yahoo.com", 443), timeout=1.0):
            return True
    except OSError:
        return False


def load_market_data(
    source: str = "auto",
    data_dir: str | Path | None = None,
    tickers: list[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    progress: Progress | None = None,
) -> MarketData:
    """Load market data from a named source (see module docstring for ``auto``).

    ``tickers`` None means every ticker the source has (for a live source: today's
    S&P 500 members); ``start``/``end`` are inclusive; ``progress`` follows a live
    download. DataError for an unknown source or a missing local folder.
    """
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if source == "local":
        folder = resolve_local_dir(data_dir)
        if folder is None:
            raise DataError(f"{config.data_dir_problem()}; or pass --data-dir")
        # sectors of each date from the whole files: a key names its company on its last
        # date in them, whatever range is then selected
        data = _point_in_time(load_local_panel(folder, tickers=tickers))
        return data.select(tickers=tickers, start=start, end=end)
    if source == "auto":
        return _auto(data_dir, tickers, start, end, progress)
    return _point_in_time(_load_remote(source, tickers, start, end, progress))


def _point_in_time(data: MarketData) -> MarketData:
    """``data`` whose sectors are dated on first use (:meth:`MarketData.sector_spans`),
    each key anchored at its last price date in what was loaded."""
    anchors = data.last_valid_dates().dropna()
    return replace(data, sector_periods=None, sector_anchors=anchors.to_dict())


def _load_remote(
    source: str,
    tickers: list[str] | None,
    start: DateLike | None,
    end: DateLike | None,
    progress: Progress | None,
) -> MarketData:
    if source == "bundled":
        from mltrainer.data.bundled import load_bundled

        return load_bundled(tickers=tickers, start=start, end=end)
    if source == "yahoo":
        from mltrainer.data.yahoo import load_yahoo

        return load_yahoo(_live_tickers(tickers), start=start, end=end, progress=progress)
    from mltrainer.data.polygon import load_polygon

    return load_polygon(_live_tickers(tickers), start=start, end=end, progress=progress)


def _live_tickers(tickers: list[str] | None) -> list[str]:
    if tickers:
        return tickers
    from mltrainer.data.universe import SP500UniverseManager

    return [s.symbol for s in SP500UniverseManager().load().constituents]


def _auto(
    data_dir: str | Path | None,
    tickers: list[str] | None,
    start: DateLike | None,
    end: DateLike | None,
    progress: Progress | None,
) -> MarketData:
    folder = resolve_local_dir(data_dir)
    if folder is not None:
        return load_market_data("local", folder, tickers, start, end)
    notes = []
    if live_reachable():
        try:
            return load_market_data("yahoo", None, tickers, start, end, progress)
        except (SourceError, DataError) as exc:
            notes.append(f"live data failed ({config.scrub(str(exc))}); ")
    else:
        notes.append(f"{config.data_dir_problem()} and no network; ")
    data = load_market_data("bundled", None, tickers, start, end)
    return replace(
        data,
        warnings=data.warnings
        + (
            "".join(notes) + "showing the real data bundled with the installed packages "
            "(20 S&P 500 stocks, adjusted close only).",
        ),
    )
