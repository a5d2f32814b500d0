"""The Model Lab in AppTest: sliders from the specs drive the output and the backtest,
the URL carries the settings (and a link reproduces them), runs land in the audit trail."""

from __future__ import annotations

import numpy as np
import pytest

from mltrainer import audit
from tests.ui.pagetools import array, errors, figure, metrics, open_page, trace
from tests.ui.pagetools import table as table_with

SPEC_KEY = "lab:momentum/TimeSeriesMomentumModel:"


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_model_lab_renders_with_its_widgets(app, shared_data_dir, source):
    at = open_page(app, "model_lab", source)
    assert not errors(at)
    assert at.selectbox(key="lab_family").value == "momentum"
    assert at.selectbox(key="lab_model:momentum").value == "momentum/TimeSeriesMomentumModel"
    assert at.multiselect(key="lab_tickers").value == ["AAPL", "MSFT", "JPM", "XOM", "JNJ"]
    sliders = {s.key: s for s in at.slider}
    for name, spec_default in (("short_window", 10), ("long_window", 60)):
        slider = sliders[SPEC_KEY + name]
        assert slider.value == spec_default and slider.help  # help text as the tooltip
    fig = figure(at, "lab_output")
    signal = array(trace(fig, "signal: AAPL")["y"])
    assert set(np.unique(signal[np.isfinite(signal)])) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    assert "Sharpe" in metrics(at) and figure(at, "lab_equity")["data"]
    # the price panel draws the adjusted close the model reads, and says so: its axis
    # said "price" over AAPL at ~17 in 2012, when it traded at ~560
    assert fig["layout"]["yaxis"]["title"]["text"] == "adjusted close"


def test_moving_a_slider_changes_the_output_the_backtest_and_the_url(app, shared_data_dir):
    at = open_page(app, "model_lab", "local")
    before_signal = array(trace(figure(at, "lab_output"), "signal: AAPL")["y"])
    before_equity = array(figure(at, "lab_equity")["data"][0]["y"])
    before_sharpe = metrics(at)["Sharpe"]
    at.slider(key=SPEC_KEY + "long_window").set_value(200).run()
    assert not errors(at)
    signal = array(trace(figure(at, "lab_output"), "signal: AAPL")["y"])
    equity = array(figure(at, "lab_equity")["data"][0]["y"])
    assert not np.array_equal(signal, before_signal)
    assert not np.allclose(equity, before_equity)
    assert metrics(at)["Sharpe"] != before_sharpe
    assert at.query_params["p.long_window"] == "200"
    assert at.query_params["model"] == "momentum/TimeSeriesMomentumModel"


def test_a_shared_link_reproduces_the_run(app, shared_data_dir):
    app.query_params.update(
        {
            "family": "momentum",
            "model": "momentum/SimpleMomentumModel",
            "tickers": "KO,PEP,WMT",
            "ticker": "PEP",
            "p.window": "90",
            "costs": "12",
            "start": "2015-01-02",
            "end": "2019-12-31",
        }
    )
    at = open_page(app, "model_lab", "local")
    assert not errors(at)
    assert at.selectbox(key="lab_model:momentum").value == "momentum/SimpleMomentumModel"
    assert at.multiselect(key="lab_tickers").value == ["KO", "PEP", "WMT"]
    assert at.selectbox(key="lab_ticker").value == "PEP"
    assert at.slider(key="lab:momentum/SimpleMomentumModel:window").value == 90
    assert at.slider(key="lab_costs").value == 12.0
    start, end = at.sidebar.date_input(key="g_dates").value
    assert (str(start), str(end)) == ("2015-01-02", "2019-12-31")
    x = array(figure(at, "lab_equity")["data"][0]["x"])
    assert str(x[0])[:10] >= "2015-01-02" and str(x[-1])[:10] <= "2019-12-31"


