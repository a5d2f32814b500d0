"""Figures built once per server for equal inputs and shared by every session.

Building a plotly figure is mostly plotly validating every trace and layout property, tens
of milliseconds for a chart of a few thousand points; a page of ten charts spent more of
a warm view's server time building them than anything else, although every reader of
the same portfolio or model run draws the same figures. :func:`shared` keeps each figure
in ``st.cache_resource`` keyed by the builder and its inputs (frames are hashed by value,
which takes a millisecond or two for these sizes): not pickled per reader, as a figure
loaded from a pickle is validated again. The figures are read-only: ``st.plotly_chart``
copies a figure, never changes it.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st


@st.cache_resource(show_spinner=False, max_entries=128)
def _build(_builder: Callable, name: str, args: tuple, kwargs: tuple) -> go.Figure:
    return _builder(*args, **dict(kwargs))


def shared(builder: Callable[..., go.Figure], *args, **kwargs) -> go.Figure:
    """``builder(*args, **kwargs)``, built once per server for equal arguments."""
    name = f"{builder.__module__}.{builder.__qualname__}"
    return _build(builder, name, args, tuple(sorted(kwargs.items())))
