"""Universe Explorer in AppTest: constituents table, treemap, weights, rotation graph and
point-in-time membership react to their widgets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.ui.pagetools import (
    array,
    chart_keys,
    errors,
    figure,
    metrics,
    open_page,
    open_tab,
    table,
)


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_universe_renders_every_section(app, shared_data_dir, source):
    at = open_page(app, "universe", source)
    assert not errors(at)
    # lazy tabs: the open one is drawn, every tab's controls are there
    assert set(chart_keys(at)) == {"uni_treemap", "uni_weights"}
    assert at.slider(key="rrg_window").value == 12
    assert not at.dataframe
    open_tab(at, "uni_tab", "Sector rotation")
    assert not errors(at)
    assert set(chart_keys(at)) == {"uni_rrg", "uni_rs"}
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["CSV", "PARQUET", "JSON"]
    assert at.select_slider(key="uni_window").value == "3 months"
    assert at.text_input(key="uni_search").value == ""
    assert at.slider(key="rrg_window").value == 12
    # the range ends 2021-04-21: the 505 members of that day (symbols of the day)
    open_tab(at, "uni_tab", "Membership history")
    assert not errors(at) and not chart_keys(at)
    assert metrics(at)["Members on that date"] == "505" if source == "local" else True


def test_the_return_window_recolours_the_treemap(app, shared_data_dir):
    at = open_page(app, "universe", "local")
    colours = array(figure(at, "uni_treemap")["data"][0]["marker"]["colors"]).astype(float)
    at.select_slider(key="uni_window").set_value("1 year").run()
    after = array(figure(at, "uni_treemap")["data"][0]["marker"]["colors"]).astype(float)
    assert colours.shape == after.shape and not np.allclose(colours, after)
    open_tab(at, "uni_tab", "Constituents")
    assert at.select_slider(key="uni_window").value == "1 year"
    shown = table(at, "symbol", "market_cap", "return")
    assert shown["return"].notna().sum() > 400


def test_search_and_sector_filter_the_table(app, shared_data_dir):
    at = open_tab(open_page(app, "universe", "local"), "uni_tab", "Constituents")
    at.text_input(key="uni_search").input("apple").run()
    shown = table(at, "symbol", "market_cap", "return")
    assert list(shown["symbol"]) == ["AAPL"]
    at.text_input(key="uni_search").input("").run()
    at.multiselect(key="uni_sectors").set_value(["Energy"]).run()
    shown = table(at, "symbol", "market_cap", "return")
    assert 15 <= len(shown) <= 30 and set(shown["sector"]) == {"Energy"}
    caps = shown["market_cap"].dropna().to_numpy()
    assert (np.diff(caps) <= 0).all()  # sorted by market cap, largest first
    # the 2024 list says META, the prices of 2021 are filed under FB: the same company
    at.multiselect(key="uni_sectors").set_value([]).run()
    at.text_input(key="uni_search").input("META").run()
    meta = table(at, "symbol", "last_close", "return")
    assert list(meta["symbol"]) == ["META"] and meta["return"].notna().all()
    from mltrainer.data.local import load_local

    fb = load_local(shared_data_dir / "sp500_daily", ["FB"], end="2021-04-21").close
    assert meta["last_close"].iloc[0] == pytest.approx(fb["FB"].iloc[-1], rel=1e-12)
    assert str(meta["last_date"].iloc[0])[:10] == "2021-04-21"


def test_rotation_window_and_tail_change_the_graph(app, shared_data_dir):
    at = open_tab(open_page(app, "universe", "local"), "uni_tab", "Sector rotation")
    fig = figure(at, "uni_rrg")
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers+text"]
    assert len(lines) == 11  # GICS sectors; 'Unknown' is left out
    assert all(len(array(t["x"])) == 5 for t in lines)
    # only the latest point is labelled, with the short name; the legend has the full one
    assert all(t["text"][:-1] == [""] * 4 for t in lines)
    assert {t["name"] for t in lines} >= {"Tech: Information Technology", "Energy"}
    # the quadrant table shows all 11 sectors (Streamlit stops at 10 rows by itself)
    quadrants = table(at, "rs_ratio", "rs_momentum", "quadrant")
    assert len(quadrants) == 11
    x12 = array(lines[0]["x"]).astype(float)
    at.slider(key="rrg_window").set_value(26)
    at.slider(key="rrg_tail").set_value(10).run()
    lines = [t for t in figure(at, "uni_rrg")["data"] if t.get("mode") == "lines+markers+text"]
    assert all(len(array(t["x"])) == 10 for t in lines)
    # another tab open: the rotation's controls are still drawn, with their values
    open_tab(at, "uni_tab", "Treemap & weights")
    assert at.slider(key="rrg_window").value == 26 and "uni_rrg" not in chart_keys(at)
    open_tab(at, "uni_tab", "Sector rotation")
    assert not np.allclose(array(lines[0]["x"]).astype(float)[-5:], x12)


def test_membership_on_a_past_date(app, shared_data_dir):
    at = open_tab(open_page(app, "universe", "local"), "uni_tab", "Membership history")
    at.date_input(key="uni_on_date").set_value(pd.Timestamp("2008-06-30").date()).run()
    assert not errors(at)
    members = table(at, "symbol then", "still a member").set_index("symbol then")
    assert 480 <= len(members) <= 520
    # Lehman Brothers under its symbol of the day, removed in September 2008
    assert "LEH" in members.index and not members.loc["LEH", "still a member"]
    # Kraft Foods then, Mondelez now; Google's class A traded as GOOG
    now = [c for c in members.columns if c.startswith("symbol on")][0]
    assert members.loc["KFT", now] == "MDLZ" and members.loc["KFT", "still a member"]
    assert "GOOG" in members.index and "GOOGL" not in members.index
    assert members.loc["AAPL", "sector on 2008-06-30"] == "Information Technology"
    changes = table(at, "added_ticker", "removed_ticker")
    assert (pd.to_datetime(changes["date"]) >= "2008-04-01").all()
    assert int(metrics(at)["Additions nearby"]) == changes["added_ticker"].notna().sum()
    assert not at.warning  # covered by the sources: no warning
    # before every source: the page says so
    at.date_input(key="uni_on_date").set_value(pd.Timestamp("1990-01-02").date()).run()
    assert not errors(at)
    assert any("known from 1996-01-02" in w.value for w in at.warning)


def test_a_past_end_date_draws_the_index_of_that_day(app, shared_data_dir):
    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value(
        (pd.Timestamp("2005-01-03").date(), pd.Timestamp("2008-09-15").date())
    ).run()
    assert not errors(at)
    captions = " ".join(c.value for c in at.caption)
    from mltrainer.data.membership import load_membership

    n = len(load_membership(shared_data_dir).members_on("2008-09-15"))
    assert f"Members of 2008-09-15: {n} members;" in captions
    assert "have price data" in captions
    assert "equal weight: no point-in-time market caps" in captions
    assert "GICS sectors on 2008-09-15" in captions
    fig = figure(at, "uni_treemap")
    assert "2008-09-15" in fig["layout"]["title"]["text"]
    t = fig["data"][0]
    ids, values = list(t["ids"]), array(t["values"]).astype(float)
    sectors = {i[2:] for i in ids if i.startswith("s:")}
    assert "Real Estate" not in sectors and "Communication Services" not in sectors
    leaves = values[[i.startswith("t:") and " others" not in i for i in ids]]
    assert len(leaves) > 100 and set(leaves) == {1.0}  # equal weight, never 2026 caps
    weights = figure(at, "uni_weights")
    assert [tr["name"] for tr in weights["data"]] == ["equal-weighted"]


def test_a_window_longer_than_the_data_says_what_the_returns_cover(app, shared_data_dir):
    """Three years to 2000-06-01 reach before the data (from 1999-11-01): the returns run
    from its first day, and the page says so instead of labelling them '3 years'."""
    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value(
        (pd.Timestamp("2000-01-03").date(), pd.Timestamp("2000-06-01").date())
    ).run()
    at.select_slider(key="uni_window").set_value("3 years").run()
    assert not errors(at)
    assert any(
        "The data starts 1999-11-01, 147 trading days before 2000-06-01" in w.value
        and "not over 3 years" in w.value
        for w in at.warning
    )
    assert any("Colour: return from 1999-11-01 to 2000-06-01" in c.value for c in at.caption)
    at.select_slider(key="uni_window").set_value("3 months").run()
    assert not at.warning
    assert any("Colour: return over 3 months to 2000-06-01" in c.value for c in at.caption)


def test_the_table_quotes_the_close_of_its_date_not_the_adjusted_one(shared_data_dir):
    """'last price' was the adjusted close on April 2021's scale: AAPL 9.92 at the end of
    2010, when it closed at 322.56. Adjusted-only data says it is adjusted."""
    from ui.data import ticker_returns

    rets = ticker_returns("local", "2010-12-31", 21).set_index("ticker")
    assert rets.loc["AAPL", "last_close"] == pytest.approx(322.56, abs=0.005)
    assert rets.loc["KO", "last_close"] == pytest.approx(65.77, abs=0.005)
    assert str(rets.loc["AAPL", "last_date"]) == "2010-12-31"
    assert np.isnan(rets.loc["ABBV", "last_close"]) and pd.isna(rets.loc["ABBV", "last_date"])
    bundled = ticker_returns("bundled", "2010-12-31", 21)
    assert "last_adj_close" in bundled and "last_close" not in bundled


def test_a_failed_update_says_so_after_the_page_redraws(app, shared_data_dir, monkeypatch):
    """The warnings were drawn just before st.rerun() and vanished with it: offline, the
    button seemed to do nothing."""
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    at = open_page(app, "universe", "local")
    (button,) = [b for b in at.button if b.label == "Update list"]
    button.click().run()
    assert not at.exception, at.exception
    said = [w.value for w in at.warning if w.value.startswith("The list was not updated.")]
    assert len(said) == 1 and "MLTRAINER_OFFLINE is set" in said[0]
    at.run()  # said once, not on every later run
    assert not [w for w in at.warning if w.value.startswith("The list was not updated.")]


def test_the_treemap_keeps_the_sidebar_sectors_of_its_date(app, shared_data_dir):
    """With 'Energy' picked the title still counted the whole index ('503 of 505
    members'); with 'Real Estate' in 2010 it drew the REITs as Financials."""
    import datetime as dt

    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2008, 1, 2), dt.date(2010, 12, 31)))
    at.sidebar.multiselect(key="g_sectors").set_value(["Energy"]).run()
    assert not errors(at)
    fig = figure(at, "uni_treemap")
    title = fig["layout"]["title"]["text"].replace("<br>", " ")
    leaves = [p for p in fig["data"][0]["parents"] if str(p).startswith("s:")]
    assert set(leaves) == {"s:Energy"} and f"; {len(leaves)} in Energy that day" in title
    at.sidebar.multiselect(key="g_sectors").set_value(["Real Estate"]).run()
    assert not errors(at) and "uni_treemap" not in chart_keys(at)
    assert any("No member was in Real Estate on 2010-12-31" in i.value for i in at.info)
    assert at.slider(key="rrg_window").value == 12  # the later tabs' controls still drawn


