"""Walk-forward sweeps on a real Dask cluster: ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, real prices (8 tickers, 2010-2015).

Shown here: the results equal the local run's, the scheduler really ran the tasks (its
task stream names both workers), and a worker killed mid-run (SIGKILL, after the first
task has finished) costs only its own tasks: the run completes with equal results. A
worker or a scheduler that runs other code, and a scheduler without workers, are
refused with a message saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream

from mltrainer.backtest.walkforward import WalkForwardResult, walk_forward
from mltrainer.models.registry import get_model
from mltrainer.numerics import engine
from mltrainer.numerics.engine import ClusterError, close_clients, dask_client
from mltrainer.numerics.parallel import execution
from tests.numerics.dask_cluster import ROOT, LocalDaskCluster

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "JNJ", "WMT", "TSLA", "KO"]
FOLDS = {"train_size": 504, "test_size": 126, "backtest_kwargs": {"commission_bps": 5.0}}


@pytest.fixture(scope="module")
def cluster():
    """The scheduler and two workers, killed however the module ends."""
    with another_cluster(n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def small(sp500_dir):
    from mltrainer.data.local import load_local

    return load_local(sp500_dir, tickers=TICKERS, start="2010-01-01", end="2015-12-31")


def assert_same_walk_forward(a: WalkForwardResult, b: WalkForwardResult) -> None:
    """Every number of two walk-forwards equal (to 1e-12 relative)."""
    pd.testing.assert_frame_equal(a.trial_returns, b.trial_returns, rtol=1e-12, atol=0)
    pd.testing.assert_series_equal(a.oos.returns, b.oos.returns, rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(a.folds, b.folds, rtol=1e-12, atol=0)
    assert a.grid == b.grid
    assert_close(a.deflated_sharpe, b.deflated_sharpe)
    assert_close(a.baselines.summary(), b.baselines.summary())


def assert_close(a, b, where: str = "") -> None:
    """Nested dicts equal, their floats to 1e-12 relative (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, nan_ok=True), where
    else:
        assert a == b, where


def grid_workers(stream: list[dict], prefix: str) -> dict[str, int]:
    """How many of the sweep's tasks each worker ran, from the scheduler's task stream."""
    counts: dict[str, int] = {}
    for task in stream:
        if str(task["key"]).startswith(prefix):
            counts[task["worker"]] = counts.get(task["worker"], 0) + 1
    return counts


def test_a_sweep_on_the_cluster_equals_the_local_run(cluster, small):
    cls = get_model("momentum/SimpleMomentumModel")
    grid = {"window": [5, 10, 20, 40], "threshold": [0.0, 0.02]}
    local = walk_forward(cls, small, grid, n_jobs=1, **FOLDS)
    client = dask_client(cluster.address)
    with get_task_stream(client) as stream, execution(scheduler=cluster.address):
        remote = walk_forward(cls, small, grid, **FOLDS)
    assert_same_walk_forward(local, remote)
    ran = grid_workers(stream.data, "grid-SimpleMomentumModel-")
    assert sum(ran.values()) == 8
    assert len(ran) == 2, f"every task ran on one worker: {ran}"


@pytest.mark.parametrize(
    ("key", "params", "prefix"),
    [
        ("volatility/GARCHVolatilityModel", {}, "tickers-"),
        ("regime/RegimeSwitchingModel", {"refit_every": 2520}, "tickers-regimes"),
        ("ml/BaseMLModel", {}, "tickers-_refit"),
    ],
)
def test_universe_wide_fits_run_on_the_cluster_with_equal_results(
    cluster, small, key, params, prefix
):
    """The per-ticker GARCH fits, the Markov-switching fits per column and the ML
    refits go to the cluster's workers; every output value equals the local run's."""
    model = get_model(key)(**params)
    local = model.run(small)
    client = dask_client(cluster.address)
    with get_task_stream(client) as stream, execution(scheduler=cluster.address):
        remote = model.run(small)
    pd.testing.assert_frame_equal(local.to_frame(), remote.to_frame(), rtol=1e-12)
    ran = grid_workers(stream.data, prefix)
    assert sum(ran.values()) >= 2, [t["key"] for t in stream.data][:10]


def test_the_cli_sweeps_on_the_scheduler_it_is_given(cluster, capsys):
    """``walkforward --scheduler URL --json`` prints the same document as the local run
    (but for its audit id)."""
    from mltrainer.cli import main

    argv = ["walkforward", "momentum/TimeSeriesMomentumModel", "--tickers", ",".join(TICKERS)]
    argv += ["--start", "2010-01-01", "--end", "2015-12-31", "--train-days", "504"]
    argv += ["--test-days", "126", "--grid", "long_window=40,60,120", "--json", "--no-progress"]
    docs = []
    for extra in ([], ["--scheduler", cluster.address]):
        assert main([*argv, *extra]) == 0
        doc = json.loads(capsys.readouterr().out)
        doc.pop("audit_id")
        docs.append(doc)
    assert_close(docs[0], docs[1])
    assert docs[0]["n_grid_points"] == 3


