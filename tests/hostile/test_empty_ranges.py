"""A date range without a trading day (a weekend, a holiday) picked in the sidebar: every
page says so or shows what the range's end date allows, never an exception."""

from __future__ import annotations

import datetime as dt

import pytest
from streamlit.testing.v1 import AppTest

from mltrainer.config import PROJECT_ROOT
from tests.ui.conftest import ENTRY
from tests.ui.pagetools import errors

NO_TRADING_DAY = {
    "new-year": (dt.date(2019, 1, 1), dt.date(2019, 1, 1)),
    "weekend": (dt.date(2019, 1, 5), dt.date(2019, 1, 6)),
}


@pytest.fixture()
def app():
    return AppTest.from_file(ENTRY, default_timeout=180)


PAGES = ["universe", "regimes", "risk", "model_lab", "monitor", "leaderboard"]


def _with_range(app, dates):
    at = app.run()
    assert not at.exception, at.exception
    at.sidebar.date_input(key="g_dates").set_value(dates).run()
    return at


@pytest.mark.parametrize("span", list(NO_TRADING_DAY))
def test_home_says_the_range_holds_no_trading_day(app, shared_data_dir, span):
    at = _with_range(app, NO_TRADING_DAY[span])
    assert not at.exception, at.exception
    start = NO_TRADING_DAY[span][0]
    assert any(
        f"the index has no close from {start}" in e and "no trading day" in e for e in errors(at)
    ), errors(at)


@pytest.mark.parametrize("span", list(NO_TRADING_DAY))
@pytest.mark.parametrize("page", PAGES)
def test_no_page_fails_on_a_range_without_a_trading_day(app, shared_data_dir, page, span):
    at = _with_range(app, NO_TRADING_DAY[span])
    at.switch_page(str(PROJECT_ROOT / "pages" / f"{page}.py")).run()
    assert not at.exception, at.exception


def test_regimes_on_a_ticker_before_its_listing(app, shared_data_dir):
    """CARR trades from 2020-03-19: on 2019 dates the page says it has no close then."""
    at = _with_range(app, (dt.date(2019, 1, 2), dt.date(2019, 6, 28)))
    at.switch_page(str(PROJECT_ROOT / "pages" / "regimes.py")).run()
    at.selectbox(key="rg_series").select("CARR").run()
    assert not at.exception, at.exception
    assert any("CARR has no close from 2019-01-02 to 2019-06-28" in e for e in errors(at))
