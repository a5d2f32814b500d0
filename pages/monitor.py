"""Monitor: risk limits evaluated on the latest data, as alerts with their history."""

import datetime as dt

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.models.registry import by_family
from mltrainer.plots.portfolio import alert_timeline
from ui import links
from ui.compute import params_key
from ui.context import current, load
from ui.data import index_close
from ui.feedback import friendly, stop
from ui.figures import shared
from ui.layout import metric_row
from ui.monitoring import (
    DEFAULT_REGIME,
    alert_cards,
    index_alerts,
    limits_tuple,
    limits_widgets,
    portfolio_alerts,
)
from ui.risk import portfolio_builder, unpriced_on

st.title("Monitor")
sel = current()
data = load(sel.source)
if data is None:
    stop()

c1, c2 = st.columns([1, 2])
target = c1.radio(
    "Monitor",
    ["S&P 500 index", "Portfolio"],
    horizontal=True,
    key="mon_target",
    bind="query-params",
    help="The bundled S&P 500 index, or a portfolio of the selected data (the "
    "same portfolio as on the Risk & Stress page)",
)
regimes = by_family().get("regime", [])
regime_key = c2.selectbox(
    "Regime model for the regime-change rule",
    regimes,
    index=regimes.index(DEFAULT_REGIME) if DEFAULT_REGIME in regimes else 0,
    key="mon_regime",
    bind="query-params",
    format_func=links.label("mon_regime", lambda k: k.split("/")[1].removesuffix("Model")),
)
with st.expander("Risk limits", expanded=True):
    limits = limits_widgets("mon")
with friendly("These limits are not allowed"):
    limits.check()

today = dt.date.today()
params = params_key({})
with friendly("The risk limits could not be evaluated"):
    if target == "S&P 500 index":
        end = min(pd.Timestamp(sel.end or data.dates[-1]), index_close().index[-1]).date()
        alerts, history = index_alerts(
            sel.source, sel.start, end, limits_tuple(limits), regime_key, params, today
        )
        subject = f"S&P 500 index to {end}"
    else:
        built = portfolio_builder(sel, key="mon")
        if built is None:
            stop()
        tickers, weights, weighting, _ = built  # its notes are shown by the builder
        alerts, history, wiped = portfolio_alerts(
            sel.source,
            tickers,
            weights,
            sel.start,
            sel.end,
            limits_tuple(limits),
            regime_key,
            params,
            today,
        )
        end = sel.end or data.dates[-1].date()
        if wiped is not None:  # the status is the book's on the day it lost all its value
            end = wiped[0]
            st.warning(wiped[1][0].upper() + wiped[1][1:])
        subject = f"{len(tickers)}-stock portfolio ({weighting}) to {fmt.date(end)}"
        if gap := unpriced_on(sel.source, tickers, end):
            st.warning(f"{gap}.")

active = [a for a in alerts if a["active"]]
st.subheader(f"Status · {subject}")
row = metric_row()
row.metric("Active alerts", len(active))
row.metric("High severity", sum(a["severity"] == "high" for a in active))
row.metric("Alerts in the history", len(history))
alert_cards(alerts)

st.subheader("History")
if history.empty:
    st.info("No limit was breached in the selected date range.")
else:
    rules = sorted(history["title"].unique())
    shown_rules = st.multiselect(
        "Rules", rules, default=rules, key="mon_rules", bind="query-params"
    )
    shown = history[history["title"].isin(shown_rules)]
    # today's stale-data point would stretch the axis years past the data: table only
    in_range = shown[shown["date"] <= pd.Timestamp(end)]
    if not shown_rules:  # an empty chart and table said nothing
        st.info("Pick at least one rule to see its alerts.")
    else:
        st.plotly_chart(
            shared(alert_timeline, in_range, height=260), width="stretch", key="mon_timeline"
        )
        st.dataframe(
            shown[["date", "title", "severity", "reading", "against", "message"]],
            hide_index=True,
            width="stretch",
            height=360,
            key="mon_history",
            column_config={
                "date": st.column_config.DateColumn(format="YYYY-MM-DD"),
                "reading": st.column_config.TextColumn("value"),
                "against": st.column_config.TextColumn("limit (or previous regime)"),
            },
        )
range_end = sel.end or data.dates[-1].date()
on = (
    "the range's last day"
    if end == range_end
    else f"the day the book lost all its value (the range runs to {range_end})"
    if target == "Portfolio"
    else f"the index's last close (the range runs to {range_end})"
)
st.caption(
    f"Status on {fmt.date(end)}, {on}; the data's age is judged on "
    f"{today:%Y-%m-%d}. VaR breaches and regime changes count as active for "
    f"{limits.recent_days} days; drawdown, volatility and staleness while in breach."
)
