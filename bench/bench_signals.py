"""Issue 3's speed budget: every signal-family model (momentum, technical, volume,
volatility) except GARCH and VolatilityForecasting, run once with default parameters
on all 504 tickers x 21 years. Target: at most 5 s in total.

Prints wall and CPU seconds per model (CPU is what a loaded machine cannot inflate).

    .venv/bin/python bench/bench_signals.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mltrainer.data.sources import load_market_data  # noqa: E402
from mltrainer.models.registry import MODELS  # noqa: E402

FAMILIES = ("momentum", "technical", "volume", "volatility")
EXCLUDED = ("volatility/GARCHVolatilityModel", "volatility/VolatilityForecastingModel")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2, help="runs per model; best is kept")
    args = parser.parse_args()
    data = load_market_data("local")
    keys = [k for k in MODELS if k.split("/")[0] in FAMILIES and k not in EXCLUDED]
    print(f"{data.n_tickers} tickers x {len(data.dates)} dates, {len(keys)} models")
    total_wall = total_cpu = 0.0
    for key in keys:
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            MODELS[key]().run(data)
            best_wall = min(best_wall, time.perf_counter() - w0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        total_wall += best_wall
        total_cpu += best_cpu
        print(f"  {key:<55} wall {best_wall:6.3f} s  cpu {best_cpu:6.3f} s")
    print(f"total: wall {total_wall:.2f} s, cpu {total_cpu:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
