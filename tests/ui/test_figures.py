"""The dashboard's figure builders (mltrainer.plots, except risk.py) and the small maths in
them, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from mltrainer.plots.common import (
    WEBGL_POINTS,
    add_label_background,
    downsample,
    regime_colours,
    runs,
    scatter_class,
)
from mltrainer.plots.market import price_with_regimes, recession_spans
from mltrainer.plots.regimes import agreement_matrix, consensus, stress_level
from mltrainer.plots.sectors import _label_box, _overlap, rrg_chart, short_sector, treemap

DAYS = pd.bdate_range("2020-01-01", periods=6)


def test_stress_levels_put_models_with_different_k_on_one_scale():
    four = pd.Series([0, 1, 2, 3, np.nan], dtype=float)
    assert stress_level(four, 4).tolist()[:4] == [0.0, 1.0, 1.0, 2.0]
    assert np.isnan(stress_level(four, 4).iloc[4])
    assert stress_level(pd.Series([0.0, 1.0]), 2).tolist() == [0.0, 2.0]


def test_agreement_and_consensus_by_hand():
    levels = pd.DataFrame(
        {"a": [0, 0, 2, 2, np.nan, 1], "b": [0, 2, 2, 1, 1, 1], "c": [0, 0, 2, 1, 1, np.nan]},
        index=DAYS,
        dtype=float,
    )
    m = agreement_matrix(levels)
    assert m.loc["a", "b"] == pytest.approx(3 / 5)  # 5 common dates, agree on 3
    assert m.loc["b", "c"] == pytest.approx(4 / 5)
    assert np.allclose(np.diag(m), 1.0)
    cons = consensus(levels)
    assert cons["n_models"].tolist() == [3, 3, 3, 3, 2, 2]
    assert cons["majority"].tolist() == [0.0, 0.0, 2.0, 1.0, 1.0, 1.0]
    assert cons["agreement"].tolist() == pytest.approx([1, 2 / 3, 1, 2 / 3, 1, 1])
    # one model calm, one stressed: no majority, not 'calm'
    tie = consensus(pd.DataFrame({"a": [0.0, 1.0], "b": [2.0, 1.0]}, index=DAYS[:2]))
    assert np.isnan(tie["majority"].iloc[0]) and tie["majority"].iloc[1] == 1.0
    assert tie["agreement"].tolist() == [0.5, 1.0]


def test_downsample_keeps_the_last_point_and_webgl_above_the_threshold():
    s = pd.Series(np.arange(12_001.0))
    thin = downsample(s, 5_000)
    assert len(thin) <= 5_001 and thin.iloc[-1] == 12_000.0 and thin.iloc[0] == 0.0
    assert len(downsample(s.iloc[:100])) == 100
    assert scatter_class(WEBGL_POINTS + 1) is go.Scattergl
    assert scatter_class(WEBGL_POINTS) is go.Scatter


def test_runs_of_labels():
    labels = pd.Series([np.nan, 0, 0, 2, 2, 1], index=DAYS)
    r = runs(labels)
    assert r["label"].tolist() == [0, 2, 1]
    assert list(r["start"]) == [DAYS[1], DAYS[3], DAYS[5]]
    assert list(r["end"]) == [DAYS[3], DAYS[5], DAYS[5]]  # spans touch the next run


def test_label_background_is_one_heatmap_under_the_lines():
    fig = go.Figure(go.Scatter(x=DAYS, y=np.arange(6.0), name="price"))
    labels = pd.Series([0, 0, 1, 2, 2, np.nan], index=DAYS)
    add_label_background(fig, labels, regime_colours(3))
    assert [t.type for t in fig.data] == ["heatmap", "scatter"]
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float).ravel()
    np.testing.assert_array_equal(z[:5], [0, 0, 1, 2, 2])
    assert np.isnan(z[5])  # no label: transparent
    assert heat.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.yaxis2.range == (0, 1)


def test_price_with_regimes_keeps_the_background_linear_on_a_log_scale():
    price = pd.Series([100.0, 101, 99, 120, 130, 128], index=DAYS, name="S&P 500")
    fig = price_with_regimes(
        price,
        pd.Series([0, 0, 1, 2, 2, 1], index=DAYS),
        {0: "calm", 1: "normal", 2: "stressed"},
        log_scale=True,
    )
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type != "log"
    assert {"calm", "normal", "stressed"} <= {t.name for t in fig.data}


def test_recession_spans_are_clipped_to_the_chart():
    from mltrainer.data.nber import RECESSIONS

    spans = recession_spans(RECESSIONS, "2008-06-30", "2020-03-31")
    assert list(spans["start"]) == [pd.Timestamp("2008-06-30"), pd.Timestamp("2020-03-01")]
    assert list(spans["end"]) == [pd.Timestamp("2009-06-30"), pd.Timestamp("2020-03-31")]


def test_treemap_sizes_colours_and_folded_small_stocks():
    stocks = pd.DataFrame(
        {
            "ticker": ["A", "B", "C", "D", "E"],
            "sector": ["X", "X", "X", "Y", "Y"],
            "size": [50.0, 30.0, 20.0, 10.0, 5.0],
            "return": [0.10, -0.20, 0.05, 0.0, np.nan],
            "name": ["a", "b", "c", "d", "e"],
        }
    )
    fig = treemap(stocks, max_stocks=3)
    t = fig.data[0]
    ids = list(t.ids)
    values = dict(zip(ids, t.values, strict=True))
    colours = dict(zip(ids, t.marker.colors, strict=True))
    assert values["all"] == 115.0 and values["s:X"] == 100.0 and values["s:Y"] == 15.0
    # X: (50*0.10 + 30*-0.20 + 20*0.05) / 100; C is the 3rd largest, kept as a tile
    assert colours["s:X"] == pytest.approx(0.0)
    assert "t:1 others · X" not in ids and "t:2 others · Y" in ids
    assert values["t:2 others · Y"] == 15.0
    assert colours["t:2 others · Y"] == pytest.approx(0.0)  # E has no return: D's alone
    assert len(treemap(stocks, max_stocks=None).data[0].ids) == 1 + 2 + 5
    # equal sizes: the largest moves keep their tiles, not the first tickers by name
    equal = stocks.assign(size=1.0, **{"return": [0.01, -0.30, 0.02, 0.25, np.nan]})
    kept = [i for i in treemap(equal, max_stocks=2).data[0].ids if i in ("t:A", "t:B", "t:D")]
    assert kept == ["t:B", "t:D"]


def test_rrg_labels_of_eleven_crowded_sectors_do_not_overlap():
    """Eleven latest points within a few pixels of each other: each gets its short name on
    a side where, by the chart's own estimate, no two labels overlap."""
    sectors = [
        "Communication Services",
        "Consumer Discretionary",
        "Consumer Staples",
        "Energy",
        "Financials",
        "Health Care",
        "Industrials",
        "Information Technology",
        "Materials",
        "Real Estate",
        "Utilities",
    ]
    rng = np.random.default_rng(13)
    rows = []
    for s in sectors:
        x, y = 100 + rng.normal(0, 0.4, 2)
        rows += [
            {"date": d, "sector": s, "rs_ratio": x + 0.1 * i, "rs_momentum": y}
            for i, d in enumerate(DAYS[:3])
        ]
    fig = rrg_chart(pd.DataFrame(rows), height=640)
    traces = [t for t in fig.data if t.mode == "lines+markers+text"]
    assert [t.text[-1] for t in traces] == [short_sector(s) for s in sectors]
    assert short_sector("Information Technology") == "Tech" and short_sector("New Sector") == "New"
    lo, hi = fig.layout.xaxis.range
    scale = (640 - 200) / (hi - lo)
    boxes = [
        _label_box(
            (t.x[-1] - lo) * scale,
            (t.y[-1] - lo) * scale,
            (7.0 * len(t.text[-1]) + 4, 16.0),
            t.textposition,
        )
        for t in traces
    ]
    assert all(_overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_long_title_is_wrapped_and_given_room():
    """A plotly title never wraps: a chart 218 px wide read "Basel traffic light by
    method (9". Titles break at words into lines of the given width, and the figure
    grows by a line's height for each extra line, so the plot keeps its size."""
    from mltrainer.plots.common import TITLE_LINE, finish, wrap_title
    from mltrainer.plots.risk import traffic_light_chart

    title = "Basel traffic light by method (99.0%, last 250 days)"
    assert wrap_title(title) == "Basel traffic light by method<br>(99.0%, last 250 days)"
    assert wrap_title("Short") == "Short" and wrap_title(None) is None
    assert wrap_title("x" * 40, 10) == "x" * 40  # one long word keeps its line
    one = finish(go.Figure(), "Short", height=300)
    two = finish(go.Figure(), wrap_title(title), height=300)
    assert two.layout.height - one.layout.height == TITLE_LINE
    assert two.layout.margin.t - one.layout.margin.t == TITLE_LINE
    zones = pd.DataFrame({"model": ["historical"], "exceptions": [3], "zone": ["green"]})
    flat = traffic_light_chart(zones, title="Basel")
    wrapped = traffic_light_chart(zones, title=wrap_title(title))
    assert wrapped.layout.margin.t - flat.layout.margin.t == TITLE_LINE
