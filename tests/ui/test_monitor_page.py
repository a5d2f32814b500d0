"""Monitor and Home in AppTest: the limits are sliders, the alerts follow them, and the
home page shows the index's regime, sector performance and the active alerts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.ui.pagetools import array, chart_keys, errors, figure, metrics, open_page, table


def card_titles(at) -> dict[str, str]:
    """Rule title -> 'ACTIVE' / 'ok' from the alert cards."""
    out = {}
    for md in at.markdown:
        text = md.value
        if "**" in text and "·" in text:
            title = text.split("**")[1]
            out[title] = text.rsplit("·", 1)[1].strip()
    return out


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_monitor_renders_alerts_and_history(app, shared_data_dir, source):
    at = open_page(app, "monitor", source)
    assert not errors(at)
    cards = card_titles(at)
    assert set(cards) == {
        "VaR breach",
        "Drawdown limit",
        "Volatility spike",
        "Regime change",
        "Stale data",
    }
    assert cards["Stale data"] == "ACTIVE"  # the shipped data ends years before today
    assert int(metrics(at)["Alerts in the history"]) > 10
    history = table(at, "title", "message")
    assert history["date"].is_monotonic_decreasing
    assert "mon_timeline" in chart_keys(at)


@pytest.mark.parametrize("page", ["monitor", "home"])
def test_a_past_range_says_how_old_the_data_is_not_the_range(app, shared_data_dir, page):
    """On a 2008-2009 range of the bundled data (to 2022-12-28), the stale-data card said
    "last bar is 4,549 business days old": it counted from the range's end."""
    app.query_params.update({"source": "bundled", "start": "2008-06-02", "end": "2009-06-30"})
    at = open_page(app, page, "bundled")
    today = dt.date.today()
    days = int(np.busday_count(dt.date(2022, 12, 28), today))
    stale = [c.value for c in at.caption if "business days old" in c.value]
    assert stale == [
        f"last bar is {days:,} business days old on {today} (limit 3); refresh the data"
    ]
    if page == "home":  # its own freshness line counts as the rule does (also at weekends)
        assert any(
            f"**stale**: {days:,} business days since the last bar" in m.value for m in at.markdown
        )
    if page == "monitor":  # the cards are as of the range's end; only the age is today's
        status = f"Status on 2009-06-30, the range's last day; the data's age is judged on {today}."
        assert any(c.value.startswith(status) for c in at.caption)


def test_the_status_date_is_the_index_s_when_it_ends_before_the_range(
    app, shared_data_dir, monkeypatch
):
    """A live source runs past the bundled index (2022-12-28): the cards are the index's
    status on its last close, and the caption must not call that the range's last day.
    Here the index is cut at 2020-12-31 against local prices to 2021-04-21."""
    import ui.data

    full = ui.data.index_close
    monkeypatch.setattr(ui.data, "index_close", lambda end=None: full(end).loc[:"2020-12-31"])
    at = open_page(app, "monitor", "local")
    assert not errors(at)
    assert any(
        c.value.startswith(
            "Status on 2020-12-31, the index's last close (the range runs to 2021-04-21);"
        )
        for c in at.caption
    )


def test_the_drawdown_limit_slider_switches_the_alert(app, shared_data_dir):
    at = open_page(app, "monitor", "local")
    at.sidebar.date_input(key="g_dates").set_value(
        (dt.date(2018, 1, 2), dt.date(2020, 3, 23))
    ).run()
    assert card_titles(at)["Drawdown limit"] == "ACTIVE"  # the COVID low, 34 % down
    active = int(metrics(at)["Active alerts"])
    at.slider(key="mon:max_drawdown").set_value(0.5).run()
    assert not errors(at)
    assert card_titles(at)["Drawdown limit"] == "ok"
    assert int(metrics(at)["Active alerts"]) == active - 1


def test_monitoring_a_portfolio(app, shared_data_dir):
    at = open_page(app, "monitor", "local")
    at.radio(key="mon_target").set_value("Portfolio").run()
    assert not errors(at)
    assert len(at.multiselect(key="mon:tickers").value) == 8
    assert any("portfolio" in h.value for h in at.subheader)
    before = int(metrics(at)["Alerts in the history"])
    at.select_slider(key="mon:var_level").set_value(0.9).run()
    assert int(metrics(at)["Alerts in the history"]) > before  # more breaches of a 90 % VaR


