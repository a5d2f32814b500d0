"""Helpers shared by the figure builders: layout, WebGL above 10k points, downsampling,
runs of a label series, the regime colours."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

WEBGL_POINTS = 10_000  # above this many points a line is drawn with WebGL (Scattergl)
MAX_POINTS = 5_000  # a line is thinned to about this many points before it is sent
GAIN, LOSS, NEUTRAL = "#1e8449", "#c0392b", "#2c3e50"
PALETTE = (
    "#1f4e79",
    "#e67e22",
    "#2ca02c",
    "#c0392b",
    "#8e44ad",
    "#16a085",
    "#d4ac0d",
    "#7f8c8d",
    "#e377c2",
    "#17becf",
    "#8c564b",
    "#bcbd22",
)
# calm -> stressed: green, amber, orange, red (k regimes take k of them, evenly spread)
REGIME_SCALE = ("#2e8b57", "#f1c40f", "#e67e22", "#c0392b")


TITLE_LINE = 20  # pixels each line of a title after the first takes


def wrap_title(text: str | None, width: int = 32) -> str | None:
    """``text`` in lines of at most ``width`` characters (a longer word keeps its own
    line), joined by ``<br>``: a plotly title never wraps, and in a narrow column what
    does not fit is cut (a 218 px chart read "Basel traffic light by method (9"). No
    title stays none."""
    if not text:
        return text
    return "<br>".join(textwrap.wrap(text, width, break_long_words=False)) or text


def title_lines(title: str | None) -> int:
    """How many lines ``title`` takes (0 for none)."""
    return 0 if not title else title.count("<br>") + 1


def finish(
    fig: go.Figure, title: str | None = None, height: int = 380, legend_top: bool = True
) -> go.Figure:
    """The house layout: small margins, the legend above the plot, room for every line of
    the title (see :func:`wrap_title`).

    No template is set: the dashboard's theme styles the figures (and a template costs
    plotly ~80 ms of validation per figure).
    """
    extra = TITLE_LINE * max(title_lines(title) - 1, 0)
    top = (34 + extra if title else 0) + (30 if legend_top else 0) + 10
    fig.update_layout(
        height=height + extra,
        margin={"l": 10, "r": 10, "t": top, "b": 10},
        hovermode="x unified" if fig.layout.hovermode is None else None,
    )
    if title:  # the title on the first line, the legend under it, then the plot
        fig.update_layout(
            title={
                "text": title,
                "x": 0.0,
                "xanchor": "left",
                "y": 1.0,
                "yref": "container",
                "yanchor": "top",
                # plotly lifts each line after the first above a top-anchored title
                "pad": {"t": 8 + extra},
                "font": {"size": 15},
            }
        )
    if legend_top:
        fig.update_layout(
            legend={
                "orientation": "h",
                "yanchor": "bottom",
                "y": 1.01,
                "xanchor": "right",
                "x": 1.0,
            }
        )
    return fig


def scatter_class(n_points: int) -> type[go.Scatter] | type[go.Scattergl]:
    """``go.Scattergl`` for more than WEBGL_POINTS points, else ``go.Scatter``."""
    return go.Scattergl if n_points > WEBGL_POINTS else go.Scatter


def downsample(
    data: pd.Series | pd.DataFrame, max_points: int = MAX_POINTS
) -> pd.Series | pd.DataFrame:
    """Every k-th row so that at most about ``max_points`` remain, the last row always
    kept (a chart of the latest value must show the latest value)."""
    n = len(data)
    if n <= max_points:
        return data
    step = int(np.ceil(n / max_points))
    keep = np.zeros(n, dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return data.iloc[keep]


def line(
    x: Sequence | pd.Index | np.ndarray, y: Sequence | pd.Series | np.ndarray, name: str, **kwargs
) -> go.Scatter | go.Scattergl:
    """A line trace, WebGL when it has many points (``kwargs`` go to the trace)."""
    cls = scatter_class(len(x))
    return cls(x=x, y=y, name=name, mode="lines", **kwargs)


def regime_colours(k: int) -> list[str]:
    """k colours from calm (green) to stressed (red)."""
    if k <= 1:
        return [REGIME_SCALE[0]]
    pos = np.linspace(0, len(REGIME_SCALE) - 1, k)
    return [REGIME_SCALE[int(round(p))] for p in pos]


def runs(labels: pd.Series) -> pd.DataFrame:
    """Consecutive runs of equal, non-missing labels: ``start, end, label`` per run.

    ``end`` is the first date of the next run (or the last date), so drawn spans touch.
    """
    s = pd.Series(labels)
    valid = s.dropna()
    if valid.empty:
        return pd.DataFrame(columns=["start", "end", "label"])
    values = valid.to_numpy()
    change = np.concatenate([[True], values[1:] != values[:-1]])
    starts = np.flatnonzero(change)
    idx = valid.index
    ends = np.concatenate([starts[1:], [len(values) - 1]])
    return pd.DataFrame({"start": idx[starts], "end": idx[ends], "label": values[starts]})


def add_spans(
    fig: go.Figure,
    spans: pd.DataFrame,
    colours: dict,
    opacity: float = 0.18,
    y0: float = 0.0,
    y1: float = 1.0,
) -> go.Figure:
    """Background rectangles for a few ``spans`` (start, end, label) coloured by label.

    Layout shapes cost plotly's validation about a millisecond each: use this for a handful
    of spans (recessions) and :func:`add_label_background` for daily labels.
    """
    for start, end, label in spans[["start", "end", "label"]].itertuples(index=False):
        fig.add_shape(
            type="rect",
            xref="x",
            yref="paper",
            x0=start,
            x1=end,
            y0=y0,
            y1=y1,
            fillcolor=colours.get(label, "#bbbbbb"),
            opacity=opacity,
            line={"width": 0},
            layer="below",
        )
    return fig


def _next_yaxis(fig: go.Figure) -> int:
    used = [1] + [
        int(name[5:])
        for name in fig.layout.to_plotly_json()
        if name.startswith("yaxis") and name[5:].isdigit()
    ]
    return max(used) + 1


def add_label_background(
    fig: go.Figure,
    labels: pd.Series,
    colours: list[str],
    opacity: float = 0.22,
    over: str = "y",
    anchor: str = "x",
) -> go.Figure:
    """Colour the plot's background by an integer label per date (0..k-1 -> colours).

    One heatmap row on a hidden axis laid over ``over`` (``"y"`` for the first panel,
    ``"y2"`` ... for subplots), so a decade of daily regimes is one trace rather than
    hundreds of shapes. Missing labels stay transparent.
    """
    lab = pd.Series(labels, dtype="float64")
    k = max(len(colours), 1)
    scale = []
    for j, colour in enumerate(colours):
        scale += [[j / k, colour], [(j + 1) / k, colour]]
    n = _next_yaxis(fig)
    base = fig.layout[f"yaxis{'' if over == 'y' else over[1:]}"]
    fig.add_trace(
        go.Heatmap(
            x=lab.index,
            y=[0.5],
            z=[lab.to_numpy()],
            zmin=-0.5,
            zmax=k - 0.5,
            colorscale=scale,
            showscale=False,
            opacity=opacity,
            hoverinfo="skip",
            xaxis=anchor,
            yaxis=f"y{n}",
        )
    )
    fig.update_layout(
        {
            f"yaxis{n}": {
                "overlaying": over,
                "range": [0, 1],
                "visible": False,
                "fixedrange": True,
                "anchor": anchor,
                "domain": base.domain if base.domain else [0, 1],
            }
        }
    )
    # the background must sit under the lines: move it to the front of the trace list
    fig.data = (fig.data[-1],) + fig.data[:-1]
    return fig


def legend_swatch(fig: go.Figure, name: str, colour: str, group: str | None = None) -> None:
    """A legend entry for a colour used by shapes (shapes have no legend of their own)."""
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=name,
            marker={"size": 12, "symbol": "square", "color": colour},
            legendgroup=group,
            showlegend=True,
            hoverinfo="skip",
        )
    )
