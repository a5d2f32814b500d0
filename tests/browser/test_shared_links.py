"""A copied link of every page reproduces its view in a fresh browser (issue 13).

For each page: open it, change a setting through the page itself (a slider by the
keyboard, a toggle, a radio, a tab, a run button), take the URL the browser now shows,
open it in a new browser context (no cookies, no session: a colleague's browser) and
check that the same setting is shown and the same charts are drawn (the y values of
every trace, summed per chart) or, for the Model Lab's walk-forward, the same result.
"""

from __future__ import annotations

import pytest

from tests.browser.test_pages import assert_no_exception
from ui.apptest_tools import CHART_SUMS, wait_until_idle

pytestmark = pytest.mark.browser


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    wait_until_idle(page, 180_000)
    return context, page


def _settled(page) -> list:
    page.wait_for_selector(".js-plotly-plot", state="attached", timeout=120_000)
    wait_until_idle(page, 180_000)
    page.wait_for_timeout(1500)
    return page.evaluate(CHART_SUMS)


def _press(page, name: str, key: str = "ArrowRight", times: int = 1, exact=False) -> str:
    thumb = page.get_by_role("slider", name=name, exact=exact).first
    thumb.focus()
    for _ in range(times):
        thumb.press(key)
    wait_until_idle(page, 180_000)
    return thumb.input_value()


def _reopened(browser, page, check) -> None:
    """Open ``page.url`` in a fresh context; ``check(original, copy)`` compares them."""
    url = page.url
    context, copy = _open(browser, url)
    try:
        assert_no_exception(copy)
        check(page, copy)
    finally:
        context.close()


def _same_charts(original, copy) -> None:
    assert _settled(copy) == _settled(original), "the link drew different charts"


def test_universe_link(server, browser, page):
    page.goto(f"{server}/universe", wait_until="domcontentloaded")
    _settled(page)
    value = _press(page, "Return window")  # 3 months -> 6 months
    page.get_by_role("tab", name="Sector rotation").click()
    wait_until_idle(page, 180_000)
    assert "uni_window=" in page.url and "uni_tab=" in page.url
    # the tabs are lazy (only the open one is drawn); a closed tab's settings stay in the URL
    tail = _press(page, "Tail length (periods)")
    page.get_by_role("tab", name="Treemap & weights").click()
    wait_until_idle(page, 180_000)
    assert "rrg_tail=" in page.url and page.locator(".js-plotly-plot").count() == 2
    page.get_by_role("tab", name="Sector rotation").click()
    wait_until_idle(page, 180_000)
    assert page.get_by_role("slider", name="Tail length (periods)").input_value() == tail

    def check(original, copy):
        assert copy.get_by_role("slider", name="Return window").first.input_value() == value
        tab = copy.get_by_role("tab", name="Sector rotation")
        assert tab.get_attribute("aria-selected") == "true"
        _same_charts(original, copy)

    _reopened(browser, page, check)


def test_regimes_link(server, browser, page):
    page.goto(f"{server}/regimes", wait_until="domcontentloaded")
    before = _settled(page)
    page.get_by_text("Model parameters").click()
    # the volatility model's "window" (not "ma window" or "vol window", which the name
    # "window" alone also finds; Streamlit names a slider by its label twice)
    value = _press(page, "window window", times=5, exact=True)
    after = _settled(page)
    assert after != before and "rg%3AVolatility%3Awindow=" in page.url

    def check(original, copy):
        copy.get_by_text("Model parameters").click()
        slider = copy.get_by_role("slider", name="window window", exact=True)
        slider.wait_for(state="visible", timeout=60_000)  # the expander opens as it runs
        assert slider.input_value() == value
        _same_charts(original, copy)

    _reopened(browser, page, check)


def test_risk_link(server, browser, page):
    page.goto(f"{server}/risk", wait_until="domcontentloaded")
    _settled(page)
    value = _press(page, "VaR window (days)")  # 250 -> 300
    _settled(page)
    assert "risk_window=" in page.url

    def check(original, copy):
        assert copy.get_by_role("slider", name="VaR window (days)").input_value() == value
        _same_charts(original, copy)

    _reopened(browser, page, check)


def test_monitor_link(server, browser, page):
    page.goto(f"{server}/monitor", wait_until="domcontentloaded")
    _settled(page)
    value = _press(page, "Drawdown limit", times=3)
    _settled(page)
    assert "mon%3Amax_drawdown=" in page.url

    def check(original, copy):
        assert copy.get_by_role("slider", name="Drawdown limit").input_value() == value
        _same_charts(original, copy)

    _reopened(browser, page, check)


def test_home_link(server, browser, page):
    page.goto(f"{server}/", wait_until="domcontentloaded")
    _settled(page)
    assert "source=" in page.url and "start=" in page.url  # the sidebar's choices

    def check(original, copy):
        _same_charts(original, copy)

    _reopened(browser, page, check)


def test_model_lab_walk_forward_link(server, browser, page):
    page.goto(f"{server}/model_lab", wait_until="domcontentloaded")
    _settled(page)
    page.get_by_role("tab", name="Walk-forward & sweep").click()
    wait_until_idle(page, 180_000)
    page.get_by_text("Rolling (fixed length)").count()  # the mode selector exists
    page.get_by_role("button", name="Run walk-forward").click()
    page.get_by_text("Out-of-sample Sharpe").wait_for(timeout=300_000)
    wait_until_idle(page, 300_000)
    assert "wf=1" in page.url and "lab_tab=" in page.url

    def metric(p) -> str:
        box = p.locator('[data-testid="stMetric"]', has_text="Out-of-sample Sharpe").first
        box.wait_for(timeout=300_000)
        return box.locator('[data-testid="stMetricValue"]').inner_text()

    def check(original, copy):
        assert "Press 'Run walk-forward'" not in copy.inner_text("body")
        assert metric(copy) == metric(original)

    _reopened(browser, page, check)
