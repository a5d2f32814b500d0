"""Regimes in AppTest: models chosen from the registry, sliders from their specs, the
regime-shaded price with NBER recessions, probabilities, transitions and agreement."""

from __future__ import annotations

import numpy as np
import pytest

from mltrainer.config import PROJECT_ROOT
from tests.ui.pagetools import array, chart_keys, errors, figure, metrics, open_page, table

VOL = "rg:Volatility:"


def background(fig: dict) -> np.ndarray:
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    return array(heat["z"]).astype(float).ravel()


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_regimes_render_on_the_index(app, shared_data_dir, source):
    at = open_page(app, "regimes", source)
    assert not errors(at)
    assert at.selectbox(key="rg_series").value == "S&P 500 index"
    assert at.multiselect(key="rg_models").value == [
        "regime/VolatilityRegimeModel",
        "regime/MarketConditionRegimeModel",
    ]
    assert {"rg_price", "rg_probs", "rg_transitions", "rg_agreement", "rg_pairs"} <= set(
        chart_keys(at)
    )
    fig = figure(at, "rg_price")
    assert fig["layout"]["yaxis"]["title"]["text"] == "index level"
    labels = background(fig)
    assert set(np.unique(labels[np.isfinite(labels)])) == {0.0, 1.0, 2.0}
    names = {t.get("name") for t in fig["data"]}
    assert {"low", "medium", "high", "NBER recession"} <= names  # the 2020 recession
    matrix = array(figure(at, "rg_transitions")["data"][0]["z"]).astype(float)
    assert matrix.shape == (3, 3) and np.allclose(matrix.sum(axis=1), 1.0)
    stats = table(at, "mean_return", "volatility")
    assert (np.diff(stats["volatility"].to_numpy()) > 0).all()  # 0 = calmest
    assert metrics(at)["Regime on the last date"] in ("Low", "Medium", "High")


def test_a_parameter_slider_changes_the_regimes(app, shared_data_dir):
    at = open_page(app, "regimes", "local")
    before = background(figure(at, "rg_price"))
    changes = int(metrics(at)["Regime changes in range"])
    at.slider(key=VOL + "window").set_value(63).run()
    assert not errors(at)
    after = background(figure(at, "rg_price"))
    assert before.shape == after.shape and not np.array_equal(before, after, equal_nan=True)
    assert int(metrics(at)["Regime changes in range"]) < changes  # a longer window is smoother


def test_a_ticker_and_model_agreement(app, shared_data_dir):
    at = open_page(app, "regimes", "local")
    at.selectbox(key="rg_series").select("JPM")
    at.multiselect(key="rg_models").set_value(
        [
            "regime/VolatilityRegimeModel",
            "regime/RegimeSwitchingModel",
            "regime/ChangePointRegimeModel",
        ]
    ).run()
    assert not errors(at)
    # a ticker's line is its adjusted close (JPM: 20.66 on 2003-06-02, traded at 33.92)
    assert figure(at, "rg_price")["layout"]["yaxis"]["title"]["text"] == "adjusted close"
    strip = figure(at, "rg_agreement")["data"][0]
    assert list(strip["y"]) == ["Volatility", "RegimeSwitching", "ChangePoint", "majority"]
    pairs = array(figure(at, "rg_pairs")["data"][0]["z"]).astype(float)
    assert pairs.shape == (3, 3) and np.allclose(np.diag(pairs), 1.0)
    assert ((pairs >= 0) & (pairs <= 1)).all()
    at.selectbox(key="rg_detail").select("regime/RegimeSwitchingModel").run()
    probs = figure(at, "rg_probs")["data"]
    assert len(probs) == 2  # a two-regime Markov switching model
    assert "expected_duration_days" in table(at, "mean_return").columns


def test_the_table_and_the_matrix_follow_the_date_range(app, shared_data_dir):
    """Per-regime statistics and transitions describe the range, like the headline
    figures (they were the whole run's, identical for 2011-2021 and 2019-2021)."""
    import datetime as dt

    at = open_page(app, "regimes", "local")
    wide = table(at, "mean_return", "volatility", "n_days")
    wide_matrix = array(figure(at, "rg_transitions")["data"][0]["z"]).astype(float)
    at.sidebar.date_input(key="g_dates").set_value(
        (dt.date(2019, 1, 2), dt.date(2021, 4, 21))
    ).run()
    assert not errors(at)
    narrow = table(at, "mean_return", "volatility", "n_days")
    narrow_matrix = array(figure(at, "rg_transitions")["data"][0]["z"]).astype(float)
    # about 580 trading days in 2019-01-02..2021-04-21, every one labelled once
    assert 560 <= narrow["n_days"].sum() <= 590 < wide["n_days"].sum()
    assert not np.allclose(narrow["volatility"], wide["volatility"], equal_nan=True)
    assert not np.allclose(narrow_matrix, wide_matrix, equal_nan=True)


