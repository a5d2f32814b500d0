"""Time the volatility family on the real S&P 500 panel.

Budgets (issue brief): the four vectorised models (Simple, Realized, Clustering,
RegimeDetection) with default parameters on all 504 tickers x 21 years within about
1.5 s together; GARCH on 50 tickers refitted yearly within 15 s (progress shown with
tqdm). VolatilityForecasting is reported too (not budgeted).

Run: ``.venv/bin/python bench/bench_volatility.py [--repeat 3] [--garch-tickers 50]
[--skip-forecasting]`` (needs ../shared/data). Prints seconds per model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.models import volatility as vol  # noqa: E402
from mltrainer.numerics.parallel import execution  # noqa: E402

FAST = (
    vol.SimpleVolatilityModel,
    vol.RealizedVolatilityModel,
    vol.VolatilityClusteringModel,
    vol.VolatilityRegimeDetectionModel,
)


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def timed_with_bar(model, data, label: str) -> tuple[float, object]:
    """Run a per-ticker model with a tqdm bar fed by its progress callback."""
    with tqdm(total=data.n_tickers, desc=label, unit="ticker", leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        t0 = time.perf_counter()
        with execution(progress=progress):
            out = model.run(data)
        return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--garch-tickers", type=int, default=50)
    parser.add_argument("--skip-forecasting", action="store_true")
    args = parser.parse_args()

    folder = config.sp500_daily_dir()
    if folder is None:
        sys.exit("../shared/data/sp500_daily not found (set MLTRAINER_DATA_DIR)")
    t0 = time.perf_counter()
    panel = load_local(folder)
    print(
        f"loaded {panel.n_tickers} tickers x {len(panel.dates)} dates "
        f"in {time.perf_counter() - t0:.2f} s"
    )

    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(wall times stretch with it; CPU times much less)"
    )
    total_wall = total_cpu = 0.0
    for cls in FAST:
        model = cls()
        model.run(panel)  # warm-up (imports, first-touch allocations)
        wall, cpu = best_of(lambda m=model: m.run(panel), args.repeat)
        total_wall += wall
        total_cpu += cpu
        print(
            f"{cls.__name__:34s} {wall:6.3f} s wall {cpu:6.3f} s CPU  "
            f"(504 tickers, defaults, best of {args.repeat})"
        )
    print(
        f"{'four vectorised models together':34s} {total_wall:6.3f} s wall {total_cpu:6.3f} s CPU"
        "  (budget ~1.5 s)"
    )

    tickers = panel.tickers[: args.garch_tickers]
    sub = panel.select(tickers=tickers)
    sec, out = timed_with_bar(vol.GARCHVolatilityModel(refit="yearly"), sub, "GARCH")
    n_fits = len(out.tables["params"])
    print(
        f"{'GARCHVolatilityModel':34s} {sec:6.3f} s wall  ({len(tickers)} tickers, yearly "
        f"refit, {n_fits} arch fits on 2 workers, budget 15 s; includes worker start-up)"
    )
    sec, _ = timed_with_bar(vol.GARCHVolatilityModel(refit="yearly"), sub, "GARCH again")
    print(f"{'GARCHVolatilityModel (warm workers)':34s} {sec:6.3f} s wall")
    # CPU cost of one fit, measured in-process, for the projection to an idle machine
    few = panel.select(tickers=tickers[:5])
    with execution(n_jobs=1):
        vol.GARCHVolatilityModel().run(panel.select(tickers=tickers[:1]))  # imports
        c0 = time.process_time()
        fits = len(vol.GARCHVolatilityModel(refit="yearly").run(few).tables["params"])
    per_fit = (time.process_time() - c0) / fits
    print(
        f"{'GARCH CPU per arch fit':34s} {1000 * per_fit:6.1f} ms  -> {n_fits} fits on 2 idle "
        f"cores ~ {n_fits * per_fit / 2:.1f} s plus worker start-up"
    )

    if args.skip_forecasting:
        return
    sec, out = timed_with_bar(vol.VolatilityForecastingModel(), panel, "forecast linear")
    err = out.tables["errors"].loc["(all)"]
    print(
        f"{'VolatilityForecasting linear':34s} {sec:6.3f} s  (504 tickers, quarterly, "
        f"in-process; QLIKE {err['qlike']:.3f}, MSE {err['mse']:.1f})"
    )
    small = panel.select(tickers=panel.tickers[:10])
    for method, refit in (("random_forest", "quarterly"), ("arima", "yearly")):
        model = vol.VolatilityForecastingModel(method=method, refit=refit)
        sec, out = timed_with_bar(model, small, f"forecast {method}")
        err = out.tables["errors"].loc["(all)"]
        print(
            f"{'VolatilityForecasting ' + method:34s} {sec:6.3f} s  (10 tickers, {refit}; "
            f"QLIKE {err['qlike']:.3f}, MSE {err['mse']:.1f})"
        )


if __name__ == "__main__":
    main()
