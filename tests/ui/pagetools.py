"""Helpers for the dashboard's AppTest tests: open a page on a source, read a chart's
data back from the figure Streamlit was given, read metrics."""

from __future__ import annotations

import base64
import json

import numpy as np

from mltrainer.config import PROJECT_ROOT


def open_page(app, page: str, source: str = "local"):
    """Run the app, pick the data source, switch to ``pages/<page>.py`` and run it."""
    at = app.run()
    assert not at.exception, at.exception
    if source != at.sidebar.selectbox(key="g_source").value:
        at.sidebar.selectbox(key="g_source").select(source).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / f"{page}.py")).run()
    return at


def open_tab(at, key: str, label: str):
    """Select the tab ``label`` of the lazy tabs ``key`` (pages draw only the open tab)
    and run the page again."""
    at.session_state[key] = label
    return at.run()


def errors(at) -> list[str]:
    return [e.value for e in at.error] + [e.message for e in at.exception]


def figure(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart drawn with ``key``."""
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(f"-{key}"):
            return json.loads(el.proto.spec)
    raise AssertionError(
        f"no chart with key {key!r}; charts: "
        f"{[el.proto.id.rsplit('-', 1)[-1] for el in at.get('plotly_chart')]}"
    )


def chart_keys(at) -> list[str]:
    return [el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")]


def array(values) -> np.ndarray:
    """A trace's x/y/z as numpy: plotly sends numeric arrays as base64 ``bdata``."""
    if isinstance(values, dict) and "bdata" in values:
        raw = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        if shape:
            dims = [int(s) for s in str(shape).split(",")]
            raw = raw.reshape(dims)
        return raw
    return np.asarray(values, dtype=object)


def trace(fig: dict, name: str | None = None, kind: str | None = None) -> dict:
    for t in fig["data"]:
        if (name is None or t.get("name") == name) and (kind is None or t.get("type") == kind):
            return t
    raise AssertionError(f"no trace {name!r}/{kind!r} in {[t.get('name') for t in fig['data']]}")


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at, *columns: str):
    """The first DataFrame on the page that has all of ``columns`` (non-selectable
    st.dataframe elements carry no key or id in AppTest)."""
    for el in at.dataframe:
        frame = el.value
        names = set(frame.columns) | set(frame.index.names)
        if set(columns) <= names:
            return frame
    raise AssertionError(f"no table with columns {columns}")
