"""Portfolio figures for the Risk & Stress and Monitor pages: correlation heatmap, risk
contributions against weights, rolling VaR, alert timeline. (VaR backtest, drawdown,
scenario and traffic-light figures are in :mod:`mltrainer.plots.risk`.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mltrainer.plots.common import LOSS, PALETTE, finish

RULE_COLOURS = {
    "var_breach": "#c0392b",
    "drawdown": "#8e44ad",
    "volatility_spike": "#e67e22",
    "regime_change": "#1f4e79",
    "stale_data": "#7f8c8d",
}


def correlation_heatmap(
    corr: pd.DataFrame, title: str | None = None, height: int | None = None
) -> go.Figure:
    """Correlation matrix, blue (negative) to red (positive), annotated when small."""
    c = corr.astype("float64")
    n = len(c)
    fig = go.Figure(
        go.Heatmap(
            z=c.to_numpy(),
            x=list(c.columns),
            y=list(c.index),
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale="RdBu_r",
            colorbar={"title": "ρ"},
            text=np.vectorize(lambda v: f"{v:.2f}")(c.to_numpy()) if n <= 15 else None,
            texttemplate="%{text}" if n <= 15 else None,
            hovertemplate="%{y} / %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height or max(320, 40 + 28 * n), legend_top=False)


def risk_contribution_bar(
    weights: pd.Series,
    contributions: pd.Series,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Weight against share of portfolio volatility per position (both sum to 1)."""
    frame = pd.DataFrame({"weight": weights, "risk contribution": contributions})
    frame = frame.sort_values("risk contribution")
    fig = go.Figure()
    for i, col in enumerate(frame.columns):
        fig.add_trace(
            go.Bar(
                y=[str(t) for t in frame.index],
                x=frame[col].to_numpy(),
                name=col,
                orientation="h",
                marker_color=PALETTE[0] if i == 0 else LOSS,
                hovertemplate="%{y}: %{x:.1%}<extra>" + col + "</extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%")
    fig.update_layout(barmode="group", hovermode="closest")
    return finish(fig, title, height or max(280, 60 + 30 * len(frame)))


def alert_timeline(history: pd.DataFrame, title: str | None = None, height: int = 300) -> go.Figure:
    """One marker per past alert, one row per rule."""
    fig = go.Figure()
    for rule, part in history.groupby("rule", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["date"],
                y=part["title"],
                mode="markers",
                name=str(part["title"].iloc[0]),
                marker={
                    "size": 8,
                    "color": RULE_COLOURS.get(rule, PALETTE[0]),
                    "symbol": "line-ns",
                    "line": {"width": 2, "color": RULE_COLOURS.get(rule, PALETTE[0])},
                },
                customdata=part["message"],
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    fig.update_layout(hovermode="closest", showlegend=False)
    return finish(fig, title, height, legend_top=False)
