"""Universe and sector figures: market-cap treemap, sector weights, the relative rotation
graph and relative-strength lines (the numbers come from :mod:`mltrainer.sectors`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mltrainer.plots.common import PALETTE, finish, line
from mltrainer.sectors import QUADRANTS

QUADRANT_COLOURS = {
    "Leading": "#d5f5e3",
    "Weakening": "#fdebd0",
    "Lagging": "#fadbd8",
    "Improving": "#d6eaf8",
}


def _fold_small(s: pd.DataFrame, max_stocks: int) -> pd.DataFrame:
    """Keep the ``max_stocks`` largest tiles; fold the rest of each sector into one
    'n others' tile (size summed, return size-weighted). Among equal sizes (an equal-weight
    index) the largest moves keep their tiles: without that tie-break the tickers first in
    the alphabet did, and the tiles said nothing."""
    if len(s) <= max_stocks:
        return s
    move = s["return"].abs().fillna(-1.0)  # a stock without a return is folded first
    order = np.lexsort((-move.to_numpy(), -s["size"].to_numpy(dtype="float64")))
    s = s.iloc[order]
    keep, rest = s.iloc[:max_stocks], s.iloc[max_stocks:]
    rows = []
    for sector, part in rest.groupby("sector", sort=True):
        valid = part["return"].notna()
        ret = (
            float((part["return"] * part["size"])[valid].sum() / part["size"][valid].sum())
            if valid.any()
            else np.nan
        )
        rows.append(
            {
                "ticker": f"{len(part)} others · {sector}",
                "sector": sector,
                "size": float(part["size"].sum()),
                "return": ret,
                "name": ", ".join(part["ticker"].astype(str).head(12))
                + (" …" if len(part) > 12 else ""),
            }
        )
    return pd.concat([keep, pd.DataFrame(rows)], ignore_index=True)


def treemap(
    stocks: pd.DataFrame,
    title: str | None = None,
    height: int = 560,
    size_label: str = "market cap",
    max_stocks: int | None = 150,
) -> go.Figure:
    """Sectors and their stocks, area = ``size``, colour = ``return`` (red to green).

    ``stocks`` has columns ``ticker, sector, size, return`` (and optionally ``name``).
    A sector's colour is the size-weighted mean return of its stocks. The colour scale is
    symmetric around 0 and clipped at the 95th percentile of |return|, so one outlier does
    not wash out every other tile. Beyond the ``max_stocks`` largest, a sector's smaller
    stocks share one tile: their tiles would be too small to read, and every tile costs
    the browser time to draw.
    """
    s = stocks.dropna(subset=["size"]).copy()
    s = s[s["size"] > 0]
    s["sector"] = s["sector"].fillna("Unknown")
    if "name" not in s:
        s["name"] = ""
    if max_stocks is not None:
        s = _fold_small(s, max_stocks)
    ret = s["return"].astype("float64")
    w = s["size"].astype("float64")
    valid = ret.notna()
    by_sector = (
        pd.DataFrame(
            {"sector": s["sector"], "wr": (ret * w).where(valid), "w": w.where(valid), "size": w}
        )
        .groupby("sector")
        .sum(min_count=1)
    )
    sector_ret = by_sector["wr"] / by_sector["w"]
    ids = ["all"] + [f"s:{x}" for x in by_sector.index] + [f"t:{t}" for t in s["ticker"]]
    labels = ["S&P 500"] + list(by_sector.index) + list(s["ticker"])
    parents = [""] + ["all"] * len(by_sector) + [f"s:{x}" for x in s["sector"]]
    values = [float(w.sum())] + list(by_sector["size"]) + list(w)
    total_ret = float((ret * w).sum() / w[valid].sum()) if valid.any() else np.nan
    colours = [total_ret] + list(sector_ret) + list(ret)
    names = s["name"].fillna("") if "name" in s else pd.Series("", index=s.index)
    custom = ["S&P 500"] + list(by_sector.index) + list(names)
    text = ["n/a" if pd.isna(c) else f"{c:+.1%}" for c in colours]
    bound = float(np.nanpercentile(np.abs(ret), 95)) if valid.any() else 0.1
    bound = bound if bound > 0 else 0.1
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="total",
            customdata=custom,
            text=text,
            marker={
                "colors": [0.0 if pd.isna(c) else c for c in colours],
                "colorscale": "RdYlGn",
                "cmid": 0.0,
                "cmin": -bound,
                "cmax": bound,
                "colorbar": {"title": "return", "tickformat": ".0%"},
            },
            texttemplate="<b>%{label}</b><br>%{text}",
            hovertemplate=(
                "<b>%{label}</b> %{customdata}<br>"
                + size_label
                + ": %{value:,.3s}<br>return: %{text}<extra></extra>"
            ),
            maxdepth=3,
            tiling={"pad": 1},
            pathbar={"visible": True},
        )
    )
    # no animated transition when the dashboard redraws the chart (resize, new window)
    fig.update_layout(transition={"duration": 0})
    return finish(fig, title, height, legend_top=False)


def sector_weights_bar(
    cap: pd.Series | None, equal: pd.Series, title: str | None = None, height: int = 380
) -> go.Figure:
    """Cap-weighted against equal-weighted sector weights, grouped bars (equal-weighted
    only when ``cap`` is None: no market caps known for the date)."""
    series = (
        {"equal-weighted": equal} if cap is None else {"cap-weighted": cap, "equal-weighted": equal}
    )
    frame = pd.DataFrame(series).fillna(0.0)
    frame = frame.sort_values(frame.columns[0])
    fig = go.Figure()
    for i, col in enumerate(frame.columns):
        fig.add_trace(
            go.Bar(
                y=list(frame.index),
                x=frame[col].to_numpy(),
                name=col,
                orientation="h",
                marker_color=PALETTE[i],
                hovertemplate="%{y}: %{x:.1%}<extra>" + col + "</extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", title_text="index weight")
    fig.update_layout(barmode="group", hovermode="closest")
    return finish(fig, title, height)


def rrg_chart(tails: pd.DataFrame, title: str | None = None, height: int = 560) -> go.Figure:
    """The relative rotation graph: each sector's tail (older points smaller and paler),
    its latest point labelled with the sector's short name, quadrants shaded and named.

    ``tails`` has columns ``date, sector, rs_ratio, rs_momentum`` (see
    :func:`mltrainer.sectors.rrg_tails`). Eleven full sector names crowd the centre of the
    chart, so each latest point carries a short name (``Tech``) placed on the side where it
    overlaps the fewest other labels and points (:func:`_label_sides`); the legend spells
    the names out and the hover gives the full name and both values.
    """
    fig = go.Figure()
    lo, hi = _rrg_range(tails)
    _add_quadrants(fig, lo, hi)
    paths = [(str(s), p.sort_values("date")) for s, p in tails.groupby("sector", sort=True)]
    latest = np.array(
        [[p["rs_ratio"].iloc[-1], p["rs_momentum"].iloc[-1]] for _, p in paths], dtype="float64"
    ).reshape(-1, 2)
    tail_points = tails[["rs_ratio", "rs_momentum"]].to_numpy(dtype="float64")
    labels = [short_sector(s) for s, _ in paths]
    sides = _label_sides(latest, labels, (lo, hi), height, tail_points)
    for i, ((sector, path), side) in enumerate(zip(paths, sides, strict=True)):
        _add_tail(fig, sector, path, PALETTE[i % len(PALETTE)], side)
    fig.update_xaxes(range=[lo, hi], title_text="RS-Ratio (relative trend)", zeroline=False)
    fig.update_yaxes(range=[lo, hi], title_text="RS-Momentum", zeroline=False)
    fig.update_layout(hovermode="closest")
    return finish(fig, title, height)


# GICS sector -> the short name on the rotation graph (a name not listed keeps its first word)
SECTOR_SHORT = {
    "Communication Services": "Comm",
    "Consumer Discretionary": "Discr",
    "Consumer Staples": "Staples",
    "Energy": "Energy",
    "Financials": "Fin",
    "Health Care": "Health",
    "Industrials": "Indus",
    "Information Technology": "Tech",
    "Materials": "Mater",
    "Real Estate": "RE",
    "Utilities": "Util",
    "Telecommunication Services": "Telecom",
}
# textposition -> the label box's offset from its point, in label widths / heights
_SIDES = {
    "top center": (-0.5, 0.0),
    "bottom center": (-0.5, -1.0),
    "middle right": (0.0, -0.5),
    "middle left": (-1.0, -0.5),
    "top right": (0.0, 0.0),
    "top left": (-1.0, 0.0),
    "bottom right": (0.0, -1.0),
    "bottom left": (-1.0, -1.0),
}


def short_sector(sector: str) -> str:
    """The short name of a GICS sector on the rotation graph (``Tech``)."""
    return SECTOR_SHORT.get(sector, sector.split(" ")[0])


def _label_sides(
    points: np.ndarray,
    labels: list[str],
    span: tuple[float, float],
    height: int,
    others: np.ndarray | None = None,
) -> list[str]:
    """A ``textposition`` per point: greedily, the side whose label box overlaps the
    labels placed so far, the labelled points and the ``others`` (tail points) least, top
    first when nothing is in the way. Boxes are estimated in pixels of a square plot
    ``height - 200`` px wide (axes and the legend take the rest) over ``span`` on both
    axes, 7 px per character of 11 px text."""
    lo, hi = span
    scale = max(height - 200, 100) / (hi - lo) if hi > lo else 1.0
    px = (points - lo) * scale
    dots = [(x - 6, y - 6, x + 6, y + 6) for x, y in px]
    if others is not None:
        dots += [(x - 3, y - 3, x + 3, y + 3) for x, y in (others - lo) * scale]
    placed: list[tuple[float, float, float, float]] = []
    sides = []
    for (x, y), label in zip(px, labels, strict=True):
        size = (7.0 * len(label) + 4, 16.0)
        costs = {
            side: sum(_overlap(_label_box(x, y, size, side), o) for o in placed + dots)
            for side in _SIDES
        }
        best = min(costs, key=costs.get)  # ties keep _SIDES' order: top centre first
        placed.append(_label_box(x, y, size, best))
        sides.append(best)
    return sides


def _label_box(x: float, y: float, size: tuple, side: str) -> tuple:
    """The box ``(x0, y0, x1, y1)`` of a ``size`` label on ``side`` of the point (x, y),
    7 px clear of it."""
    dx, dy = _SIDES[side]
    gap_x = 7 if "right" in side else -7 if "left" in side else 0
    gap_y = 7 if "top" in side else -7 if "bottom" in side else 0
    x0, y0 = x + dx * size[0] + gap_x, y + dy * size[1] + gap_y
    return x0, y0, x0 + size[0], y0 + size[1]


def _overlap(a: tuple, b: tuple) -> float:
    """The area two boxes ``(x0, y0, x1, y1)`` share."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _rrg_range(tails: pd.DataFrame) -> tuple[float, float]:
    """Both axes' range: centred on 100, 15 % wider than the farthest point (at least
    +-0.5 before widening; +-2 for no tails)."""
    if len(tails):
        span = (
            max(
                float(np.nanmax(np.abs(tails["rs_ratio"] - 100))),
                float(np.nanmax(np.abs(tails["rs_momentum"] - 100))),
                0.5,
            )
            * 1.15
        )
    else:
        span = 2.0
    return 100 - span, 100 + span


