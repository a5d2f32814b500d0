"""The whole app in a real browser: `streamlit run app.py` on 127.0.0.1, driven by
Playwright in Debian's chromium.

Where no chromium is installed the tests skip with a message saying how to enable
them; with MLTRAINER_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser fails instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from mltrainer.config import PROJECT_ROOT
from ui.user_sessions import CHROMIUM_ARGS, serve

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        message = (
            "no chromium found: install Debian's chromium (`apt-get install chromium`) "
            "to run the browser tests"
        )
        if os.environ.get("MLTRAINER_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (required here: MLTRAINER_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    return path


@contextlib.contextmanager
def streamlit_server(folder: Path, extra_env: dict[str, str] | None = None):
    """`streamlit run app.py` on a free local port (:func:`ui.user_sessions.serve`) with
    its own cache and audit folders under ``folder`` (and ``extra_env`` on top); yields
    the base URL and stops the server afterwards."""
    env = {
        "MLTRAINER_CACHE_DIR": str(folder / "cache"),
        "MLTRAINER_AUDIT_DIR": str(folder / "audit"),
        "MLTRAINER_OFFLINE": "1",
        **(extra_env or {}),
    }
    with serve(folder, env=env) as (url, _process):
        yield url


@pytest.fixture(scope="session")
def server(chromium_path, shared_data_dir, tmp_path_factory):
    """The app served by `streamlit run` on a free local port, on the real 504 tickers."""
    with streamlit_server(tmp_path_factory.mktemp("browser-server")) as url:
        yield url


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=list(CHROMIUM_ARGS)
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
