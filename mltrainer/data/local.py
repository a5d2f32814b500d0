"""A folder of per-ticker daily bar files.

Two layouts are understood, as CSV, CSV.gz or Parquet, one file per ticker named
``TICKER.ext`` (``BRK.B.csv.gz``):

- the ``sp500_daily`` format: ``timestamp,open,high,low,close,adjusted_close,volume,
  dividend_amount,split_coefficient`` (as-traded OHLC plus an adjusted close);
- the common export: ``Date,Open,High,Low,Close,Adj Close,Volume``.

Files are parsed with pyarrow (multi-threaded) and scattered straight into the wide
panel with numpy, which is what makes 504 tickers load in about a second.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mltrainer.data.files import regular_file
from mltrainer.data.market_data import FIELDS, MAX_PRICE, MarketData
from mltrainer.errors import DataError

SUFFIXES = (".csv.gz", ".csv", ".parquet")

MAX_BAR_BYTES = 64 * 2**20
"""Bytes of one bar file, decompressed: the largest real file (AAPL, 22 years of days) is
0.36 MB, so this allows centuries of daily bars while a 2.6 MB gzip bomb that expands to
1 GB (9 GB of memory once parsed) is skipped after reading 64 MB."""
MAX_BAR_ROWS = 2_000_000
"""Rows of one Parquet bar file (whose columns can expand far beyond their stored bytes)."""
_WHAT = "a bar file"

# column name (lower-cased, spaces and dashes to underscores) -> MarketData field
_ALIASES = {
    "timestamp": "date",
    "date": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjusted_close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "volume": "volume",
    "dividend_amount": "dividends",
    "dividends": "dividends",
    "split_coefficient": "splits",
    "stock_splits": "splits",
}
_EXTRA = ("dividends", "splits")
_PRICES = ("open", "high", "low", "close", "adj_close")


def ticker_of(path: Path) -> str:
    """``BRK.B.csv.gz`` -> ``BRK.B``."""
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)].upper()
    return path.stem.upper()


def list_files(folder: str | Path, skipped: list[str] | None = None) -> dict[str, Path]:
    """Ticker -> file for every bar file in ``folder``; DataError if there is none.

    A bar file whose name is not valid UTF-8 (it cannot be a ticker, nor be printed) is
    left out, with a line naming it (undecodable bytes as ``\\xff``) appended to
    ``skipped``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    files = {}
    bad_names = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(SUFFIXES):
            if _utf8(path.name):
                files.setdefault(ticker_of(path), path)
            else:
                bad_names.append(
                    f"{safe_path(path)}: the file name is not valid UTF-8 "
                    "(rename it TICKER.csv, TICKER.csv.gz or TICKER.parquet)"
                )
    if skipped is not None:
        skipped.extend(bad_names)
    if not files:
        also = f" ({len(bad_names)} with a name that is not valid UTF-8)" if bad_names else ""
        raise DataError(
            f"data folder {safe_path(folder)} has no bar files{also} "
            "(*.csv, *.csv.gz or *.parquet, one per ticker)"
        )
    return files


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes became lone surrogates
        return False
    return True


def safe_path(path: str | Path) -> str:
    """``path`` printable whatever its bytes: those not valid UTF-8 shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _read_table(path: Path) -> pa.Table:
    """The file's table, reading at most :data:`MAX_BAR_BYTES` decompressed bytes."""
    try:
        size = regular_file(path, _WHAT).st_size
        if path.name.lower().endswith(".parquet"):
            return _read_parquet(path, size)
        stream = pa.input_stream(str(path))  # gzip picked from the name, decompressed here
        with stream:
            data = stream.read(MAX_BAR_BYTES + 1)
        if len(data) > MAX_BAR_BYTES:
            raise DataError(_too_large(path, "decompressed" if size < len(data) else "on disk"))
        return _read_csv(data)
    except (OSError, EOFError, zlib.error, pa.ArrowInvalid) as exc:
        raise DataError(
            f"{path}: cannot be read ({_short(exc)}); the file may be truncated or not a bar file"
        ) from None


