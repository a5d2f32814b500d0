"""Layout that keeps every figure readable at any window width.

``st.columns(n)`` gives each metric a fixed share of the width and cuts what does not
fit with an ellipsis: a 1024 px window with the sidebar open showed the Risk page's VaR
as "$2…" and its Basel light as "GR…". :func:`metric_row` lays metrics side by side and
moves the ones that do not fit to the next line instead.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def metric_row() -> DeltaGenerator:
    """A row for ``st.metric`` (or small containers of a metric and its caption), in
    call order, wrapping onto more lines where the window is too narrow for them."""
    return st.container(horizontal=True, gap="medium")
