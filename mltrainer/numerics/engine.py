"""The task engine: the same independent tasks in this process, in local workers, or on
a Dask cluster.

A sweep is a list of independent tasks over one large shared input (a walk-forward
grid: one task per parameter setting over the whole price panel; the leaderboard: one
task per (model, setting)). :func:`imap_tasks` runs ``fn(shared, *task)`` for each and
yields ``(i, result)`` as the results arrive, wherever the work runs:

- **Local** (the default, no configuration): in this process for one task or
  ``n_jobs=1``, else in joblib's local worker processes, as before this engine existed.
  No Dask cluster is ever started for local work: starting one costs seconds and a
  joblib pool already spreads the tasks over the cores.
- **Dask** when a scheduler is named: ``execution(scheduler="tcp://host:8786")`` (the
  CLI's ``--scheduler``), else the environment variable :data:`SCHEDULER_ENV`. The
  shared input is scattered once (``broadcast=False``: a worker fetches it from a peer
  the first time it needs it, so no worker holds it twice) and every task is its own
  Dask future, so a worker that dies costs only the tasks it was running (the scheduler
  reruns them elsewhere). If the scattered input itself was lost with its last holder,
  the unfinished tasks are resubmitted once more against a fresh scatter. Each task
  first checks that its worker runs this process's code
  (:func:`~mltrainer.code_digest.source_digest`): a worker of another image or checkout
  raises :class:`ClusterError` instead of returning numbers of other code, which a
  leaderboard would store as this code's.

Every task runs with one BLAS thread (:func:`~mltrainer.numerics.threads.single_thread`),
so a result is bitwise the same in this process, in a joblib worker and on a Dask
worker. A scheduler that cannot be reached within :data:`CONNECT_TIMEOUT` seconds, or that
has no worker to send the shared input to, raises :class:`ClusterError` naming the
address and where it came from, never a hang. SIGTERM during a sweep in the main thread
(left at its default action) exits with status 143 after the sweep's clean-up (local
workers stopped, the shared input's temporary file removed, Dask tasks cancelled), as
Ctrl-C does, instead of killing the process with its workers left running.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mltrainer.code_digest import source_digest
from mltrainer.errors import MLTrainerError
from mltrainer.numerics import parallel
from mltrainer.numerics.parallel import current_execution
from mltrainer.numerics.threads import single_thread

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

SCHEDULER_ENV = "MLTRAINER_DASK_SCHEDULER"
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up
RESUBMITS = 2  # fresh scatters after the shared input was lost with a worker

_CLIENTS: dict[str, Client] = {}


class ClusterError(MLTrainerError):
    """The Dask scheduler cannot be reached, or the cluster lost work it cannot redo."""


def scheduler_address(explicit: str | None = None) -> tuple[str | None, str]:
    """The scheduler to send tasks to, and where that address came from.

    ``explicit`` (a ``--scheduler`` option), else the execution setting (see
    :func:`mltrainer.numerics.parallel.execution`), else :data:`SCHEDULER_ENV`; None
    (run locally) when none is set or inside a Dask worker (a task that fans out
    again runs its sub-tasks where it is, instead of queueing behind itself).
    """
    if _in_dask_worker():
        return None, "inside a Dask worker"
    if explicit:
        return explicit, "--scheduler"
    setting = current_execution().scheduler
    if setting:
        return setting, "--scheduler"
    env = os.environ.get(SCHEDULER_ENV, "").strip()
    return (env, SCHEDULER_ENV) if env else (None, "local")


def _in_dask_worker() -> bool:
    if "distributed" not in sys.modules:  # a Dask worker has it; a local run need not pay
        return False  # the ~1 s import just to learn that
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def dask_client(address: str, origin: str = SCHEDULER_ENV) -> Client:
    """A connected ``distributed.Client`` for ``address`` (one per address and process).

    Raises :class:`ClusterError` ("cannot reach Dask scheduler at ... (origin)") when
    the scheduler does not answer within :data:`CONNECT_TIMEOUT` seconds or the
    address is not one Dask understands.
    """
    client = _CLIENTS.get(address)
    if client is not None and client.status == "running":
        return client
    from distributed import Client

    try:
        _probe(address)
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError, MemoryError) as exc:
        shown = address if len(address) <= 100 else f"{address[:100]}... ({len(address)} chars)"
        reason = str(exc) if len(address) <= 100 else str(exc).replace(address, "the address")
        reason = reason[:300]  # no echo of a huge value
        if not reason:  # a timeout's text is empty: a port that accepts but never answers
            reason = (
                f"no answer within {CONNECT_TIMEOUT:g} s"
                if isinstance(exc, TimeoutError)
                else type(exc).__name__
            )
        undo = f"unset {SCHEDULER_ENV}" if origin == SCHEDULER_ENV else f"leave out {origin}"
        raise ClusterError(
            f"cannot reach Dask scheduler at {shown} ({origin}): {reason}; start one with "
            f"`dask scheduler` or {undo} to run locally"
        ) from None
    _CLIENTS[address] = client
    return client


def _probe(address: str) -> None:
    """Ask the server at ``address`` who it is (a Dask RPC ``identity``), within the timeout.

    A ``Client`` that fails to connect retries a refused port until its timeout and then,
    garbage-collected half-built, spends another 20 s closing itself; a server that is
    not a Dask scheduler can make it allocate absurd buffers. One RPC answers both at once.
    """
    import asyncio
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.core import rpc

    scheme, location = parse_address(address)
    if scheme == "tcp":  # a refused port fails here at once; distributed would retry it
        host, port = parse_host_port(location)
        if not 0 < port < 65536:  # the socket would take it modulo 65536: another port
            raise ValueError(f"port {port} is not a TCP port (1 to 65535)")
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()

    async def identity() -> dict:
        async with rpc(address, timeout=CONNECT_TIMEOUT) as scheduler:
            return await asyncio.wait_for(scheduler.identity(), CONNECT_TIMEOUT)

    # Its own thread and loop: the caller's thread may already run an event loop (a
    # notebook, or Playwright's sync API), where asyncio.run() refuses to start.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dask-probe") as pool:
        try:
            who = pool.submit(asyncio.run, identity()).result()
        except MemoryError:  # a length prefix read from a server that speaks another protocol
            raise ValueError("the server there does not speak Dask's protocol") from None
    if not isinstance(who, dict) or who.get("type") != "Scheduler":
        raise ValueError(f"the server there is not a Dask scheduler ({who!r:.80})")


def connect(scheduler: str | None = None) -> Client | None:
    """The client of the scheduler in force (:func:`scheduler_address`), connected now;
    None to run locally. A command calls it before loading data, so a wrong address
    fails in seconds rather than after the load."""
    address, origin = scheduler_address(scheduler)
    return None if address is None else dask_client(address, origin)


def close_clients() -> None:
    """Close every client this process opened (tests, and a clean CLI exit)."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        client.close()


