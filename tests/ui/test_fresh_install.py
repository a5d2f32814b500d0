"""A fresh install: no data folder, no network. Every page works on the data bundled with
the installed packages and says so."""

from __future__ import annotations

import pytest
import streamlit as st

from mltrainer.config import PROJECT_ROOT
from tests.ui.pagetools import chart_keys, errors, metrics
from ui.pages import PAGES


@pytest.fixture()
def no_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    # the process-wide caches hold the 'auto' panel of earlier tests (the local folder)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def test_every_page_runs_on_the_bundled_data_with_a_notice(app, no_data_folder):
    at = app.run()
    assert not at.exception
    notices = " ".join(w.value for w in at.sidebar.warning)
    assert "bundled with the installed packages" in notices
    assert metrics(at)["Data source"] == "bundled" and metrics(at)["Tickers"] == "20"
    for spec in PAGES:
        if spec is not PAGES[0]:
            at.switch_page(str(PROJECT_ROOT / spec.file)).run()
        assert not errors(at), (spec.file, errors(at))
        assert chart_keys(at), spec.file
        # the notice is said once per page: in the sidebar, not again in the page
        said = [w.value for w in at.warning if "bundled with the installed" in w.value]
        assert len(said) == 1, (spec.file, said)
    at.switch_page(str(PROJECT_ROOT / "pages" / "universe.py")).run()
    infos = " ".join(i.value for i in at.info) + " ".join(c.value for c in at.caption)
    assert "no market caps" in infos or "equal size" in infos


def test_a_cache_folder_that_cannot_be_made_is_a_notice_not_a_crash(
    app, no_data_folder, blocked_cache_dir
):
    """A deployment whose cache volume is missing or not writable (here: a file where the
    folder should be) still serves every page, on a temporary cache, and says so."""
    from mltrainer.data import cache

    at = app.run()
    assert not errors(at) and chart_keys(at)
    notices = [w.value for w in at.sidebar.warning if "cache folder" in w.value]
    assert notices == [cache.cache_problem()] and str(blocked_cache_dir) in notices[0]
