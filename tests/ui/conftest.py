from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui.apptest_tools import APP_ENTRY as ENTRY


@pytest.fixture()
def app():
    """A fresh AppTest of the whole app (navigation + sidebar + default page)."""
    return AppTest.from_file(ENTRY, default_timeout=180)
