"""Leaderboard: every signal and weights model ranked out of sample, after costs and
after the settings tried; each row opens the Model Lab with that model and setting."""

import streamlit as st

from mltrainer.plots.leaderboard import leaderboard_chart
from ui.context import current, load
from ui.data import default_tickers, no_ticker_reason
from ui.feedback import friendly, stop
from ui.figures import shared
from ui.leaderboard import coverage, display_frame, latest_stored, starter

st.title("Leaderboard")
sel = current()
data = load(sel.source)
if data is None:
    stop()
found = latest_stored()
if found is None:
    note = (
        "No leaderboard has been stored yet. The full one runs from the command line "
        "(`python -m mltrainer leaderboard --universe sp500 --start 2000-01-01`, or on a "
        "Dask cluster with `--scheduler`)"
    )
    tickers = default_tickers(sel, 5)
    if not tickers:  # read "no price for  from 2019-01-02 ...", naming no ticker
        st.info(f"{note}. {no_ticker_reason(sel) or 'The data has no ticker to run.'}")
        stop()
    with friendly(f"{note}. Nor could the momentum family run on the sidebar's range"):
        table, meta = starter(sel, tickers)
    st.info(f"{note}; shown meanwhile: the momentum family on a few tickers of the range.")
else:
    table, meta = found
st.caption(coverage(meta))
families = ["all", *sorted(set(table["family"]) - {"baseline"})]
family = st.selectbox("Family", families, key="lb_family", bind="query-params")
shown = table if family == "all" else table[table["family"].isin([family, "baseline"])]
st.plotly_chart(
    shared(leaderboard_chart, shown, title="Sharpe ratio out of sample, dashed: naive baselines"),
    width="stretch",
    key="lb_chart",
)
st.dataframe(
    display_frame(shown, meta),
    hide_index=True,
    width="stretch",
    key="lb_table",
    column_config={
        "model": "Model",
        "family": "Family",
        "oos_cagr": st.column_config.NumberColumn("CAGR (OOS)", format="%.1f%%"),
        "oos_sharpe": st.column_config.NumberColumn("Sharpe (OOS)", format="%.2f"),
        "oos_dsr": st.column_config.NumberColumn(
            "Deflated Sharpe",
            format="%.2f",
            help="probability the Sharpe is not luck of picking the best of the settings "
            "tried; none (grey) for the baselines, which have no settings to pick from",
        ),
        "oos_max_drawdown": st.column_config.NumberColumn("Max drawdown (OOS)", format="%.1f%%"),
        "oos_turnover": st.column_config.NumberColumn("Turnover / year", format="%.1fx"),
        "n_settings": st.column_config.NumberColumn("Settings tried", format="%d"),
        "default_oos_sharpe": st.column_config.NumberColumn("Sharpe at defaults", format="%.2f"),
        "chosen_params": "Chosen setting (last fold)",
        "error": "Not scored because",
        "lab": st.column_config.LinkColumn("Model Lab", display_text="open"),
    },
)
