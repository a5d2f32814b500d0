"""Universe Explorer: who is in the S&P 500, how big, how it did, how sectors rotate, and
who was in the index on any past date."""

import datetime as dt

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.plots.common import wrap_title
from mltrainer.plots.sectors import sector_weights_bar, treemap
from mltrainer.sectors import FREQUENCIES
from mltrainer.sectors_pit import EQUAL
from ui.context import current, load
from ui.data import ticker_returns
from ui.feedback import friendly, stop
from ui.layout import control_row, fit, metric_row
from ui.tables import table_height
from ui.universe import (
    EXPORT_MIME,
    caps_date,
    changes_around,
    export_bytes,
    has_caps,
    index_on_date,
    load_universe,
    membership_on,
    membership_source,
    sector_rotation,
    treemap_stocks,
    under_list_symbols,
    universe_key,
    universe_version,
    update_from_wikipedia,
)

WINDOWS = {
    "1 week": 5,
    "1 month": 21,
    "3 months": 63,
    "6 months": 126,
    "1 year": 252,
    "3 years": 756,
}

st.title("Universe Explorer")
sel = current()
data = load(sel.source)
if data is None:
    stop()

version = universe_version()  # the server's, shared by every session
with friendly("The S&P 500 constituents could not be loaded"):
    universe = load_universe(version)
ukey = universe_key(universe)

st.caption(
    f"Constituents: **{universe.source}**"
    + (f", as of {universe.as_of:%Y-%m-%d}" if universe.as_of is not None else "")
    + f" · prices: **{data.source}** to {data.dates[-1]:%Y-%m-%d}"
    + "".join(f"  \n{w}" for w in universe.warnings)
)
# the buttons in a row that wraps: five columns cut them to "U." and "P" at 800 px
top = control_row()
if top.button(
    "Update list",
    icon=":material/sync:",
    width="content",
    help="Fetch the live list and changes table from Wikipedia (needs the "
    "network; falls back to the cached or bundled list)",
):
    with st.spinner("Fetching the S&P 500 page…"):
        fresh = update_from_wikipedia()
    # shown after the rerun that redraws the page on the new list (drawn before it, the
    # warnings vanished with the rerun: a failed update looked like nothing happened)
    st.session_state["uni_update_said"] = (fresh.update_failed, list(fresh.warnings))
    st.rerun()
if (said := st.session_state.pop("uni_update_said", None)) is not None:
    failed, notes = said
    if failed:
        st.warning("The list was not updated. " + " ".join(notes))
    else:
        st.success(f"Updated from {universe.source}: {len(universe.constituents)} constituents.")
for kind in ("csv", "parquet", "json"):
    top.download_button(
        kind.upper(),
        data=export_bytes(universe, kind, ukey),
        file_name=f"sp500_constituents.{kind}",
        mime=EXPORT_MIME[kind],
        key=f"export_{kind}",
        on_click="ignore",
        icon=":material/download:",
        width="content",
        help=f"Export the constituents as {kind.upper()}",
    )

# ------------------------------------------------------------------- constituents
window_label = st.select_slider(
    "Return window",
    list(WINDOWS),
    value="3 months",
    key="uni_window",
    bind="query-params",
    help="Treemap colours and the table's return column: the "
    "return over this many trading days to the sidebar's end date",
)
end = sel.end or data.dates[-1].date()
with friendly("Returns could not be computed"):
    # every ticker: the treemap keeps the sidebar's sectors of its date, the table today's
    rets = ticker_returns(sel.source, end, WINDOWS[window_label])
span = f"over {window_label}"
held = int((data.dates <= pd.Timestamp(end)).sum()) - 1  # returns the data has up to end
if held < WINDOWS[window_label]:  # the window reaches back before the data's first day
    first_day = data.dates[0].date()
    st.warning(
        f"The data starts {first_day}, {fmt.count(held, 'trading day')} before {end}: the "
        f"returns shown run from {first_day}, not over {window_label}."
    )
    span = f"from {first_day}"