def test_a_small_leaderboard_on_the_cluster_equals_the_local_one(cluster, small, tmp_path):
    from mltrainer.backtest.leaderboard import run_leaderboard
    from mltrainer.backtest.walkforward import WalkForwardSettings

    keys = ["momentum/TimeSeriesMomentumModel", "volume/VolumeMomentumModel"]
    keys += ["sizing/VolatilityTargetingModel"]
    s = WalkForwardSettings(train_size=504, test_size=126, backtest_kwargs=FOLDS["backtest_kwargs"])
    local = run_leaderboard(small, keys, s, root=tmp_path / "local", n_jobs=1)
    client = dask_client(cluster.address)
    with get_task_stream(client) as stream, execution(scheduler=cluster.address):
        remote = run_leaderboard(small, keys, s, root=tmp_path / "cluster")
    assert local.n_tasks == remote.n_tasks == 12
    pd.testing.assert_frame_equal(local.table, remote.table, rtol=1e-12, atol=0)
    ran = grid_workers(stream.data, "leaderboard-")
    assert sum(ran.values()) == 12 and len(ran) == 2, ran


def test_a_worker_killed_mid_sweep_costs_only_its_tasks(cluster, small):
    cls = get_model("risk/PortfolioRiskModel")  # ~0.5 s a point here: a sweep to interrupt
    grid = {"window": [126, 252], "rebalance": [10, 21], "covariance": ["sample", "ledoit_wolf"]}
    local = walk_forward(cls, small, grid, n_jobs=1, **FOLDS)
    client = dask_client(cluster.address)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if done == 1 and not killed:  # the first task has finished
            busy = [w for w, keys in client.processing().items() if keys] or list(pids)
            killed.append(busy[0])
            cluster.kill(cluster.process_of(pids[busy[0]]))

    try:
        with get_task_stream(client) as stream, execution(scheduler=cluster.address):
            remote = walk_forward(cls, small, grid, progress=kill_a_busy_worker, **FOLDS)
        assert killed, "the sweep finished before a worker could be killed"
        assert killed[0] not in client.scheduler_info()["workers"]
        assert_same_walk_forward(local, remote)
        ran = grid_workers(stream.data, "grid-PortfolioRiskModel-")
        survivor = next(w for w in pids if w != killed[0])
        assert ran.get(survivor, 0) >= 4  # it took over the dead worker's share
        assert np.isfinite(remote.oos_metrics["sharpe"])
    finally:
        cluster.restore()


@contextmanager
def another_cluster(**kwargs):
    """A cluster of its own for one test (its processes killed however the test ends)."""
    c = LocalDaskCluster(**kwargs)
    try:
        c.start()
        yield c
    finally:
        close_clients()
        c.stop()


def test_a_worker_running_other_code_is_refused_not_trusted(small, tmp_path):
    """A worker of another image or checkout (here one model changed: its signal negated)
    returned that code's numbers as this code's, and a leaderboard stored them under this
    code's identity, to be read back by every later run. Each task now checks first."""
    copy = tmp_path / "code"
    shutil.copytree(
        ROOT / "mltrainer", copy / "mltrainer", ignore=shutil.ignore_patterns("__pycache__")
    )
    model = copy / "mltrainer" / "models" / "momentum.py"
    text = model.read_text()
    assert "signal = inputs.step_momentum(" in text
    model.write_text(
        text.replace("signal = inputs.step_momentum(", "signal = -inputs.step_momentum(")
    )
    cls = get_model("momentum/SimpleMomentumModel")
    with another_cluster(n_workers=1, code=copy) as c, execution(scheduler=c.address):
        with pytest.raises(ClusterError) as err:
            walk_forward(cls, small, {"window": [5, 10]}, **FOLDS)
    assert str(err.value).startswith("Dask worker w0 (tcp://127.0.0.1:")
    assert "runs other mltrainer code than the process that sent it tasks" in str(err.value)


def test_a_scheduler_without_mltrainer_is_named(small):
    """The scheduler unpickles the tasks, so it imports mltrainer: one started from a
    bare environment failed the sweep with distributed's traceback ("Error during
    deserialization of the task graph")."""
    cls = get_model("momentum/SimpleMomentumModel")
    with another_cluster(n_workers=1, scheduler_code=None) as c, execution(scheduler=c.address):
        with pytest.raises(ClusterError) as err:
            walk_forward(cls, small, {"window": [5, 10]}, **FOLDS)
    assert str(err.value).startswith(
        f"the Dask scheduler at {c.address} cannot read this process's tasks "
        "(ModuleNotFoundError: No module named 'mltrainer'): it imports mltrainer"
    )


def test_a_scheduler_without_workers_is_a_clear_error(small, monkeypatch):
    """No worker joined (or all died): the sweep failed with distributed's bare "No valid
    workers found" (a TimeoutError), naming neither the scheduler nor what to do."""
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 3.0)  # the client's timeout: the wait
    cls = get_model("momentum/SimpleMomentumModel")
    with another_cluster(n_workers=0) as c, execution(scheduler=c.address):
        t0 = time.monotonic()
        with pytest.raises(ClusterError) as err:
            walk_forward(cls, small, {"window": [5, 10]}, **FOLDS)
    assert time.monotonic() - t0 < 15
    assert str(err.value) == (
        f"the Dask scheduler at {c.address} has no running worker (none came within 3 s): "
        f"start one with `dask worker {c.address}`, then run again (finished tasks are kept)"
    )
