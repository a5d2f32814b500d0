"""The app's pages, in navigation order, and the navigation app.py declares over them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url_path: str


PAGES = (
    # Material icons ship with Streamlit's frontend, so they render without an emoji font.
    # url_path must equal the file's stem: with a pages/ folder beside app.py, a first
    # visit to a deep link finds the page by its file name, and hands it over to app.py
    # under the same url_path (ui.context._hand_over_to_app).
    PageSpec("pages/home.py", "Home", ":material/home:", "home"),
    PageSpec("pages/universe.py", "Universe Explorer", ":material/explore:", "universe"),
    PageSpec("pages/regimes.py", "Regimes", ":material/partly_cloudy_day:", "regimes"),
    PageSpec("pages/risk.py", "Risk & Stress", ":material/shield:", "risk"),
    PageSpec("pages/model_lab.py", "Model Lab", ":material/science:", "model_lab"),
    PageSpec("pages/leaderboard.py", "Leaderboard", ":material/leaderboard:", "leaderboard"),
    PageSpec("pages/monitor.py", "Monitor", ":material/notifications_active:", "monitor"),
)


def page_path(spec: PageSpec) -> Path:
    return ROOT / spec.file


def navigation() -> st.Page:
    """The app's ``st.navigation`` over PAGES, the first one the default; the caller
    runs the page it returns."""
    return st.navigation(
        [
            st.Page(page_path(p), title=p.title, icon=p.icon, url_path=p.url_path, default=(i == 0))
            for i, p in enumerate(PAGES)
        ]
    )


def link_target(file: str) -> str:
    """A page's path for ``st.page_link`` that works from any entry script (absolute)."""
    return str(ROOT / file)
