"""Risk & Stress in AppTest: the portfolio builder, VaR controls that change the numbers,
the scenarios, and a report download that is a real HTML file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.media_file_manager import MediaFileManager

from mltrainer import fmt
from mltrainer.config import PROJECT_ROOT
from tests.ui.pagetools import (
    array,
    chart_keys,
    errors,
    figure,
    metrics,
    open_page,
    open_tab,
    trace,
)


class RecordingMediaFileManager(MediaFileManager):
    """The media manager AppTest creates for each run, remembered so a test can run a
    deferred download (what a click on the button does in a browser)."""

    instances: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingMediaFileManager.instances.append(self)


def money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_risk_page_renders_every_section(app, shared_data_dir, source):
    at = open_page(app, "risk", source)
    assert not errors(at)
    assert len(at.multiselect(key="risk:tickers").value) == 8
    assert at.selectbox(key="risk:method").value == "Equal"
    assert at.select_slider(key="risk_level").value == 0.99
    assert at.selectbox(key="risk_method").value == "historical"
    for key, value in (
        ("risk_window", 250),
        ("risk_crash", -0.2),
        ("risk_volmult", 3.0),
        ("risk_push", 0.5),
        ("risk_spread", 5.0),
    ):
        assert at.slider(key=key).value == value
    # lazy tabs: each draws its charts only while open; every control is always there
    tabs = {
        "VaR backtest": {"risk_var_chart", "risk_light"},
        "Stress scenarios": {"risk_scen_bar", "risk_paths", "risk_pnl"},
        "Correlation & risk contributions": {"risk_corr", "risk_contrib", "risk_weights"},
        "Drawdowns": {"risk_dd", "risk_stock_dd"},
    }
    assert set(chart_keys(at)) == tabs["VaR backtest"]
    for label, keys in tabs.items():
        open_tab(at, "risk_tab", label)
        assert not errors(at) and set(chart_keys(at)) == keys, label
        assert at.selectbox(key="risk_scen_pick").value
    open_tab(at, "risk_tab", "VaR backtest")
    m = metrics(at)
    assert money(m["VaR 99.0%"]) > 0
    assert money(m["ES 99.0%"]) > money(m["VaR 99.0%"])
    assert m["Basel light"] in ("GREEN", "YELLOW", "RED")


def test_var_level_and_window_change_the_forecast(app, shared_data_dir):
    at = open_page(app, "risk", "local")
    var99 = money(metrics(at)["VaR 99.0%"])
    line99 = array(trace(figure(at, "risk_var_chart"), "-VaR 99.0% historical")["y"])
    at.select_slider(key="risk_level").set_value(0.95).run()
    assert not errors(at)
    var95 = money(metrics(at)["VaR 95.0%"])
    assert 0 < var95 < var99
    line95 = array(trace(figure(at, "risk_var_chart"), "-VaR 95.0% historical")["y"])
    finite = np.isfinite(line95.astype(float)) & np.isfinite(line99.astype(float))
    assert (line95[finite] > line99[finite]).all()  # -VaR: the 95 % line sits above
    at.slider(key="risk_window").set_value(500).run()
    assert money(metrics(at)["VaR 95.0%"]) != var95


def test_cornish_fisher_outside_its_domain_shows_no_figure_and_says_why(app, shared_data_dir):
    """At 90 % on 1,000 days holding 2020 the expansion gave a VaR of -$2,109 (a gain)
    with 400 exceptions where 252 were expected; the page now shows n/a and a warning,
    and scores only the days with a forecast."""
    at = open_page(app, "risk", "local")
    at.selectbox(key="risk_method").set_value("cornish_fisher")
    at.select_slider(key="risk_level").set_value(0.9)
    at.slider(key="risk_window").set_value(1000).run()
    assert not errors(at)
    assert metrics(at)["VaR 90.0%"] == "n/a" and metrics(at)["ES 90.0%"] == "n/a"
    note = next(w.value for w in at.warning if w.value.startswith("cornish_fisher gives no"))
    assert "for the next day and on " in note and "excess kurtosis is high" in note
    assert int(metrics(at)["Exceptions"].replace(",", "")) < 300
    # from June 2020 no day has a forecast: the error says why, not "history too short"
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2020, 6, 1), dt.date(2021, 4, 21)))
    at.run()
    assert any(
        "cornish_fisher gives no 1000-day VaR forecast on any day of the range" in e
        and "excess kurtosis is high" in e
        for e in errors(at)
    )


def test_every_scenario_note_is_shown_past_the_first_five(app, shared_data_dir):
    """CARR (listed 2020) stands aside in every replay before it: eight notes, of which
    the page showed five and dropped the rest unsaid; the rest now fold away."""
    at = open_page(app, "risk", "local")
    at.multiselect(key="risk:tickers").set_value(["AAPL", "CARR"]).run()
    at = open_tab(at, "risk_tab", "Stress scenarios")
    assert not errors(at)
    more = [e for e in at.expander if "more notes on the scenarios" in e.label]
    assert len(more) == 1
    shown = [c.value for c in at.caption if c.value.startswith("⚠")]
    n_more = int(more[0].label.split()[0])
    assert len(shown) == 5 + n_more and n_more >= 1
    assert any("COVID" in text for text in shown[5:])


def test_weighting_and_crash_size_change_the_output(app, shared_data_dir):
    at = open_tab(open_page(app, "risk", "local"), "risk_tab", "Correlation & risk contributions")
    equal = array(figure(at, "risk_contrib")["data"][0]["x"]).astype(float)
    assert np.allclose(equal, 1 / 8)
    # the label gives the days the covariance is estimated from (three years at most)
    assert "Annualised volatility (Ledoit-Wolf, last 756 days)" in metrics(at)
    # in lines that fit half a 1024 px page (a plotly title is cut, never wrapped)
    assert figure(at, "risk_corr")["layout"]["title"]["text"].startswith(
        "Correlation of daily returns,<br>from "
    )
    at.selectbox(key="risk:method").select("Risk parity").run()
    assert not errors(at)
    fig = figure(at, "risk_contrib")
    weights = array(trace(fig, "weight")["x"]).astype(float)
    contrib = array(trace(fig, "risk contribution")["x"]).astype(float)
    assert not np.allclose(weights, 1 / 8) and weights.sum() == pytest.approx(1.0)
    assert np.allclose(contrib, 1 / 8, atol=0.02)  # equal risk, by construction (LW cov)

    open_tab(at, "risk_tab", "Stress scenarios")
    crash = figure(at, "risk_scen_bar")
    at.slider(key="risk_crash").set_value(-0.4).run()
    after = figure(at, "risk_scen_bar")
    y_before = list(crash["data"][0]["y"])
    y_after = list(after["data"][0]["y"])
    assert "Market crash -20%" in y_before and "Market crash -40%" in y_after
    x_before = array(crash["data"][0]["x"]).astype(float)[y_before.index("Market crash -20%")]
    x_after = array(after["data"][0]["x"]).astype(float)[y_after.index("Market crash -40%")]
    assert x_after == pytest.approx(2 * x_before, rel=1e-9)  # linear in the shock (betas)


def test_the_report_download_is_a_non_empty_html_file(app, shared_data_dir, monkeypatch):
    RecordingMediaFileManager.instances.clear()
    monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingMediaFileManager)
    at = open_tab(open_page(app, "risk", "bundled"), "risk_tab", "Stress scenarios")
    button = at.get("download_button")
    report = [b for b in button if b.proto.label.startswith("Download the stress-test report")]
    assert len(report) == 1
    file_id = report[0].proto.deferred_file_id
    assert file_id, "the report should be generated on click (deferred), not on every rerun"
    manager = RecordingMediaFileManager.instances[-1]
    entry = manager._deferred_callables[file_id]
    assert entry["filename"] == "stress_report.html" and entry["mimetype"] == "text/html"
    html = entry["callable"]()
    assert isinstance(html, bytes) and len(html) > 100_000
    text = html.decode("utf-8")
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "Feb-Mar 2020 (COVID-19)" in text and "plotly" in text.lower()


def test_a_month_shows_what_it_can_and_says_the_var_is_not_tested(app, shared_data_dir):
    """February 2021 holds 19 scored days: too few to test a VaR forecast, which the page
    says, while today's VaR/ES, the scenarios and the drawdowns are all there."""

    at = app.run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2021, 2, 1), dt.date(2021, 2, 26)))
    at.run()
    at = open_page(at, "risk", "local")
    assert not at.exception, at.exception
    m = metrics(at)
    assert money(m["VaR 99.0%"]) > 0 and money(m["ES 99.0%"]) > money(m["VaR 99.0%"])
    assert m["Kupiec p"] == m["Christoffersen p"] == m["Basel light"] == "not tested"
    assert any("range holds 19 scored days" in w.value for w in at.warning)
    assert any("No backtest table" in i.value for i in at.info)
    assert set(chart_keys(at)) == {"risk_var_chart"}
    open_tab(at, "risk_tab", "Stress scenarios")
    assert not errors(at) and {"risk_scen_bar", "risk_pnl"} <= set(chart_keys(at))
    assert any("VaR backtest of historical" in c.value for c in at.caption)
    open_tab(at, "risk_tab", "Drawdowns")
    assert not errors(at) and set(chart_keys(at)) == {"risk_dd", "risk_stock_dd"}


