"""Global choices in the sidebar (data source, date range, universe) and the cached
market data they select. Built once per rerun by app.py; pages read :func:`current`."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace

import streamlit as st

from mltrainer import fmt
from mltrainer.data.cache import cache_problem
from mltrainer.data.market_data import MarketData
from mltrainer.data.sources import SOURCES, live_reachable, load_market_data
from mltrainer.errors import MLTrainerError
from mltrainer.validate import choice, from_query, parse_date
from ui import links
from ui.pages import navigation

LIVE_SOURCES = ("yahoo", "polygon")
RETRY_SECONDS = 300  # a live source that failed is not retried on every rerun

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


@st.cache_resource
def _failures() -> dict:
    """source -> (time, message) of its last failure, shared by the sessions."""
    return {}


def _fallback(source: str, reason: str) -> MarketData | None:
    """The data ``auto`` gives (local folder, else bundled) with a notice of why."""
    try:
        data = _load("auto")
    except MLTrainerError as exc:
        st.error(
            f"Could not load data from source '{source}' ({reason}) nor any fallback "
            f"({exc}). Check the data folder (MLTRAINER_DATA_DIR) or the network."
        )
        return None
    note = (
        f"Source '{source}' is unavailable ({reason}); showing the {data.source} data "
        "instead. Pick it again once the network or API key is back."
    )
    data.sector_spans()  # dated once on the shared panel, not on each rerun's copy
    return replace(data, warnings=(note, *data.warnings))


def load(source: str) -> MarketData | None:
    """The whole panel of a source, or None after showing what went wrong.

    A live source (Yahoo, Polygon) that cannot be reached, has no API key or fails falls
    back to the local or bundled data with a notice in ``warnings`` (shown by the
    sidebar), and is not retried for RETRY_SECONDS.
    """
    failures = _failures()
    if source in LIVE_SOURCES:
        last = failures.get(source)
        if last is not None and time.time() - last[0] < RETRY_SECONDS:
            return _fallback(source, last[1])
        if not live_reachable():
            failures[source] = (time.time(), "no network")
            return _fallback(source, "no network")
    try:
        return _load(source)
    except MLTrainerError as exc:
        if source in LIVE_SOURCES:
            failures[source] = (time.time(), str(exc))
            return _fallback(source, str(exc))
        st.error(f"Could not load data from source '{source}': {exc}")
        return None


def _from_url(name: str, parse):
    """A value from the page's URL (a shared link), or None if absent or malformed (then
    with a warning naming the parameter)."""
    links.repeated(name)
    value, problem = from_query(st.query_params, name, parse, None)
    if problem:
        st.warning(links.plain(problem))
    return value


def _seed_from_url(first: dt.date, last: dt.date, sectors: list[str]) -> None:
    """Before the date and sector widgets exist in this session, take their values from
    the URL (the Model Lab writes them there), clipped to what the data has: a link's
    value that is malformed, outside the data or unknown is named in a warning."""
    if "g_dates" not in st.session_state:
        lo = _from_url("start", lambda text: parse_date(text, "start"))
        hi = _from_url("end", lambda text: parse_date(text, "end"))
        if lo is not None or hi is not None:
            dates, problem = url_range(lo, hi, first, last)
            if problem:
                st.warning(problem)
            if dates is not None:
                st.session_state["g_dates"] = dates
    if "g_sectors" not in st.session_state:
        wanted = _from_url("sectors", lambda s: [x.strip() for x in s.split(",") if x.strip()])
        if wanted:
            # a hand-typed link: "Energy, Utilities" or "energy" mean the data's sectors
            named = {x.casefold(): x for x in sectors}
            unknown = [x for x in wanted if x.casefold() not in named]
            if unknown:
                st.warning(
                    links.plain(
                        f"The link's sectors {', '.join(repr(x[:40]) for x in unknown[:5])} "
                        "are not GICS sectors of this data; they were left out."
                    )
                )
            known = [named[x.casefold()] for x in wanted if x.casefold() in named]
            st.session_state["g_sectors"] = list(dict.fromkeys(known))  # once each


def default_start(first: dt.date, end: dt.date) -> dt.date:
    """The sidebar's default start: ten years before ``end``, or the data's first day."""
    return max(first, end - dt.timedelta(days=365 * 10))


def url_range(
    lo: dt.date | None,
    hi: dt.date | None,
    first: dt.date,
    last: dt.date,
    whose: str = "The link's",
) -> tuple[tuple[dt.date, dt.date] | None, str | None]:
    """The sidebar's range for a link's ``start``/``end`` (either may be missing: the
    data's last day, or ten years before the end), and what the user must be told: a
    start after the end or a range outside the data gives None (the default range), a
    range reaching beyond the data is clipped to it. ``whose`` begins the message."""
    asked = fmt.date_range(lo, hi) if lo is not None else f"to {hi}"
    hi = last if hi is None else hi
    lo = default_start(first, hi) if lo is None else lo
    data = f"the data runs {fmt.date_range(first, last)}"
    if hi < first or lo > last:
        return None, (
            f"{whose} range {asked} lies outside the data ({data}); showing the default range."
        )
    if lo > hi:
        return None, f"{whose} start {lo} is after its end {hi}; showing the default range."
    clipped = (max(lo, first), min(hi, last))
    if clipped == (lo, hi):
        return clipped, None
    return clipped, (
        f"{whose} range {asked} reaches beyond the data ({data}); showing the range "
        f"{fmt.date_range(*clipped)}."
    )


def _clip_dates(value, first: dt.date, last: dt.date, default_start: dt.date) -> tuple:
    """A (start, end) pair inside [first, last] (another source may cover other years)."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 2:
        return (default_start, last)
    if len(value) == 1:  # the user is half-way through picking a range
        return (min(max(value[0], first), last),)
    # another source covering other years: the default range, or the part inside, said
    # (bundled 2022 -> local became 2021-04-21 to 2021-04-21 with no word)
    lo, hi = sorted(value)  # a pair set the wrong way round means the same range
    kept, problem = url_range(lo, hi, first, last, whose="The earlier source's")
    if problem:
        st.toast(problem, icon=":material/info:")
    return kept or (default_start, last)


def _clip_sectors(sectors: list[str]) -> None:
    """Keep the chosen sectors this source has, and say which ones went (a source without
    dated sectors has no Telecommunication Services; the choice vanished unsaid)."""
    chosen = st.session_state.get("g_sectors")
    if not isinstance(chosen, list):
        return
    gone = [x for x in chosen if x not in sectors]
    if gone:
        st.session_state["g_sectors"] = [x for x in chosen if x in sectors]
        st.toast(
            f"{', '.join(gone)}: not a sector of this data source; the sector filter left it out.",
            icon=":material/info:",
        )


def _hand_over_to_app() -> None:
    """Make a page that Streamlit ran on its own run inside app.py instead.

    With a ``pages/`` folder beside app.py, a server whose first request is a deep link
    (``/model_lab?...``) treats that folder as Streamlit's old pages directory until some
    script calls ``st.navigation``, and so runs the page file alone: no sidebar, no
    layout, the old navigation. The page notices because app.py's :func:`sidebar` never
    ran in this session; it then declares the app's navigation (which, as documented,
    makes Streamlit ignore the pages directory from then on) and reruns. The rerun keeps
    the page (a page's identity is its url_path, the same in both modes) and its query
    string, so app.py now runs with the sidebar and opens the page the link asked for.
    """
    navigation()
    st.rerun()


def sidebar() -> Selection:
    """Draw the global controls; remember them across pages in session state.

    A link with ``?source=...&start=...&end=...&sectors=...`` seeds them on its first run.
    """
    with st.sidebar:
        st.markdown("### Data")
        if "g_source" not in st.session_state:
            wanted = _from_url("source", lambda text: choice(text, "source", SOURCES))
            if wanted is not None:
                st.session_state["g_source"] = wanted
        source = st.selectbox("Data source", SOURCES, key="g_source", help=_SOURCE_HELP)
        data = load(source)
        if data is None:
            st.session_state["selection"] = Selection(source, None, None, ())
            return st.session_state["selection"]
        first, last = data.dates[0].date(), data.dates[-1].date()
        start_default = default_start(first, last)
        sectors = data.sector_names()  # of every date: Telecommunication Services too
        _seed_from_url(first, last, sectors)
        if "g_dates" in st.session_state:
            st.session_state["g_dates"] = _clip_dates(
                st.session_state["g_dates"], first, last, start_default
            )
            dates = st.date_input("Date range", min_value=first, max_value=last, key="g_dates")
        else:
            dates = st.date_input(
                "Date range",
                value=(start_default, last),
                min_value=first,
                max_value=last,
                key="g_dates",
            )
        if isinstance(dates, tuple) and len(dates) == 2:
            start, end = dates
        else:  # half-way through picking a range: keep showing the range picked before
            before = st.session_state.get("selection")
            kept = before is not None and before.source == source and before.start is not None
            start, end = (before.start, before.end) if kept else (start_default, last)
        _clip_sectors(sectors)
        chosen = st.multiselect(
            "Universe: sectors",
            sectors,
            key="g_sectors",
            help="Empty means every sector, of today's classification or an earlier one "
            "(Telecommunication Services until 2018-09-21). Sector baskets and the treemap "
            "(Home, Universe) keep the members in these sectors on each day (REITs were "
            "Financials until 2016-09-01); ticker lists (Risk, Model Lab, Monitor, Regimes) "
            "offer the stocks in these sectors on some day of the range.",
        )
        st.caption(f"Source **{data.source}** · {data.n_tickers} tickers · {first} to {last}")
        _data_notes((*data.warnings, *filter(None, [cache_problem()])))
    sel = Selection(source, start, end, tuple(chosen))
    st.session_state["selection"] = sel
    _selection_to_url(sel)
    return sel


def _data_notes(warnings: tuple[str, ...], shown: int = 3) -> None:
    """The data's notices (fallback to bundled data, gaps), said once per page: here in the
    sidebar, which every page has, and nowhere else. Beyond ``shown`` they fold away."""
    for warning in warnings[:shown]:
        st.warning(warning)
    if len(warnings) > shown:
        with st.expander(f"{len(warnings) - shown} more data notices"):
            for warning in warnings[shown:]:
                st.caption(warning)


def _selection_to_url(sel: Selection) -> None:
    """Keep the sidebar's choices in the URL on every page, so any copied link opens the
    same data, dates and sectors (the page's own widgets keep theirs beside them)."""
    state = {
        "source": sel.source,
        "start": str(sel.start) if sel.start else None,
        "end": str(sel.end) if sel.end else None,
        "sectors": ",".join(sel.sectors) or None,
    }
    qp = st.query_params
    for name, value in state.items():
        if value is None:
            if name in qp:
                del qp[name]
        elif qp.get_all(name) != [value]:  # a link's repeated key is written once
            qp[name] = value


def current() -> Selection:
    """The selection made in the sidebar on this rerun (every page starts with this)."""
    if "selection" not in st.session_state:  # sidebar() sets it on every run of app.py
        _hand_over_to_app()
    return st.session_state.get("selection") or Selection("auto", None, None, ())