def _read_csv(data: bytes) -> pa.Table:
    table = pacsv.read_csv(pa.BufferReader(data))
    zoned = {f.name: pa.string() for f in table.schema if _zoned(f.type)}
    if zoned:  # pyarrow moves "...T00:00+09:00" to UTC, a day early: keep the text instead
        options = pacsv.ConvertOptions(column_types=zoned)
        table = pacsv.read_csv(pa.BufferReader(data), convert_options=options)
    return table


def _zoned(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.tz is not None


def _too_large(path: Path, how: str) -> str:
    limit = f"{MAX_BAR_BYTES / 2**20:.3g} MB"
    return (
        f"{path}: over {limit} {how}, too large to be a bar file (at most {limit} of a file "
        "are read; the largest real file, 22 years of daily bars, is under 1 MB)"
    )


def _read_parquet(path: Path, size: int) -> pa.Table:
    """A Parquet file whose stored size, declared uncompressed size and rows are bounded."""
    if size > MAX_BAR_BYTES:
        raise DataError(_too_large(path, "on disk"))
    meta = pq.ParquetFile(path).metadata
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > MAX_BAR_BYTES:
        raise DataError(_too_large(path, "uncompressed"))
    if meta.num_rows > MAX_BAR_ROWS:
        raise DataError(
            f"{path}: {meta.num_rows} rows, too many to be a bar file (at most {MAX_BAR_ROWS}; "
            "the largest real file has about 5,400)"
        )
    return pq.read_table(path)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def read_bars(path: str | Path, notes: list[str] | None = None) -> dict[str, np.ndarray]:
    """One file's bars as numpy arrays: ``date`` (datetime64[D]) and the fields present.

    Raises DataError naming the file for: unreadable or truncated content, no rows, no
    date or close column, unparseable dates, duplicated dates, a price that is not a
    positive finite number below ``MAX_PRICE`` (0, -3, inf, 1e308). Rows are returned
    sorted by date.

    Bars that cannot be right but leave the rest of the file usable are dropped instead,
    each kind with one line appended to ``notes`` naming the file, the count and the
    dates: bars dated after today, bars with no close, bars whose high is below their
    low; a negative volume becomes missing. A file with no adjusted close gets a line
    too: its close stands in, so its splits and dividends are not adjusted for.
    """
    path = Path(path)
    table = _read_table(path)
    cols = {}
    for name in table.column_names:
        key = _ALIASES.get(name.strip().lower().replace(" ", "_").replace("-", "_"))
        if key and key not in cols:
            cols[key] = table.column(name)
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has no rows")
    if "date" not in cols or not ({"close", "adj_close"} & cols.keys()):
        raise DataError(
            f"{path}: no date and close columns (found {', '.join(table.column_names)}); expected "
            "timestamp,open,high,low,close,adjusted_close,volume,... or "
            "Date,Open,High,Low,Close,Adj Close,Volume"
        )
    days = _days(path, cols.pop("date"))
    out = {}
    for key, col in cols.items():
        try:
            out[key] = np.asarray(col.to_numpy(zero_copy_only=False), dtype="float64")
        except (ValueError, TypeError, pa.ArrowInvalid) as exc:
            raise DataError(f"{path}: column '{key}' is not numeric ({_short(exc)})") from None
    order = np.argsort(days, kind="stable")
    days = days[order]
    dup = days[1:] == days[:-1]
    if dup.any():
        first = str(days[1:][dup][0])
        raise DataError(f"{path}: duplicated date {first} ({int(dup.sum())} duplicate row(s))")
    for key in out:
        out[key] = out[key][order]
    for key in _PRICES:
        if key in out:
            _check_prices(path, key, out[key], days)
    unadjusted = "adj_close" not in out
    if unadjusted:
        out["adj_close"] = out["close"]
    if "close" not in out:
        out["close"] = out["adj_close"]
    out["date"] = days
    notes = notes if notes is not None else []
    out = _drop_bad_bars(path, out, notes)
    if unadjusted:
        notes.append(
            f"{path}: no adjusted close column (found {', '.join(table.column_names)}); the "
            "close is used as the adjusted close, so splits and dividends are not adjusted for"
        )
    return out


# a time of day then its UTC offset: "T00:00:00+09:00", " 09:30-05:00", "T00:00:00.000Z"
_OFFSET = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d*)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def _days(path: Path, col: pa.ChunkedArray) -> np.ndarray:
    """The calendar dates (datetime64[D]) of a date column: a timestamp with a time zone or
    a UTC offset is dated by its own wall clock (``2020-01-02T00:00+09:00`` is 2 January,
    not the UTC 1 January); a column of numbers is refused, not read as nanoseconds."""
    kind = col.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        raise DataError(
            f"{path}: the dates are numbers (the first is {col[0].as_py()}), not dates; "
            "write them as YYYY-MM-DD (YYYYMMDD numbers and epoch seconds or milliseconds "
            "are not read)"
        )
    try:
        if _zoned(kind):
            dates = pd.DatetimeIndex(col.to_pandas())  # in its own zone
        else:
            values = pd.Series(col.to_numpy(zero_copy_only=False))
            if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
                values = values.str.replace(_OFFSET, r"\1", regex=True)
            dates = pd.DatetimeIndex(pd.to_datetime(values))
        if dates.tz is not None:
            dates = dates.tz_localize(None)  # the wall clock of the zone, not UTC
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unparseable dates ({_short(exc)})") from None
    if dates.isna().any():
        raise DataError(f"{path}: {int(dates.isna().sum())} row(s) have no date")
    return dates.to_numpy().astype("datetime64[D]")


