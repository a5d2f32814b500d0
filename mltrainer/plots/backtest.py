"""Model Lab figures: a model's output on one ticker, equity against the benchmark,
walk-forward in- vs out-of-sample, parameter-sweep heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mltrainer.plots.common import (
    NEUTRAL,
    PALETTE,
    add_label_background,
    downsample,
    finish,
    line,
    regime_colours,
)

OUTPUT_AXIS = {
    "signal": ("signal", [-1.05, 1.05], None),
    "volatility": ("annualised volatility", None, ".0%"),
    "weights": ("weight", None, ".0%"),
    "regime": ("regime", None, None),
    "risk": ("value", None, None),
}


def model_output_chart(
    price: pd.Series,
    output: pd.DataFrame,
    kind: str,
    title: str | None = None,
    height: int = 460,
    price_label: str = "price",
) -> go.Figure:
    """The price on top (its axis titled ``price_label``), the model's output below (one
    line per output column).

    For a regime model the price panel is shaded by regime instead.
    """
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.6, 0.4]
    )
    p = downsample(pd.Series(price, dtype="float64").dropna())
    fig.add_trace(
        line(
            p.index,
            p.to_numpy(),
            str(price.name or "price"),
            line={"color": NEUTRAL, "width": 1.3},
            hovertemplate="%{y:,.2f}",
        ),
        row=1,
        col=1,
    )
    out = downsample(output)
    if kind == "regime" and out.shape[1] and output.iloc[:, 0].notna().any():
        k = int(np.nanmax(output.iloc[:, 0].to_numpy())) + 1
        add_label_background(fig, output.iloc[:, 0], regime_colours(max(k, 2)))
    for i, col in enumerate(out.columns):
        shape = "hv" if kind in ("signal", "regime") else "linear"
        name = (
            f"{kind}: {col}" if kind in ("signal", "weights", "volatility", "regime") else str(col)
        )
        extra = {"fill": "tozeroy"} if kind == "signal" and len(out) <= 10_000 else {}
        fig.add_trace(
            line(
                out.index,
                out[col].to_numpy(),
                name,
                line={"color": PALETTE[(i + 1) % len(PALETTE)], "width": 1.0, "shape": shape},
                hovertemplate="%{y:.3f}",
                **extra,
            ),
            row=2,
            col=1,
        )
    axis_title, axis_range, fmt = OUTPUT_AXIS.get(kind, ("value", None, None))
    fig.update_yaxes(title_text=price_label, row=1, col=1)
    fig.update_yaxes(title_text=axis_title, range=axis_range, tickformat=fmt, row=2, col=1)
    if kind == "signal":
        fig.add_hline(y=0, line={"color": "#999", "width": 1}, row=2, col=1)
    return finish(fig, title, height)


def equity_chart(
    curves: dict[str, pd.Series],
    title: str | None = None,
    height: int = 400,
    log_scale: bool = False,
) -> go.Figure:
    """Growth of 1 for each named curve (the first drawn thicker: the strategy)."""
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        c = downsample(pd.Series(curve, dtype="float64").dropna())
        fig.add_trace(
            line(
                c.index,
                c.to_numpy(),
                name,
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "width": 2.0 if i == 0 else 1.3,
                    "dash": "dot" if "benchmark" in name.lower() else "solid",
                },
                hovertemplate="%{y:.3f}",
            )
        )
    fig.update_yaxes(title_text="growth of 1", type="log" if log_scale else "linear")
    return finish(fig, title, height)


def walkforward_chart(
    folds: pd.DataFrame, metric: str = "sharpe", title: str | None = None, height: int = 340
) -> go.Figure:
    """In-sample against out-of-sample ``metric`` per fold (grouped bars)."""
    labels = [f"{str(r.test_start)[:7]}→{str(r.test_end)[:7]}" for r in folds.itertuples()]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels, y=folds[f"is_{metric}"], name="in-sample (training)", marker_color=PALETTE[0]
        )
    )
    fig.add_trace(
        go.Bar(
            x=labels, y=folds[f"oos_{metric}"], name="out-of-sample (test)", marker_color=PALETTE[1]
        )
    )
    fig.add_hline(y=0, line={"color": "#555", "width": 1})
    fig.update_xaxes(title_text="test fold")
    fig.update_yaxes(title_text=metric.replace("_", " "))
    fig.update_layout(barmode="group", hovermode="closest")
    return finish(fig, title, height)


def sweep_heatmap(
    table: pd.DataFrame,
    x: str,
    y: str | None,
    value: str = "sharpe",
    title: str | None = None,
    height: int = 360,
) -> go.Figure:
    """A heatmap of ``value`` over a parameter grid (a bar chart for a one-parameter grid).

    ``table`` has one row per grid point with the parameter columns and ``value``.
    """
    if y is None or y == x:
        s = table.groupby(x)[value].mean()
        fig = go.Figure(
            go.Bar(
                x=[str(v) for v in s.index],
                y=s.to_numpy(),
                marker_color=[PALETTE[0]] * len(s),
                text=[f"{v:.2f}" for v in s.to_numpy()],
                textposition="auto",
            )
        )
        fig.update_xaxes(title_text=x.replace("_", " "), type="category")
        fig.update_yaxes(title_text=value.replace("_", " "))
    else:
        pivot = table.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
        z = pivot.to_numpy(dtype="float64")
        bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=[str(v) for v in pivot.columns],
                y=[str(v) for v in pivot.index],
                colorscale="RdYlGn",
                zmid=0,
                zmin=-bound,
                zmax=bound,
                text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.2f}")(z),
                texttemplate="%{text}",
                colorbar={"title": value},
                hovertemplate=f"{x} %{{x}}, {y} %{{y}}: %{{z:.3f}}<extra></extra>",
            )
        )
        fig.update_xaxes(title_text=x.replace("_", " "), type="category")
        fig.update_yaxes(title_text=y.replace("_", " "), type="category")
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height, legend_top=False)