def _add_quadrants(fig: go.Figure, lo: float, hi: float) -> None:
    """The four quadrants shaded, each named in its outer corner."""
    corners = {
        "Leading": (100, hi, 100, hi),
        "Weakening": (100, hi, lo, 100),
        "Lagging": (lo, 100, lo, 100),
        "Improving": (lo, 100, 100, hi),
    }
    for name in QUADRANTS:
        x0, x1, y0, y1 = corners[name]
        fig.add_shape(
            type="rect",
            x0=x0,
            x1=x1,
            y0=y0,
            y1=y1,
            layer="below",
            fillcolor=QUADRANT_COLOURS[name],
            line={"width": 0},
            opacity=0.6,
        )
        fig.add_annotation(
            x=x1 if x1 > 100 else x0,
            y=y1 if y1 > 100 else y0,
            text=name,
            showarrow=False,
            xanchor="right" if x1 > 100 else "left",
            yanchor="top" if y1 > 100 else "bottom",
            font={"size": 13, "color": "#555"},
        )


def _add_tail(
    fig: go.Figure, sector: str, path: pd.DataFrame, colour: str, side: str = "top center"
) -> None:
    """One sector's tail, oldest point smallest, its latest point labelled on ``side``."""
    n = len(path)
    sizes = np.linspace(4, 11, n) if n > 1 else np.array([11.0])
    short = short_sector(sector)
    fig.add_trace(
        go.Scatter(
            x=path["rs_ratio"],
            y=path["rs_momentum"],
            mode="lines+markers+text",
            name=sector if short == sector else f"{short}: {sector}",
            line={"color": colour, "width": 1.5},  # straight: a spline overshoots points
            marker={"size": sizes, "color": colour, "opacity": 0.9},
            text=[""] * (n - 1) + [short],
            textposition=side,
            textfont={"size": 11, "color": colour},
            customdata=[d.strftime("%Y-%m-%d") for d in path["date"]],
            hovertemplate=(
                f"<b>{sector}</b> %{{customdata}}<br>RS-Ratio %{{x:.2f}}"
                "<br>RS-Momentum %{y:.2f}<extra></extra>"
            ),
        )
    )


def rs_lines(rs: pd.DataFrame, title: str | None = None, height: int = 380) -> go.Figure:
    """Relative strength against the benchmark per sector (100 at the start)."""
    fig = go.Figure()
    for i, col in enumerate(rs.columns):
        s = rs[col].dropna()
        fig.add_trace(
            line(
                s.index,
                s.to_numpy(),
                str(col),
                line={"color": PALETTE[i % len(PALETTE)], "width": 1.3},
                hovertemplate="%{y:.1f}",
            )
        )
    fig.add_hline(y=100, line={"color": "#555", "width": 1, "dash": "dot"})
    fig.update_yaxes(title_text="relative strength (start = 100)")
    return finish(fig, title, height)