def _check_prices(path: Path, key: str, values: np.ndarray, days: np.ndarray) -> None:
    """DataError naming the file, the first date and the count of impossible prices."""
    with np.errstate(invalid="ignore"):
        for bad, what in (
            (values <= 0, "non-positive"),
            (
                np.isinf(values) | (values > MAX_PRICE),
                f"non-finite or absurd (above {MAX_PRICE:g})",
            ),
        ):
            if bad.any():
                raise DataError(
                    f"{path}: {what} {key} price {values[bad][0]} on "
                    f"{days[bad][0]} ({int(bad.sum())} row(s))"
                )


def _dates(days: np.ndarray) -> str:
    """``2010-01-04`` or ``2010-01-04 to 2011-03-15`` (first and last of a sorted set)."""
    return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """Start and length of the longest run of True in ``mask`` (which has one)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i] - starts[i])


def _drop_bad_bars(path: Path, out: dict, notes: list[str]) -> dict:
    """Drop the bars of ``out`` that cannot be right, with one note per kind of problem."""
    days = out["date"]
    today = np.datetime64(pd.Timestamp.now(tz="UTC").date(), "D")
    drop = np.zeros(len(days), dtype=bool)
    future = days > today
    if future.any():
        notes.append(
            f"{path}: dropped {int(future.sum())} bar(s) dated after today ({_dates(days[future])})"
        )
        drop |= future
    missing = np.isnan(out["adj_close"]) & ~future
    if missing.any():
        start, length = _longest_run(missing)
        notes.append(
            f"{path}: dropped {int(missing.sum())} bar(s) with no close price "
            f"({_dates(days[missing])}; longest gap {length} bar(s) from "
            f"{days[start]})"
        )
        drop |= missing
    if "high" in out and "low" in out:
        with np.errstate(invalid="ignore"):
            crossed = (out["high"] < out["low"]) & ~drop
        if crossed.any():
            notes.append(
                f"{path}: dropped {int(crossed.sum())} bar(s) whose high is below "
                f"their low ({_dates(days[crossed])})"
            )
            drop |= crossed
    if "volume" in out:
        with np.errstate(invalid="ignore"):
            negative = (out["volume"] < 0) & ~drop
        if negative.any():
            notes.append(
                f"{path}: {int(negative.sum())} bar(s) with a negative volume "
                f"({_dates(days[negative])}); their volume is treated as missing"
            )
            out["volume"] = np.where(negative, np.nan, out["volume"])
    if drop.all():
        raise DataError(f"{path}: no usable bar left ({'; '.join(notes[-3:])})")
    if drop.any():
        out = {key: values[~drop] for key, values in out.items()}
    return out


def load_local(
    folder: str | Path,
    tickers: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    on_error: str = "raise",
    sectors: dict | None = None,
    threads: int = 4,
) -> MarketData:
    """Load a folder of per-ticker files into one :class:`MarketData`.

    Parameters
    ----------
    folder : path
        The folder (e.g. ``../shared/data/sp500_daily``).
    tickers : list of str, optional
        Only these tickers (an unknown one raises DataError naming it). Default: all.
    start, end : str, optional
        Inclusive date range applied after loading.
    on_error : {"raise", "skip"}
        What a bad file does: raise (default) a DataError that lists every bad file and
        why, or skip it and record the reason in ``MarketData.warnings``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    bad_names: list[str] = []
    files = list_files(folder, bad_names)
    if tickers:
        wanted = [str(t).strip().upper() for t in tickers if str(t).strip()]
        unknown = [t for t in wanted if t not in files]
        if unknown:
            from mltrainer.data.ticker_hints import with_hints

            raise DataError(
                with_hints(
                    f"unknown ticker(s) {', '.join(unknown)}: no file for them in {folder}",
                    unknown,
                    files,
                )
            )
        files = {t: files[t] for t in dict.fromkeys(wanted)}

    def _one(item):
        ticker, path = item
        notes: list[str] = []
        try:
            return ticker, read_bars(path, notes), None, notes
        except DataError as exc:
            return ticker, None, str(exc), notes

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(_one, files.items()))
    problems = [msg for _, bars, msg, _ in results if bars is None]
    good = [(t, bars) for t, bars, _, _ in results if bars is not None]
    dropped = [n for _, bars, _, notes in results if bars is not None for n in notes]
    if problems and (on_error == "raise" or not good):
        raise bad_files(folder, problems)
    data = _scatter(
        good,
        source="local",
        as_of=None,
        sectors=sectors,
        warnings=tuple(f"skipped {m}" for m in (problems if tickers else bad_names + problems))
        + tuple(dropped),
    )
    if start is not None or end is not None:
        data = data.select(start=start, end=end)
    return data


