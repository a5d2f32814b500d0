"""The S&P 500 universe for the Universe Explorer, loaded without touching the network.

Order: the cached Wikipedia copy (fresh or stale), else the newest saved page in the
data folder (it has the changes table, so membership on past dates works), else the
list bundled in pytickersymbols (no history). "Update from Wikipedia" is an explicit
button. Market caps come from the constituents-financials snapshot when there is one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from mltrainer import config
from mltrainer.data.universe import SP500Universe, SP500UniverseManager
from mltrainer.errors import DataError

EXPORT_MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
               "json": "application/json"}


def _saved_pages() -> list[Path]:
    root = config.data_dir()
    return sorted((root / "wikipedia").glob("*.html")) if root else []


@st.cache_data(show_spinner="Loading the S&P 500 constituents…", max_entries=2, ttl=3600)
def load_universe(refresh: int = 0) -> SP500Universe:
    """The universe (see module notes); ``refresh`` only busts the cache after an update."""
    manager = SP500UniverseManager()
    universe = manager.cached_wikipedia()
    if universe is None:
        pages = _saved_pages()
        universe = manager.from_html(pages[-1]) if pages else manager.from_pytickersymbols()
        if not pages:
            universe.warnings.append("no saved Wikipedia page and nothing cached: the list "
                                     "has no changes table, so past membership is unknown; "
                                     "press 'Update from Wikipedia' when online")
    try:
        universe = universe.with_market_caps("snapshot")
    except DataError as exc:
        universe.warnings.append(f"no market caps ({exc}); the treemap sizes stocks "
                                 "equally and cap weights are unavailable")
    return universe


def update_from_wikipedia() -> SP500Universe:
    """Fetch the live page into the cache (falls back with a warning when offline)."""
    return SP500UniverseManager().update()


def has_caps(universe: SP500Universe) -> bool:
    return any(s.market_cap for s in universe.constituents)


@st.cache_data(show_spinner=False, max_entries=6)
def export_bytes(_universe: SP500Universe, fmt: str, key: str) -> bytes:
    """The universe exported by :meth:`SP500Universe.export` as ``fmt``, as bytes
    (``key`` identifies the universe version in the cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _universe.export(Path(tmp) / f"sp500.{fmt}")
        return path.read_bytes()


@st.cache_data(show_spinner=False, max_entries=16)
def membership_on(_universe: SP500Universe, key: str, date) -> list[str]:
    return _universe.members_on(date)


def changes_around(universe: SP500Universe, date, days: int) -> pd.DataFrame:
    """Index changes within ``days`` calendar days either side of ``date``."""
    when = pd.Timestamp(date)
    ch = universe.changes
    near = ch[(ch["date"] >= when - pd.Timedelta(days=days))
              & (ch["date"] <= when + pd.Timedelta(days=days))]
    return near.sort_values("date", ascending=False).reset_index(drop=True)


def universe_key(universe: SP500Universe) -> str:
    as_of = None if universe.as_of is None else universe.as_of.date()
    return f"{universe.source}|{as_of}|{len(universe)}|{len(universe.changes)}"
