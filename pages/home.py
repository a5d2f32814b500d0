"""Home: the S&P 500 with today's regime, sector performance, the data in use and its
freshness, active alerts, and where everything else is."""

import datetime as dt

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.models.registry import by_family, get_model
from mltrainer.monitor import Limits, business_days_since
from mltrainer.regime_summary import current_run
from ui import links
from ui.compute import params_key
from ui.context import current, load
from ui.data import cache_status, empty_output_reason, index_close
from ui.feedback import StepProgress, friendly, stop
from ui.home import index_regime, sector_performance
from ui.layout import fit, metric_row
from ui.monitoring import (
    DEFAULT_REGIME,
    alert_cards,
    index_alerts,
    limits_tuple,
)
from ui.pages import link_target

st.title("mltrainer · S&P 500 research")

sel = current()
data = load(sel.source)
if data is None:
    stop()

last_bar = data.dates[-1]
age = (pd.Timestamp(dt.date.today()) - last_bar).days
row = metric_row()
row.metric("Data source", data.source)
row.metric("Tickers", fmt.integer(data.n_tickers))
row.metric(
    "History",
    f"{data.dates[0]:%Y}–{last_bar:%Y}",
    help=f"{fmt.date_range(data.dates[0], last_bar)}, {fmt.integer(len(data.dates))} days",
)
row.metric(
    "Last bar",
    fmt.date(last_bar),
    f"{fmt.integer(age)} days ago",
    delta_color="off",
    delta_arrow="off",
    help="Calendar days between the last bar and today; the Monitor page raises a "
    "stale-data alert past its limit"
    + (f". Data as of {fmt.date(data.as_of)}" if data.as_of is not None else ""),
)
# a cold server computes the index regimes, the alerts, the sector baskets and reads the
# cache (checksums): say which
loading = StepProgress(
    [
        "Loading the index and its regime",
        "Evaluating the risk limits",
        "Building the sector baskets",
        "Checking the data's freshness and the network cache",
    ]
)

# ------------------------------------------------------------- index and its regime
# the model and its reading in a row above the chart that wraps: a 210 px panel beside
# it squeezed the chart to ~100 px at 414 px (and st.columns([3, 1]) cut the panel's
# labels to "Regime on the la…" at 1024 px)
st.subheader("S&P 500 and its regime")
top = metric_row()
regimes = by_family().get("regime", [])
with top:
    key = st.selectbox(
        "Regime model",
        regimes,
        index=regimes.index(DEFAULT_REGIME) if DEFAULT_REGIME in regimes else 0,
        format_func=links.label("home_regime", lambda k: k.split("/")[1].removesuffix("Model")),
        key="home_regime",
        bind="query-params",
        help="Any regime model of the registry, with its "
        "default parameters (tune them on the Regimes page)",
        width=fit(k.split("/")[1].removesuffix("Model") for k in regimes),
    )
index_end = min(pd.Timestamp(sel.end or last_bar), index_close().index[-1]).date()
params = params_key({})
with friendly("The regime model could not run on the S&P 500 index"):
    regime = index_regime(key, params, sel.start, index_end)  # shared by every session
labels, names, close = regime.labels, regime.names, regime.close
with top:
    valid = labels.dropna()
    if len(valid):
        now = int(valid.iloc[-1])
        with st.container(width="content"):
            st.metric(
                "Regime on the last date",
                names.get(now, f"regime {now}").capitalize(),
                help=f"{key} on {valid.index[-1]:%Y-%m-%d}",
            )
            st.caption(f"in this regime {current_run(valid).since_text()} · index to {index_end}")
    else:  # ChangePoint on 1990's first months: a bare chart and no regime metric, unsaid
        days = int(index_close(close.index[-1]).count())  # all the history the model read
        why = empty_output_reason(get_model(key)(), "the index", days, fmt.date(close.index[-1]))
        st.warning(
            f"{key.split('/')[1]} labels no day of the S&P 500 index "
            f"{fmt.date_range(close.index[0], close.index[-1])}: {why}; end the range later "
            "or pick another regime model."
        )
    st.metric(
        "S&P 500 over the range",
        fmt.percent(close.iloc[-1] / close.iloc[0] - 1, sign=True),
        help=f"{fmt.date_range(close.index[0], close.index[-1])}",
        width="content",
    )
st.plotly_chart(regime.figure, width="stretch", key="home_index")

# ------------------------------------------------------------------------- alerts
st.subheader("Active alerts")
loading.step(1)
today = dt.date.today()
with friendly("The risk limits could not be evaluated", stop=False):
    alerts, _ = index_alerts(
        sel.source, sel.start, index_end, limits_tuple(Limits()), key, params, today
    )
    alert_cards(alerts, only_active=True)
    st.page_link(
        link_target("pages/monitor.py"),
        label="Limits, history and portfolios: Monitor",
        icon=":material/notifications_active:",
    )

# ------------------------------------------------------------- sector performance
loading.step(2)
left, right = st.columns([3, 2])
with left:
    st.subheader("Sector performance")
    with friendly("Sector returns could not be computed", stop=False):
        # over the 1, 3 and 12 months to the range's end, whatever its start
        perf = sector_performance(sel.source, sel.end or last_bar.date(), sel.sectors)
        note = perf.note
        st.plotly_chart(perf.figure, width="stretch", key="home_sectors")
        st.caption(
            f"Equal-weighted sector baskets of the {data.source} tickers to "
            f"{perf.last_date:%Y-%m-%d}; 'Universe' is all of them. {note[:1].upper()}{note[1:]}."
        )
loading.step(3)
with right:
    st.subheader("Data freshness")
    limit = Limits().stale_days
    bdays = business_days_since(last_bar, today)  # the count the Monitor's rule uses
    verdict = (
        f"**stale**: {bdays:,} business days since the last bar, over the Monitor's "
        f"limit of {limit}"
        if bdays > limit
        else f"current: {bdays} business day(s) since the last bar (limit {limit})"
    )
    index_last = index_close().index[-1]
    st.markdown(
        f"- **Prices** ({data.source}): last bar {fmt.date(last_bar)}, {verdict}\n"
        f"- **S&P 500 index** (bundled with skfolio/arch): last close "
        f"{fmt.date(index_last)}\n- **Recessions**: NBER business-cycle dates"
    )
    cache = cache_status()
    if len(cache):
        due = int(cache["stale"].sum())
        with st.expander(
            f"Network cache: {len(cache)} fetched cop"
            f"{'y' if len(cache) == 1 else 'ies'}, {due} due for a refetch"
        ):
            st.dataframe(
                cache.rename(columns={"stale": "refetch due"}), hide_index=True, width="stretch"
            )
            st.caption(
                "When each copy was fetched and when it is due again: a copy being "
                "fresh says nothing about how recent the prices in it are."
            )
    else:
        st.caption("Network cache: empty (nothing fetched from the network yet).")
    st.subheader("Pages")
    for file, label, icon in (
        (
            "pages/universe.py",
            "Universe Explorer: members, sectors, rotation",
            ":material/explore:",
        ),
        (
            "pages/regimes.py",
            "Regimes: models, probabilities, agreement",
            ":material/partly_cloudy_day:",
        ),
        ("pages/risk.py", "Risk & Stress: VaR, backtests, scenarios, report", ":material/shield:"),
        ("pages/model_lab.py", "Model Lab: tune, backtest, walk forward", ":material/science:"),
    ):
        st.page_link(link_target(file), label=label, icon=icon)
loading.done()