def test_a_range_too_short_for_a_rotation_point_says_so(app, shared_data_dir):
    """Six weeks of 2008 drew empty charts and an empty table with no word."""
    import datetime as dt

    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2008, 9, 1), dt.date(2008, 10, 15)))
    at.run()
    open_tab(at, "uni_tab", "Sector rotation")
    assert not errors(at)
    said = [i.value for i in at.info if i.value.startswith("No point to draw")]
    assert said and "need 24 weekly points" in said[0] and "the range holds 7" in said[0]


def test_a_sector_that_ended_inside_the_range_is_named_not_dropped(app, shared_data_dir):
    """Telecommunication Services picked for 2016-2020 read "the range holds 0" weekly
    points and advised widening the range (it holds 262; the sector ended 2018-09-21);
    beside Energy it vanished from the graph and its table unsaid."""
    import datetime as dt

    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2016, 1, 4), dt.date(2020, 12, 31)))
    at.sidebar.multiselect(key="g_sectors").set_value(["Telecommunication Services"]).run()
    open_tab(at, "uni_tab", "Sector rotation")
    assert not errors(at)
    said = [i.value for i in at.info if i.value.startswith("No point to draw")]
    assert said and "Telecommunication Services (ended 2018-09-21)" in said[0], said
    assert "the range holds" not in said[0] and "Widen" not in said[0]
    at.sidebar.multiselect(key="g_sectors").set_value(
        ["Telecommunication Services", "Energy"]
    ).run()
    assert not errors(at)
    assert list(at.dataframe[0].value.index) == ["Energy"]
    notes = [c.value for c in at.caption if c.value.startswith("Not on the graph")]
    assert notes == [
        "Not on the graph: Telecommunication Services (ended 2018-09-21); it places each "
        "sector at the range's end."
    ]


