"""The home page in Streamlit's AppTest, on the local and on the bundled data."""

from __future__ import annotations


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_home_on_local_data(app, shared_data_dir):
    at = app.run()
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["Data source"] == "local" and metrics["Tickers"] == "504"
    assert metrics["Last bar"] == "2021-04-21"


def test_switching_the_source_to_bundled(app, shared_data_dir):
    at = app.run()
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["Data source"] == "bundled" and metrics["Tickers"] == "20"
    assert at.sidebar.date_input(key="g_dates").min.year == 1990


def _sector_bars(at) -> dict:
    from tests.ui.pagetools import array, figure

    fig = figure(at, "home_sectors")
    return {
        t["name"]: dict(zip(t["y"], array(t["x"]).astype(float), strict=True)) for t in fig["data"]
    }


def test_sector_returns_run_to_the_end_whatever_the_start(app, shared_data_dir):
    """The 12-month bar is the return over the 252 trading days to the range's end: a
    range starting three months before it used to cut it to those three months."""
    import datetime as dt

    import numpy as np

    at = app.run()
    end = dt.date(2021, 4, 21)
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2018, 1, 2), end)).run()
    long = _sector_bars(at)
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2021, 1, 4), end)).run()
    assert not at.exception, at.exception
    short = _sector_bars(at)
    for horizon in ("1 month", "3 months", "12 months"):
        sectors = sorted(long[horizon])
        assert sorted(short[horizon]) == sectors
        a = np.array([long[horizon][s] for s in sectors])
        b = np.array([short[horizon][s] for s in sectors])
        assert np.allclose(a, b, rtol=1e-12), horizon
    assert not np.allclose(list(short["12 months"].values()), list(short["3 months"].values()))


def test_no_twelve_month_bar_before_the_data_has_a_year(app, shared_data_dir):
    import datetime as dt

    import numpy as np

    at = app.run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2000, 1, 3), dt.date(2000, 6, 1)))
    at.run()
    assert not at.exception, at.exception
    bars = _sector_bars(at)
    assert np.isnan(list(bars["12 months"].values())).all()
    assert np.isfinite(list(bars["3 months"].values())).all()
    assert any("no 12 months return: the data holds" in c.value for c in at.caption)


def test_no_bar_for_a_sector_younger_than_its_horizon_or_gone(app, shared_data_dir):
    """At 2019-03-01 Communication Services (from 2018-09-24) had a '12 months' bar of its
    109 days, and Telecommunication Services (to 2018-09-21) one ending in 2018."""
    import datetime as dt

    import numpy as np

    at = app.run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2018, 1, 2), dt.date(2019, 3, 1)))
    at.run()
    assert not at.exception, at.exception
    bars = _sector_bars(at)
    assert all("Telecommunication Services" not in b for b in bars.values())
    comm = {h: b["Communication Services"] for h, b in bars.items()}
    assert np.isnan(comm["12 months"]) and np.isfinite([comm["1 month"], comm["3 months"]]).all()
    assert np.isfinite(bars["12 months"]["Energy"])
    (caption,) = [c.value for c in at.caption if "Equal-weighted sector baskets" in c.value]
    assert "Communication Services has no 12 months return: it begins 2018-09-24" in caption
    assert "Telecommunication Services ended 2018-09-21" in caption


def test_a_half_picked_or_reversed_range_keeps_the_readers_range(app, shared_data_dir):
    """The first click of a range picks one date: every page reran on the default ten
    years (the costliest range) until the second click; it now keeps the range picked
    before. A pair the wrong way round is the same range, not a reset to the default."""
    import datetime as dt

    at = app.run()
    picked = (dt.date(2018, 1, 2), dt.date(2019, 12, 31))
    at.sidebar.date_input(key="g_dates").set_value(picked).run()
    sel = at.session_state["selection"]
    assert (sel.start, sel.end) == picked
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2020, 3, 2),)).run()
    assert not at.exception, at.exception
    sel = at.session_state["selection"]
    assert (sel.start, sel.end) == picked
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2021, 4, 21), dt.date(2020, 1, 2)))
    at.run()
    sel = at.session_state["selection"]
    assert (sel.start, sel.end) == (dt.date(2020, 1, 2), dt.date(2021, 4, 21))


