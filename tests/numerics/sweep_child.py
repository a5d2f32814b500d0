"""A local sweep to interrupt (tests/numerics/test_engine.py): two joblib workers over
two tickers' real prices, each task's worker pid printed as its result arrives.

    python -m tests.numerics.sweep_child SP500_DAILY_DIR
"""

from __future__ import annotations

import os
import sys
import time

from mltrainer.data.local import load_local
from mltrainer.numerics.engine import imap_tasks


def slow_pid(data, seconds: float) -> int:
    """The worker's pid, after ``seconds`` (``data`` is the shared input)."""
    time.sleep(seconds)
    return os.getpid() if data.n_tickers else -1


if __name__ == "__main__":
    data = load_local(sys.argv[1], tickers=["AAPL", "MSFT"])
    for _i, pid in imap_tasks(slow_pid, [(0.5,)] * 60, data, n_jobs=2):
        print(pid, flush=True)