listed = under_list_symbols(rets, data.dates[-1].date(), universe.as_of)
price = "last_close" if "last_close" in listed else "last_adj_close"
table = universe.to_frame()
table = table.merge(
    listed[["ticker", price, "last_date", "return"]],
    how="left",
    left_on="symbol",
    right_on="ticker",
).drop(columns=["ticker"])

# Lazy tabs: a run draws the open tab only (switching tabs reruns the page), so a view
# does not compute and draw four tabs' charts and tables to show one. Each tab's
# URL-bound controls are drawn every run, so a shared link keeps them all.
tab_map, tab_rotation, tab_table, tab_history = st.tabs(
    ["Treemap & weights", "Sector rotation", "Constituents", "Membership history"],
    key="uni_tab",
    bind="query-params",
)

with tab_table:
    c1, c2, c3 = st.columns([2, 3, 2])
    query = c1.text_input(
        "Search symbol or name", key="uni_search", bind="query-params", placeholder="e.g. AAPL"
    )
    sectors = sorted(table["sector"].dropna().unique())
    chosen = c2.multiselect(
        "Sectors",
        sectors,
        default=[s for s in sel.sectors if s in sectors],
        key="uni_sectors",
        bind="query-params",
        help="Empty means every sector",
    )
    sort_by = c3.selectbox(
        "Sort by",
        ["market_cap", "return", "symbol", "sector", "date_added"],
        key="uni_sort",
        bind="query-params",
    )
    if tab_table.open:  # a lazy tab: drawn only while open
        shown = table
        if query:
            q = query.strip().lower()
            shown = shown[
                shown["symbol"].str.lower().str.contains(q, regex=False)
                | shown["name"].str.lower().str.contains(q, regex=False)
            ]
        if chosen:
            shown = shown[shown["sector"].isin(chosen)]
        shown = shown.sort_values(
            sort_by, ascending=sort_by in ("symbol", "sector", "date_added"), na_position="last"
        )
        st.caption(f"{len(shown)} of {len(table)} constituents · click a column header to sort")
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=520,
            key="uni_table",
            column_order=[
                "symbol",
                "name",
                "sector",
                "sub_industry",
                "market_cap",
                "return",
                price,
                "last_date",
                "date_added",
                "headquarters",
            ],
            column_config={
                "market_cap": st.column_config.NumberColumn(
                    f"market cap ($, {caps_date()})" if caps_date() else "market cap ($)",
                    format="compact",
                    help="From the constituents-financials snapshot of that date, not of the "
                    "prices' dates",
                ),
                # today's list beside a past end date: the header says whose return it is
                "return": st.column_config.NumberColumn(
                    f"return {span} to {end}", format="percent"
                ),
                price: st.column_config.NumberColumn(
                    "last close" if price == "last_close" else "last adjusted close",
                    format="%.2f",
                    help="As traded on its date, not adjusted for later splits and dividends"
                    if price == "last_close"
                    else "Adjusted for splits and dividends to the data's last day: this "
                    "source has no as-traded close",
                ),
                "last_date": st.column_config.DateColumn(
                    "price date",
                    help="The last close's date: before the end date for a "
                    "company whose prices stop earlier",
                ),
            },
        )

