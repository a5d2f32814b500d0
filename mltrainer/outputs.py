"""Writing a user's output file whole or not at all.

A report, an export or a results file is written to a temporary file beside its target
and renamed into place once complete: a write that fails half-way (a full disk, a
dropped mount) leaves the previous file as it was, never a truncated fragment under the
name a reader opens. A character device (``/dev/null``, a terminal) is written directly:
there is no file to replace, and a file renamed over it would take its place.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def temporary_beside(path: Path) -> Path:
    """A hidden name in ``path``'s folder for writing it (the rename stays on one disk)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def is_device(path: str | Path) -> bool:
    """Whether ``path`` is a character device (``/dev/null``, ``/dev/tty``): an output
    sink that is written in place, never through a temporary file."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except (OSError, ValueError):  # missing, or a name the OS refuses
        return False


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it into place
    (``write(path)`` itself for a character device: :func:`is_device`).

    DataError naming ``path`` when the write fails; the temporary file is removed and an
    earlier file at ``path`` is left unchanged.
    """
    path = Path(path)
    if is_device(path):
        try:
            write(path)
        except OSError as exc:
            raise DataError(f"{path}: cannot be written ({exc.strerror or exc})") from None
        return
    tmp = temporary_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"{path}: cannot be written ({exc.strerror or exc}); an earlier file there is "
            "left as it was"
        ) from None


def parquet_writer(frame: pd.DataFrame, **kwargs) -> Callable[[Path], None]:
    """A :func:`write_atomic` callback writing ``frame`` as Parquet (``kwargs`` go to
    ``to_parquet``) through a file Python opens: pyarrow cannot open a name that is not
    valid UTF-8 (``--out $'x\\xff.parquet'`` ended in a traceback), Python can."""

    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            frame.to_parquet(handle, **kwargs)

    return write
