"""Time the leaderboard over every signal/weights model outside the ML family.

All 504 S&P 500 files, 2000-01-01 to 2021-12-31, held only while index members
(``--universe sp500``: the point-in-time mask), 5 bps commission, walk-forward with a
756-day expanding first training window and 252-day test folds; each model on its
leaderboard grid (<= 4 settings: :func:`mltrainer.backtest.leaderboard.model_settings`).
Every run starts from an empty results folder (nothing read back).

Run: ``.venv/bin/python bench/bench_leaderboard.py [--workers 1,2] [--exclude KEY,...]``
(needs ../shared/data). Prints, per worker count, the wall time (target: at most 300 s
with 2 workers) and the slowest models, then the 1-vs-2-worker speed-up measured in
this run (target: at least 1.6x). ``--exclude`` leaves models out (say the portfolio
optimisers, whose settings cost minutes each) to measure the rest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.backtest.leaderboard import leaderboard_models, run_leaderboard  # noqa: E402
from mltrainer.backtest.pit import resolve_universe  # noqa: E402
from mltrainer.backtest.walkforward import WalkForwardSettings  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.data.sources import local_sectors  # noqa: E402


def timed_run(data, keys: list[str], settings: WalkForwardSettings, workers: int) -> float:
    """Wall seconds of one leaderboard from scratch with ``workers`` local processes."""
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        board = run_leaderboard(data, keys, settings, root=Path(root), n_jobs=workers)
        wall = time.perf_counter() - t0
    table = board.table[board.table["family"] != "baseline"]
    failed = table[table["error"].notna()]
    span = board.meta["out_of_sample"]
    print(
        f"  {workers} worker(s): {wall:.1f} s for {board.n_tasks} (model, setting) tasks; "
        f"out of sample {span['first_date']} to {span['last_date']}; "
        f"{len(table) - len(failed)} models scored, {len(failed)} failed",
        flush=True,
    )
    for key, row in failed.iterrows():
        print(f"    failed {key}: {row['error'][:100]}")
    top = table.dropna(subset=["oos_sharpe"]).head(3)
    for key, row in top.iterrows():
        print(f"    top: {key} Sharpe {row['oos_sharpe']:.2f}, DSR {row['oos_dsr']:.2f}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to time, in order")
    parser.add_argument("--exclude", default="", help="registry keys to leave out")
    parser.add_argument("--start", default="2000-01-01")
    parser.add_argument("--end", default="2021-12-31")
    args = parser.parse_args()
    folder = config.sp500_daily_dir()
    if folder is None:
        print("../shared/data/sp500_daily is missing", file=sys.stderr)
        return 1
    data = load_local(folder, sectors=local_sectors(folder), start=args.start, end=args.end)
    universe = resolve_universe(data, "sp500", tickers_given=False)
    excluded = {k.strip() for k in args.exclude.split(",") if k.strip()}
    keys = [k for k in leaderboard_models() if not k.startswith("ml/") and k not in excluded]
    settings = WalkForwardSettings(
        train_size=756,
        test_size=252,
        backtest_kwargs={"commission_bps": config.DEFAULT_COST_BPS, "members": universe.mask},
    )
    print(
        f"{len(keys)} models on {data.n_tickers} tickers x {len(data.dates)} dates "
        f"({data.dates[0].date()} to {data.dates[-1].date()}, {universe.label}); "
        f"{os.cpu_count()} cores; excluded: {', '.join(sorted(excluded)) or 'none'}",
        flush=True,
    )
    walls = {int(w): timed_run(data, keys, settings, int(w)) for w in args.workers.split(",")}
    if 1 in walls and 2 in walls:
        print(f"speed-up 2 workers vs 1: {walls[1] / walls[2]:.2f}x (target >= 1.6x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
