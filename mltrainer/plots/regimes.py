"""Regime figures: probabilities, transition matrix, where several models agree.

Models with different numbers of regimes are compared on a common three-level scale
(:func:`stress_level`): the calmest regime, the most stressed one, or in between.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mltrainer.plots.common import downsample, finish, regime_colours

LEVELS = ("calm", "in between", "stressed")


def stress_level(labels: pd.Series | pd.DataFrame, k: int) -> pd.Series | pd.DataFrame:
    """Map labels 0..k-1 to 0 (calmest), 2 (most stressed) or 1 (anything between).

    With two regimes there is no middle: 0 -> 0, 1 -> 2. NaN stays NaN.
    """
    out = labels.astype("float64").copy()
    arr = out.to_numpy()
    mapped = np.where(arr <= 0, 0.0, np.where(arr >= k - 1, 2.0, 1.0))
    mapped[np.isnan(arr)] = np.nan
    if isinstance(out, pd.DataFrame):
        return pd.DataFrame(mapped, index=out.index, columns=out.columns)
    return pd.Series(mapped, index=out.index, name=out.name)


def agreement_matrix(levels: pd.DataFrame) -> pd.DataFrame:
    """Share of the dates (where both are defined) on which two models give the same
    stress level; the diagonal is 1."""
    cols = list(levels.columns)
    x = levels.to_numpy(dtype="float64")
    out = np.full((len(cols), len(cols)), np.nan)
    for i in range(len(cols)):  # a handful of models: the pairs loop is tiny
        for j in range(len(cols)):
            both = np.isfinite(x[:, i]) & np.isfinite(x[:, j])
            if both.any():
                out[i, j] = float(np.mean(x[both, i] == x[both, j]))
    return pd.DataFrame(out, index=cols, columns=cols)


def consensus(levels: pd.DataFrame) -> pd.DataFrame:
    """Per date: how many models are defined, the majority level and the share agreeing
    on the most common level. Without a strict majority (one model calm, one stressed)
    ``majority`` is NaN: a tie has no majority view, and calling it 'calm' (the first
    level) would be untrue."""
    x = levels.to_numpy(dtype="float64")
    counts = np.stack([(x == v).sum(axis=1) for v in range(3)], axis=1)
    n = np.isfinite(x).sum(axis=1)
    top = counts.argmax(axis=1).astype("float64")
    share = np.divide(counts.max(axis=1), n, out=np.full(len(n), np.nan), where=n > 0)
    top[(n == 0) | (2 * counts.max(axis=1) <= n)] = np.nan
    return pd.DataFrame({"n_models": n, "majority": top, "agreement": share}, index=levels.index)


def probabilities_area(
    probs: pd.DataFrame, names: dict | None = None, title: str | None = None, height: int = 300
) -> go.Figure:
    """Stacked areas of the (filtered) regime probabilities, calm at the bottom."""
    p = downsample(probs.dropna(how="all"))
    k = p.shape[1]
    colours = regime_colours(k)
    fig = go.Figure()
    for j, col in enumerate(p.columns):
        label = names.get(j, str(col)) if names else str(col)
        fig.add_trace(
            go.Scatter(
                x=p.index,
                y=p[col].to_numpy(),
                name=label,
                mode="lines",
                stackgroup="p",
                line={"width": 0.5, "color": colours[j]},
                hovertemplate="%{y:.0%}",
            )
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    return finish(fig, title, height)


def transition_heatmap(
    matrix: pd.DataFrame, names: dict | None = None, title: str | None = None, height: int = 320
) -> go.Figure:
    """Transition probabilities P(to | from), annotated, rows = from."""
    m = matrix.astype("float64")
    label = [names.get(int(i), str(i)) if names else str(i) for i in m.index]
    to = [names.get(int(i), str(i)) if names else str(i) for i in m.columns]
    fig = go.Figure(
        go.Heatmap(
            z=m.to_numpy(),
            x=to,
            y=label,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=np.vectorize(lambda v: f"{v:.1%}")(m.to_numpy()),
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="from %{y} to %{x}: %{z:.2%}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="to", side="top")
    fig.update_yaxes(title_text="from", autorange="reversed")
    fig.update_layout(hovermode="closest")
    fig = finish(fig, title, height, legend_top=False)
    # the top axis' labels and its 'to' need room under the title, or they overprint it
    fig.update_layout(margin_t=fig.layout.margin.t + 44)
    return fig


def agreement_strip(
    levels: pd.DataFrame, title: str | None = None, height: int | None = None
) -> go.Figure:
    """One row per model, coloured calm / in between / stressed along the dates, plus a
    'majority' row; where the rows differ the models disagree."""
    frame = levels.copy()
    cons = consensus(levels)
    frame["majority"] = cons["majority"]
    frame = downsample(frame)
    colours = regime_colours(3)
    scale = [
        [0.0, colours[0]],
        [0.33, colours[0]],
        [0.34, colours[1]],
        [0.66, colours[1]],
        [0.67, colours[2]],
        [1.0, colours[2]],
    ]
    text = np.vectorize(lambda v: "" if np.isnan(v) else LEVELS[int(v)], otypes=[object])(
        frame.to_numpy(dtype="float64").T
    )
    fig = go.Figure(
        go.Heatmap(
            z=frame.to_numpy(dtype="float64").T,
            x=frame.index,
            y=list(frame.columns),
            zmin=0,
            zmax=2,
            colorscale=scale,
            showscale=False,
            text=text,
            hovertemplate="%{y} %{x|%Y-%m-%d}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height or 70 + 34 * frame.shape[1], legend_top=False)


def agreement_heatmap(
    matrix: pd.DataFrame, title: str | None = None, height: int = 320
) -> go.Figure:
    """Pairwise share of dates on which two models agree."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            zmin=0,
            zmax=1,
            colorscale="Greens",
            text=np.vectorize(lambda v: f"{v:.0%}")(matrix.to_numpy()),
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="%{y} vs %{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height, legend_top=False)
