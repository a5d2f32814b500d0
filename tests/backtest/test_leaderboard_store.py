"""A leaderboard run's stored results when a file cannot be read back (cut short by a
full disk or a copy, edited by hand): the task counts as missing and runs again with a
warning, and the table equals the one first computed. A truncated model row was a
JSONDecodeError traceback, a truncated trial Parquet an ArrowInvalid one."""

from __future__ import annotations

import logging

import pytest

from mltrainer.backtest.leaderboard import run_leaderboard
from mltrainer.backtest.walkforward import WalkForwardSettings

TICKERS = ["AAPL", "MSFT", "XOM"]
KEYS = ["momentum/SimpleMomentumModel", "technical/TrendAnalysisModel"]
SETTINGS = WalkForwardSettings(
    train_size=504, test_size=126, backtest_kwargs={"commission_bps": 5.0}
)


@pytest.fixture(scope="module")
def small(sp500_dir):
    from mltrainer.data.local import load_local

    return load_local(sp500_dir, tickers=TICKERS, start="2012-01-01", end="2016-12-31")


def _cut(path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_unreadable_stored_results_are_computed_again(small, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    full = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path, n_jobs=1)
    assert full.n_tasks == 8 and "warnings" not in full.meta
    root = full.store.root
    expected = full.table.drop(columns="settings")

    def again(n_tasks: int, *problems: str):
        board = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path, n_jobs=1)
        assert board.n_tasks == n_tasks
        assert board.table.drop(columns="settings").equals(expected)
        warnings = board.meta.get("warnings", [])
        assert len(warnings) == len(problems)
        for text, problem in zip(warnings, problems, strict=True):
            assert "unreadable stored result (" + problem in text
            assert text.endswith("; computing it again")
            assert text in caplog.text
        return warnings

    # a model's row cut short: scored again from its stored returns, no task rerun
    row = root / "models" / "momentum__SimpleMomentumModel.json"
    _cut(row)
    (warning,) = again(0, "JSONDecodeError: ")
    assert warning.startswith(str(row))
    again(0)  # rewritten: read back silently

    # a row and one of its trials cut short: that one (model, setting) runs again
    trial = sorted((root / "trials" / "technical__TrendAnalysisModel").glob("*.parquet"))[0]
    _cut(trial, 300)
    _cut(root / "models" / "technical__TrendAnalysisModel.json")
    again(1, "JSONDecodeError: ", "ArrowInvalid: ")
    again(0)

    # the baselines cut short while every model's row is fine: the rows are scored again
    # (a table without its baselines was the alternative), from the stored returns
    _cut(root / "models" / "baselines.json", 30)
    again(0, "JSONDecodeError: ")
    # valid JSON that is not a row
    row.write_text("[1, 2]")
    again(0, "a JSON list, not an object")