def test_dropping_the_charted_ticker_is_not_blamed_on_a_link(app, shared_data_dir):
    """Opened without a link, a change of tickers that drops the charted one said "The
    link's ticker='AAPL' is not among the tickers run": the page took its last run's
    settings for a link. A real link's missing ticker is still named."""
    at = open_page(app, "model_lab", "local")
    at.multiselect(key="lab_tickers").set_value(["MSFT"]).run()
    assert not errors(at)
    assert at.selectbox(key="lab_ticker").value == "MSFT"
    assert not [w.value for w in at.warning if "The link's" in w.value]


def test_a_range_under_a_quarter_gives_no_annualised_figures(app, shared_data_dir):
    """A 6-day range showed "Sharpe 3.35" and a 29% CAGR as tiles that read as facts:
    under 63 trading days the tiles give the total return and say why the rest is n/a."""
    app.query_params.update({"start": "2021-04-14", "end": "2021-04-21"})
    at = open_page(app, "model_lab", "local")
    assert not errors(at)
    shown = metrics(at)
    assert "CAGR" not in shown and shown["Total return"].endswith("%")
    assert shown["Sharpe"] == "n/a" and shown["Volatility"] == "n/a"
    assert shown["Max drawdown"] != "n/a"  # not annualised: shown as it is


def test_each_run_lands_in_the_audit_trail_once(app, shared_data_dir):
    at = open_page(app, "model_lab", "local")
    at.slider(key=SPEC_KEY + "short_window").set_value(17).run()
    at.run()  # a rerun with the same inputs is served from the cache: no second record
    runs = [
        r
        for r in audit.read()
        if r["model"] == "momentum/TimeSeriesMomentumModel"
        and r["params"].get("short_window") == 17
    ]
    assert len(runs) == 1
    rec = runs[0]
    assert rec["kind"] == "backtest" and rec["source"] == "local"
    assert rec["tickers"] == ["AAPL", "MSFT", "JPM", "XOM", "JNJ"]
    assert rec["metrics"]["sharpe"] is not None and rec["data_fingerprint"]


def test_a_volume_model_on_the_bundled_data_says_what_to_do(app, shared_data_dir):
    at = open_page(app, "model_lab", "bundled")
    at.selectbox(key="lab_family").select("volume").run()
    assert not at.exception
    assert any("needs traded volume" in w.value and "local source" in w.value for w in at.warning)


def test_walk_forward_with_a_sweep_and_models_side_by_side(app, shared_data_dir):
    at = open_page(app, "model_lab", "local")
    at.multiselect(key="lab_sweep:momentum/TimeSeriesMomentumModel").set_value(
        ["short_window", "long_window"]
    )
    at.slider(key="lab_points").set_value(2)
    at.slider(key="lab_train").set_value(504)
    at.slider(key="lab_test").set_value(252).run()
    at.button(key="lab_run_wf").click().run()
    assert not errors(at)
    m = metrics(at)
    assert 0.0 <= float(m["Deflated Sharpe (OOS)"]) <= 1.0
    folds = figure(at, "lab_wf_folds")
    assert len(folds["data"]) == 2 and len(folds["data"][0]["x"]) >= 6  # ~8 yearly folds
    sweep = figure(at, "lab_sweep_map")
    z = array(sweep["data"][0]["z"])
    assert z.shape == (2, 2) and np.isfinite(z.astype(float)).all()
    # the result is kept: another rerun shows it without pressing the button
    at.run()
    assert "Deflated Sharpe (OOS)" in metrics(at)

    at.multiselect(key="lab_compare").set_value(
        ["momentum/SimpleMomentumModel", "sizing/RiskParityModel"]
    ).run()
    assert not errors(at)
    names = [t["name"] for t in figure(at, "lab_compare_chart")["data"]]
    assert names[:3] == ["TimeSeriesMomentum", "SimpleMomentum", "RiskParity"]


def test_a_walk_forward_that_never_trades_says_so(app, shared_data_dir):
    """Dual momentum on AAPL alone has no relative part and never holds a position: its
    out-of-sample CAGR of 0% is cash's, and the tab says so under the metrics."""
    app.query_params.update(
        {"family": "momentum", "model": "momentum/DualMomentumModel", "tickers": "AAPL"}
    )
    at = open_page(app, "model_lab", "local")
    at.slider(key="lab_train").set_value(504)
    at.slider(key="lab_test").set_value(252).run()
    at.button(key="lab_run_wf").click().run()
    assert not errors(at)
    notes = [c.value for c in at.caption]
    assert any("Out of sample: the model took no position on any date" in n for n in notes)


