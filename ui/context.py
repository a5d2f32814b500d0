"""Global choices in the sidebar (data source, date range, universe) and the cached
market data they select. Built once per rerun by app.py; pages read :func:`current`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st

from mltrainer.data.market_data import MarketData
from mltrainer.data.sources import SOURCES, load_market_data
from mltrainer.errors import MLTrainerError

_SOURCE_HELP = (
    "auto: the local data folder if configured, else live Yahoo data, else the real data "
    "bundled with the installed packages (20 stocks)."
)


@dataclass(frozen=True)
class Selection:
    source: str
    start: dt.date | None
    end: dt.date | None
    sectors: tuple[str, ...]


@st.cache_resource(show_spinner="Loading market data…", max_entries=4)
def _load(source: str) -> MarketData:
    # cache_resource, not cache_data: the 504-ticker panel is ~200 MB and immutable, so it
    # is shared, never pickled/copied on each rerun.
    return load_market_data(source=source)


def load(source: str) -> MarketData | None:
    """The whole panel of a source, or None after showing what went wrong."""
    try:
        return _load(source)
    except MLTrainerError as exc:
        st.error(f"Could not load data from source '{source}': {exc}")
        return None


def sidebar() -> Selection:
    """Draw the global controls; remember them across pages in session state."""
    with st.sidebar:
        st.markdown("### Data")
        source = st.selectbox("Data source", SOURCES, key="g_source", help=_SOURCE_HELP)
        data = load(source)
        if data is None:
            st.session_state["selection"] = Selection(source, None, None, ())
            return st.session_state["selection"]
        first, last = data.dates[0].date(), data.dates[-1].date()
        default_start = max(first, last - dt.timedelta(days=365 * 10))
        dates = st.date_input("Date range", value=(default_start, last), min_value=first,
                              max_value=last, key="g_dates")
        start, end = (dates if isinstance(dates, tuple) and len(dates) == 2
                      else (default_start, last))
        sectors = sorted(set(data.sectors.values()))
        chosen = st.multiselect("Universe: sectors", sectors, key="g_sectors",
                                help="Empty means every sector")
        st.caption(f"Source **{data.source}** · {data.n_tickers} tickers · "
                   f"{first} to {last}")
        for warning in data.warnings[:3]:
            st.warning(warning)
    sel = Selection(source, start, end, tuple(chosen))
    st.session_state["selection"] = sel
    return sel


def current() -> Selection:
    """The selection made in the sidebar on this rerun."""
    return st.session_state.get("selection") or Selection("auto", None, None, ())


def selected_data(sel: Selection | None = None) -> MarketData | None:
    """The panel narrowed to the sidebar's date range and sectors."""
    sel = sel or current()
    data = load(sel.source)
    if data is None:
        return None
    tickers = None
    if sel.sectors:
        tickers = [t for t in data.tickers if data.sectors.get(t) in sel.sectors]
    try:
        return data.select(tickers=tickers, start=sel.start, end=sel.end)
    except MLTrainerError as exc:
        st.error(str(exc))
        return None