def _call(fn: Callable, shared: Any, task: tuple) -> Any:
    """``fn(shared, *task)`` with one BLAS thread (the same result wherever it runs)."""
    with single_thread():
        return fn(shared, *task) if shared is not None else fn(*task)


def _same_code_call(code: str, fn: Callable, shared: Any, task: tuple) -> Any:
    """:func:`_call` on a Dask worker, once the worker is known to run the code ``code``
    (the client's :func:`~mltrainer.code_digest.source_digest`)."""
    here = source_digest()
    if here != code:
        from distributed import get_worker

        worker = get_worker()
        raise ClusterError(
            f"Dask worker {worker.name} ({worker.address}) runs other mltrainer code than "
            f"the process that sent it tasks (code {here} there, {code} here): its numbers "
            "would pass for this code's; run the workers from the same image or checkout "
            "as the app, then run again (finished tasks are kept)"
        )
    return _call(fn, shared, task)


@contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """While a sweep runs: SIGTERM raises SystemExit(143) in the main thread, so the
    sweep's clean-up runs (nothing changes where SIGTERM has a handler already, or off
    the main thread: a Streamlit session, a Dask worker)."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def imap_tasks(
    fn: Callable,
    tasks: Sequence[tuple],
    shared: Any = None,
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    name: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(i, fn(shared, *tasks[i]))`` for every task, in the order they finish.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name).
    tasks : sequence of tuples
        The per-task arguments after ``shared``.
    shared : object, optional
        The large input every task reads (sent to each worker once); None: ``fn(*task)``.
    n_jobs : int, optional
        Local joblib workers (-1: every core); default the execution setting, else
        :data:`~mltrainer.numerics.parallel.N_JOBS`. Ignored on a cluster.
    scheduler : str, optional
        A Dask scheduler address; default :func:`scheduler_address`.
    name : str, optional
        The prefix of the Dask task keys (default ``fn``'s name), as the dashboard and
        the scheduler's task log show them.
    """
    client = connect(scheduler)
    if client is not None:
        with _exit_on_sigterm():
            yield from _dask_imap(client, fn, tasks, shared, name or fn.__name__)
        return
    from mltrainer.numerics.parallel import N_JOBS

    jobs = n_jobs if n_jobs is not None else current_execution().n_jobs or N_JOBS
    if jobs == 1 or len(tasks) < 2:
        for i, task in enumerate(tasks):
            yield i, _call(fn, shared, task)
        return
    with _exit_on_sigterm():
        yield from _joblib_imap(fn, tasks, shared, jobs)


def map_tickers(fn: Callable, tasks: Sequence[tuple], unit: str = "tickers") -> list:
    """``[fn(*task) for task in tasks]``: on the Dask cluster when one is in force
    (:func:`scheduler_address`; never from inside a Dask task), else on local workers
    (:func:`mltrainer.numerics.parallel.map_tickers`). The same results either way.

    The universe-wide per-ticker fits (GARCH, regime switching, the ML refits) run here.
    ``fn`` is sent to the cluster once (scattered: a partial may hold the whole feature
    panel), each task carries only its own arguments; ``progress(done, total)`` of the
    execution settings is called as tasks finish (``unit``: what a task is).
    """
    client = connect()
    if client is None:
        return parallel.map_tickers(fn, tasks, unit)
    progress = current_execution().progress
    out: list = [None] * len(tasks)
    parallel.report(progress, 0, len(tasks), unit)
    name = f"tickers-{getattr(fn, '__name__', None) or getattr(fn, 'func', fn).__name__}"
    for done, (i, result) in enumerate(_dask_imap(client, _apply, tasks, fn, name), start=1):
        out[i] = result
        parallel.report(progress, done, len(tasks), unit)
    return out


