"""deploy/compose.yaml's topology run as local processes on 127.0.0.1 (no Docker here):
the app (`streamlit run`), `dask scheduler` and the worker replicas, each started with
the command and environment the compose file gives its service, the service host names
and ports mapped to free local ports.

Shown: every service answers the health check its compose entry declares, and a
walk-forward sweep started in the browser on the Model Lab runs on the cluster's
workers (the scheduler's task stream records its grid points), not in the app.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mltrainer.config import PROJECT_ROOT
from tests.browser.conftest import streamlit_server
from tests.browser.test_pages import assert_no_exception
from ui.apptest_tools import wait_until_idle
from ui.user_sessions import free_port

pytestmark = pytest.mark.browser

COMPOSE = PROJECT_ROOT / "deploy" / "compose.yaml"
DASK = Path(sys.executable).with_name("dask")
SCHEDULER_IN_COMPOSE = "tcp://scheduler:8786"


def _compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(COMPOSE.read_text())


def _local(command: list[str], ports: dict[str, str]) -> list[str]:
    """A compose command run here: the venv's ``dask``, 127.0.0.1 for every interface
    and service host, each compose port replaced by its free local one."""
    out = []
    for arg in command:
        for old, new in ports.items():
            arg = arg.replace(old, new)
        out.append(arg.replace("0.0.0.0", "127.0.0.1"))
    assert out[0] == "dask", command
    return [str(DASK), *out[1:]]


def _health(url: str, timeout: float = 60.0) -> int:
    """The status of ``url`` once it answers (as the compose health checks ask it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=4) as resp:
                return resp.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _health_urls(service: dict, local_port: int) -> list[str]:
    """The URL(s) the service's compose health check asks, on its local port."""
    test = " ".join(service["healthcheck"]["test"])
    found = re.findall(r"http://127\.0\.0\.1:\d+(/[\w/]*)", test)
    return [f"http://127.0.0.1:{local_port}{path}" for path in found]


@pytest.fixture(scope="module")
def topology(tmp_path_factory, chromium_path, shared_data_dir):
    """The scheduler, the workers and the app as compose runs them, here; yields the app
    URL, the scheduler address and the health URLs; kills them all afterwards."""
    services = _compose()["services"]
    sched_port, sched_dash = free_port(), free_port()
    address = f"tcp://127.0.0.1:{sched_port}"
    base = {SCHEDULER_IN_COMPOSE: address, "8786": str(sched_port)}
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MLTRAINER_DASK_SCHEDULER", None)
    procs: list[subprocess.Popen] = []
    health: list[str] = []

    def spawn(command: list[str]) -> None:
        procs.append(
            subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    try:
        ports = {**base, ":8787": f"127.0.0.1:{sched_dash}"}
        spawn(_local(services["scheduler"]["command"], ports))
        health += _health_urls(services["scheduler"], sched_dash)
        worker = services["worker"]
        for _ in range(worker["deploy"]["replicas"]):
            dash = free_port()
            # explicit worker and nanny ports: a worker's random one could take the port
            # chosen for the app while both start (CI saw Dask answer the app's health check)
            ports = ["--worker-port", str(free_port()), "--nanny-port", str(free_port())]
            spawn(_local(worker["command"], {**base, ":8788": f"127.0.0.1:{dash}"}) + ports)
            health += _health_urls(worker, dash)
        app_env = {
            k: str(v).replace(SCHEDULER_IN_COMPOSE, address)
            for k, v in services["app"]["environment"].items()
        }
        assert app_env == {"MLTRAINER_DASK_SCHEDULER": address}
        folder = tmp_path_factory.mktemp("compose-topology")
        with streamlit_server(folder, extra_env=app_env) as url:
            yield {"url": url, "scheduler": address, "health": health, "procs": procs}
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_every_service_passes_its_compose_health_check(topology):
    assert len(topology["health"]) == 3  # the scheduler and the two worker replicas
    for url in [*topology["health"], f"{topology['url']}/_stcore/health"]:
        assert _health(url) == 200, url
    assert all(proc.poll() is None for proc in topology["procs"])


def test_a_sweep_started_in_the_app_runs_on_the_workers(topology, browser):
    from distributed import Client, get_task_stream

    with Client(topology["scheduler"], timeout=30, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        workers = set(client.scheduler_info()["workers"])
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        try:
            with get_task_stream(client=client) as stream:
                page.goto(f"{topology['url']}/model_lab", wait_until="domcontentloaded")
                wait_until_idle(page, 180_000)
                page.get_by_role("tab", name="Walk-forward & sweep").click()
                wait_until_idle(page, 180_000)
                page.get_by_role("button", name="Run walk-forward").click()
                page.get_by_text("Out-of-sample Sharpe").wait_for(timeout=300_000)
                wait_until_idle(page, 300_000)
            assert_no_exception(page)
        finally:
            context.close()
    grid = [t for t in stream.data if str(t["key"]).startswith("grid-")]
    # the default sweep: one parameter at 3 values, each a task (twice when the
    # survivors' run is drawn beside the point-in-time one)
    assert len(grid) >= 3, [t["key"] for t in stream.data]
    assert {t["worker"] for t in grid} <= workers
