"""Time every momentum and volume model with defaults on the full local panel.

Run: ``.venv/bin/python bench/bench_momentum_volume.py [--repeat N]`` (needs
../shared/data). The panel is the 504-ticker S&P 500 set, 1999-2021, loaded with
``load_local`` and the GICS sectors of the constituents lists beside it (the
sector-rotation model and the ensemble's sector member need them).

Each model runs ``model.run(data)`` once (or the best of N with ``--repeat``); the
figures are wall-clock seconds and process CPU seconds. On a shared machine the wall
time rises with the load average, printed alongside; CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mltrainer import config
from mltrainer.data.local import load_local
from mltrainer.data.sources import local_sectors
from mltrainer.models import momentum, volume


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per model (best is kept)")
    args = parser.parse_args(argv)
    folder = config.sp500_daily_dir()
    if folder is None:
        print("no ../shared/data/sp500_daily: nothing to time")
        return 1
    t0 = time.perf_counter()
    data = load_local(folder, sectors=local_sectors(folder))
    print(
        f"panel: {data.n_tickers} tickers x {len(data.dates)} dates, "
        f"{len(data.sectors)} with a sector, loaded in {time.perf_counter() - t0:.2f} s"
    )
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    # a yardstick for this machine's current speed: one pandas rolling mean of the panel
    yard = float("inf")
    for _ in range(3):
        c = time.process_time()
        data.adj_close.rolling(20).mean()
        yard = min(yard, time.process_time() - c)
    print(f"yardstick, pandas rolling(20).mean() of adj_close: {yard:.3f} s cpu")
    print(f"{'model':48s} {'wall s':>8s} {'cpu s':>8s}")
    total_wall = total_cpu = 0.0
    for cls in momentum.MODELS + volume.MODELS:
        wall = cpu = float("inf")
        for _ in range(max(1, args.repeat)):
            w, c = time.perf_counter(), time.process_time()
            cls().run(data)
            wall = min(wall, time.perf_counter() - w)
            cpu = min(cpu, time.process_time() - c)
        total_wall += wall
        total_cpu += cpu
        print(f"{cls.key():48s} {wall:8.3f} {cpu:8.3f}")
    print(f"{'total (13 models)':48s} {total_wall:8.3f} {total_cpu:8.3f}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
