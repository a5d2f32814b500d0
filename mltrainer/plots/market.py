"""Market figures: a price with regime-coloured background and NBER recessions, sector
performance bars."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from mltrainer.plots.common import (
    GAIN,
    LOSS,
    PALETTE,
    add_label_background,
    add_spans,
    downsample,
    finish,
    legend_swatch,
    line,
    regime_colours,
)

if TYPE_CHECKING:
    from mltrainer.data.nber import Recession
    from mltrainer.validate import DateLike

RECESSION_COLOUR = "#4d4d4d"


def recession_spans(
    recessions: Iterable[Recession], start: DateLike, end: DateLike
) -> pd.DataFrame:
    """NBER recessions (objects with ``start``/``end``) clipped to [start, end]."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    rows = [
        {"start": max(r.start, lo), "end": min(r.end, hi), "label": "recession"}
        for r in recessions
        if r.end >= lo and r.start <= hi
    ]
    return pd.DataFrame(rows, columns=["start", "end", "label"])


def price_with_regimes(
    price: pd.Series,
    labels: pd.Series | None = None,
    names: dict | None = None,
    *,
    recessions: Iterable[Recession] = (),
    title: str | None = None,
    log_scale: bool = False,
    height: int = 420,
    regime_label: str = "regime",
    price_label: str | None = None,
) -> go.Figure:
    """A price line (its axis titled ``price_label``) over a background coloured by
    regime (0 = calmest, green, to the most stressed, red), with NBER recessions as a dark
    band along the top.

    ``names`` maps label -> name (``{0: "calm", ...}``) for the legend.
    """
    p = pd.Series(price, dtype="float64").dropna()
    fig = go.Figure()
    if labels is not None:
        lab = pd.Series(labels).reindex(p.index)
        k = len(names) if names else int(lab.max()) + 1 if lab.notna().any() else 1
        colours = regime_colours(k)
        add_label_background(fig, lab, colours)
        for j in range(k):
            label = names.get(j, f"{regime_label} {j}") if names else f"{regime_label} {j}"
            legend_swatch(fig, f"{label}", colours[j], group="regimes")
    if len(recessions) and len(p):
        rec = recession_spans(recessions, p.index[0], p.index[-1])
        if len(rec):
            add_spans(fig, rec, {"recession": RECESSION_COLOUR}, opacity=0.55, y0=0.96, y1=1.0)
            add_spans(fig, rec, {"recession": RECESSION_COLOUR}, opacity=0.07)
            legend_swatch(fig, "NBER recession", RECESSION_COLOUR)
    shown = downsample(p)
    fig.add_trace(
        line(
            shown.index,
            shown.to_numpy(),
            str(p.name or "price"),
            line={"color": PALETTE[0], "width": 1.4},
            hovertemplate="%{x|%Y-%m-%d}: %{y:,.2f}<extra></extra>",
        )
    )
    if log_scale:  # the price axis only: the background's hidden axis stays linear
        fig.update_layout(yaxis_type="log")
    if price_label:
        fig.update_layout(yaxis_title_text=price_label)
    # the legend under the plot: a regime per entry and the recessions wrap onto more
    # lines in a narrow chart, and above the plot they rose over the title (414, 800 px)
    fig = finish(fig, title, height, legend_top=False)
    return fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.1, "xanchor": "left", "x": 0.0}
    )


def sector_performance_bar(
    table: pd.DataFrame, title: str | None = None, height: int | None = None
) -> go.Figure:
    """Grouped horizontal bars: one group per sector, one bar per horizon column.

    Sectors are ordered by the last column (best on top).
    """
    t = table.sort_values(table.columns[-1])
    fig = go.Figure()
    for i, col in enumerate(t.columns):
        vals = t[col].to_numpy()
        fig.add_trace(
            go.Bar(
                y=list(t.index),
                x=vals,
                name=str(col),
                orientation="h",
                marker_color=PALETTE[i % len(PALETTE)],
                hovertemplate="%{y}: %{x:.1%}<extra>" + str(col) + "</extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", zeroline=True, zerolinecolor="#555")
    fig.update_layout(barmode="group", hovermode="closest")
    return finish(fig, title, height or max(320, 60 + 26 * len(t) * max(1, len(t.columns)) // 2))


def return_bar(values: pd.Series, title: str | None = None, height: int = 320) -> go.Figure:
    """One signed bar per label (gains green, losses red), sorted best first."""
    s = pd.Series(values, dtype="float64").dropna().sort_values()
    fig = go.Figure(
        go.Bar(
            y=[str(i) for i in s.index],
            x=s.to_numpy(),
            orientation="h",
            marker_color=[GAIN if v >= 0 else LOSS for v in s.to_numpy()],
            text=[f"{v:+.1%}" for v in s.to_numpy()],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_xaxes(tickformat=".0%", zeroline=True, zerolinecolor="#555")
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height)
