"""The leaderboard as a chart: each model's out-of-sample Sharpe ratio beside its
deflated Sharpe, with the naive baselines as reference lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mltrainer.plots.common import PALETTE, finish


def leaderboard_chart(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Horizontal bars of ``oos_sharpe`` per model (coloured by family, best on top), the
    deflated Sharpe in the hover text, and a dashed line per baseline row.

    ``table`` is :attr:`mltrainer.backtest.leaderboard.Leaderboard.table` (or a filtered
    copy): index the registry keys, columns ``family``, ``oos_sharpe``, ``oos_dsr``.
    """
    baselines = table[table["family"] == "baseline"]
    models = table[(table["family"] != "baseline") & table["oos_sharpe"].notna()]
    models = models.sort_values("oos_sharpe")
    names = bar_labels(models.index)
    fig = go.Figure()
    for i, (family, rows) in enumerate(models.groupby("family", sort=False)):
        fig.add_trace(
            go.Bar(
                x=rows["oos_sharpe"],
                y=[names[k] for k in rows.index],
                orientation="h",
                name=family,
                marker_color=PALETTE[i % len(PALETTE)],
                customdata=np.column_stack([rows["oos_dsr"], rows["n_settings"]]),
                hovertemplate="Sharpe %{x:.2f}<br>deflated Sharpe %{customdata[0]:.2f} "
                "over %{customdata[1]} settings<extra>%{fullData.name}</extra>",
            )
        )
    # labels point away from each other in Sharpe order: centred on their lines, two
    # baselines 0.4 apart wrote one name over the other on a narrow chart
    drawn = baselines[np.isfinite(baselines["oos_sharpe"])].sort_values("oos_sharpe")
    places = ("top left", "top right", "bottom left", "bottom right")
    for i, (key, row) in enumerate(drawn.iterrows()):
        fig.add_vline(
            x=float(row["oos_sharpe"]),
            line_dash="dash",
            annotation_text=key.split("/", 1)[1],
            annotation_position=places[i % len(places)],
        )
    fig.update_layout(barmode="overlay", hovermode="closest")
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=[names[k] for k in models.index],
    )
    # two lines: one is wider than a phone's chart (414 px)
    fig.update_xaxes(title_text="Sharpe ratio, out of sample<br>(annualised, after costs)")
    return finish(fig, title, height=max(320, 22 * len(models) + 140))


def bar_labels(keys: pd.Index) -> dict[str, str]:
    """Each registry key's bar label: the class name without "Model", or with its family
    where two families share it (``risk/RiskParity`` and ``sizing/RiskParity``: one row
    for both overlaid two models' bars and broke the best-on-top order)."""
    short = {k: k.split("/", 1)[1].removesuffix("Model") for k in keys}
    counts = pd.Series(list(short.values())).value_counts()
    return {k: (f"{k.split('/', 1)[0]}/{n}" if counts[n] > 1 else n) for k, n in short.items()}