def test_a_portfolio_that_lost_all_its_value_is_monitored_up_to_that_day(app, shared_data_dir):
    """1 and -0.99 rescaled to 100x AAPL against 99x MSFT: the book's value went negative
    and the regime rule failed with "needs at least 273 valid prices ... portfolio (6)";
    then the page refused the book outright. Its status on the day it lost everything
    is still worth showing, with that day named."""
    at = open_page(app, "monitor", "local")
    at.radio(key="mon_target").set_value("Portfolio").run()
    at.multiselect(key="mon:tickers").set_value(["AAPL", "MSFT"]).run()
    at.selectbox(key="mon:method").select("Custom").run()
    at.session_state["mon:custom:AAPL|MSFT"] = {
        "edited_rows": {0: {"weight": 1.0}, 1: {"weight": -0.99}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not errors(at)
    warning = at.warning[-1].value  # after the builder's note on the rescaled weights
    assert warning.startswith(
        "The book loses all its value on 1999-11-09 (a one-day return of -583% at 199.0x "
        "gross exposure): the status and the history stop there (a book wiped out holds "
        "nothing to monitor); lower its leverage. No regime-change rule: before that day, "
    )
    cards = card_titles(at)
    assert cards["Drawdown limit"] == "ACTIVE" and "Regime change" not in cards
    assert any(c.value.startswith("all the value lost on 1999-11-09") for c in at.caption)
    assert any("portfolio (Custom) to 1999-11-09" in h.value for h in at.subheader)
    assert any(
        c.value.startswith("Status on 1999-11-09, the day the book lost all its value")
        for c in at.caption
    )


@pytest.mark.parametrize("source", ["local", "bundled"])
def test_home_shows_regime_sectors_and_alerts(app, shared_data_dir, source):
    at = open_page(app, "home", source)
    assert not errors(at)
    m = metrics(at)
    assert m["Regime on the last date"] in ("Low", "Medium", "High")
    assert {"home_index", "home_sectors"} <= set(chart_keys(at))
    bars = figure(at, "home_sectors")
    assert [t["name"] for t in bars["data"]] == ["1 month", "3 months", "12 months"]
    assert "Universe" in bars["data"][0]["y"]
    assert "Stale data" in card_titles(at)
    before = array(
        next(t for t in figure(at, "home_index")["data"] if t["type"] == "heatmap")["z"]
    ).astype(float)
    at.selectbox(key="home_regime").select("regime/MarketConditionRegimeModel").run()
    assert not errors(at)
    after = array(
        next(t for t in figure(at, "home_index")["data"] if t["type"] == "heatmap")["z"]
    ).astype(float)
    assert np.nanmax(after) == 3.0 and np.nanmax(before) == 2.0  # four market conditions
    assert at.metric[0].label == "Data source"


def test_an_unreachable_live_source_falls_back_with_a_notice(app, shared_data_dir):
    at = app.run()
    at.sidebar.selectbox(key="g_source").select("polygon").run()
    assert not at.exception
    notices = [w.value for w in at.sidebar.warning]
    assert any(
        "Source 'polygon' is unavailable" in n and "showing the local data" in n for n in notices
    )
    assert metrics(at)["Data source"] == "local" and metrics(at)["Tickers"] == "504"


def test_no_rule_picked_says_so_instead_of_an_empty_history(app, shared_data_dir):
    """Clearing the Rules box drew an empty timeline and an empty table with no word."""
    at = open_page(app, "monitor", "local")
    assert "mon_timeline" in chart_keys(at)
    at.multiselect(key="mon_rules").set_value([]).run()
    assert not errors(at)
    assert "mon_timeline" not in chart_keys(at) and not at.dataframe
    assert [i.value for i in at.info] == ["Pick at least one rule to see its alerts."]


def test_a_position_without_a_price_on_the_status_date_is_named(app, shared_data_dir):
    """CARR (listed 2020) beside AAPL to 2010-12-31: the '2-stock portfolio' status and
    its alerts were AAPL's alone, with no word."""
    app.query_params.update(
        {
            "mon_target": "Portfolio",
            "mon:tickers": ["CARR", "AAPL"],
            "start": "2005-01-03",
            "end": "2010-12-31",
        }
    )
    at = open_page(app, "monitor", "local")
    assert not errors(at)
    assert [w.value for w in at.warning] == [
        "CARR has no price on 2010-12-31: the book's figures there are those of the other "
        "positions, their weights scaled up."
    ]
    at.multiselect(key="mon:tickers").set_value(["MSFT", "AAPL"]).run()
    assert not errors(at) and not at.warning
