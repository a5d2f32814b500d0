"""Where things live: the project root, the data folder, the cache folder, API keys.

Keys come from the environment first, then from ``.streamlit/secrets.toml`` (git-ignored).
They are read here only and never logged, put in an error text, or used in a cache key.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# the commission the Model Lab, `backtest`, `walkforward` and `leaderboard` charge unless
# told otherwise (bps of traded value): free trading would flatter a model that trades a lot
DEFAULT_COST_BPS = 5.0

log = logging.getLogger(__name__)


OFFLINE_VARIABLE = "MLTRAINER_OFFLINE"
OFFLINE_REASON = (
    f"not contacted because {OFFLINE_VARIABLE} is set (cached copies are still used; unset "
    "it to fetch, or use the local or bundled data)"
)


def offline() -> bool:
    """Whether ``MLTRAINER_OFFLINE`` (1/true/yes/on) forbids network fetches: cached copies
    are served, stale or not, and nothing beyond this machine is contacted."""
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def data_dir() -> Path | None:
    """The folder of real market data (``MLTRAINER_DATA_DIR`` or ``../shared/data``).

    Returns None when neither exists: the app then runs on the bundled package data.
    """
    env = os.environ.get("MLTRAINER_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    default = (PROJECT_ROOT / ".." / "shared" / "data").resolve()
    return default if default.is_dir() else None


def data_dir_problem() -> str:
    """Why :func:`sp500_daily_dir` found no price folder, for an error or a warning: a
    ``MLTRAINER_DATA_DIR`` that is set but wrong is named, not taken for an unset one."""
    env = os.environ.get("MLTRAINER_DATA_DIR")
    if not env:
        return "no local data folder (set MLTRAINER_DATA_DIR, e.g. to ../shared/data)"
    path = Path(env).expanduser()
    what = (
        "does not exist"
        if not path.exists()
        else "is not a folder"
        if not path.is_dir()
        else "has no sp500_daily folder of price files"
    )
    return f"MLTRAINER_DATA_DIR={path} {what}"


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


def results_dir() -> Path:
    """Stored results of long runs, e.g. the leaderboard (``MLTRAINER_RESULTS_DIR`` or
    ``<project>/results``, git-ignored)."""
    env = os.environ.get("MLTRAINER_RESULTS_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "results"


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


# A key is redacted by value wherever it appears, so it must be a string that cannot
# also be ordinary text: "0" or "12345678" would turn every such number in a message or
# an audit line into "***". Real Polygon and FRED keys are 32 URL-safe characters.
MIN_KEY_LENGTH = 8
MIN_KEY_DISTINCT = 4
KEY_NAMES = ("POLYGON_API_KEY", "FRED_API_KEY")
_KEY_CHARS = re.compile(r"[A-Za-z0-9._~-]+")
_warned: set[str] = set()


def key_problem(name: str) -> str | None:
    """Why the key in variable ``name`` is refused, or None (unset or usable).

    The text names the variable and never contains the value.
    """
    value = _raw_key(name)
    if value is None:
        return None
    if len(value) < MIN_KEY_LENGTH or len(set(value)) < MIN_KEY_DISTINCT:
        why = (
            f"shorter than {MIN_KEY_LENGTH} characters or fewer than {MIN_KEY_DISTINCT} "
            "distinct ones"
        )
    elif not _KEY_CHARS.fullmatch(value):
        why = "made of characters other than letters, digits and . _ ~ -"
    elif value.isdigit():
        why = "only digits"
    else:
        return None
    return (
        f"{name} is ignored: the value is {why}, so it cannot be a real key and could "
        f"not be removed from messages safely. Check {name} in the environment or in "
        ".streamlit/secrets.toml"
    )


def api_key(name: str) -> str | None:
    """An API key by its variable name (e.g. ``POLYGON_API_KEY``), or None if unset.

    A value too short or too plain to redact safely (see :func:`key_problem`) is refused:
    it is treated as unset and a warning naming the variable is logged once.
    """
    problem = key_problem(name)
    if problem is not None:
        if name not in _warned:
            _warned.add(name)
            log.warning("%s", problem)
        return None
    return _raw_key(name)


def _raw_key(name: str) -> str | None:
    value = os.environ.get(name) or _secrets_file().get(name)
    return str(value).strip() or None if value else None


def _token(secret: str) -> re.Pattern:
    """``secret`` wherever it stands, in any letter case, when it is a usable key.

    No word boundary is asked for: in a JSON error body the key can follow an escape such
    as ``\\n``, ``\\t`` or ``\\u0022`` (whose last character is a letter or digit) or be
    followed by letters (``key=KEYx``), and a boundary test let those through. A key from
    :func:`api_key` is long and varied enough (:func:`key_problem`) not to occur in ordinary
    text by chance, and a server that echoes it upper-cased still gives it away. A secret
    handed in that is too short or plain for that is matched as a whole token only, so it
    cannot turn every such number or word in a message into ``***``.
    """
    if len(secret) >= MIN_KEY_LENGTH and len(set(secret)) >= MIN_KEY_DISTINCT:
        if not secret.isdigit():
            return re.compile(re.escape(secret), re.IGNORECASE)
    return re.compile(
        r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![A-Za-z0-9]))" + re.escape(secret) + r"(?![A-Za-z0-9])"
    )


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every known API key (and any given secret) from a text meant for users.

    Every occurrence is replaced, also inside a longer word or after an escape sequence,
    so no neighbouring character can carry a key into a message, a log line or an audit
    record.
    """
    out = str(text)
    candidates = [s for s in secrets if s]
    candidates += [k for k in (api_key(n) for n in KEY_NAMES) if k]
    for secret in sorted(set(candidates), key=len, reverse=True):
        out = _token(secret).sub("***", out)
    return out