def test_settings_survive_a_visit_to_another_page(app, shared_data_dir):
    from mltrainer.config import PROJECT_ROOT

    at = open_page(app, "model_lab", "local")
    at.multiselect(key="lab_tickers").set_value(["KO", "PEP"]).run()
    at.slider(key=SPEC_KEY + "long_window").set_value(120).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "home.py")).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "model_lab.py")).run()
    assert not errors(at)
    assert at.multiselect(key="lab_tickers").value == ["KO", "PEP"]
    assert at.slider(key=SPEC_KEY + "long_window").value == 120


def test_walk_forward_tab_shows_the_baselines_on_the_out_of_sample_dates(app, shared_data_dir):
    from tests.ui.pagetools import table

    at = open_page(app, "model_lab", "local")
    at.multiselect(key="lab_sweep:momentum/TimeSeriesMomentumModel").set_value(["long_window"])
    at.slider(key="lab_points").set_value(2)
    at.slider(key="lab_train").set_value(504)
    at.slider(key="lab_test").set_value(252).run()
    at.button(key="lab_run_wf").click().run()
    assert not errors(at)
    base = table(at, "cagr", "sharpe", "max_drawdown", "excess_cagr", "excess_sharpe")
    assert list(base.index) == [
        "model (walk-forward, chosen parameters)",
        "equal-weight buy-and-hold",
        "S&P 500 index (price, no costs)",
        "model, default parameters (fixed)",
    ]
    assert np.isfinite(base["cagr"].astype(float)).all()
    excess = base["excess_cagr"].astype(float)
    assert excess.iloc[1:].to_numpy() == pytest.approx(
        (base["cagr"].iloc[0] - base["cagr"].iloc[1:]).astype(float).to_numpy(), rel=1e-12
    )
    folds = table(at, "test_start", "test_end", "oos_sharpe")
    heading = next(m.value for m in at.markdown if "beside naive baselines" in m.value)
    assert f"{folds['test_start'].iloc[0]} to " in heading and "AAPL" in heading
    names = [t["name"] for t in figure(at, "lab_wf_equity")["data"]]
    assert names == [
        "Stitched out-of-sample",
        "equal-weight buy-and-hold",
        "S&P 500 index (price, no costs)",
        "model, default parameters (fixed)",
    ]


def test_the_sp500_as_it_was_holds_members_only_beside_the_survivors(app, shared_data_dir):
    at = open_page(app, "model_lab", "local")
    at.selectbox(key="lab_universe").set_value("sp500").run()
    assert not errors(at)
    captions = " ".join(c.value for c in at.caption)
    assert "504 tickers of the local data, each held only while an S&P 500 member" in captions
    assert "universe: S&P 500 as it was" in captions
    table = table_with(at, "cagr", "sharpe", "max_drawdown")
    assert list(table.index) == [
        "S&P 500 as it was",
        "Survivors, whole period",
        "Survivors minus as it was",
    ]
    pit, surv = table.loc["S&P 500 as it was"], table.loc["Survivors, whole period"]
    assert table.loc["Survivors minus as it was", "cagr"] == pytest.approx(
        surv["cagr"] - pit["cagr"]
    )
    assert pit["cagr"] != pytest.approx(surv["cagr"])
    names = [t["name"] for t in figure(at, "lab_equity")["data"]]
    assert any("survivors" in n for n in names)
    assert at.query_params["universe"] == "sp500"
    assert "tickers" not in at.query_params  # an empty list would be refused on reload
    # the walk-forward of the index as it was carries the survivors' run beside it
    at.multiselect(key="lab_sweep:momentum/TimeSeriesMomentumModel").set_value([])
    at.slider(key="lab_train").set_value(756)
    at.slider(key="lab_test").set_value(504).run()
    at.button(key="lab_run_wf").click().run()
    assert not errors(at)
    oos = next(
        el.value
        for el in at.dataframe
        if list(el.value.index)
        == ["S&P 500 as it was", "Survivors, whole period", "Survivors minus as it was"]
        and el.value is not None
        and el.value.shape[1] == 3
        and el.value.iloc[0]["cagr"] != table.iloc[0]["cagr"]
    )
    assert oos.loc["Survivors minus as it was", "sharpe"] == pytest.approx(
        oos.loc["Survivors, whole period", "sharpe"] - oos.loc["S&P 500 as it was", "sharpe"]
    )
    heading = next(m.value for m in at.markdown if "beside naive baselines" in m.value)
    assert "held only while index members" in heading


