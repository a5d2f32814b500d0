"""The package stays small enough to hold in one's head (issue 12).

Limits over ``mltrainer/``: no file over 600 lines, no function over 80 lines, a
docstring on every public function, class and method and type hints on every public
function's parameters and return, ``mltrainer/models/`` at most 8,000 lines (it was
9,000 before the numerical toolkit moved to ``mltrainer/numerics/`` and the models
became thin declarations), and one code style (``ruff format --check``) over every
Python file of the repository. Import cycles are checked in ``test_import_graph.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests import code_shape

FILES = code_shape.package_files()
MODELS_MAX_LINES = 8_000


def test_no_file_over_the_limit():
    assert code_shape.long_files(FILES) == []


def test_no_function_over_the_limit():
    assert code_shape.long_functions(FILES) == []


def test_public_api_has_docstrings_and_type_hints():
    assert code_shape.undocumented(FILES) == []


def test_models_package_size():
    total = sum(
        len(f.read_text().splitlines()) for f in (code_shape.PACKAGE / "models").rglob("*.py")
    )
    assert total <= MODELS_MAX_LINES, f"mltrainer/models/ has {total} lines"


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    if exe:
        return [exe]
    pytest.importorskip("ruff")
    return [sys.executable, "-m", "ruff"]


def test_one_code_style():
    """``ruff format --check`` and ``ruff check`` pass on every Python file of the repo."""
    targets = ["mltrainer", "ui", "pages", "tests", "bench", "app.py"]
    for args in (["format", "--check"], ["check"]):
        done = subprocess.run(
            [*_ruff(), *args, *targets],
            cwd=code_shape.ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
