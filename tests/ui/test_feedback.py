"""Long runs memoised for every session (ui.feedback.with_progress): sessions that ask for
a result another session is computing wait for it instead of computing it again (issue 11,
many users at once)."""

from __future__ import annotations

import threading
import time

from ui.feedback import ResultStore, with_progress


def test_concurrent_sessions_compute_a_missing_result_once():
    store = ResultStore(4)
    calls = []

    def compute(progress):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every session to ask while it runs
        progress(1, 1)
        return {"answer": 42}

    results = []
    sessions = [
        threading.Thread(target=lambda: results.append(with_progress(store, "k", "Run", compute)))
        for _ in range(5)
    ]
    for s in sessions:
        s.start()
    for s in sessions:
        s.join()
    assert len(calls) == 1
    assert results == [{"answer": 42}] * 5
    assert all(r is results[0] for r in results)  # the one stored object, shared
    # a later session finds it stored, and another key is computed on its own
    assert with_progress(store, "k", "Run", compute) is results[0]
    assert with_progress(store, "other", "Run", compute) == {"answer": 42}
    assert len(calls) == 2