def test_a_failed_markov_refit_is_shown_on_the_page(app, shared_data_dir, markov_first_refit_fails):
    # the page says so instead of showing a silent gap in the labels
    import streamlit as st

    st.cache_data.clear()  # an earlier test's run of the same settings must not answer
    try:
        app.query_params.update(
            {
                "family": "regime",
                "model": "regime/RegimeSwitchingModel",
                "tickers": "KO",
                "ticker": "KO",
                "start": "2012-01-03",
                "end": "2017-12-29",
            }
        )
        at = open_page(app, "model_lab", "local")
        assert not errors(at)
        assert at.selectbox(key="lab_model:regime").value == "regime/RegimeSwitchingModel"
        shown = [w.value for w in at.warning if "Markov switching fit failed for KO" in w.value]
        assert len(shown) == 1 and "left NaN" in shown[0]
    finally:
        st.cache_data.clear()  # nor may this run's injected failure answer a later test


def test_a_shared_link_of_the_index_as_it_was_reproduces_it(app, shared_data_dir):
    app.query_params.update(
        {
            "family": "momentum",
            "model": "momentum/SimpleMomentumModel",
            "universe": "sp500",
            "ticker": "KO",
            "costs": "3",
        }
    )
    at = open_page(app, "model_lab", "local")
    assert not errors(at) and not at.warning
    assert at.selectbox(key="lab_universe").value == "sp500"
    assert at.selectbox(key="lab_ticker").value == "KO"
    assert "universe: S&P 500 as it was" in " ".join(c.value for c in at.caption)


def test_a_sector_filter_without_a_link_blames_no_link(app, shared_data_dir):
    """Opened with no link, a sidebar sector filter that leaves out the last run's
    tickers warned 'The link's tickers AAPL, MSFT, JPM, JNJ are not in the auto data'."""
    at = open_page(app, "model_lab", "local")
    assert not at.exception, at.exception
    at.sidebar.multiselect(key="g_sectors").set_value(["Energy"]).run()
    assert not at.exception, at.exception
    assert not [w.value for w in at.warning if "The link's" in w.value]
    assert at.multiselect(key="lab_tickers").value  # the picks stay, XOM in Energy


def test_tickers_without_a_price_in_the_range_are_said_for_the_readers_range(app, shared_data_dir):
    """The message said 'from 1999-11-01 to 2003-12-31', the data's first day, for a range
    that starts 2000-01-03 (the model reads all the history before the range too)."""
    app.query_params.update({"tickers": "GOOG,FB", "start": "2000-01-03", "end": "2003-12-31"})
    at = open_page(app, "model_lab", "local")
    assert not at.exception, at.exception
    said = " ".join(e.value for e in at.error)
    assert "no price for GOOG, FB from 2000-01-03 to 2003-12-31" in said, said


