"""How the pages tell the user something went wrong or is taking a while.

Errors from the package (:class:`mltrainer.errors.MLTrainerError`) carry a message
that says what was wrong and what is allowed: it is shown as is, never a traceback.
Long runs that cannot go through ``st.cache_data`` (they report progress, which a
cached function may not draw) are memoised in :func:`result_store`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from mltrainer.errors import MLTrainerError


@contextmanager
def friendly(what: str, stop: bool = True) -> Iterator[None]:
    """Show a package error as ``what: message`` and stop the page (or carry on)."""
    try:
        yield
    except MLTrainerError as exc:
        st.error(f"{what}: {exc}")
        if stop:
            st.stop()


def attempt(what: str, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after showing the package error as a message."""
    try:
        return fn(*args, **kwargs)
    except MLTrainerError as exc:
        st.error(f"{what}: {exc}")
        return None


class ResultStore:
    """A small thread-safe LRU of results keyed by their inputs (shared by sessions)."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

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

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items


@st.cache_resource
def result_store(name: str, max_entries: int = 8) -> ResultStore:
    """The named store (one per kind of long run), created once per server."""
    return ResultStore(max_entries)


def with_progress(store: ResultStore, key, label: str, fn: Callable):
    """``fn(progress)`` memoised in ``store`` under ``key``; on a miss a progress bar and a
    status box show how far it got (``progress(done, total)``)."""
    hit = store.get(key)
    if hit is not None:
        return hit
    with st.status(label, expanded=False) as status:
        bar = st.progress(0.0)

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"{done} of {total}")

        try:
            result = fn(progress)
        except MLTrainerError:
            status.update(label=f"{label} failed", state="error")
            raise
        status.update(label=f"{label} done", state="complete")
    store.put(key, result)
    return result
