"""Fixtures the data tests share."""

from __future__ import annotations

import pytest


@pytest.fixture
def poly_dir(shared_data_dir):
    """The saved real Polygon responses."""
    return shared_data_dir / "polygon"
