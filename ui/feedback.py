"""How the pages tell the user something went wrong or is taking a while.

Errors from the package (:class:`mltrainer.errors.MLTrainerError`) carry a message
that says what was wrong and what is allowed: it is shown as is, never a traceback.
Long runs that cannot go through ``st.cache_data`` (they report progress, which a
cached function may not draw) are memoised in :func:`result_store`.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import streamlit as st

from mltrainer import fmt
from mltrainer.errors import MLTrainerError
from mltrainer.numerics.parallel import step_unit
from ui import links


def import_models() -> None:
    """Import the model library with a spinner on the server's first run: importing it
    (arch, statsmodels, scikit-learn, numba kernels) takes seconds, and a page that
    imports it at its top would stay blank meanwhile. Later runs find it imported."""
    if "mltrainer.models.registry" not in sys.modules:
        with st.spinner("Loading the model library (first run of the server)…"):
            import mltrainer.models.registry  # noqa: F401


class StepProgress:
    """A progress bar that names the step a page is on (``Drawing the treemap… (2 of 4)``).

    For a page that computes several parts in one run (Home): without this bar, a cold
    load would sit for seconds with nothing saying which part is loading. Create it at
    the top, call :meth:`step` before each part and :meth:`done` at the end (the bar
    goes). Pages with tabs draw only the open tab, whose spinners show.
    """

    def __init__(self, steps: Sequence[str]):
        self.steps = tuple(steps)
        self._bar = st.progress(0.0, text=self._text(0))

    def _text(self, i: int) -> str:
        return f"{self.steps[i]}… ({i + 1} of {len(self.steps)})"

    def step(self, i: int) -> None:
        """Show step ``i`` (from 0) as the one running."""
        self._bar.progress(i / len(self.steps), text=self._text(i))

    def done(self) -> None:
        """Remove the bar."""
        self._bar.empty()


@contextmanager
def friendly(what: str, stop: bool = True) -> Iterator[None]:
    """Show a package error as ``what: message`` and stop the page (or carry on)."""
    try:
        yield
    except MLTrainerError as exc:
        st.error(f"{what}: {exc}")
        if stop:  # the argument: stop the page
            _report_and_stop()


def stop() -> None:
    """End the page's run here (``st.stop``), having named the link's values its widgets
    could not take (after ``st.stop`` nothing more reaches the page)."""
    _report_and_stop()


def _report_and_stop() -> None:
    links.report()
    st.stop()


def attempt(what: str, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after showing the package error as a message."""
    try:
        return fn(*args, **kwargs)
    except MLTrainerError as exc:
        st.error(f"{what}: {exc}")
        return None


class ResultStore:
    """A small thread-safe LRU of results keyed by their inputs (shared by sessions), with
    a lock per key being computed so that concurrent sessions compute it once."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict = {}

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def compute_lock(self, key) -> threading.Lock:
        """The lock a session holds while it computes ``key`` (one per key in flight)."""
        with self._lock:
            return self._computing.setdefault(key, threading.Lock())

    def computed(self, key) -> None:
        """Forget ``key``'s lock once its result is stored (or its run failed): sessions
        that still wait hold the lock itself, later ones find the result."""
        with self._lock:
            self._computing.pop(key, None)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items


@st.cache_resource
def result_store(name: str, max_entries: int = 8) -> ResultStore:
    """The named store (one per kind of long run), created once per server."""
    return ResultStore(max_entries)


def with_progress(store: ResultStore, key, label: str, fn: Callable):
    """``fn(progress)`` memoised in ``store`` under ``key``; on a miss a progress bar and a
    status box show how far it got (``progress(done, total)``). Sessions asking for a
    key another session is computing wait for that result (with a spinner saying so)
    instead of computing it again: a burst of readers on a cold server runs it once."""
    hit = store.get(key)
    if hit is not None:
        return hit
    lock = store.compute_lock(key)
    if not lock.acquire(blocking=False):
        with st.spinner(f"{label}: another session started it; waiting for its result…"):
            lock.acquire()
    try:
        hit = store.get(key)
        if hit is not None:
            return hit
        with st.status(label, expanded=False) as status:
            bar = st.progress(0.0)

            def progress(done: int, total: int) -> None:
                text = f"{done:,} of {fmt.count(total, step_unit().removesuffix('s'))}"
                bar.progress(min(done / max(total, 1), 1.0), text=text)

            try:
                result = fn(progress)
            except MLTrainerError:
                status.update(label=f"{label} failed", state="error")
                raise
            status.update(label=f"{label} done", state="complete")
        store.put(key, result)
        return result
    finally:
        store.computed(key)
        lock.release()
