"""A shared Model Lab link opened as the very first request of a freshly started server
(Streamlit then still treats pages/ as its old pages directory) reproduces the run
inside the full app: sidebar, navigation, the settings from the URL."""

from __future__ import annotations

import pytest

from tests.browser.conftest import streamlit_server
from tests.browser.test_pages import assert_no_exception
from ui.apptest_tools import wait_until_idle

pytestmark = pytest.mark.browser

LINK = (
    "model_lab?family=momentum&model=momentum%2FSimpleMomentumModel&tickers=KO%2CPEP%2CWMT"
    "&ticker=PEP&p.window=90&costs=12&start=2015-01-02&end=2019-12-31"
)


@pytest.fixture()
def fresh_server(chromium_path, shared_data_dir, tmp_path):
    with streamlit_server(tmp_path) as url:
        yield url


def test_a_shared_link_as_the_first_request_opens_the_whole_app(fresh_server, page):
    page.goto(f"{fresh_server}/{LINK}", wait_until="domcontentloaded")
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
    wait_until_idle(page)
    assert_no_exception(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Data source").count() == 1  # app.py's sidebar is there
    assert sidebar.get_by_text("Universe Explorer").count() == 1  # st.navigation's titles
    # the first slider labelled "window" is the parameter (the others sit in hidden tabs)
    assert page.get_by_role("slider", name="window").first.input_value() == "90"
    assert "/model_lab?" in page.url and "model=momentum%2FSimpleMomentumModel" in page.url
    assert page.get_by_text("SimpleMomentum on PEP").count() >= 1
