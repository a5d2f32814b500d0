"""The leaderboard on real prices (5 tickers, 2010-2015, 3 models): each row is the
model's own walk-forward over its declared grid, a finished run is read back without a
single task, and a run killed part-way resumes with only the unfinished tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mltrainer
from mltrainer.backtest.leaderboard import (
    MAX_SETTINGS,
    default_identity,
    leaderboard_models,
    model_settings,
    run_leaderboard,
)
from mltrainer.backtest.walkforward import WalkForwardSettings, walk_forward
from mltrainer.code_digest import source_digest
from mltrainer.errors import ParameterError
from mltrainer.models.registry import MODELS

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "KO"]
KEYS = [
    "momentum/SimpleMomentumModel",
    "technical/TrendAnalysisModel",
    "risk/VolatilityTargetingModel",
]
SETTINGS = WalkForwardSettings(
    train_size=504, test_size=126, backtest_kwargs={"commission_bps": 5.0}
)


@pytest.fixture(scope="module")
def small(sp500_dir):
    from mltrainer.data.local import load_local

    return load_local(sp500_dir, tickers=TICKERS, start="2010-01-01", end="2015-12-31")


@pytest.mark.parametrize("key", leaderboard_models())
def test_every_model_gets_a_small_valid_grid_holding_its_defaults(key):
    grid, points = model_settings(key)
    assert 1 <= len(points) <= MAX_SETTINGS
    cls = MODELS[key]
    defaults = cls().get_params()
    assert any(all(defaults[k] == v for k, v in p.items()) for p in points), points
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)


def test_the_model_list_filters_by_family_and_key():
    assert all(k.startswith("risk/") for k in leaderboard_models(["risk"]))
    assert leaderboard_models(keys=KEYS[:1]) == KEYS[:1]
    with pytest.raises(ParameterError, match="unknown family nope"):
        leaderboard_models(["nope"])
    with pytest.raises(ParameterError, match="not a signal or weights model"):
        leaderboard_models(keys=["volatility/GARCHModel"])
    # an empty --models ran every model; a known family with nothing to rank, and two
    # filters that exclude each other, were "unknown family"
    with pytest.raises(ParameterError, match="--models names no model"):
        leaderboard_models(keys=[])
    with pytest.raises(ParameterError, match="the volatility family has no signal or weights"):
        leaderboard_models(["volatility"])
    with pytest.raises(ParameterError, match="none of --models risk/RiskParityModel is in"):
        leaderboard_models(["momentum"], ["risk/RiskParityModel"])


def test_each_row_is_the_models_own_walk_forward(small, tmp_path):
    board = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path, n_jobs=1)
    assert board.n_tasks == 12
    for key in KEYS:
        grid, points = model_settings(key)
        wf = walk_forward(MODELS[key], small, grid, n_jobs=1, **_kwargs())
        row = board.table.loc[key]
        assert row["oos_sharpe"] == wf.oos_metrics["sharpe"]
        assert row["oos_cagr"] == wf.oos_metrics["cagr"]
        assert row["oos_max_drawdown"] == wf.oos_metrics["max_drawdown"]
        assert row["oos_dsr"] == wf.deflated_sharpe["oos"]["dsr"]
        assert row["n_settings"] == len(points) == 4
        assert json.loads(row["chosen_params"]) == wf.folds["params"].iloc[-1]
        assert row["default_oos_sharpe"] == wf.baselines.summary()["default_params"]["sharpe"]
        # the equal-weight baseline is computed for the first model and reused after
        own = wf.baselines.table().loc["equal_weight", "excess_sharpe"]
        assert row["excess_sharpe_vs_equal_weight"] == own
    ew = board.table.loc["baseline/EqualWeightBuyAndHold"]
    assert ew["family"] == "baseline" and ew["oos_sharpe"] == pytest.approx(
        wf.baselines.summary()["equal_weight"]["sharpe"], rel=0, abs=0
    )
    span = board.meta["out_of_sample"]
    assert (span["first_date"], span["last_date"], span["n_folds"]) == (
        "2012-01-03",
        "2015-12-31",
        8,
    )
    sharpes = board.table.loc[KEYS, "oos_sharpe"]
    assert list(board.table.index[:3]) == list(sharpes.sort_values(ascending=False).index)


def test_local_workers_give_the_same_table(small, tmp_path):
    """Two local worker processes (the panel sent to each once) change nothing."""
    one = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path / "one", n_jobs=1)
    two = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path / "two", n_jobs=2)
    assert two.n_tasks == 12
    assert two.table.equals(one.table)


def _kwargs() -> dict:
    return {
        "train_size": SETTINGS.train_size,
        "test_size": SETTINGS.test_size,
        "backtest_kwargs": SETTINGS.backtest_kwargs,
    }


def test_a_killed_run_resumes_from_its_finished_tasks(small, tmp_path):
    full = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path / "full", n_jobs=1)

    class Killed(Exception):
        pass

    def kill_after_five(done: int, total: int) -> None:
        if done == 5:
            raise Killed

    with pytest.raises(Killed):
        run_leaderboard(
            small, KEYS, SETTINGS, root=tmp_path / "run", progress=kill_after_five, n_jobs=1
        )
    resumed = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path / "run", n_jobs=1)
    assert resumed.n_tasks == 12 - 5
    again = run_leaderboard(small, KEYS, SETTINGS, root=tmp_path / "run", n_jobs=1)
    assert again.n_tasks == 0
    for board in (resumed, again):
        assert board.table.drop(columns="settings").equals(full.table.drop(columns="settings"))


def test_results_stored_by_other_code_are_not_read_back(small, tmp_path):
    """The run's identity holds a hash of the package's code: a model changed since a
    run was stored starts a new run instead of reading the old numbers back."""
    import shutil

    package = Path(mltrainer.__file__).parent
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert source_digest(copy) == source_digest(package) == source_digest()
    model = copy / "models" / "momentum.py"
    model.write_text(model.read_text() + "\n# changed\n")
    assert source_digest(copy) != source_digest(package)
    (copy / "models" / "momentum.py").rename(copy / "models" / "momentum2.py")
    assert source_digest(copy) != source_digest(package)
    identity = default_identity(small, SETTINGS)
    assert identity["code"] == source_digest()
    old = {**identity, "code": "0" * 20}
    first = run_leaderboard(small, KEYS[:1], SETTINGS, root=tmp_path / "r", identity=old)
    again = run_leaderboard(small, KEYS[:1], SETTINGS, root=tmp_path / "r", identity=identity)
    assert first.n_tasks == again.n_tasks == 4
    assert first.store.root != again.store.root


def test_the_cli_stores_parquet_with_the_audit_id_and_reads_it_back(tmp_path, capsys):
    import pandas as pd

    from mltrainer.cli import main

    argv = ["leaderboard", "--tickers", ",".join(TICKERS), "--start", "2010-01-01"]
    argv += ["--end", "2015-12-31", "--models", ",".join(KEYS[:2]), "--train-days", "504"]
    argv += ["--test-days", "126", "--results-dir", str(tmp_path), "--json", "--n-jobs", "1"]
    docs = []
    for _ in range(2):
        assert main(argv) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert [d["n_tasks_run"] for d in docs] == [8, 0]
    assert docs[0]["rows"] == docs[1]["rows"]
    stored = pd.read_parquet(docs[1]["path"])
    assert list(stored.index[:2]) == [r["key"] for r in docs[1]["rows"][:2]]
    meta = json.loads((tmp_path / docs[1]["meta"]["run_id"] / "meta.json").read_text())
    assert meta["audit_id"] == docs[1]["audit_id"]
    assert meta["out_of_sample"]["costs"] == {"commission_bps": 5.0}
    # the text the terminal shows (every task read back): what each figure covers
    assert main([a for a in argv if a != "--json"]) == 0
    text = capsys.readouterr().out.splitlines()
    span = docs[1]["meta"]["out_of_sample"]
    assert text[0] == (
        f"leaderboard: {len(docs[1]['rows'])} rows; out of sample {span['first_date']} to "
        f"{span['last_date']} ({span['n_folds']} test folds, settings chosen on training "
        "folds only)"
    )
    assert f"; {len(TICKERS)} tickers (local); costs commission 5 bps" in text[1]


def test_the_cli_refuses_a_range_too_short_for_one_fold(tmp_path, capsys):
    """Half a year cannot hold the 756-day first training window: one line that says
    so, exit 2, before any model runs or anything is stored."""
    from mltrainer.cli import main

    argv = ["leaderboard", "--tickers", "AAPL", "--start", "2020-01-01", "--end", "2020-06-01"]
    argv += ["--models", KEYS[0], "--results-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: the range from 2020-01-02 to 2020-06-01 holds 104 trading days; a "
        "walk-forward needs 883 (a 756-day first training window and a test fold of 126 "
        "days or more): widen the dates or shorten the training window"
    ]
    assert not any(tmp_path.iterdir())


def test_a_board_where_no_model_could_be_scored(small, tmp_path, capsys):
    """Every model too long for the data: the table still has every figure column
    (blank) beside each model's reason, and the CLI says so with exit 2 instead of
    storing and ranking an empty board."""
    from mltrainer.cli import main
    from ui.leaderboard import display_frame

    short = small.truncate("2010-07-01")
    settings = WalkForwardSettings(train_size=60, test_size=20)
    key = "momentum/CrossSectionalMomentumModel"  # needs 127 days of history
    board = run_leaderboard(short, [key], settings, root=tmp_path / "lib", n_jobs=1)
    assert "needs at least 127 trading days" in board.table.loc[key, "error"]
    assert board.table[["oos_sharpe", "oos_cagr"]].isna().all().all()
    assert display_frame(board.table, board.meta).loc[key, "error"].startswith("DataError")

    argv = ["leaderboard", "--tickers", ",".join(TICKERS), "--start", "2010-01-01"]
    argv += ["--end", "2010-07-01", "--models", key, "--train-days", "60", "--test-days", "20"]
    argv += ["--results-dir", str(tmp_path / "cli"), "--no-progress", "--n-jobs", "1"]
    (tmp_path / "cli").mkdir()  # --results-dir names an existing store
    capsys.readouterr()  # Streamlit's import-time warnings (ui.leaderboard, above)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no model could be scored"), err
    assert "CrossSectionalMomentumModel needs at least 127 trading days" in err[0]
    assert not list((tmp_path / "cli").rglob("leaderboard.parquet"))


def test_an_unwritable_results_folder_fails_before_any_task(tmp_path, capsys, monkeypatch):
    """A file where the results folder should be ends the run at once, with the path
    named, not after the first model's settings have been computed."""
    from mltrainer.backtest import leaderboard
    from mltrainer.cli import main

    ran = []
    monkeypatch.setattr(leaderboard, "imap_tasks", lambda *a, **k: ran.append(a) or iter(()))
    blocked = tmp_path / "results-file"
    blocked.write_text("x")
    argv = ["leaderboard", "--tickers", ",".join(TICKERS), "--models", KEYS[0]]
    argv += ["--results-dir", str(blocked), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --results-dir {blocked} is not a folder")
    assert not ran


def test_the_chart_gives_each_model_its_own_row():
    """risk/ and sizing/ RiskParity (and VolatilityTargeting) were both "RiskParity": two
    models' bars overlaid on one row, out of the best-on-top order."""
    import pandas as pd

    from mltrainer.plots.leaderboard import leaderboard_chart

    table = pd.DataFrame(
        {
            "family": ["risk", "sizing", "risk", "momentum", "baseline", "baseline"],
            "oos_sharpe": [0.78, 0.41, 0.55, 0.70, 0.60, 0.79],
            "oos_dsr": [0.9, 0.4, 0.6, 0.8, float("nan"), float("nan")],
            "n_settings": [4, 4, 4, 4, 1, 1],
        },
        index=[
            "risk/VolatilityTargetingModel",
            "sizing/VolatilityTargetingModel",
            "risk/RiskParityModel",
            "momentum/SimpleMomentumModel",
            "baseline/EqualWeightBuyAndHold",
            "baseline/SP500Index",
        ],
    )
    fig = leaderboard_chart(table)
    bars = {y: x for trace in fig.data for x, y in zip(trace.x, trace.y, strict=True)}
    assert bars == {
        "risk/VolatilityTargeting": 0.78,
        "sizing/VolatilityTargeting": 0.41,
        "RiskParity": 0.55,
        "SimpleMomentum": 0.70,
    }
    # the baselines' names point away from each other (they overlapped, centred)
    notes = {a.text: a.xanchor for a in fig.layout.annotations}
    assert notes == {"EqualWeightBuyAndHold": "right", "SP500Index": "left"}
    assert list(fig.layout.yaxis.categoryarray) == [  # plotly draws the last on top
        "sizing/VolatilityTargeting",
        "RiskParity",
        "SimpleMomentum",
        "risk/VolatilityTargeting",
    ]
