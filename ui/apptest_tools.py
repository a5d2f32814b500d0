"""What the tests and the benchmarks both use to drive the app: the entry script for
Streamlit's AppTest, and the browser-side checks for a page served by `streamlit run`.

Here rather than in ``tests/`` so that ``bench/`` can use them without depending on the
test suite; nothing in the app imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# app.py for AppTest, run from this folder (it has no pages/ beside it): see its docstring
APP_ENTRY = str(Path(__file__).with_name("apptest_entry.py"))

# Sum of every trace's y values per chart: a cheap fingerprint of what plotly drew
# (_fullData holds the decoded arrays; data keeps the base64 'bdata' it was sent as)
CHART_SUMS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    el => (el._fullData || []).map(t => Array.from(t.y || []).reduce(
        (a, b) => a + (Number.isFinite(+b) ? +b : 0), 0)))"""


def wait_until_idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait for Streamlit's script run to finish.

    ``page`` is a Playwright page showing the app. The app root carries the run's state
    in ``data-test-script-state`` (``initial``, ``running``, ``notRunning``; Streamlit
    1.4x on). The top-right 'Running...' status widget this used to read is no longer
    drawn, so that check passed at once, mid-run. A click's rerun may start a moment
    later, hence the second look after a pause.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    idle = (
        "() => document.querySelector('[data-testid=\"stApp\"]')"
        ".getAttribute('data-test-script-state') === 'notRunning'"
    )
    page.wait_for_function(idle, timeout=timeout_ms)
    page.wait_for_timeout(500)
    page.wait_for_function(idle, timeout=timeout_ms)
