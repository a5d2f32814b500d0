"""Nothing the pages print is cut off (issue 13): on every page and tab, at the default
wide layout (1500 px), in a 1280 px window, on a 1024 px laptop and an 800 px tablet (the
sidebar open in each) and on a 414 px phone (the sidebar folded away, as Streamlit does;
the VaR backtest's and the leaderboard's titles were wider than their charts there), no
metric's label, value or delta and no input's value is wider than its box (Streamlit ends
such text with an ellipsis: the Risk page's VaR read "$2…" at 1024 px before its metrics
were laid out in rows that wrap, the Model Lab's family "mome" before its inputs were),
and no chart's or axis's title reaches past its chart (at 800 px the Basel light's title
and the rotation graph's axis title did, while each chart stood beside another in a
218 px column)."""

from __future__ import annotations

import pytest

from tests.browser.test_pages import assert_no_exception
from ui.apptest_tools import wait_until_idle
from ui.pages import PAGES

pytestmark = pytest.mark.browser

# metric parts whose text (or a child's) overflows its box
CUT_METRICS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], [data-testid="stMetricDelta"]'))
  .filter(e => [e, ...e.querySelectorAll('*')].some(d => d.scrollWidth > d.clientWidth + 1))
  .map(e => e.innerText)"""

# inputs of the page whose value is wider than the box shows (a select box's choice is an
# input's value: the Model Lab's family read "mome" at 1024 px in four equal columns)
CUT_INPUTS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] input'))
  .filter(e => e.type !== 'checkbox' && e.scrollWidth > e.clientWidth + 1)
  .map(e => 'input ' + e.value)"""

# buttons whose label is wider than the button ("Update list" read "U." and "PARQUET"
# "P" at 800 px in five columns; "Download the stress-test re…")
CUT_BUTTONS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] button'))
  .filter(e => [e, ...e.querySelectorAll('*')].some(d => d.scrollWidth > d.clientWidth + 1))
  .map(e => 'button ' + e.innerText.slice(0, 40))"""

# chart titles (the figure's and its axes') that reach past the chart's edge: plotly
# never wraps them, and the browser clips what is outside ("Basel traffic light by
# method (9" at 1024 px, the range and days the chart covers cut off; the first line of
# a wrapped title lifted above the top)
CUT_TITLES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(p => {
  const box = p.getBoundingClientRect();
  return Array.from(p.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text'))
    .filter(t => { const r = t.getBoundingClientRect();
                   return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1
                                          || r.top < box.top - 1); })
    .map(t => t.textContent);
})"""


@pytest.mark.parametrize("width", [414, 800, 1024, 1280, 1500])
def test_no_metric_or_chart_title_is_cut_off(server, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    cut = {}
    try:
        for spec in PAGES:
            page.goto(f"{server}/{'' if spec is PAGES[0] else spec.url_path}")
            wait_until_idle(page, 180_000)
            page.wait_for_selector(".js-plotly-plot", timeout=180_000)
            tabs = page.get_by_role("tab")
            for i in range(max(tabs.count(), 1)):
                if i:
                    tabs.nth(i).click()
                    wait_until_idle(page, 180_000)
                page.wait_for_timeout(500)  # metrics lay out after the run ends
                assert_no_exception(page)
                found = page.evaluate(CUT_METRICS) + page.evaluate(CUT_INPUTS)
                found += page.evaluate(CUT_BUTTONS)
                page.wait_for_timeout(1000)  # plotly lays its titles out after drawing
                found += page.evaluate(CUT_TITLES)
                if found:
                    cut[f"{spec.url_path} tab {i}"] = found
    finally:
        context.close()
    assert not cut, f"metrics, inputs or chart titles cut off at {width} px: {cut}"