def test_custom_weights_of_a_small_net_name_their_leverage(app, shared_data_dir):
    """Custom weights of 1 and -0.99 net to 0.01: rescaled to sum to 1 they are a 199x
    book. The page said nothing, then stopped its scenarios with "equity must be
    positive ... pass a value path, not returns"; it now names the leverage, and the
    report's note says on which day that book lost all its value."""
    at = open_page(app, "risk", "local")
    at.multiselect(key="risk:tickers").set_value(["AAPL", "MSFT"]).run()
    at.selectbox(key="risk:method").select("Custom").run()
    edits = {0: {"weight": 1.0}, 1: {"weight": -0.99}}
    at.session_state["risk:custom:AAPL|MSFT"] = {
        "edited_rows": edits,
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not errors(at)
    assert any(
        "net to 0.010; rescaled to sum to 1 they hold 199.0x the book's value" in w.value
        for w in at.warning
    )
    open_tab(at, "risk_tab", "Stress scenarios")
    assert not errors(at)
    assert any("the book loses all its value on" in c.value for c in at.caption)
    # an ordinary long/short book (0.8, -0.2: 1.33 and -0.33 after rescaling) is quiet
    at.session_state["risk:custom:AAPL|MSFT"] = {
        "edited_rows": {0: {"weight": 0.8}, 1: {"weight": -0.2}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not errors(at) and not [w for w in at.warning if "gross exposure" in w.value]


def test_a_sector_filter_opens_on_a_portfolio_of_that_sector(app, shared_data_dir):
    """Energy from mid-2014 kept one default ticker (XOM), so the page opened on "Pick at
    least two tickers" and the Model Lab on XOM alone. The defaults are now made up from
    the sector's tickers priced over the whole range (BKR, listed under that symbol only
    from 2017, is passed over)."""
    app.query_params.update({"sectors": "Energy", "start": "2014-06-02", "end": "2016-02-29"})
    at = open_page(app, "risk", "local")
    assert not errors(at) and not at.info
    picked = at.multiselect(key="risk:tickers").value
    assert picked == ["XOM", "APA", "COG", "COP", "CVX", "DVN", "EOG", "FANG"]
    assert metrics(at)["Exceptions"]  # the VaR backtest ran on that portfolio
    at.switch_page(str(PROJECT_ROOT / "pages" / "model_lab.py")).run()
    assert at.multiselect(key="lab_tickers").value == picked[:5]


def test_a_sector_filter_picked_later_keeps_the_book(app, shared_data_dir):
    """Picking Energy in the sidebar cut the 8-ticker book to XOM ('Pick at least two
    tickers'), and clearing it left XOM alone while the Monitor kept all eight."""
    at = open_page(app, "risk", "local")
    book = at.multiselect(key="risk:tickers").value
    assert len(book) == 8
    at.sidebar.multiselect(key="g_sectors").set_value(["Energy"]).run()
    assert not errors(at) and at.multiselect(key="risk:tickers").value == book
    assert any("outside the sidebar's sectors, kept in the book" in c.value for c in at.caption)
    at.sidebar.multiselect(key="g_sectors").set_value([]).run()
    assert at.multiselect(key="risk:tickers").value == book


def test_market_cap_weights_say_when_their_caps_are_from(app, shared_data_dir):
    """The only caps in the data are the 2026-08-22 snapshot's: a book over a range that
    ends 2008-12-31 weighted by them says so, on the page and in its downloaded report;
    a ticker without a cap in the snapshot is named with the snapshot's file (the
    message named the saved Wikipedia page, which holds no caps)."""
    app.query_params.update({"start": "2007-01-02", "end": "2008-12-31"})
    at = open_page(app, "risk", "local")
    at.multiselect(key="risk:tickers").set_value(["AAPL", "MSFT", "JPM", "XOM"]).run()
    at.selectbox(key="risk:method").select("Market cap").run()
    assert not errors(at)
    note = (
        "Market-cap weights use the caps of 2026-08-22 (constituents-financials-2026-08-22"
        ".csv), published after the range ends on 2008-12-31"
    )
    assert any(w.value.startswith(note) for w in at.warning)
    open_tab(at, "risk_tab", "Stress scenarios")
    assert any(c.value.startswith(f"⚠ m{note[1:]}") for c in at.caption)
    at.multiselect(key="risk:tickers").set_value(["AAPL", "HD"]).run()
    assert errors(at) == [
        "The weights could not be computed: no market cap for HD in "
        "constituents-financials-2026-08-22.csv; remove it or use another weighting"
    ]


def test_each_var_method_is_estimated_once_for_the_tab_and_the_report(
    app, shared_data_dir, monkeypatch
):
    """The VaR tab and the report estimated the same rolling forecasts apart (fhs_garch
    takes about a second on 22 years, so choosing it took 1.5 s), and a new VaR level
    re-estimated every method: a method is now estimated once, at all levels, and a
    level or scenario change estimates nothing."""
    import ui.risk as risk
    from mltrainer.measures import var
    from mltrainer.reports import stress_var
    from mltrainer.reports.stress_report import DEFAULT_METHODS

    for cached in (risk.rolling_var, risk.var_backtest, risk.stress_var, risk.stress_report):
        cached.clear()
    calls, real = [], var.rolling_var_es

    def counted(returns, window=250, level=0.99, method="historical", **kwargs):
        calls.append(method)
        return real(returns, window, level, method, **kwargs)

    monkeypatch.setattr(var, "rolling_var_es", counted)
    monkeypatch.setattr(stress_var, "rolling_var_es", counted)
    at = open_page(app, "risk", "local")
    assert not errors(at) and sorted(calls) == sorted(DEFAULT_METHODS)
    calls.clear()
    at.selectbox(key="risk_method").select("fhs_garch").run()
    assert not errors(at) and calls == ["fhs_garch"]
    line = array(trace(figure(at, "risk_var_chart"), "-VaR 99.0% fhs_garch")["y"])
    assert np.isfinite(line.astype(float)).sum() > 1000
    calls.clear()
    at.select_slider(key="risk_level").set_value(0.95).run()
    at.slider(key="risk_crash").set_value(-0.3).run()
    assert not errors(at) and calls == []
    assert money(metrics(at)["VaR 95.0%"]) > 0
    at.slider(key="risk_window").set_value(300).run()
    assert not errors(at) and sorted(calls) == sorted(["fhs_garch", *DEFAULT_METHODS])


def test_market_cap_weights_take_a_renamed_company_under_its_later_symbol(app, shared_data_dir):
    """The snapshot lists FB as META: a book holding FB could not be cap-weighted ("no
    market cap for FB"); it takes META's cap, and the page says so."""
    from mltrainer.sectors_pit import cap_snapshot

    at = open_page(app, "risk", "local")
    at.multiselect(key="risk:tickers").set_value(["FB", "AAPL", "MSFT"]).run()
    at.selectbox(key="risk:method").select("Market cap").run()
    assert not errors(at)
    note = (
        "Constituents-financials-2026-08-22.csv lists companies by their symbols of "
        "2026-08-22: FB's cap is the one listed for META."
    )
    assert note in [w.value for w in at.warning]
    caps = cap_snapshot().caps[["META", "AAPL", "MSFT"]].to_numpy()
    open_tab(at, "risk_tab", "Correlation & risk contributions")
    got = {  # one bar trace per sector
        t: float(x)
        for bars in figure(at, "risk_weights")["data"]
        for t, x in zip(array(bars["y"]), array(bars["x"]), strict=True)
    }
    np.testing.assert_allclose([got[t] for t in ("FB", "AAPL", "MSFT")], caps / caps.sum())


def test_a_scenario_no_longer_replayed_is_named_when_the_pick_falls_back(app, shared_data_dir):
    """COVID picked, then a range ending in 2015: the pick became the first scenario with
    no word while the URL still named COVID."""
    import datetime as dt

    at = open_tab(open_page(app, "risk", "local"), "risk_tab", "Stress scenarios")
    covid = [o for o in at.selectbox(key="risk_scen_pick").options if "COVID" in o][0]
    at.selectbox(key="risk_scen_pick").set_value(covid).run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2005, 1, 3), dt.date(2015, 12, 31)))
    at.run()
    assert not errors(at)
    shown = at.selectbox(key="risk_scen_pick").value
    assert shown != covid
    assert any(
        c.value == f"{covid} is not replayed for this range; showing {shown}." for c in at.caption
    )


