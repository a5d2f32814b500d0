"""The audit trail: one JSON line per model run, backtest or walk-forward.

Each record says what ran (kind, model key, parameters), on which data (source,
tickers, date range, a fingerprint of the values), with which code (``git describe``
or the package version), when (UTC) and what came out (headline metrics). Records are
appended to ``<audit_dir>/audit.jsonl`` (folder created with mode 0700, file 0600).

Secrets never reach the file: a field whose name looks like a credential (containing
``key``, ``token`` or ``secret``) is refused, and the finished line is passed through
:func:`mltrainer.config.scrub`, which removes every configured API key value.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import mltrainer
from mltrainer import config
from mltrainer.errors import DataError, ParameterError
from mltrainer.validate import DateLike

if TYPE_CHECKING:
    from mltrainer.data.market_data import MarketData

FILE_NAME = "audit.jsonl"
_SECRET_NAME = re.compile(r"key|token|secret|password", re.IGNORECASE)


def audit_file() -> Path:
    """The trail: ``audit.jsonl`` in the configured audit folder, one JSON record a line."""
    return config.audit_dir() / FILE_NAME


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe --always --dirty`` of the project, else the package version."""
    root = config.PROJECT_ROOT
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            text = out.stdout.strip()
            if out.returncode == 0 and text:
                return f"git:{text}"
        except (OSError, subprocess.SubprocessError):
            pass
    return f"mltrainer {mltrainer.__version__}"


def _refuse_secrets(obj, where: str) -> None:
    if isinstance(obj, dict):
        for name, value in obj.items():
            if _SECRET_NAME.search(str(name)):
                raise ParameterError(
                    f"audit: refusing to record {where}.{name}: a field named like a "
                    "credential (key/token/secret/password) is never written to the trail"
                )
            _refuse_secrets(value, f"{where}.{name}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _refuse_secrets(value, f"{where}[{i}]")


def _plain(obj):
    """JSON-ready copy: numpy/pandas scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, (pd.Timestamp, datetime)):
        return obj.isoformat()
    if obj is None or isinstance(obj, (str, int)):
        return obj
    return str(obj)


def _date(value: DateLike | None) -> str | None:
    if value is None:
        return None
    return str(pd.Timestamp(value).date())


def record(
    kind: str,
    model_key: str | None,
    params: dict | None,
    data: MarketData | None = None,
    tickers: Iterable[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    metrics: dict | None = None,
    source: str | None = None,
    extra: dict | None = None,
) -> dict:
    """Append one record to the trail and return it (with its ``id``).

    Parameters
    ----------
    kind : str
        What ran: ``backtest``, ``walkforward``, ``model_run``, ...
    model_key : str or None
        Registry key of the model.
    params : dict
        Its parameters.
    data : MarketData, optional
        The data it ran on (its fingerprint, source and dates are recorded).
    tickers : list of str, optional
        Default: the data's tickers.
    start, end : date-like, optional
        The requested range; default the data's first and last dates.
    metrics : dict, optional
        Headline figures.
    source : str, optional
        The data source name; default the data's.
    extra : dict, optional
        Anything else worth keeping (settings of a backtest).
    """
    params = dict(params or {})
    metrics = dict(metrics or {})
    extra = dict(extra or {})
    for name, part in (("params", params), ("metrics", metrics), ("extra", extra)):
        _refuse_secrets(part, name)
    dates = getattr(data, "dates", None)
    first, last = (dates[0], dates[-1]) if dates is not None and len(dates) else (None, None)
    if tickers is None:
        tickers = data.tickers if data is not None else []
    rec = {
        "id": uuid.uuid4().hex[:12],
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": str(kind),
        "model": model_key,
        "params": params,
        "source": source if source is not None else getattr(data, "source", None),
        "tickers": list(tickers),
        "start": _date(start if start is not None else first),
        "end": _date(end if end is not None else last),
        "data_fingerprint": data.fingerprint() if data is not None else None,
        "code_version": code_version(),
        "metrics": metrics,
    }
    if extra:
        rec["extra"] = extra
    line = config.scrub(json.dumps(_plain(rec), allow_nan=False, sort_keys=False))
    _append(line)
    return json.loads(line)


def _append(line: str) -> None:
    folder = config.audit_dir()
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    path = folder / FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # pragma: no cover - non-POSIX
            pass
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


# the fields `audit list` shows, and whether each may be null
_LISTED = {"id": False, "time": False, "kind": False, "model": True, "start": True, "end": True}


def record_problem(rec: dict) -> str | None:
    """Why a record cannot be listed (a shown field missing or not a text), or None."""
    for name, nullable in _LISTED.items():
        value = rec.get(name)
        if value is None and nullable:
            continue
        if isinstance(value, str) and (nullable or value.strip()):
            continue
        shown = "missing" if name not in rec else json.dumps(value, default=str)[:40]
        return f"its {name} is {shown}, not a text"
    return None


def _lines() -> Iterable[tuple[int, dict | None, str | None]]:
    """``(line number, record or None, why it is unreadable or None)`` per non-blank line."""
    path = audit_file()
    if not path.is_file():
        return
    # bytes, decoded line by line: one line damaged on disk (a non-UTF-8 byte, a record
    # that is not an object) must not hide every other record
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8").strip()
                record = json.loads(text) if text else None
            except UnicodeDecodeError:
                yield number, None, "it is not UTF-8 text"
                continue
            except json.JSONDecodeError as exc:
                yield number, None, f"it is not valid JSON ({exc.msg})"
                continue
            if isinstance(record, dict):
                yield number, record, None
            elif text:
                yield number, None, f"it is a JSON {type(record).__name__}, not an object"


def read(limit: int | None = None) -> list[dict]:
    """The records, oldest first (the last ``limit`` of them); unreadable lines skipped."""
    out = [rec for _, rec, _ in _lines() if rec is not None]
    if limit is not None:
        out = out[-limit:] if limit > 0 else []
    return out


def scan(limit: int | None = None) -> tuple[list[dict], list[str]]:
    """The records fit to list, oldest first (the last ``limit`` of them), and one note
    per line left out (``"line 7: its time is null, not a text"``): a damaged line is
    named, and never hides the others."""
    out, notes = [], []
    for number, rec, why in _lines():
        if rec is not None:
            why = record_problem(rec)
        if why is None:
            out.append(rec)
        else:
            ident = rec.get("id") if rec is not None else None
            named = f" (id {ident})" if isinstance(ident, str) and ident else ""
            notes.append(f"line {number}{named}: {why}")
    if limit is not None:
        out = out[-limit:] if limit > 0 else []
    return out, notes


def show(record_id: str) -> dict:
    """The record with this id (or a unique prefix of it)."""
    wanted = str(record_id).strip().lower()
    if not wanted:
        raise DataError("give an audit record id (see `audit list`)")
    hits = [r for r in read() if str(r.get("id", "")).startswith(wanted)]
    if not hits:
        raise DataError(
            f"no audit record with id {record_id!r} in {audit_file()}; `audit list` shows the ids"
        )
    if len({str(r["id"]) for r in hits}) > 1:
        raise DataError(
            f"id prefix {record_id!r} matches {len(hits)} records; give more characters"
        )
    return hits[-1]