def test_a_sector_begun_too_late_for_a_point_is_named(app, shared_data_dir):
    """Communication Services begins 2018-09-24: a range ending in 2018 had no point of it
    and did not say why it was missing."""
    import datetime as dt

    at = open_page(app, "universe", "local")
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2016, 1, 4), dt.date(2018, 12, 31)))
    at.run()
    open_tab(at, "uni_tab", "Sector rotation")
    assert not errors(at)
    assert "Communication Services" not in at.dataframe[0].value.index
    notes = [c.value for c in at.caption if c.value.startswith("Not on the graph")]
    assert len(notes) == 1 and "Communication Services (begins 2018-09-24" in notes[0], notes
    assert "Telecommunication Services (ended 2018-09-21)" in notes[0]


def test_the_table_s_return_header_names_its_end_date(app, shared_data_dir):
    """Today's constituents beside a range ending 2010-12-31: the column read 'return 1
    year', which a reader takes for the latest year (AAPL's 53% was 2010's)."""
    import json

    app.query_params.update({"start": "2005-01-03", "end": "2010-12-31", "uni_tab": "Constituents"})
    at = open_page(app, "universe", "local")
    at.select_slider(key="uni_window").set_value("1 year").run()
    assert not errors(at)
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["return"]["label"] == "return over 1 year to 2010-12-31"
    rows = at.dataframe[0].value.set_index("symbol")
    assert rows.loc["AAPL", "return"] == pytest.approx(0.530665, abs=1e-6)
    at.sidebar.date_input(key="g_dates").set_value(
        (pd.Timestamp("2000-01-03").date(), pd.Timestamp("2000-06-01").date())
    ).run()
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["return"]["label"] == "return from 1999-11-01 to 2000-06-01"