def test_a_sector_filter_takes_each_days_sector(app, shared_data_dir):
    """'Real Estate' in 2015 drew one bar named Financials (the REITs by their 2015
    sector, equal to 'Universe'); the sector did not exist yet, and the page says so."""
    import datetime as dt

    at = app.run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2014, 1, 2), dt.date(2015, 12, 31)))
    at.sidebar.multiselect(key="g_sectors").set_value(["Real Estate"]).run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
    assert "no member was in Real Estate" in shown and "from 2016-09-01" in shown
    at.sidebar.multiselect(key="g_sectors").set_value(["Energy", "Utilities"]).run()
    assert not at.exception, at.exception
    assert {s for b in _sector_bars(at).values() for s in b} == {
        "Energy",
        "Utilities",
        "Universe",
    }


def test_a_source_that_does_not_cover_the_range_gives_the_default_one_and_says_so(
    app, shared_data_dir
):
    """Bundled 2022 then local (to 2021-04-21) left the range 2021-04-21 to 2021-04-21,
    with no word: Home read 'S&P 500 over the range 0.0%'."""
    import datetime as dt

    at = app.run()
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2022, 1, 3), dt.date(2022, 12, 28)))
    at.run()
    at.sidebar.selectbox(key="g_source").select("local").run()
    assert not at.exception, at.exception
    assert at.sidebar.date_input(key="g_dates").value == (
        dt.date(2011, 4, 24),
        dt.date(2021, 4, 21),
    )
    said = [t.proto.body for t in at.toast]
    assert any(
        "The earlier source's range from 2022-01-03 to 2022-12-28 lies outside the data" in t
        for t in said
    )


def test_a_sector_of_an_earlier_classification_can_be_picked(app, shared_data_dir):
    """Telecommunication Services (until 2018-09-21) was a basket of 2010's Home and no
    sidebar choice: the list held today's sectors only."""
    import datetime as dt

    at = app.run()
    assert "Telecommunication Services" in at.sidebar.multiselect(key="g_sectors").options
    at.sidebar.date_input(key="g_dates").set_value((dt.date(2010, 1, 4), dt.date(2010, 12, 31)))
    at.sidebar.multiselect(key="g_sectors").set_value(["Telecommunication Services"]).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert {s for b in _sector_bars(at).values() for s in b} == {
        "Telecommunication Services",
        "Universe",
    }


def test_a_sector_the_next_source_lacks_is_dropped_with_a_word(app, shared_data_dir):
    """Telecommunication Services chosen on the local data vanished unsaid on switching to
    the bundled data, whose sectors are today's only."""
    at = app.run()
    at.sidebar.multiselect(key="g_sectors").set_value(["Telecommunication Services"]).run()
    assert not at.exception, at.exception
    at.sidebar.selectbox(key="g_source").select("bundled").run()
    assert not at.exception, at.exception
    assert at.sidebar.multiselect(key="g_sectors").value == []
    said = " ".join(t.value for t in at.toast)
    assert "Telecommunication Services: not a sector of this data source" in said, said


def test_todays_sector_baskets_say_when_no_stock_is_in_the_sectors(shared_data_dir):
    """Without membership files the baskets take today's sectors; an earlier sector then
    holds no stock, and the error named an empty ticker list ('no price for  from ...')."""
    import datetime as dt

    import pytest

    from mltrainer.errors import DataError
    from ui.data import sector_daily_returns

    with pytest.raises(DataError, match="no stock of this data is in Telecommunication"):
        sector_daily_returns(
            "local", dt.date(2010, 1, 4), dt.date(2010, 12, 31), ("Telecommunication Services",)
        )


def test_a_regime_model_that_labels_no_day_says_so(app, shared_data_dir):
    """ChangePoint on the index's first months (from 1990-01-02) labels no day: Home drew
    the index without regimes and no 'Regime on the last date', with no word."""
    app.query_params.update(
        {
            "source": "bundled",
            "start": "1990-03-01",
            "end": "1990-09-28",
            "home_regime": "ChangePointRegime",
        }
    )
    at = app.run()  # a deep link: Home is the first page, the link's source its source
    assert not at.exception and not at.error
    assert "Regime on the last date" not in _metrics(at)
    assert [w.value for w in at.warning] == [
        "ChangePointRegimeModel labels no day of the S&P 500 index from 1990-03-01 to "
        "1990-09-28: its windows found nothing usable in the 189 days of prices the index "
        "has to 1990-09-28; end the range later or pick another regime model."
    ]