def test_scenarios_after_the_books_date_are_said_to_be_after_it(app, shared_data_dir):
    """A book of 2010-12-31 read 'Not replayed: August 2011 ... COVID-19: the
    portfolio's tickers have no prices then', when those episodes come after its date."""
    app.query_params.update({"start": "2005-01-03", "end": "2010-12-31"})
    at = open_page(app, "risk", "local")
    at = open_tab(at, "risk_tab", "Stress scenarios")
    assert not errors(at), errors(at)
    said = [c.value for c in at.caption if c.value.startswith("Not replayed")]
    assert len(said) == 1 and "COVID" in said[0], said
    assert said[0].endswith("it ends after the book's date, 2010-12-31."), said
    assert "no prices" not in " ".join(c.value for c in at.caption)


def test_the_drawdown_chart_and_its_figures_agree_from_the_ranges_first_day(app, shared_data_dir):
    """From 2020-02-24 (the default book fell that day) the Max drawdown figure counts
    the first day's loss; the chart, drawn from a separate computation that starts at
    the close of that day, bottomed out higher than the figure above it."""
    at = app.run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2020, 2, 24), dt.date(2020, 3, 23)))
    at.run()
    at = open_page(at, "risk", "local")
    open_tab(at, "risk_tab", "Drawdowns")
    assert not errors(at)
    dd = figure(at, "risk_dd")["data"][0]
    y = array(dd["y"]).astype(float)
    assert str(dd["x"][0]).startswith("2020-02-24") and y[0] < 0  # the first day's loss
    assert metrics(at)["Max drawdown"] == fmt.percent(y.min())
    # each position's worst drawdown counts that day too (AAPL fell 4.75% on it)
    from mltrainer.data.sources import load_market_data

    bars = figure(at, "risk_stock_dd")["data"][0]
    worst = dict(zip(bars["y"], array(bars["x"]).astype(float), strict=True))
    px = load_market_data("local", tickers=["AAPL"], start="2020-02-21", end="2020-03-23")
    aapl = px.adj_close["AAPL"]
    assert worst["AAPL"] == pytest.approx((aapl / aapl.cummax() - 1).min(), rel=1e-9)


