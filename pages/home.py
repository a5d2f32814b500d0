"""Home: which data the app is looking at, the universe, and the cache's freshness."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mltrainer.data.cache import get_cache
from ui.context import current, load

st.title("mltrainer · S&P 500 research")

sel = current()
data = load(sel.source)
if data is None:
    st.stop()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Data source", data.source)
c2.metric("Tickers", f"{data.n_tickers}")
c3.metric("History", f"{data.dates[0]:%Y-%m-%d} → {data.dates[-1]:%Y-%m-%d}")
c4.metric("As of", f"{pd.Timestamp(data.as_of):%Y-%m-%d}" if data.as_of is not None else "n/a")
for warning in data.warnings:
    st.warning(warning)

left, right = st.columns([3, 2])
with left:
    st.subheader("Universe by GICS sector")
    sectors = pd.Series(data.sectors).reindex(data.tickers).fillna("Unknown")
    counts = sectors.value_counts().rename_axis("sector").reset_index(name="stocks")
    fig = px.bar(counts, x="stocks", y="sector", orientation="h", height=380)
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0), yaxis=dict(autorange="reversed"))
    st.plotly_chart(fig, width="stretch")
with right:
    st.subheader("Cache freshness")
    entries = get_cache().status()
    if entries:
        table = pd.DataFrame(entries)[["kind", "stored_at", "expires_at", "stale", "bytes"]]
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.info("The cache is empty: nothing has been fetched from the network yet.")
