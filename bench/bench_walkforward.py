"""Time a walk-forward run of EnsembleMLModel: 50 tickers, 10 years, both cores.

The 50 tickers are the first 50 (alphabetically) of the S&P 500 files with a price on
every date of the last ten years of the data (2011-04-21 to 2021-04-21). The model runs
with its defaults (refit every 63 days on an expanding window from 504 days, 12,000
pooled samples per refit; random forest, gradient boosting, linear SVM and a neural
network weighted by validation AUC), inside a walk-forward of 756-day training and
252-day test folds, with 10 bps costs. Refits run on all cores (``--n-jobs -1``) in an
``execution(n_jobs=..., progress=...)`` block; a tqdm bar counts them.

Run: ``.venv/bin/python bench/bench_walkforward.py [--n-jobs -1]`` (needs ../shared/data).
Prints the wall time (target: at most 120 s on 2 cores), the out-of-sample metrics, the
deflated Sharpe ratio, the model's out-of-sample accuracy/AUC next to the baselines, and
its out-of-sample returns beside the naive baselines (equal weight, S&P 500, defaults) with
the time those took (the grid is the defaults, so their track is reused).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from joblib import cpu_count  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mltrainer import config  # noqa: E402
from mltrainer.backtest.baselines import baseline_report  # noqa: E402
from mltrainer.backtest.walkforward import walk_forward  # noqa: E402
from mltrainer.data.bundled import sp500_index_close  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.models.ml import EnsembleMLModel  # noqa: E402
from mltrainer.numerics.parallel import execution  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--tickers", type=int, default=50)
    args = parser.parse_args()
    folder = config.sp500_daily_dir()
    if folder is None:
        print("../shared/data/sp500_daily is missing", file=sys.stderr)
        return 1
    panel = load_local(folder).select(start="2011-04-21", end="2021-04-21")
    complete = panel.adj_close.notna().all()
    tickers = sorted(complete[complete].index)[: args.tickers]
    data = panel.select(tickers=tickers)
    print(
        f"{data.n_tickers} tickers x {len(data.dates)} dates ({data.dates[0].date()} to "
        f"{data.dates[-1].date()}); {os.cpu_count()} cores, n_jobs={args.n_jobs}"
    )
    bar = tqdm(total=None, desc="refits", unit="refit", file=sys.stderr)

    def on_refit(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    t0 = time.perf_counter()
    jobs = cpu_count() if args.n_jobs == -1 else args.n_jobs
    with execution(n_jobs=jobs, progress=on_refit):
        res = walk_forward(
            EnsembleMLModel,
            data,
            None,
            train_size=756,
            test_size=252,
            label_horizon=5,
            backtest_kwargs={"commission_bps": 10.0},
            n_jobs=args.n_jobs,
        )
    elapsed = time.perf_counter() - t0
    bar.close()
    print(
        f"walk-forward of EnsembleMLModel: {elapsed:.1f} s (target <= 120 s), "
        f"{len(res.folds)} folds"
    )
    m = res.oos_metrics
    print(
        f"  out of sample: Sharpe {m['sharpe']:.3f}, CAGR {m['cagr']:.3%}, max drawdown "
        f"{m['max_drawdown']:.1%}, annual turnover {m['annual_turnover']:.1f}"
    )
    dsr = res.deflated_sharpe["oos"]
    print(
        f"  deflated Sharpe (N={dsr['n_trials']}): {dsr['dsr']:.3f} "
        f"(per-day Sharpe {dsr['sharpe_per_period']:.4f}, T={dsr['n_obs']})"
    )
    print("  the model's out-of-sample direction scores (every prediction is out of sample):")
    print(res.model_tables[0]["oos_scores"].round(4).to_string())
    base = res.baselines
    span = base.span
    t0 = time.perf_counter()
    baseline_report(
        res.oos,
        data,
        res.oos.returns.index,
        n_folds=len(res.folds),
        default=res.oos,
        default_note="",
        index_close=sp500_index_close(),
        backtest_kwargs={"commission_bps": 10.0},
    )
    print(
        f"  beside the baselines, {span['label']} {span['first_date']} to "
        f"{span['last_date']} ({span['n_dates']} dates; computed in "
        f"{time.perf_counter() - t0:.3f} s of the walk-forward's time):"
    )
    print(
        base.table()[
            ["cagr", "sharpe", "max_drawdown", "annual_turnover", "excess_cagr", "excess_sharpe"]
        ]
        .round(4)
        .to_string()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
