"""mltrainer dashboard: navigation and the global sidebar, nothing else of substance."""

import streamlit as st

from ui import links
from ui.context import sidebar
from ui.feedback import import_models
from ui.pages import navigation

st.set_page_config(page_title="mltrainer", page_icon="📈", layout="wide")

page = navigation()
sidebar()
import_models()
links.remember()
page.run()
links.report()  # a page that stops (ui.feedback.stop, friendly) has reported already
