"""The app's pages, in navigation order: used by app.py and by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url_path: str


PAGES = (
    PageSpec("pages/home.py", "Home", "🏠", "home"),
)


def page_path(spec: PageSpec) -> Path:
    return ROOT / spec.file
