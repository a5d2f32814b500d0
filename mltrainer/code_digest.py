"""A hash of the package's source: which code computed a stored result, and whether a Dask
worker runs the same code as the process that sends it tasks."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


def source_digest(package: Path | None = None) -> str:
    """A hash of every ``.py`` file of the package (path and bytes), this one's by
    default (computed once per process): part of a stored run's identity, so that results
    stored by other code (a model fixed or changed since) are never read back as this
    code's, and compared by :mod:`mltrainer.numerics.engine` on each Dask worker."""
    if package is None:
        return _own_digest()
    h = hashlib.blake2b(digest_size=10)
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.cache
def _own_digest() -> str:
    return source_digest(Path(__file__).resolve().parent)