def _apply(fn: Callable, *task: Any) -> Any:
    return fn(*task)


_SHARED: dict[str, Any] = {}  # in a local worker: the shared input it has loaded, by file


def _shared_from(path: str) -> Any:
    """The shared input dumped at ``path``, read once per worker process."""
    if path not in _SHARED:
        from joblib import load

        _SHARED.clear()  # one sweep at a time: drop the previous sweep's panel
        _SHARED[path] = load(path)
    return _SHARED[path]


def _indexed_from(fn: Callable, path: str | None, i: int, task: tuple) -> tuple[int, Any]:
    return i, _call(fn, None if path is None else _shared_from(path), task)


def _joblib_imap(
    fn: Callable, tasks: Sequence[tuple], shared: Any, jobs: int
) -> Iterator[tuple[int, Any]]:
    """Local worker processes (joblib), the shared input sent to each one once.

    Passed with every task, a panel was pickled (and its arrays hashed by joblib's
    memmapping) once per task in this process: a second worker then made a sweep of the
    whole S&P 500 slower, not faster. It is dumped to a file once instead, and each
    worker loads it the first time it needs it (the Dask path scatters it likewise).
    """
    import tempfile

    from joblib import Parallel, delayed, dump

    with tempfile.TemporaryDirectory(prefix="mltrainer-shared-") as folder:
        path = None
        if shared is not None:
            path = os.path.join(folder, "shared.joblib")
            dump(shared, path)
        parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
        yield from parallel(
            delayed(_indexed_from)(fn, path, i, task) for i, task in enumerate(tasks)
        )


def map_tasks(fn: Callable, tasks: Sequence[tuple], shared: Any = None, **kwargs: Any) -> list:
    """The results of :func:`imap_tasks` in task order."""
    out: list = [None] * len(tasks)
    for i, result in imap_tasks(fn, tasks, shared, **kwargs):
        out[i] = result
    return out


def _scatter(client: Client, shared: Any) -> Any:
    """``shared`` sent to one worker; ClusterError when the scheduler has none to take it."""
    try:
        return client.scatter(shared, broadcast=False, hash=False)
    except TimeoutError:  # distributed's "No valid workers found", after the client timeout
        address = client.scheduler.address
        raise ClusterError(
            f"the Dask scheduler at {address} has no running worker (none came within "
            f"{CONNECT_TIMEOUT:g} s): start one with `dask worker {address}`, then run "
            "again (finished tasks are kept)"
        ) from None


def _unreadable_graph(client: Client, exc: RuntimeError) -> ClusterError | None:
    """A ClusterError saying so if ``exc`` is the scheduler failing to unpickle the tasks
    (it imports their functions: mltrainer missing or older there), else None."""
    if "deserialization of the task graph" not in str(exc):
        return None
    cause = exc.__cause__ or exc.__context__
    why = f"{type(cause).__name__}: {cause}"[:200] if cause is not None else str(exc)[:200]
    return ClusterError(
        f"the Dask scheduler at {client.scheduler.address} cannot read this process's tasks "
        f"({why}): it imports mltrainer to read them, so run it from the same image or "
        "checkout as the app, then run again (finished tasks are kept)"
    )


def _dask_imap(
    client: Client, fn: Callable, tasks: Sequence[tuple], shared: Any, name: str
) -> Iterator[tuple[int, Any]]:
    """One future per task over one scatter of ``shared``; lost input: scatter again."""
    from concurrent.futures import CancelledError

    from distributed import as_completed

    pending = dict(enumerate(tasks))
    run = uuid.uuid4().hex[:8]
    code = source_digest()
    for _attempt in range(RESUBMITS + 1):
        handle = _scatter(client, shared) if shared is not None else None
        futures = {
            client.submit(
                _same_code_call,
                code,
                fn,
                handle,
                task,
                key=f"{name}-{run}-{i}-{_attempt}",
                pure=False,
            ): i
            for i, task in pending.items()
        }
        try:
            for future in as_completed(futures, loop=client.loop):
                i = futures.pop(future)
                try:
                    result = future.result()
                except CancelledError:  # its input died with a worker: the next round
                    continue
                except RuntimeError as exc:
                    unreadable = _unreadable_graph(client, exc)
                    if unreadable is None:
                        raise
                    raise unreadable from None
                finally:
                    future.release()  # the worker may drop the result now
                del pending[i]
                yield i, result
        finally:
            client.cancel([*futures, *([handle] if handle is not None else [])])
        if not pending:
            return
    raise ClusterError(
        f"the Dask cluster lost the input of {len(pending)} task(s) {RESUBMITS + 1} times "
        "(workers dying as they start?); see the scheduler's log"
    )
