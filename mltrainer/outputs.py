"""Writing a user's output file whole or not at all.

A report, an export or a results file is written to a temporary file beside its target
and renamed into place once complete: a write that fails half-way (a full disk, a
dropped mount) leaves the previous file as it was, never a truncated fragment under the
name a reader opens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mltrainer.errors import DataError


def temporary_beside(path: Path) -> Path:
    """A hidden name in ``path``'s folder for writing it (the rename stays on one disk)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it into place.

    DataError naming ``path`` when the write fails; the temporary file is removed and an
    earlier file at ``path`` is left unchanged.
    """
    path = Path(path)
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
