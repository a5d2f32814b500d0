"""Reading a file a user names (a saved page, a constituents list): bounded in bytes.

A size check on ``stat`` alone trusts the file system: ``/dev/zero`` or a named pipe
reports size 0 and never ends, and a file can grow between the check and the read.
:func:`read_bounded` accepts regular files only and reads at most one byte more than
its limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mltrainer.errors import DataError

MAX_LIST_BYTES = 64 * 2**20
"""A constituents or membership CSV: the real ones are well under 1 MB."""


def regular_file(path: Path, what: str) -> os.stat_result:
    """``path``'s status, or DataError naming it: missing, unreadable, or not a regular
    file (a folder, a device, a pipe). ``what`` says what the file should be."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected {what})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device or a pipe"
        raise DataError(f"{path}: is {kind}, not a file (expected {what})")
    return info


def read_bounded(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of the regular file ``path`` (:func:`regular_file`), or DataError naming
    it when it cannot be read or holds over ``max_bytes``."""
    path = Path(path)
    regular_file(path, what)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise DataError(
            f"{path}: over {max_bytes / 2**20:.0f} MB, too large to be {what} "
            f"(at most {max_bytes // 2**20} MB are read)"
        )
    return data
