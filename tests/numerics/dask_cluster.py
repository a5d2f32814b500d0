"""A real Dask cluster on 127.0.0.1 for tests: ``dask scheduler`` and ``dask worker``
processes started from the command line, as deploy/compose.yaml runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ui.user_sessions import free_port  # never the same port twice in a process

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


@dataclass
class LocalDaskCluster:
    """A scheduler and ``n_workers`` one-thread workers, each its own process group;
    ``code`` is the checkout the workers import mltrainer from, ``scheduler_code`` the
    scheduler's (None: no mltrainer there)."""

    n_workers: int = 2
    port: int = field(default_factory=free_port)
    code: Path = ROOT
    scheduler_code: Path | None = ROOT
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, *args: str) -> subprocess.Popen:
        code = self.scheduler_code if args[0] == "scheduler" else self.code
        env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
        env.pop("MLTRAINER_DASK_SCHEDULER", None)
        if code is None:
            del env["PYTHONPATH"]
        return subprocess.Popen(
            [str(DASK), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: kill() reaches a nanny's children
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start the processes and wait until every worker has joined."""
        self.scheduler = self._spawn(
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"
        )
        for i in range(self.n_workers):
            self.workers.append(
                self._spawn(
                    "worker",
                    self.address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                )
            )
        from distributed import Client

        deadline = time.monotonic() + timeout
        while True:
            try:
                with Client(self.address, timeout=5, set_as_default=False) as client:
                    if self.n_workers:  # (none: the scheduler alone, once it answers)
                        client.wait_for_workers(
                            self.n_workers, timeout=max(1, deadline - time.monotonic())
                        )
                return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or self.scheduler.poll() is not None:
                    self.stop()
                    raise

    def restore(self, timeout: float = 60.0) -> None:
        """Start a new worker for each one that died, and wait until all have joined."""
        from distributed import Client

        for i, proc in enumerate(self.workers):
            if proc.poll() is not None:
                args = ("worker", self.address, "--nworkers", "1", "--nthreads", "1")
                self.workers[i] = self._spawn(*args, "--no-dashboard", "--name", f"w{i}r")
        with Client(self.address, timeout=5, set_as_default=False) as client:
            client.wait_for_workers(self.n_workers, timeout=timeout)

    def process_of(self, pid: int) -> subprocess.Popen:
        """The worker process (group) that holds the process ``pid``."""
        group = os.getpgid(pid)
        return next(p for p in self.workers if p.pid == group)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL a process and its children (a crash, not a clean shutdown)."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    def stop(self) -> None:
        """Kill every process this cluster started."""
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            self.kill(proc)
