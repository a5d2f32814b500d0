"""The S&P 500 universe for the Universe Explorer, loaded without touching the network.

Order: the cached Wikipedia copy (fresh or stale), else the newest saved page in the
data folder (it has the changes table, so membership on past dates works), else the
list bundled in pytickersymbols (no history). "Update from Wikipedia" is an explicit
button. Market caps come from the constituents-financials snapshot when there is one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mltrainer import config, fmt
from mltrainer.data.gics import sector_lists, sectors_as_of
from mltrainer.data.membership import load_membership
from mltrainer.data.symbols import SymbolHistory, relabel
from mltrainer.data.universe import SP500Universe, SP500UniverseManager
from mltrainer.errors import DataError
from mltrainer.sectors_pit import (
    IndexOnDate,
    cap_snapshot,
    index_on,
    last_price_dates,
    pit_sector_returns,
)
from ui.context import load
from ui.data import sector_daily_returns

EXPORT_MIME = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
}


def _saved_pages() -> list[Path]:
    root = config.data_dir()
    return sorted((root / "wikipedia").glob("*.html")) if root else []


@st.cache_data(show_spinner="Loading the S&P 500 constituents…", max_entries=2, ttl=3600)
def load_universe(refresh: int = 0) -> SP500Universe:
    """Today's constituents in the CLI's order of sources (``SP500UniverseManager.load``:
    cached Wikipedia copy, the newer of the saved page and the constituents list,
    pytickersymbols); ``refresh`` is :func:`universe_version`, so an update loads the new
    list once for the server."""
    universe = SP500UniverseManager().load("auto")
    if universe.changes.empty and universe.source.startswith("pytickersymbols"):
        universe.warnings.append(
            "no saved Wikipedia page and nothing cached: the list "
            "has no changes table; press 'Update list' when online"
        )
    try:
        universe = universe.with_market_caps("snapshot")
    except DataError as exc:
        universe.warnings.append(
            f"no market caps ({exc}); the treemap sizes stocks "
            "equally and cap weights are unavailable"
        )
    return universe


@st.cache_resource
def _versions() -> list[int]:
    return [0]


def universe_version() -> int:
    """How many times the list was updated on this server. One counter for the server,
    not one per session: the list and the membership are cached under it, so after any
    reader's update every session reads the new list, and no session recomputes a
    version another one has already loaded."""
    return _versions()[0]


def update_from_wikipedia() -> SP500Universe:
    """Fetch the live page into the cache (falls back with a warning when offline) and
    move every session to the new list."""
    fresh = SP500UniverseManager().update()
    _versions()[0] += 1
    load_universe.clear()  # the old version is no longer asked for
    return fresh


@st.cache_data(show_spinner=False, ttl=3600)
def caps_date() -> str | None:
    """The date of the market-cap snapshot the constituents carry (``YYYY-MM-DD``), or
    None without one: today's caps beside past prices must say when they are from."""
    snap = cap_snapshot()
    return None if snap is None else f"{snap.date:%Y-%m-%d}"


def has_caps(universe: SP500Universe) -> bool:
    return any(s.market_cap for s in universe.constituents)