def test_the_ticker_list_takes_the_sectors_the_stocks_had_in_the_range(app, shared_data_dir):
    """With Information Technology picked for 2010, the list left out GOOGL (today in
    Communication Services, which began 2018-09-24), and offered it under the later sector."""
    app.query_params.update({"start": "2010-01-04", "end": "2010-12-31", "tickers": "AAPL"})
    at = open_page(app, "model_lab", "local")
    assert not at.exception, at.exception
    at.sidebar.multiselect(key="g_sectors").set_value(["Information Technology"]).run()
    assert not at.exception, at.exception
    offered = at.multiselect(key="lab_tickers").options
    assert "GOOGL" in offered and "AAPL" in offered and "XOM" not in offered
    at.sidebar.multiselect(key="g_sectors").set_value(["Communication Services"]).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="lab_tickers").options == ["AAPL"]  # the pick, kept
    said = " ".join(c.value for c in at.caption)
    assert "AAPL: not in the sidebar's sectors in this range, kept. No stock of this data" in said
    assert "was in Communication Services from 2010-01-04 to 2010-12-31" in said
    assert "Communication Services from 2018-09-24" in said
    at.multiselect(key="lab_tickers").set_value([]).run()  # nothing picked, nothing listed
    assert at.multiselect(key="lab_tickers").options == []
    assert "No stock of this data was in Communication" in " ".join(i.value for i in at.info)
    at.sidebar.multiselect(key="g_sectors").set_value(["Telecommunication Services"]).run()
    assert not at.exception, at.exception
    assert {"T", "VZ"} <= set(at.multiselect(key="lab_tickers").options)


def test_a_machine_learning_run_shows_a_bar_of_its_refits(app, shared_data_dir, monkeypatch):
    """The ensemble's first run took about two minutes behind a bare spinner; the run
    now goes through a progress bar counting its walk-forward refits, and the page then
    draws from that result: the model is fitted once."""
    from ui import compute

    fitted, cached = [], []
    real, real_cached = compute._run, compute._cached_run
    monkeypatch.setattr(compute, "_run", lambda *args: fitted.append(args) or real(*args))
    monkeypatch.setattr(
        compute, "_cached_run", lambda *args: cached.append(args) or real_cached(*args)
    )
    link = {"family": "ml", "model": "ml/BaseMLModel", "tickers": "AAPL,MSFT"}
    app.query_params.update(link | {"start": "2012-01-03", "end": "2014-12-31"})
    at = open_page(app, "model_lab", "local")
    assert not errors(at), errors(at)
    assert [s.label for s in at.get("status")] == ["BaseML: walk-forward fits done"]
    (bar,) = at.get("progress")
    done, _, total, unit = bar.proto.text.split(" ")
    assert done == total and int(total) > 10 and bar.proto.value == 100
    assert unit == "refits", bar.proto.text
    assert figure(at, "lab_output")["data"]
    assert [a[1] for a in fitted].count("ml/BaseMLModel") == 1, fitted
    # the page and its backtest read copies of the kept run: none is cached a second time
    assert "ml/BaseMLModel" not in [a[1] for a in cached], cached


def test_picked_tickers_stay_when_a_new_range_leaves_them_out_of_the_list(app, shared_data_dir):
    """T and VZ picked under Telecommunication Services in 2010 vanished when the range
    moved to 2020 (the sector had ended), and were gone again back in 2010."""
    import datetime as dt

    telecom = {"sectors": "Telecommunication Services", "tickers": "T,VZ"}
    app.query_params.update(telecom | {"start": "2010-01-04", "end": "2010-12-31"})
    at = open_page(app, "model_lab", "local")
    assert not errors(at), errors(at)
    assert at.multiselect(key="lab_tickers").value == ["T", "VZ"]
    dates = at.sidebar.date_input(key="g_dates")
    dates.set_value((dt.date(2020, 1, 2), dt.date(2020, 12, 31))).run()
    assert not errors(at), errors(at)
    assert at.multiselect(key="lab_tickers").value == ["T", "VZ"]
    said = " ".join(c.value for c in at.caption)
    assert "T, VZ: not in the sidebar's sectors in this range, kept" in said
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2010, 1, 4), dt.date(2010, 12, 31)))
    at.run()
    assert at.multiselect(key="lab_tickers").value == ["T", "VZ"]
    assert "kept" not in " ".join(c.value for c in at.caption)