def test_tickers_another_source_lacks_are_named_when_the_source_changes(app, shared_data_dir):
    """ABBV and NVDA of the local files are not among the 20 bundled stocks: switching the
    sidebar to bundled left AAPL alone ('Pick at least two tickers') with no word of why;
    the Monitor's book said nothing either."""
    app.query_params.update({"risk:tickers": ["ABBV", "NVDA", "AAPL"]})
    at = open_page(app, "risk", "local")
    assert at.multiselect(key="risk:tickers").value == ["ABBV", "NVDA", "AAPL"]
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    assert not errors(at)
    assert [t.value for t in at.toast] == [
        "ABBV, NVDA: not in the bundled data; left out of the portfolio."
    ]
    at.run()  # said once: the picks are gone now
    assert not at.toast


def test_a_link_over_the_ticker_limit_says_so_not_that_they_are_unknown(app, sp500_dir):
    """A link with 70 of the data's tickers kept the first 60 and said the other ten
    'are not on this page's list', which they were: the book takes at most 60."""
    names = sorted(p.name.removesuffix(".csv.gz") for p in sp500_dir.glob("*.csv.gz"))[:70]
    app.query_params.update({"risk:tickers": [*names, "ZZZZ"]})
    at = open_page(app, "risk", "local")
    assert not errors(at)
    assert at.multiselect(key="risk:tickers").value == names[:60]
    said = [t.value for t in at.toast]
    assert said == [
        "The link gives risk:tickers 71 choices and this page takes at most 60; left out: "
        + ", ".join(repr(t) for t in names[60:65])
        + " and more.",
        "The link's risk:tickers choices 'ZZZZ' are not on this page's list; left out.",
    ]


