"""Where things live: the project root, the data folder, the cache folder, API keys.

Keys come from the environment first, then from ``.streamlit/secrets.toml`` (git-ignored).
They are read here only and never logged, put in an error text, or used in a cache key.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path | None:
    """The folder of real market data (``MLTRAINER_DATA_DIR`` or ``../shared/data``).

    Returns None when neither exists: the app then runs on the bundled package data.
    """
    env = os.environ.get("MLTRAINER_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    default = (PROJECT_ROOT / ".." / "shared" / "data").resolve()
    return default if default.is_dir() else None


def sp500_daily_dir() -> Path | None:
    """The per-ticker daily bars folder inside :func:`data_dir`, if present."""
    root = data_dir()
    if root is None:
        return None
    path = root / "sp500_daily"
    return path if path.is_dir() else None


def cache_dir() -> Path:
    """The disk cache folder (``MLTRAINER_CACHE_DIR`` or ``<project>/cache``)."""
    env = os.environ.get("MLTRAINER_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "cache"


def audit_dir() -> Path:
    """The audit-trail folder (``MLTRAINER_AUDIT_DIR`` or ``<project>/audit``)."""
    env = os.environ.get("MLTRAINER_AUDIT_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "audit"


@lru_cache(maxsize=1)
def _secrets_file() -> dict:
    path = PROJECT_ROOT / ".streamlit" / "secrets.toml"
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        # A broken secrets file must not stop the app; it behaves as if no key were set.
        return {}


def api_key(name: str) -> str | None:
    """An API key by its variable name (e.g. ``POLYGON_API_KEY``), or None if unset."""
    value = os.environ.get(name) or _secrets_file().get(name)
    return str(value).strip() or None if value else None


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every known API key (and any given secret) from a text meant for users."""
    out = str(text)
    candidates = [s for s in secrets if s]
    candidates += [k for k in (api_key("POLYGON_API_KEY"), api_key("FRED_API_KEY")) if k]
    for secret in candidates:
        out = out.replace(secret, "***")
    return out
