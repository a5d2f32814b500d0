from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).with_name("app_entry.py"))


@pytest.fixture()
def app():
    """A fresh AppTest of the whole app (navigation + sidebar + default page)."""
    return AppTest.from_file(ENTRY, default_timeout=180)
