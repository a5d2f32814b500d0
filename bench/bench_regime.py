"""Time the regime family on the S&P 500 index, 1999-2021.

Budget (issue brief): every regime model with its default parameters on the S&P 500
index (skfolio's bundled series restricted to 1999-2021, ~5,800 days), Markov switching
included, within 10 s in total.

Run: ``.venv/bin/python bench/bench_regime.py [--repeat 1]``. Prints wall-clock and CPU
seconds per model (best of ``--repeat`` runs) and the total; CPU time is the steadier
figure on a shared machine. No ``../shared`` needed: the index ships with skfolio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from skfolio.datasets import load_sp500_index  # noqa: E402

from mltrainer.data.market_data import MarketData  # noqa: E402
from mltrainer.models.regime import MODELS  # noqa: E402

BUDGET_S = 10.0


def timed(cls, data: MarketData, repeat: int) -> tuple[float, float]:
    """Best wall-clock and CPU seconds of ``cls().run(data)`` over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        cls().run(data)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per model (best kept)")
    args = parser.parse_args()

    # the fitting libraries load lazily (with the first model that needs them); load
    # them here so each figure is the model's own work, as at commits that imported
    # them with the module
    import sklearn.cluster  # noqa: F401
    import sklearn.mixture  # noqa: F401
    import statsmodels.tsa.regime_switching.markov_regression  # noqa: F401

    data = MarketData.from_close(load_sp500_index().loc["1999":"2021"], source="bundled")
    print(
        f"S&P 500 index, {len(data.dates)} days "
        f"{data.dates[0].date()}..{data.dates[-1].date()}, default parameters"
    )
    total_wall = total_cpu = 0.0
    for cls in MODELS:
        wall, cpu = timed(cls, data, args.repeat)
        total_wall += wall
        total_cpu += cpu
        print(f"  {cls.__name__:30s} {wall:6.2f} s   (cpu {cpu:5.2f} s)")
    verdict = "within" if total_wall <= BUDGET_S else "OVER"
    print(
        f"  {'total':30s} {total_wall:6.2f} s   (cpu {total_cpu:5.2f} s)  "
        f"{verdict} the {BUDGET_S:.0f} s budget"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
