"""Every page of the running app in Chromium: renders, draws its charts, no exception;
a Model Lab slider moved by the keyboard changes the chart the browser draws."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import SCREENSHOTS
from ui.apptest_tools import CHART_SUMS, wait_until_idle
from ui.pages import PAGES

pytestmark = pytest.mark.browser


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Traceback").count() == 0
    assert page.get_by_text("Page not found").count() == 0


def full_page_screenshot(page, name: str) -> None:
    """Streamlit scrolls inside its main block, so grow the viewport to the content first."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size({"width": 1500, "height": int(min(max(height, 1000), 7000))})
    page.wait_for_timeout(1500)  # plotly relayouts to the new size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_chromium(server, page, spec):
    path = "" if spec is PAGES[0] else spec.url_path
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    wait_until_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    assert_no_exception(page)
    full_page_screenshot(page, spec.url_path)
    # every further tab too (for the screenshots a reviewer looks at)
    tabs = page.get_by_role("tab")
    for i in range(1, tabs.count()):
        tabs.nth(i).click()  # a tab bound to the URL reruns the page
        wait_until_idle(page)
        full_page_screenshot(page, f"{spec.url_path}-tab{i}")
    assert_no_exception(page)


def test_model_lab_slider_changes_the_chart(server, page):
    page.goto(f"{server}/model_lab", wait_until="domcontentloaded")
    wait_until_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    page.wait_for_timeout(1000)
    before = page.evaluate(CHART_SUMS)
    assert before and before[0], "the Model Lab drew no chart data"
    page.evaluate(f"() => {{ window.__before = ({CHART_SUMS})().toString(); }}")

    # Streamlit's slider thumb is a visually hidden <input type="range"> labelled by the label
    thumb = page.get_by_role("slider", name="long window")
    start_value = thumb.input_value()
    thumb.focus()
    started = time.perf_counter()
    thumb.press("ArrowRight")  # one step: long window 60 -> 61 days
    page.wait_for_function(f"() => ({CHART_SUMS})().toString() !== window.__before", timeout=60_000)
    elapsed = time.perf_counter() - started
    wait_until_idle(page)
    after = page.evaluate(CHART_SUMS)
    value = thumb.input_value()
    assert int(value) == int(start_value) + 1
    assert after != before, "moving the slider did not change any chart"
    assert after[0] != before[0], "the model output chart did not change"
    assert_no_exception(page)
    assert f"p.long_window={value}" in page.url, "the URL does not carry the new setting"
    print(f"\nModel Lab: slider moved to chart redrawn in {elapsed:.2f} s")