@pytest.mark.parametrize(
    "start,end,value,help_text",
    [
        (
            "2017-03-01",
            "2017-04-28",
            "42+",
            "Trading days since 2017-03-01 or earlier (it held on the range's first labelled day)",
        ),
        ("2008-06-02", "2009-06-30", "269", "Trading days since 2008-06-06"),
    ],
)
def test_days_in_a_regime_that_began_before_the_range_are_a_lower_bound(
    app, shared_data_dir, start, end, value, help_text
):
    """Calm all through March-April 2017: "Days in this regime" said 42, the days of the
    range, as if the regime had begun on its first day. It now reads 42+ and says so; a
    regime that began inside the range gives its start."""
    app.query_params.update({"start": start, "end": end})
    at = open_page(app, "regimes", "local")
    held = next(m for m in at.metric if m.label == "Days in this regime")
    assert (held.value, held.help) == (value, help_text)
    at.switch_page(str(PROJECT_ROOT / "pages" / "home.py")).run()  # its caption says the same
    since = help_text.removeprefix("Trading days ").split(" (")[0]
    assert any(c.value.startswith(f"in this regime {since} · index to {end}") for c in at.caption)


def test_a_series_the_new_range_leaves_out_of_the_list_stays(app, shared_data_dir):
    """VZ picked under Telecommunication Services in 2010 turned into the S&P 500 index
    unsaid when the range moved to 2020."""
    import datetime as dt

    app.query_params.update(
        {"sectors": "Telecommunication Services", "start": "2010-01-04", "end": "2010-12-31"}
    )
    at = open_page(app, "regimes", "local")
    at.selectbox(key="rg_series").select("VZ").run()
    assert not at.exception, at.exception
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2020, 1, 2), dt.date(2020, 12, 31)))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="rg_series").value == "VZ"
    said = " ".join(c.value for c in at.caption)
    assert "VZ: not in the sidebar's sectors in this range, kept" in said


def test_a_series_another_source_lacks_is_named_when_the_source_changes(app, shared_data_dir):
    """ABBV on the local files turned into the S&P 500 index unsaid when the sidebar
    switched to the 20 bundled stocks."""
    at = open_page(app, "regimes", "local")
    at.selectbox(key="rg_series").select("ABBV").run()
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="rg_series").value == "S&P 500 index"
    assert [t.value for t in at.toast] == ["ABBV: not in the bundled data; showing S&P 500 index."]


def test_a_model_that_labels_no_day_is_named_and_left_out(app, shared_data_dir):
    """ChangePoint on CARR (275 days, too few segments for its terciles) labels no day:
    alone it drew a bare chart, no metric and 'Per-regime statistics,' over empty rows;
    beside others it made 'Days on which all models agree' read 'nan%'."""
    said = (
        "ChangePoint labels no day of CARR from 2020-03-19 to 2021-04-21: its windows "
        "found nothing usable in the 275 days of prices CARR has to 2021-04-21; pick "
        "another series or model, or shorter windows."
    )
    app.query_params.update({"rg_series": "CARR", "rg_models": ["ChangePoint"]})
    at = open_page(app, "regimes", "local")
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [said]
    assert not at.get("plotly_chart") and not at.dataframe
    at.multiselect(key="rg_models").set_value(
        [
            "regime/VolatilityRegimeModel",
            "regime/ChangePointRegimeModel",
            "regime/PerformanceBasedRegimeModel",
        ]
    ).run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [said]
    agree = next(m for m in at.metric if m.label == "Days on which all models agree")
    assert agree.value == "100%", agree.value  # CARR's last 3 days, labelled by both
    assert agree.help.endswith("over the 3 days every model labels")
    assert at.selectbox(key="rg_detail").options == ["Volatility", "PerformanceBased"]
