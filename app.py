"""mltrainer dashboard: navigation and the global sidebar, nothing else of substance."""

from pathlib import Path

import streamlit as st

from ui.context import sidebar

st.set_page_config(page_title="mltrainer", page_icon="📈", layout="wide")

HERE = Path(__file__).resolve().parent

PAGES = [
    st.Page(HERE / "pages" / "home.py", title="Home", icon="🏠", default=True),
]

navigation = st.navigation(PAGES)
sidebar()
navigation.run()
