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
