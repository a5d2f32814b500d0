"""Every page of the running app in Chromium: renders, draws its charts, no exception."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS
from ui.pages import PAGES

pytestmark = pytest.mark.browser


def wait_until_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait for Streamlit's script run to finish (the 'running' indicator disappears)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText"
        ".includes('Running')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_chromium(server, page, spec):
    path = "" if spec is PAGES[0] else spec.url_path
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    wait_until_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Traceback").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{spec.url_path}.png"), full_page=True)
