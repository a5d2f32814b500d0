"""mltrainer dashboard: navigation and the global sidebar, nothing else of substance."""

import streamlit as st

from ui.context import sidebar
from ui.pages import PAGES, page_path

st.set_page_config(page_title="mltrainer", page_icon="📈", layout="wide")

navigation = st.navigation([
    st.Page(page_path(p), title=p.title, icon=p.icon, url_path=p.url_path, default=(i == 0))
    for i, p in enumerate(PAGES)
])
sidebar()
navigation.run()
