"""The task engine without a cluster: local results in task order, whichever way they
run, and a clear, quick error for a scheduler that is not there."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from mltrainer.numerics import engine
from mltrainer.numerics.engine import ClusterError, map_tasks, scheduler_address
from mltrainer.numerics.parallel import execution
from tests.numerics.dask_cluster import ROOT, free_port


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_results_come_back_in_task_order(n_jobs):
    tasks = [(i,) for i in range(12)]
    assert map_tasks(operator.mul, tasks, 3, n_jobs=n_jobs) == [3 * i for i in range(12)]
    assert map_tasks(pow, [(2, i) for i in range(5)], n_jobs=n_jobs) == [1, 2, 4, 8, 16]


def test_the_scheduler_comes_from_the_option_then_the_setting_then_the_environment(
    monkeypatch,
):
    monkeypatch.delenv(engine.SCHEDULER_ENV, raising=False)
    assert scheduler_address() == (None, "local")
    monkeypatch.setenv(engine.SCHEDULER_ENV, "tcp://10.0.0.1:8786")
    assert scheduler_address() == ("tcp://10.0.0.1:8786", engine.SCHEDULER_ENV)
    with execution(scheduler="tcp://10.0.0.2:8786"):
        assert scheduler_address() == ("tcp://10.0.0.2:8786", "--scheduler")
        assert scheduler_address("tcp://10.0.0.3:1") == ("tcp://10.0.0.3:1", "--scheduler")


def test_a_refused_port_is_a_one_line_error_at_once(monkeypatch):
    port = free_port()
    monkeypatch.setenv(engine.SCHEDULER_ENV, f"tcp://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as err:
        map_tasks(operator.neg, [(1,), (2,)])
    assert time.monotonic() - t0 < 3
    assert str(err.value).startswith(
        f"cannot reach Dask scheduler at tcp://127.0.0.1:{port} (MLTRAINER_DASK_SCHEDULER)"
    )


def test_an_address_without_a_port_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(engine.SCHEDULER_ENV, "scheduler-host")
    with pytest.raises(ClusterError, match="scheduler-host .MLTRAINER_DASK_SCHEDULER.: missing"):
        map_tasks(operator.neg, [(1,)])


@pytest.mark.parametrize("caller", ["plain", "inside a running event loop"])
def test_a_server_that_is_not_dask_is_refused_without_hanging(monkeypatch, caller):
    """A port that answers in another protocol (here an HTTP error page) is no scheduler:
    refused within the connect timeout (shortened here to keep the test quick). The same
    from a thread that already runs an event loop (a notebook, Playwright's sync API),
    where the probe once failed with "asyncio.run() cannot be called from a running
    event loop" instead of answering."""
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 2.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer():
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
        time.sleep(1)
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(
            ClusterError, match=f"cannot reach Dask scheduler at tcp://127.0.0.1:{port}"
        ):
            call = partial(map_tasks, operator.neg, [(1,)], scheduler=f"tcp://127.0.0.1:{port}")
            if caller == "plain":
                call()
            else:

                async def in_a_loop() -> None:
                    call()

                # its own thread: this one may run a loop already (Playwright's, in CI)
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(asyncio.run, in_a_loop()).result()
    finally:
        server.close()
    assert time.monotonic() - t0 < engine.CONNECT_TIMEOUT + 2


def test_a_huge_address_is_refused_without_echoing_it(monkeypatch):
    """A 5,000-character setting (a pasted file, say) is named by its start and length,
    not printed whole in the error."""
    monkeypatch.setenv("MLTRAINER_DASK_SCHEDULER", "x" * 5000)
    with pytest.raises(ClusterError) as err:
        map_tasks(operator.neg, [(1,)])
    message = str(err.value)
    assert "(5000 chars)" in message and len(message) < 500, message


def test_a_scheduler_that_never_answers_is_named_a_timeout(monkeypatch):
    """A port that accepts the connection and then says nothing: the probe's TimeoutError
    has no text, and the message read "...(--scheduler): ; start one ..."."""
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 1.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t0 = time.monotonic()
    try:
        with pytest.raises(ClusterError) as err:
            map_tasks(operator.neg, [(1,)], scheduler=address)
    finally:
        server.close()
    assert time.monotonic() - t0 < engine.CONNECT_TIMEOUT + 2
    assert str(err.value) == (
        f"cannot reach Dask scheduler at {address} (--scheduler): no answer within 1.5 s; "
        "start one with `dask scheduler` or leave out --scheduler to run locally"
    )


def test_a_port_beyond_65535_is_refused_not_wrapped():
    """``tcp://host:84322`` reached port 84322 - 65536 = 18786: the socket layer takes a
    port modulo 65536, so a typo connected to whatever listened there (here a server
    that never answers, so the error blamed a timeout on the wrong port)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1] + 65536
    try:
        with pytest.raises(ClusterError) as err:
            map_tasks(operator.neg, [(1,)], scheduler=f"tcp://127.0.0.1:{port}")
    finally:
        server.close()
    assert f"tcp://127.0.0.1:{port} (--scheduler): port {port} is not a TCP port (1 to 65535)" in (
        str(err.value)
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_a_local_sweep_with_its_workers_and_temporary_file(sp500_dir, tmp_path):
    """SIGTERM (docker stop, kubectl delete, timeout) killed a sweep at once: its joblib
    workers ran on, orphaned, holding the shared input, and the input's temporary file
    (169 MB for the whole S&P 500) stayed behind. It now ends as Ctrl-C does: workers
    stopped, file removed, exit status 143."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.numerics.sweep_child", str(sp500_dir)]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    workers: set[int] = set()
    try:
        while len(workers) < 2:
            workers.add(int(child.stdout.readline()))
        assert list(tmp_path.glob("mltrainer-shared-*")), "the shared input's file"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "orphaned workers"
        assert not list(tmp_path.glob("mltrainer-shared-*"))
    finally:
        child.kill()
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)