def test_the_index_as_it_was_in_chosen_sectors_blames_the_filter_not_the_data(app, shared_data_dir):
    """Telecommunication Services with 'S&P 500 as it was' warned that only 0% of the
    index members have prices, 'members delisted ... before the data was collected'."""
    app.query_params.update(
        {
            "sectors": "Telecommunication Services",
            "start": "2015-01-02",
            "end": "2017-12-29",
            "universe": "sp500",
            "family": "momentum",
            "model": "momentum/TimeSeriesMomentumModel",
        }
    )
    at = open_page(app, "model_lab", "local")
    assert not errors(at), errors(at)
    said = " ".join(w.value for w in at.warning) + " ".join(c.value for c in at.caption)
    assert "before the data was collected" not in said
    assert "given are a subset of the index" in said, said


def test_tickers_another_source_lacks_are_named_when_the_source_changes(app, shared_data_dir):
    """ABBV and NVDA of the local files vanished when the sidebar switched to the 20
    bundled stocks: the backtest ran on AAPL alone with no word; the same when the
    source changed on another page and the Lab was opened again."""
    from mltrainer.config import PROJECT_ROOT

    app.query_params.update({"tickers": "ABBV,AAPL,NVDA"})
    at = open_page(app, "model_lab", "local")
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    assert not errors(at)
    assert at.multiselect(key="lab_tickers").value == ["AAPL"]
    said = ["ABBV, NVDA: not in the bundled data; left out of the tickers."]
    assert [t.value for t in at.toast] == said
    at.run()
    assert not at.toast  # said once

    at.multiselect(key="lab_tickers").set_value(["AAPL", "BAC"]).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "home.py")).run()
    at.sidebar.selectbox(key="g_source").select("local").run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "model_lab.py")).run()
    assert not errors(at) and not at.toast  # both are in the local data
    at.multiselect(key="lab_tickers").set_value(["AAPL", "ABBV"]).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "home.py")).run()
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "model_lab.py")).run()
    assert not errors(at)
    assert at.multiselect(key="lab_tickers").value == ["AAPL"]
    assert [t.value for t in at.toast] == [
        "ABBV: not in the bundled data; left out of the tickers."
    ]


def test_a_link_sweeping_three_parameters_says_the_page_takes_two(app, shared_data_dir):
    """A third sweep parameter in a link was said to be 'not on this page's list'."""
    key = "lab_sweep:momentum/TimeSeriesMomentumModel"
    app.query_params.update({key: ["short_window", "long_window", "short_weight", "nope"]})
    at = open_page(app, "model_lab", "local")
    assert at.multiselect(key=key).value == ["short_window", "long_window"]
    assert [t.value for t in at.toast] == [
        f"The link gives {key} 4 choices and this page takes at most 2; left out: 'short_weight'.",
        f"The link's {key} choices 'nope' are not on this page's list; left out.",
    ]


def test_an_output_with_no_value_on_the_ticker_says_so(app, shared_data_dir):
    """RealizedVolatility on CARR (275 days of prices) beside AAPL gives CARR no value:
    the chart showed CARR's price alone under 'RealizedVolatility on CARR' with no word.
    (CARR alone is refused: the model needs 523 days.)"""
    app.query_params.update({"model": "volatility/RealizedVolatilityModel", "tickers": "CARR,AAPL"})
    at = open_page(app, "model_lab", "local")
    at.selectbox(key="lab_ticker").select("CARR").run()
    assert not errors(at)
    fig = figure(at, "lab_output")
    assert not np.isfinite(array(trace(fig, "volatility: CARR")["y"]).astype(float)).any()
    assert [w.value for w in at.warning] == [
        "RealizedVolatility gives no value for CARR from 2011-04-25 to 2021-04-21: it "
        "needs 523 days of prices and CARR has 275 days to 2021-04-21; pick a ticker with "
        "a longer history or shorter windows."
    ]
    at.selectbox(key="lab_ticker").select("AAPL").run()
    assert not errors(at) and not at.warning  # AAPL has values
    at.multiselect(key="lab_tickers").set_value(["CARR"]).run()
    assert errors(at) == [
        "RealizedVolatility could not run: RealizedVolatilityModel needs at least 523 "
        "trading days of history for its windows; the data has 275, 2020-03-19 to 2021-04-21"
    ]
