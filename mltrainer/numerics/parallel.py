"""Running many independent per-ticker tasks, and the execution settings they read.

Parallelism and progress reporting are not model parameters (they do not change a
result): they are settings of the context a model runs in. ``with execution(n_jobs=2,
progress=callback): model.run(data)`` applies them to every task runner inside
(:func:`map_tickers`, the walk-forward refits of the ML models). ``scheduler`` names a
Dask scheduler for the sweeps of :mod:`mltrainer.numerics.engine` (None: the
``MLTRAINER_DASK_SCHEDULER`` environment variable, else local).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from mltrainer.numerics.threads import single_thread

Progress = Callable[[int, int], None] | None
"""A callback ``progress(done, total)``, or None; :func:`step_unit` says what it counts."""

T = TypeVar("T")
N_JOBS = 2  # the CI and dashboard machines have two cores
PARALLEL_MIN_TASKS = 8  # fewer tasks run in-process in auto mode (see map_tickers)


@dataclass(frozen=True)
class Execution:
    """How tasks run: ``n_jobs`` (None: automatic), a ``progress(done, total)`` and a
    Dask ``scheduler`` address (None: see :mod:`mltrainer.numerics.engine`)."""

    n_jobs: int | None = None
    progress: Progress = None
    scheduler: str | None = None


DEFAULT_EXECUTION = Execution()  # frozen, so sharing one default instance is safe
_EXECUTION: ContextVar[Execution] = ContextVar("mltrainer_execution", default=DEFAULT_EXECUTION)
_UNIT: ContextVar[str] = ContextVar("mltrainer_progress_unit", default="tasks")


@contextmanager
def execution(
    n_jobs: int | None = None, progress: Progress = None, scheduler: str | None = None
) -> Iterator[Execution]:
    """Run the enclosed model calls with these settings (restored on exit)."""
    if n_jobs is not None and n_jobs < 1:
        raise ValueError(f"n_jobs must be at least 1 (got {n_jobs})")
    token = _EXECUTION.set(Execution(n_jobs, progress, scheduler))
    try:
        yield _EXECUTION.get()
    finally:
        _EXECUTION.reset(token)


def current_execution() -> Execution:
    """The settings in force (the defaults outside any :func:`execution` block)."""
    return _EXECUTION.get()


def step_unit() -> str:
    """What the ``done`` and ``total`` of the progress call in flight count, as a plural
    noun ("tickers", "refits"): a progress callback may read it to label its bar."""
    return _UNIT.get()


def report(progress: Progress, done: int, total: int, unit: str) -> None:
    """Call ``progress(done, total)`` (if any) with :func:`step_unit` set to ``unit``."""
    if progress is None:
        return
    token = _UNIT.set(unit)
    try:
        progress(done, total)
    finally:
        _UNIT.reset(token)


def reported(items: Sequence[T], unit: str = "refits") -> Iterator[tuple[int, T]]:
    """``enumerate(items)``, reporting ``(i, len(items))`` before each item and
    ``(len(items), len(items))`` after the last: a task's own steps (its refits), which
    :func:`map_tickers` lets through only to a task that runs alone."""
    progress = current_execution().progress
    for i, item in enumerate(items):
        report(progress, i, len(items), unit)
        yield i, item
    report(progress, len(items), len(items), unit)


def _run_chunk(fn: Callable, chunk: Sequence[tuple]) -> list:
    """Run a few tasks in a worker under one BLAS thread (set up once per chunk)."""
    with single_thread():
        return [fn(*task) for task in chunk]


def map_tickers(fn: Callable, tasks: Sequence[tuple], unit: str = "tickers") -> list:
    """``[fn(*task) for task in tasks]``, in parallel with joblib when worth it.

    Reads :func:`current_execution`: ``n_jobs`` (None: up to :data:`N_JOBS` workers,
    and in-process below :data:`PARALLEL_MIN_TASKS` tasks, since starting workers that
    import arch, scipy and pandas costs seconds; an explicit ``n_jobs > 1`` always uses
    workers) and ``progress(done, total)``, called once with ``(0, total)`` and then as
    tasks finish, with :func:`step_unit` ``unit`` (what a task is). A lone task sees the
    same ``progress`` and may report its own steps (a Markov fit's refits, ending at n of
    n) where the bar would otherwise wait at 0 of 1; tasks among several see none. Every
    task runs with one BLAS thread, so a result is the same wherever it runs.
    """
    settings = current_execution()
    progress = settings.progress
    total = len(tasks)
    report(progress, 0, total, unit)
    jobs = N_JOBS if settings.n_jobs is None else settings.n_jobs
    if jobs == 1 or total < (PARALLEL_MIN_TASKS if settings.n_jobs is None else 2):
        results = []
        steps: list[int] = []  # a lone task's own reports: its bar ends at its last step

        def inner(done: int, of: int) -> None:
            steps.append(done)
            progress(done, of)

        lone = inner if progress is not None and total == 1 else None
        with single_thread(), execution(settings.n_jobs, lone, settings.scheduler):
            for i, task in enumerate(tasks, start=1):
                results.append(fn(*task))
                if not steps:
                    report(progress, i, total, unit)
        return results
    from joblib import Parallel, delayed

    # chunks of a few tickers: fewer round trips, still a smooth progress bar
    size = max(1, min(4, total // (8 * jobs)))
    chunks = [tasks[i : i + size] for i in range(0, total, size)]
    results: list = []
    for part in Parallel(n_jobs=jobs, return_as="generator")(
        delayed(_run_chunk)(fn, chunk) for chunk in chunks
    ):
        results.extend(part)
        report(progress, len(results), total, unit)
    return results
