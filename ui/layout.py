"""Layout that keeps every figure readable at any window width.

``st.columns(n)`` gives each metric a fixed share of the width and cuts what does not
fit with an ellipsis: a 1024 px window with the sidebar open showed the Risk page's VaR
as "$2…" and its Basel light as "GR…". :func:`metric_row` lays metrics side by side and
moves the ones that do not fit to the next line instead, and :func:`control_row` does the
same for inputs, a choice box as wide as its longest option (:func:`fit`): in four equal
columns a 1024 px window showed the Model Lab's family as "mome", its universe as
"Tickers p" and the Risk page's portfolio value as "100000(".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def metric_row() -> DeltaGenerator:
    """A row for ``st.metric`` (or small containers of a metric and its caption), in
    call order, wrapping onto more lines where the window is too narrow for them."""
    return st.container(horizontal=True, gap="medium")


def control_row() -> DeltaGenerator:
    """A row for input widgets, in call order, wrapping onto more lines where the window
    is too narrow for them. Give a choice box ``width=fit(labels)``; sliders and inputs
    left at ``"stretch"`` share what remains."""
    return metric_row()


# the theme's text (Source Sans, 16 px) averages under 8.5 px a character, a label's
# (14 px) under 7.5; a box adds its padding and its arrow, a label its help icon
_CHAR_PX, _BOX_PX, _LABEL_PX, _HELP_PX = 8.5, 52, 7.5, 28


def fit(labels: Iterable[object], label: str = "", least: int = 110, most: int = 360) -> int:
    """Pixels a select box needs to show the longest of ``labels`` and its own ``label``
    uncut, between ``least`` and ``most``."""
    longest = max((len(str(text)) for text in labels), default=0)
    need = max(_CHAR_PX * longest + _BOX_PX, _LABEL_PX * len(label) + _HELP_PX)
    return max(least, min(most, math.ceil(need)))