def bad_files(folder: str | Path, problems: list[str]) -> DataError:
    """The error for a load with bad files: each problem (which names its file), ten at most."""
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    listed = "; ".join(problems[:10]) + more
    return DataError(f"{len(problems)} bad file(s) in {folder}: {listed}")


def _scatter(items: list[tuple[str, dict]], source: str, as_of, sectors, warnings) -> MarketData:
    """Place each ticker's arrays into shared (dates x tickers) arrays with one searchsorted."""
    all_days = np.unique(np.concatenate([bars["date"] for _, bars in items]))
    n, m = len(all_days), len(items)
    names = list(FIELDS) + [e for e in _EXTRA if any(e in bars for _, bars in items)]
    panel = {name: np.full((n, m), np.nan) for name in names}
    for j, (_, bars) in enumerate(items):
        rows = np.searchsorted(all_days, bars["date"])
        for name in names:
            if name in bars:
                panel[name][rows, j] = bars[name]
    index = pd.DatetimeIndex(all_days.astype("datetime64[ns]"), name="date")
    columns = pd.Index([t for t, _ in items])
    frames = {
        name: pd.DataFrame(panel.pop(name), index=index, columns=columns, copy=False)
        for name in list(panel)
    }
    extras = {e: frames.pop(e) for e in _EXTRA if e in frames}
    if "dividends" in extras:
        extras["dividends"] = extras["dividends"].fillna(0.0)
    if "splits" in extras:
        extras["splits"] = extras["splits"].fillna(1.0)
    # a folder's data is "as of" its last bar, not of when the files were copied
    return MarketData(
        **frames,
        **extras,
        source=source,
        as_of=index[-1] if as_of is None else as_of,
        sectors={k: v for k, v in (sectors or {}).items() if k in columns},
        warnings=warnings,
    )