def test_a_position_without_prices_in_the_range_is_said_above_the_tabs(app, shared_data_dir):
    """CARR (listed 2020) beside AAPL over 2005-2010: the VaR, ES and the 2008 drawdown
    shown were AAPL's alone, and only the stress tab's captions said so."""
    app.query_params.update(
        {"risk:tickers": ["CARR", "AAPL"], "start": "2005-01-03", "end": "2010-12-31"}
    )
    at = open_page(app, "risk", "local")
    assert not errors(at)
    said = (
        "CARR has no price in the range (the range runs from 2005-01-03 to 2010-12-31): on "
        "the days without a position's price, the book's returns, VaR and drawdowns are "
        "those of the other positions, their weights scaled up."
    )
    assert [w.value for w in at.warning] == [said]
    open_tab(at, "risk_tab", "Drawdowns")
    assert [w.value for w in at.warning] == [said]
    open_tab(at, "risk_tab", "Stress scenarios")
    assert not any("CARR has no price" in c.value for c in at.caption)  # said once
    assert [w.value for w in at.warning] == [said]


def test_a_skipped_shock_is_named_in_words_under_the_scenarios(shared_data_dir):
    """The Risk page listed a skipped shock by its key: 'Skipped correlation_breakdown:
    correlation breakdown: fewer than two positions have 252-day history'."""
    import pandas as pd

    from mltrainer.data.sources import load_market_data
    from mltrainer.reports.stress_report import build_stress_report
    from ui.risk import skipped_lines

    data = load_market_data("local", tickers=["AAPL", "CARR"], start="2015-01-01", end="2020-06-30")
    report = build_stress_report(data, pd.Series({"AAPL": 0.5, "CARR": 0.5}))
    assert skipped_lines(report)[-1] == (
        "Skipped Correlation breakdown: fewer than two positions have 252-day history"
    )