with tab_map:
    if tab_map.open:  # a lazy tab: drawn only while open
        left, right = st.columns([2, 1])
        with friendly("The index members of that date could not be found"):
            pit = index_on_date(sel.source, end)
        with left:
            stocks, size_label, caption, title = treemap_stocks(pit, universe, rets, sel.sectors)
            if stocks.empty:  # not st.stop(): the later tabs' link controls must be drawn
                st.info(
                    f"No member was in {', '.join(sel.sectors)} on {end}: the treemap keeps "
                    "the sidebar's sectors as they were that day (Real Estate from "
                    "2016-09-01, Communication Services from 2018-09-24)."
                )
            else:
                st.plotly_chart(
                    treemap(
                        stocks[["ticker", "name", "sector", "size", "return"]],
                        title=wrap_title(title, 40),
                        height=680,
                        size_label=size_label,
                    ),
                    width="stretch",
                    key="uni_treemap",
                    theme=None,
                )
                st.caption(
                    f"{caption} Colour: return {span} to {end} (prices from {data.source}).",
                    help="The treemap shows the index as it "
                    "was on the sidebar's end date: that day's members in that day's GICS "
                    "sectors, never today's market caps for an earlier date.",
                )
        with right, friendly("Sector weights could not be computed", stop=False):
            if pit is not None:
                sized = pit.weighting != EQUAL
                fig = sector_weights_bar(
                    pit.sector_weights("size") if sized else None,
                    pit.sector_weights("equal"),
                    height=520,
                )
                st.plotly_chart(fig, width="stretch", key="uni_weights")
                st.caption(
                    f"Share of the index on {pit.date:%Y-%m-%d} by sector, members with "
                    "price data: "
                    + (
                        f"{pit.weighting} against one share per member."
                        if sized
                        else f"one share per member ({EQUAL})."
                    )
                )
            elif has_caps(universe):
                fig = sector_weights_bar(
                    universe.sector_weights("cap"), universe.sector_weights("equal"), height=520
                )
                st.plotly_chart(fig, width="stretch", key="uni_weights")
                st.caption(
                    "Share of today's index by sector: weighted by market cap against one "
                    "share per member."
                )
            else:
                fig = sector_weights_bar(None, universe.sector_weights("equal"), height=520)
                st.plotly_chart(fig, width="stretch", key="uni_weights")
                st.caption(
                    "Share of today's index by sector, one share per member. Cap weights need "
                    "market caps (the constituents-financials snapshot in the data folder, "
                    "Polygon or Yahoo)."
                )

with tab_rotation:
    row = control_row()
    freq = row.selectbox(
        "Frequency",
        list(FREQUENCIES),
        index=1,
        key="rrg_freq",
        bind="query-params",
        help="JdK-style charts use weekly closes",
        width=fit(FREQUENCIES, "Frequency"),
    )
    rrg_window = row.slider(
        "Normalisation window (periods)",
        5,
        52,
        12,
        key="rrg_window",
        bind="query-params",
        help="Trailing periods of the z-scores that centre RS-Ratio and RS-Momentum on 100",
    )
    tail = row.slider("Tail length (periods)", 1, 26, 5, key="rrg_tail", bind="query-params")
    benchmarks = ["Equal-weight universe", "S&P 500 index"]
    bench_name = row.selectbox(
        "Benchmark", benchmarks, key="rrg_bench", bind="query-params", width=fit(benchmarks)
    )
    if tab_rotation.open:  # a lazy tab: drawn only while open
        # built once per server for these inputs, shared by every session (ui.universe)
        with friendly("The sector rotation could not be computed"):
            rotation = sector_rotation(
                sel.source, sel.start, sel.end, sel.sectors, freq, rrg_window, tail, bench_name
            )
        if rotation.bench_fallback:
            st.warning(
                "The bundled S&P 500 index does not cover these dates; using the "
                "equal-weight universe instead."
            )
        left, right = st.columns([1, 1])
        with left:
            st.plotly_chart(rotation.rrg, width="stretch", key="uni_rrg")
            if rotation.last_point is None:  # empty charts with no word before
                st.info(rotation.no_point(rrg_window, freq))
            else:
                st.caption(
                    f"Last point {rotation.last_point:%Y-%m-%d}; tails of {tail} "
                    f"{freq} points. RS-Ratio and RS-Momentum are z-scores over "
                    f"{rrg_window} periods centred on 100 (JdK-style; see mltrainer.sectors)."
                    f" Equal-weight {rotation.basket_note}."
                )
                if rotation.left_out():  # a sector of the range missing unsaid
                    st.caption(rotation.left_out())
        with right:
            st.plotly_chart(rotation.rs, width="stretch", key="uni_rs")
        latest = rotation.latest
        st.dataframe(
            latest.sort_values("rs_ratio", ascending=False),
            width="stretch",
            height=table_height(len(latest)),  # every sector, no inner scroll
            key="uni_quadrants",
            column_config={
                "rs_ratio": st.column_config.NumberColumn("RS-Ratio", format="%.2f"),
                "rs_momentum": st.column_config.NumberColumn("RS-Momentum", format="%.2f"),
            },
        )

