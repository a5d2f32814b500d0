"""Load all 504 tickers of ../shared/data/sp500_daily into MarketData: cold and warm.

Cold reads and parses the CSV.gz files (and writes the panel to the cache); warm reads
the panel back from the disk cache. Each is run in a fresh process so neither benefits
from the other's memory; peak memory is the process's maximum resident set size.
Targets (issue 2): cold <= 5 s, warm <= 0.3 s, peak memory < 1.5 GB.

    .venv/bin/python bench/bench_load.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from mltrainer.data.sources import load_market_data
t0 = time.perf_counter()
data = load_market_data("local")
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "n_tickers": data.n_tickers, "n_dates": len(data.dates),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from mltrainer import config

    if config.sp500_daily_dir() is None:
        sys.exit("needs ../shared/data/sp500_daily (or MLTRAINER_DATA_DIR)")
    for i in range(args.repeat):
        cache = tempfile.mkdtemp(prefix="mltrainer-bench-")
        env = dict(os.environ, MLTRAINER_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        try:
            cold = run_child(env)
            warm = run_child(env)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        print(
            f"run {i + 1}: {cold['n_tickers']} tickers x {cold['n_dates']} dates | "
            f"cold {cold['seconds']:.2f} s (peak {cold['peak_mb']:.0f} MB) | "
            f"warm {warm['seconds']:.3f} s (peak {warm['peak_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
