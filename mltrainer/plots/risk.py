"""Plotly figures of portfolio risk: P&L bars, VaR backtests, drawdowns, replay paths.

Pure builders: data in, ``go.Figure`` out, no I/O and no Streamlit, so the stress
report and the dashboard draw the same pictures. Losses are red, gains green;
percentages are fractions formatted by Plotly (``tickformat='.1%'``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mltrainer import fmt
from mltrainer.plots.common import TITLE_LINE, title_lines

LOSS, GAIN, NEUTRAL = "#c0392b", "#1e8449", "#2c3e50"
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ZONE_COLOURS = {"green": "#1e8449", "yellow": "#d4ac0d", "red": "#c0392b"}


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    extra = TITLE_LINE * max(title_lines(title) - 1, 0)
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        height=height + extra,
        margin={"l": 10, "r": 10, "t": 50 + extra, "b": 10},
        template="plotly_white",
    )
    return fig


def pnl_bar(
    pnl: pd.Series, title: str, *, currency: str = "", sort: bool = True, max_bars: int = 60
) -> go.Figure:
    """Horizontal bars of a signed P&L by label (position, sector or scenario).

    NaN (a missing position) is drawn as an empty slot labelled ``missing`` rather
    than as a zero bar. With more than ``max_bars`` labels only the largest
    absolute P&Ls are drawn (the title says so).
    """
    s = pd.Series(pnl, dtype="float64")
    note = ""
    if len(s) > max_bars:
        keep = s.abs().sort_values(ascending=False, na_position="last").index[:max_bars]
        s = s.loc[keep]
        note = f" (largest {max_bars} of {len(pnl)})"
    if sort:
        s = s.sort_values(ascending=False, na_position="first")
    values = s.fillna(0.0).to_numpy()
    colours = [NEUTRAL if np.isnan(v) else LOSS if v < 0 else GAIN for v in s.to_numpy()]
    # fmt puts the sign before the currency (-$12,675, not $-12,675); the amounts sit
    # beside the bars at a readable size, never squeezed inside a short bar
    text = ["missing" if np.isnan(v) else fmt.money(v, currency=currency) for v in s.to_numpy()]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[str(i) for i in s.index],
            orientation="h",
            marker_color=colours,
            text=text,
            textposition="outside",
            textfont={"size": 11},
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(
        title_text=f"P&L {currency}".strip(),
        zeroline=True,
        zerolinecolor="#555",
        range=_padded_range(values),
    )
    return _layout(fig, title + note, height=max(260, 60 + 22 * len(s)))


def _padded_range(values: np.ndarray, pad: float = 0.35) -> list[float]:
    """An axis range around zero and ``values`` with room for the labels beside the bars
    (``pad`` of the span on each side that has bars), so they clear the tick labels."""
    lo, hi = (
        min(float(np.min(values, initial=0.0)), 0.0),
        max(float(np.max(values, initial=0.0)), 0.0),
    )
    span = (hi - lo) or 1.0
    return [lo - pad * span if lo < 0 else lo, hi + pad * span if hi > 0 else hi]


def weights_bar(
    weights: pd.Series, sectors: pd.Series | None = None, title: str = "Portfolio weights"
) -> go.Figure:
    """Weights by position, coloured by sector."""
    w = pd.Series(weights, dtype="float64").sort_values()
    sec = (
        pd.Series(sectors).reindex(w.index).fillna("Unknown")
        if sectors is not None
        else pd.Series("Portfolio", index=w.index)
    )
    fig = go.Figure()
    for i, name in enumerate(sorted(sec.unique())):
        part = w[sec == name]
        fig.add_trace(
            go.Bar(
                x=part.to_numpy(),
                y=[str(t) for t in part.index],
                orientation="h",
                name=str(name),
                marker_color=PALETTE[i % len(PALETTE)],
                hovertemplate="%{y}: %{x:.2%}<extra>" + str(name) + "</extra>",
            )
        )
    fig.update_xaxes(tickformat=".1%", title_text="weight")
    fig.update_yaxes(categoryorder="array", categoryarray=[str(t) for t in w.index])
    fig.update_layout(barmode="stack")
    return _layout(fig, title, height=max(260, 80 + 18 * len(w)))


def var_backtest_chart(
    returns: pd.Series,
    var: pd.DataFrame,
    exceptions: pd.Series | None = None,
    title: str = "Daily returns against VaR forecasts",
) -> go.Figure:
    """Daily returns (a thin line), the negated VaR forecast lines, and exceptions as red
    markers. The returns are one line rather than a marker per day: a decade is ~2,500
    points, and as markers each is an SVG node the browser styles and lays out (about
    half a second of a page view); the exceptions, a few dozen, stay markers.

    ``var`` holds one column per forecast (positive losses, the value at t being the
    forecast made at t-1 for t, i.e. already shifted onto the day it is tested);
    ``exceptions`` flags (1.0) the days a loss exceeded the first column's forecast.
    """
    r = pd.Series(returns, dtype="float64")
    fig = go.Figure(
        go.Scatter(
            x=r.index,
            y=r.to_numpy(),
            mode="lines",
            name="daily return",
            line={"width": 0.6, "color": "#95a5a6"},
            hovertemplate="%{x|%Y-%m-%d}: %{y:.2%}<extra></extra>",
        )
    )
    for i, col in enumerate(var.columns):
        fig.add_trace(
            go.Scatter(
                x=var.index,
                y=-var[col].to_numpy(),
                mode="lines",
                name=f"-VaR {col}",
                line={"width": 1.2, "color": PALETTE[i % len(PALETTE)]},
            )
        )
    if exceptions is not None:
        hit = exceptions.reindex(r.index).fillna(0.0) > 0
        fig.add_trace(
            go.Scatter(
                x=r.index[hit],
                y=r[hit].to_numpy(),
                mode="markers",
                name=f"exception ({int(hit.sum())})",
                marker={"size": 7, "color": LOSS, "symbol": "x"},
            )
        )
    fig.update_yaxes(tickformat=".0%", title_text="return")
    return _layout(fig, title, height=420)


def drawdown_chart(
    drawdown: pd.Series | pd.DataFrame, title: str = "Drawdown from the running peak"
) -> go.Figure:
    """Underwater chart: ``equity / cummax(equity) - 1`` (values <= 0) per series."""
    frame = drawdown.to_frame() if isinstance(drawdown, pd.Series) else drawdown
    fig = go.Figure()
    for i, col in enumerate(frame.columns):
        fig.add_trace(
            go.Scatter(
                x=frame.index,
                y=frame[col].to_numpy(),
                mode="lines",
                name=str(col),
                fill="tozeroy" if i == 0 else None,
                line={"width": 1, "color": LOSS if i == 0 else PALETTE[i % len(PALETTE)]},
                hovertemplate="%{x|%Y-%m-%d}: %{y:.1%}<extra></extra>",
            )
        )
    fig.update_yaxes(tickformat=".0%", title_text="drawdown")
    return _layout(fig, title, height=340)


def replay_paths_chart(
    paths: dict[str, pd.Series], title: str = "Portfolio value through each historical window"
) -> go.Figure:
    """Buy-and-hold value paths (1.0 at the start) against trading days since the start."""
    fig = go.Figure()
    for i, (name, path) in enumerate(paths.items()):
        p = pd.Series(path, dtype="float64")
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(p)),
                y=p.to_numpy() - 1.0,
                mode="lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
                customdata=[d.strftime("%Y-%m-%d") for d in p.index],
                hovertemplate=name + " %{customdata}: %{y:.1%}<extra></extra>",
            )
        )
    fig.add_hline(y=0.0, line={"color": "#555", "width": 1})
    fig.update_xaxes(title_text="trading days since the window's start")
    fig.update_yaxes(tickformat=".0%", title_text="cumulative return")
    # the legend under the plot: beside it, it took half of a narrow column's width
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0})
    return _layout(fig, title, height=420 + 18 * ((len(paths) + 1) // 2))


def scenario_summary_bar(
    table: pd.DataFrame,
    *,
    value: str = "portfolio_return",
    title: str = "Portfolio return by scenario",
) -> go.Figure:
    """One bar per scenario (``table`` as :func:`scenario_table` builds it), its signed
    return beside it: inside a bar ("auto") a short bar's label was cut to "7"."""
    s = table.set_index("scenario")[value].astype("float64")
    values = s.fillna(0.0).to_numpy()
    fig = go.Figure(
        go.Bar(
            x=values,
            y=list(s.index),
            orientation="h",
            marker_color=[LOSS if v < 0 else GAIN for v in values],
            text=[fmt.percent(v, 1, sign=True) for v in s],
            textposition="outside",
            textfont={"size": 11},
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_xaxes(tickformat=".0%", title_text="return", range=_padded_range(values))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(280, 70 + 34 * len(s)))


def traffic_light_chart(zones: pd.DataFrame, title: str = "Basel traffic light") -> go.Figure:
    """Exceptions per model, coloured by zone; ``title`` says over which days (250, or
    fewer when the range is shorter) and at which level.

    ``zones`` has columns ``model``, ``exceptions``, ``zone`` (green/yellow/red).
    """
    fig = go.Figure(
        go.Bar(
            x=zones["exceptions"].to_numpy(),
            y=list(zones["model"]),
            orientation="h",
            marker_color=[ZONE_COLOURS.get(z, NEUTRAL) for z in zones["zone"]],
            text=[f"{n} ({z})" for n, z in zip(zones["exceptions"], zones["zone"], strict=True)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x} exceptions<extra></extra>",
        )
    )
    top = max(10, int(zones["exceptions"].max()) + 2) if len(zones) else 10
    fig.update_xaxes(title_text="exceptions", range=[0, top])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(260, 70 + 28 * len(zones)))