with tab_history:
    history = membership_source(version)
    if history is None and universe.changes.empty:
        st.info(
            "No membership source: this constituents list has no changes table and the "
            "data folder has no membership/ files or saved page. Press 'Update list' "
            "(online) or put a saved page in the data folder's wikipedia/ directory."
        )
    else:
        span = history or universe.membership()
        default = min(max(end, span.start.date()), span.end.date())
        c0, c00 = st.columns([1, 3])
        on = c0.date_input(
            "Index membership on",
            value=default,
            key="uni_on_date",
            bind="query-params",
            min_value=dt.date(1957, 3, 4),
            max_value=dt.date.today(),
            format="YYYY-MM-DD",
        )
        around = c00.slider(
            "Changes within (days either side)", 7, 365, 90, key="uni_around", bind="query-params"
        )
        if tab_history.open:  # a lazy tab: drawn only while open
            found = membership_on(universe, ukey, on, version)
            for text in found["warnings"]:
                st.warning(text)
            st.caption(
                f"Members on {found['date']} under the symbols of that day, from "
                f"{found['source'] or 'the nearest covered date'}. Sources: "
                + "; ".join(
                    f"{c['source']} ({c['start']} to {c['end']})" for c in found["coverage"]
                )
                + ". "
                + found["sector_note"]
            )
            members = found["members"]
            row = metric_row()
            row.metric("Members on that date", len(members))
            near = changes_around(universe, on, around)
            row.metric("Additions nearby", int(near["added_ticker"].notna().sum()))
            row.metric("Removals nearby", int(near["removed_ticker"].notna().sum()))
            left, right = st.columns(2)  # four member columns fit in half a 1280 px page
            with left:
                frame = pd.DataFrame(
                    {
                        "symbol then": members,
                        f"sector on {found['date']}": found["sector_then"],
                        f"symbol on {found['latest']}": found["symbol_now"],
                        "still a member": found["still_member"],
                    }
                )
                st.dataframe(
                    frame,
                    hide_index=True,
                    width="stretch",
                    height=table_height(len(frame), 12),
                    key="uni_members",
                    # short headers (the dates are in the caption): long ones were cut
                    column_config={
                        "symbol then": st.column_config.TextColumn("symbol", width="small"),
                        f"sector on {found['date']}": st.column_config.TextColumn("sector then"),
                        f"symbol on {found['latest']}": st.column_config.TextColumn("symbol now"),
                        "still a member": st.column_config.CheckboxColumn(
                            "member", help=f"Still an index member on {found['latest']}"
                        ),
                    },
                )
                st.caption(
                    f"Symbol and GICS sector on {found['date']}; symbol and membership on "
                    f"{found['latest']}, the latest date of the sources."
                )
            with right:
                st.caption(
                    f"Changes in {universe.source} from "
                    f"{pd.Timestamp(on) - pd.Timedelta(days=around):%Y-%m-%d}"
                    f" to {pd.Timestamp(on) + pd.Timedelta(days=around):%Y-%m-%d}"
                )
                st.dataframe(
                    near,
                    hide_index=True,
                    width="stretch",
                    height=table_height(len(near), 12),
                    key="uni_changes",
                    column_config={
                        "date": st.column_config.DateColumn(format="YYYY-MM-DD", width="small"),
                        "added_ticker": st.column_config.TextColumn("added", width="small"),
                        "added_security": st.column_config.TextColumn("added security"),
                        "removed_ticker": st.column_config.TextColumn("removed", width="small"),
                        "removed_security": st.column_config.TextColumn("removed security"),
                    },
                )
