"""Where a leaderboard run keeps its finished work, so a killed run resumes.

One folder per run identity (the data's fingerprint, the universe, the folds, the
costs and the code: :func:`run_id`, :func:`mltrainer.code_digest.source_digest`) under
``results/leaderboard/``::

    <run id>/trials/<model>/<setting hash>.parquet   net daily returns of one (model, setting)
    <run id>/models/<model>.json                     the model's scored row
    <run id>/leaderboard.parquet, meta.json          the finished table and what it covers

A (model, setting) task is done when its Parquet file exists; a model is done when its
row exists. Files are written to a temporary name and renamed, so a run killed while
writing leaves no half file behind. A stored file that cannot be read all the same (cut
short by a full disk or a copy, edited by hand) counts as missing: its task is run again,
with a warning (logged and kept in :attr:`LeaderboardStore.warnings`), and its file is
rewritten. The folder is git-ignored (``results/``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mltrainer import config

log = logging.getLogger(__name__)


def _digest(obj: object, size: int = 10) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def run_id(identity: dict) -> str:
    """A short stable name for a run: a hash of what decides its numbers."""
    return _digest(identity, 8)


def _model_dir(key: str) -> str:
    return key.replace("/", "__")


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class LeaderboardStore:
    """The finished tasks and rows of one leaderboard run (module notes)."""

    def __init__(self, identity: dict, root: Path | None = None) -> None:
        self.identity = identity
        self.root = Path(root or config.results_dir() / "leaderboard") / run_id(identity)
        self.warnings: list[str] = []  # stored files that could not be read back

    def _unreadable(self, path: Path, problem: object) -> None:
        text = f"{path}: unreadable stored result ({problem}); computing it again"
        log.warning("%s", text)
        self.warnings.append(text)

    def _trial_path(self, key: str, params: dict) -> Path:
        return self.root / "trials" / _model_dir(key) / f"{_digest(params)}.parquet"

    def has_trial(self, key: str, params: dict) -> bool:
        """Whether the (model, setting) task has finished in this or an earlier run."""
        return self._trial_path(key, params).is_file()

    def save_trial(
        self, key: str, params: dict, dates: pd.DatetimeIndex, returns: np.ndarray
    ) -> None:
        """Keep one (model, setting)'s net daily returns (the signal is not kept: too big)."""
        frame = pd.DataFrame({"returns": np.asarray(returns, dtype="float64")}, index=dates)
        frame.attrs["params"] = json.dumps(params, sort_keys=True, default=str)
        _write_atomic(self._trial_path(key, params), lambda p: frame.to_parquet(p))

    def load_trial(self, key: str, params: dict) -> np.ndarray | None:
        """The stored net daily returns of a (model, setting), or None (with a warning)
        if the file cannot be read: the task is then run again."""
        path = self._trial_path(key, params)
        try:
            return pd.read_parquet(path)["returns"].to_numpy(dtype="float64")
        except (OSError, ValueError, KeyError, TypeError) as exc:  # ArrowInvalid: a ValueError
            self._unreadable(path, f"{type(exc).__name__}: {str(exc)[:200]}")
            return None

    def _row_path(self, key: str) -> Path:
        return self.root / "models" / f"{_model_dir(key)}.json"

    def row(self, key: str) -> dict | None:
        """The model's scored row, or None if it has not been scored yet (or its file
        cannot be read: then with a warning, and the model is scored again)."""
        path = self._row_path(key)
        if not path.is_file():
            return None
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError
            self._unreadable(path, f"{type(exc).__name__}: {str(exc)[:200]}")
            return None
        if not isinstance(row, dict):
            self._unreadable(path, f"a JSON {type(row).__name__}, not an object")
            return None
        return row

    def save_row(self, key: str, row: dict) -> None:
        """Keep a model's scored row."""
        text = json.dumps(row, default=_json_default, allow_nan=True)
        _write_atomic(self._row_path(key), lambda p: p.write_text(text))

    def save_table(self, table: pd.DataFrame, meta: dict) -> Path:
        """Write the finished table (Parquet) and what it covers (``meta.json``, with the
        audit id); returns the Parquet file's path."""
        path = self.root / "leaderboard.parquet"
        _write_atomic(path, lambda p: table.to_parquet(p))
        text = json.dumps(meta, default=_json_default, indent=2)
        _write_atomic(self.root / "meta.json", lambda p: p.write_text(text))
        return path


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def latest_run(root: Path | None = None) -> Path | None:
    """The folder of the most recently finished leaderboard under ``root`` (default
    ``results/leaderboard``), or None."""
    base = Path(root or config.results_dir() / "leaderboard")
    done = sorted(base.glob("*/meta.json"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent if done else None


def read_run(folder: Path) -> tuple[pd.DataFrame, dict]:
    """A finished leaderboard's table and meta."""
    meta = json.loads((folder / "meta.json").read_text())
    return pd.read_parquet(folder / "leaderboard.parquet"), meta
