"""``python -m mltrainer leaderboard`` options as a hostile user gives them."""

from __future__ import annotations

import pytest

from mltrainer.cli import main

LEADERBOARD = ["leaderboard", "--models", "momentum/SimpleMomentumModel", "--tickers", "KO"]
LEADERBOARD += ["--start", "2015-01-01", "--end", "2018-12-31", "--no-progress"]


def _error(capsys, argv) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-800:]
    return lines[0]


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("typo", "no such folder; it holds the stored runs to resume from"),
        ("typo/deeper", "no such folder"),
    ],
)
def test_a_missing_results_folder_is_refused_not_made(capsys, tmp_path, name, fragment):
    """--results-dir is read back as well as written (a killed run resumes from it): a
    mistyped folder was made silently, and every task ran again in an empty store."""
    missing = tmp_path / name
    line = _error(capsys, [*LEADERBOARD, "--results-dir", str(missing)])
    assert line.startswith(f"error: --results-dir {missing}: ") and fragment in line, line
    assert not (tmp_path / "typo").exists()


def test_an_empty_results_folder_is_not_the_default(capsys, tmp_path):
    """``--results-dir ''`` was read as no option: the runs went to results/leaderboard."""
    line = _error(capsys, [*LEADERBOARD, "--results-dir", ""])
    assert line.startswith("error: --results-dir is empty"), line
