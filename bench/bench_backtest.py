"""Time the backtest engine on the whole S&P 500 panel, and vectorbt on the same input.

The signal is a real one: the cross-sectional rank of the 20-day return, centred (long
the winners, short the losers), normalised to gross exposure 1, traded every day with
10 bps commission, 2 bps slippage and 3 bps half-spread, on all 504 tickers and ~21
years of daily prices (~2.7 million cells). vectorbt gets the same target weights
(``from_orders``, ``size_type="targetpercent"``, one cash-sharing group, sells first,
``fees`` = the total cost): the conventions the engine documents, so the two equity
curves must agree, and the script prints their largest relative difference.

Run: ``.venv/bin/python bench/bench_backtest.py [--repeat 7]`` (needs ../shared/data).
Prints the best-of-N and median seconds of ``run_backtest`` (target: at most 0.2 s),
one timed vectorbt run after a warm-up (numba compilation excluded) next to one timed
engine run, and their ratio. On a shared machine timings swing; the ratio of two
back-to-back runs is the fairer figure.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.backtest.engine import run_backtest, signal_to_weights  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402

COSTS = {"commission_bps": 10.0, "slippage_bps": 2.0, "spread_bps": 3.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-vectorbt", action="store_true")
    args = parser.parse_args()
    folder = config.sp500_daily_dir()
    if folder is None:
        print("../shared/data/sp500_daily is missing", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    data = load_local(folder)
    print(
        f"loaded {data.n_tickers} tickers x {len(data.dates)} dates "
        f"({data.dates[0].date()} to {data.dates[-1].date()}) in "
        f"{time.perf_counter() - t0:.2f} s"
    )
    px = data.adj_close
    signal = (px / px.shift(20) - 1).rank(axis=1, pct=True) - 0.5

    run_backtest(signal, data, **COSTS)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_backtest(signal, data, **COSTS)
        times.append(time.perf_counter() - t0)
    print(
        f"run_backtest, {signal.shape[1]} tickers x {signal.shape[0]} dates, with costs: "
        f"best {min(times):.3f} s, median {np.median(times):.3f} s over {args.repeat} runs "
        f"(target <= 0.2 s)"
    )
    m = result.metrics
    print(
        f"  final equity {result.equity.iloc[-1]:.4f}, Sharpe {m['sharpe']:.3f}, annual "
        f"turnover {m['annual_turnover']:.1f}, costs paid {m['total_costs']:.3f}"
    )
    if args.no_vectorbt:
        return 0

    import vectorbt as vbt

    weights, _ = signal_to_weights(signal.where(px.notna()))
    targets = weights.where(px.notna())
    fee = sum(COSTS.values()) / 1e4
    close = px.ffill()

    def vbt_run(c, s):
        pf = vbt.Portfolio.from_orders(
            c,
            size=s,
            size_type="targetpercent",
            fees=fee,
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            init_cash=1e8,
            freq="1D",
        )
        return pf.value() / 1e8

    vbt_run(close.iloc[:50, :5], targets.iloc[:50, :5])  # numba compilation, not timed
    gc.collect()
    t0 = time.perf_counter()
    ours = run_backtest(signal, data, **COSTS)
    t_ours = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    theirs = vbt_run(close, targets)
    t_vbt = time.perf_counter() - t0
    diff = np.max(np.abs(ours.equity.to_numpy() / theirs.to_numpy() - 1))
    print(
        f"same input, one run each: engine {t_ours:.3f} s, vectorbt {t_vbt:.3f} s; "
        f"vectorbt / engine = {t_vbt / t_ours:.1f}x"
    )
    print(f"  largest relative difference of the equity curves: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