@st.cache_data(show_spinner=False, max_entries=6)
def export_bytes(_universe: SP500Universe, fmt: str, key: str) -> bytes:
    """The universe exported by :meth:`SP500Universe.export` as ``fmt``, as bytes
    (``key`` identifies the universe version in the cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _universe.export(Path(tmp) / f"sp500.{fmt}")
        return path.read_bytes()


@st.cache_resource(show_spinner="Combining the S&P 500 membership sources…")
def membership_source(refresh: int = 0):
    """Every membership source found, combined once per server (see
    :func:`mltrainer.data.membership.load_membership`); None when there is none."""
    try:
        return load_membership()
    except DataError:
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def _renamed(tickers: tuple, price_date, list_date) -> dict:
    return SymbolHistory.default().symbols_on(tickers, price_date, list_date)


def under_list_symbols(rets: pd.DataFrame, price_date, list_date) -> pd.DataFrame:
    """``rets`` (per price-file ticker, named by the symbols of ``price_date``, the
    panel's last date) with each ticker renamed to its company's symbol on the
    constituents list's date ``list_date`` (FB -> META), so the list's rows find their
    prices; a symbol that a renamed company took over names that company. Unchanged
    when the list has no date."""
    if list_date is None or rets.empty:
        return rets
    renamed = _renamed(tuple(rets["ticker"]), price_date, pd.Timestamp(list_date).date())
    return relabel(rets, renamed)


@st.cache_data(show_spinner="Finding the members and their sectors on that date…", max_entries=16)
def membership_on(_universe: SP500Universe, key: str, date, refresh: int = 0) -> dict:
    """Members on ``date`` under the symbols of that day, with their sectors then, the
    source in charge and any warning: from every source combined, else from the list's
    own changes table."""
    membership = membership_source(refresh)
    if membership is None:
        membership = _universe.membership()
    found = membership.lookup(date)
    sectors = sectors_as_of(
        found["members"], date, history=membership.history, lists=sector_lists(membership)
    )
    today = membership.end
    found["sector_then"] = [sectors.sectors.get(s) for s in found["members"]]
    found["symbol_now"] = [membership.history.symbol_on(s, date, today) for s in found["members"]]
    latest = set(membership.members_on(today))
    found["still_member"] = [s in latest for s in found["symbol_now"]]
    found["latest"] = today.date().isoformat()
    found["sector_note"] = sectors.provenance()
    return found


def changes_around(universe: SP500Universe, date, days: int) -> pd.DataFrame:
    """Index changes within ``days`` calendar days either side of ``date``."""
    when = pd.Timestamp(date)
    ch = universe.changes
    near = ch[
        (ch["date"] >= when - pd.Timedelta(days=days))
        & (ch["date"] <= when + pd.Timedelta(days=days))
    ]
    return near.sort_values("date", ascending=False).reset_index(drop=True)


def universe_key(universe: SP500Universe) -> str:
    as_of = None if universe.as_of is None else universe.as_of.date()
    return f"{universe.source}|{as_of}|{len(universe)}|{len(universe.changes)}"


# ------------------------------------------------------------- point in time
@st.cache_data(show_spinner="Finding the index members of that date…", max_entries=8)
def index_on_date(source: str, date) -> IndexOnDate | None:
    """The index on ``date`` over the source's price keys (see
    :func:`mltrainer.sectors_pit.index_on`); None when no membership source is found
    (the page then draws today's constituents and says so)."""
    data = load(source)
    try:
        membership = load_membership()
    except DataError:
        return None
    return index_on(date, data.adj_close, membership, caps=cap_snapshot())


@st.cache_data(show_spinner="Computing sector returns…", max_entries=8)
def pit_sector_daily_returns(source: str, start, end, sectors: tuple) -> tuple[pd.DataFrame, str]:
    """Daily sector-basket returns holding each day's members in that day's sectors
    (:func:`mltrainer.sectors_pit.pit_sector_returns`), and a note on the sectors. Without
    a membership source: today's sectors of every ticker (:func:`ui.data.sector_daily_returns`)
    and a note saying so."""
    try:
        membership = load_membership()
    except DataError as exc:
        return (
            sector_daily_returns(source, start, end, sectors),
            f"baskets of today's members in today's sectors ({exc})",
        )
    data = load(source)
    anchors = last_price_dates(data.adj_close)
    sub = data.select(start=start, end=end)
    daily, note = pit_sector_returns(sub.returns(), membership, anchors=anchors, keep=sectors)
    if sectors and daily["Universe"].isna().all():
        raise DataError(
            f"no member was in {', '.join(sectors)} {fmt.date_range(start, end)}: sectors "
            "are those of each day (Real Estate from 2016-09-01; Communication Services "
            "from 2018-09-24, Telecommunication Services until 2018-09-21); widen the range "
            "or pick other sectors"
        )
    held = (
        f"members that were in {', '.join(sectors)} that day"
        if sectors
        else "members in that day's sectors"
    )
    return daily, f"baskets hold each day's {held}; " + note


def treemap_stocks(
    pit: IndexOnDate | None, universe: SP500Universe, rets: pd.DataFrame, sectors: tuple = ()
) -> tuple[pd.DataFrame, str, str, str | None]:
    """Rows for the treemap (``ticker, name, sector, size, return``), the size label, a
    caption and a title: the members of the date when ``pit`` is known, else today's
    constituents (said in the caption). ``sectors`` keeps the members in those sectors
    on the date (today's without ``pit``), and the title says how many."""
    names = universe.to_frame()[["symbol", "name"]].rename(columns={"symbol": "ticker"})
    if pit is not None:
        stocks = (
            pit.stocks[pit.stocks["ticker"].isin(rets["ticker"])]
            .merge(rets[["ticker", "return"]], on="ticker", how="left")
            .merge(names.drop_duplicates("ticker"), on="ticker", how="left")
        )
        if not sectors:
            return stocks, pit.size_label, pit.caption(), pit.title()
        stocks = stocks[stocks["sector"].isin(sectors)]
        title = f"{pit.title()}; {len(stocks)} in {', '.join(sectors)} that day"
        return stocks, pit.size_label, pit.caption(), title
    stocks = universe.to_frame().rename(columns={"symbol": "ticker"})
    if sectors:
        stocks = stocks[stocks["sector"].isin(sectors)]
    stocks = stocks[stocks["ticker"].isin(rets["ticker"])].merge(
        rets[["ticker", "return"]], on="ticker", how="left"
    )
    if has_caps(universe):
        stocks = stocks.assign(size=stocks["market_cap"])
        label, missing = "market cap", int(stocks["market_cap"].isna().sum())
    else:
        stocks = stocks.assign(size=1.0)
        label, missing = "equal size", 0
    total = len(universe.constituents)
    capless = sum(1 for c in universe.constituents if not c.market_cap) if missing else 0
    caption = (
        f"No membership source for past dates: today's constituents ({universe.source})"
        f", area: {label}. {len(stocks) - missing} of the {len(stocks)} members with "
        "prices are shown"
        + (
            f"; {missing} without a market cap are left out ({capless} of all {total} "
            "members have none)"
            if missing
            else ""
        )
        + "."
    )
    return stocks, label, caption, None


# ------------------------------------------------------------------ rotation
@dataclass(frozen=True)
class Rotation:
    """The Universe page's sector rotation: both figures, the latest point per sector
    and what the captions say."""

    rrg: go.Figure
    rs: go.Figure
    latest: pd.DataFrame  # sector -> rs_ratio, rs_momentum, quadrant
    last_point: pd.Timestamp | None
    basket_note: str
    bench_fallback: bool  # the index did not cover the dates: equal weight instead
    n_periods: int = 0  # the range's points at the chosen frequency
    n_current: int = 0  # sectors whose baskets reach the range's end
    ended: tuple = ()  # (sector, its basket's last date) for those gone before the end
    late: tuple = ()  # (sector, its basket's first date) for those begun too late for a point

    def left_out(self) -> str | None:
        """Which sectors of the range the graph does not place, and why (None: all are
        placed): the graph shows each sector at the range's last points, so a sector
        that ended before them (Telecommunication Services, 2018-09-21) or began too
        late for a z-score (Communication Services, 2018-09-24) is not on it."""
        said = [f"{s} (ended {d})" for s, d in self.ended] + [
            f"{s} (begins {d}: too few points since)" for s, d in self.late
        ]
        if not said:
            return None
        return f"Not on the graph: {', '.join(said)}; it places each sector at the range's end."

    def no_point(self, window: int, freq: str) -> str:
        """Why the graph is empty, and what would fill it."""
        if self.ended and not self.n_current:  # widening the range cannot help
            return (
                f"No point to draw: {self.left_out()} End the range before then or pick "
                "other sectors in the sidebar."
            )
        return (
            f"No point to draw: the RS-Ratio and RS-Momentum z-scores need {2 * window} "
            f"{freq} points (twice the normalisation window) and the range holds "
            f"{self.n_periods}. Widen the date range, pick a higher frequency or a shorter "
            "normalisation window."
        )


@st.cache_resource(show_spinner="Computing the sector rotation…", max_entries=16)
def sector_rotation(
    source: str, start, end, sectors: tuple, freq: str, window: int, tail: int, benchmark: str
) -> Rotation:
    """The relative rotation graph and the relative-strength lines of the point-in-time
    sector baskets against ``benchmark`` ("S&P 500 index" or the equal-weight universe).

    Built once per server for these inputs and shared by every session, in
    ``st.cache_resource`` (a figure pickled per reader would be validated again on each
    load): the rotation, both figures' plotly validation and the table cost ~0.1 s a
    view otherwise. Read-only: st.plotly_chart copies a figure, never changes it.
    """
    from mltrainer.plots.sectors import rrg_chart, rs_lines
    from mltrainer.sectors import (
        cumulative_index,
        relative_rotation,
        relative_strength,
        resample_levels,
        rrg_tails,
    )
    from ui.data import index_close

    daily, basket_note = pit_sector_daily_returns(source, start, end, sectors)
    # sectors that exist at the end of the range (Telecommunication Services ends in 2018)
    named = [
        c for c in daily.columns if c not in ("Universe", "Unknown") and daily[c].notna().any()
    ]
    sector_cols = [c for c in named if daily[c].iloc[-5:].notna().any()]
    ended = tuple(
        (c, f"{daily[c].last_valid_index():%Y-%m-%d}") for c in named if c not in sector_cols
    )
    levels = cumulative_index(daily[sector_cols])
    bench, fallback = cumulative_index(daily["Universe"]), False
    if benchmark == "S&P 500 index":
        index = index_close().reindex(daily.index)
        fallback = index.notna().sum() < len(index) * 0.9
        bench = bench if fallback else index
    tails = rrg_tails(relative_rotation(levels, bench, window=window, freq=freq), tail)
    latest = (
        tails.sort_values("date")
        .groupby("sector")
        .tail(1)
        .set_index("sector")[["rs_ratio", "rs_momentum", "quadrant"]]
    )
    placed = set(tails["sector"])
    late = tuple(
        (c, f"{daily[c].first_valid_index():%Y-%m-%d}") for c in sector_cols if c not in placed
    )
    return Rotation(
        rrg=rrg_chart(tails, height=640),
        rs=rs_lines(relative_strength(levels, bench), height=640),
        latest=latest,
        last_point=tails["date"].max() if len(tails) else None,
        basket_note=basket_note,
        bench_fallback=bool(fallback),
        # the range's points, whichever sectors are left (none: Telecommunication
        # Services alone in 2016-2020 read "the range holds 0")
        n_periods=len(resample_levels(pd.Series(1.0, index=daily.index), freq)),
        n_current=len(sector_cols),
        ended=ended,
        late=late if placed else (),  # none placed: the range is too short, said apart
    )
