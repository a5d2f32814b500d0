"""Time point-in-time membership on the whole S&P 500 panel.

Prints, on the 504 real tickers x ~5,400 dates of ../shared/data:
- the cold build of the combined membership (files + saved page + snapshots);
- the membership mask for every ticker, cold (symbol walks) and warm (target <= 50 ms);
- ``run_backtest`` of the same real signal with and without the mask, best of N
  (target: the point-in-time run at most 10% slower), and the ratio;
- the survivorship comparison of that run (CAGR and Sharpe, point in time vs survivors).

Run: ``.venv/bin/python bench/bench_membership.py [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.backtest.engine import run_backtest  # noqa: E402
from mltrainer.backtest.pit import key_dates, membership_mask  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.data.membership import load_membership  # noqa: E402
from mltrainer.models.momentum import CrossSectionalMomentumModel  # noqa: E402

COSTS = {"commission_bps": 10.0, "slippage_bps": 2.0, "spread_bps": 3.0}


def best(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    folder = config.sp500_daily_dir()
    if folder is None:
        print("needs ../shared/data (or MLTRAINER_DATA_DIR)", file=sys.stderr)
        return 1
    data = load_local(folder)
    t = time.perf_counter()
    membership = load_membership(use_cache=False)
    print(
        f"membership build (cold): {time.perf_counter() - t:.2f} s; "
        f"{len(membership.intervals)} intervals, sources: "
        + "; ".join(f"{c.source} {c.start.date()}..{c.end.date()}" for c in membership.coverage)
    )
    dates, keys, anchors = data.adj_close.index, data.adj_close.columns, key_dates(data)
    t = time.perf_counter()
    mask = membership.mask(dates, keys, anchors)
    print(
        f"mask {mask.shape[1]} tickers x {mask.shape[0]} dates, cold: "
        f"{(time.perf_counter() - t) * 1e3:.1f} ms"
    )
    lo, med = best(lambda: membership.mask(dates, keys, anchors), args.repeat)
    print(f"mask warm: best {lo * 1e3:.1f} ms, median {med * 1e3:.1f} ms (target <= 50 ms)")

    signal = CrossSectionalMomentumModel().run(data).primary
    members = membership_mask(data, membership)
    run_backtest(signal, data, **COSTS)  # warm-up
    # interleaved, so a busy machine slows both alike
    times: dict = {"plain": [], "pit": []}
    for _ in range(args.repeat):
        for name, mask in (("plain", None), ("pit", members)):
            t = time.perf_counter()
            run_backtest(signal, data, members=mask, **COSTS)
            times[name].append(time.perf_counter() - t)
    plain, plain_med = min(times["plain"]), statistics.median(times["plain"])
    pit, pit_med = min(times["pit"]), statistics.median(times["pit"])
    print(f"run_backtest without membership: best {plain:.3f} s, median {plain_med:.3f} s")
    print(
        f"run_backtest point in time:      best {pit:.3f} s, median {pit_med:.3f} s "
        f"(ratio {pit / plain:.2f}; target <= 1.10)"
    )
    a = run_backtest(signal, data, members=members, **COSTS).metrics
    b = run_backtest(signal, data, **COSTS).metrics
    print(
        f"survivorship effect, CrossSectionalMomentum defaults, {dates[0].date()} to "
        f"{dates[-1].date()}, 15 bps costs: CAGR {a['cagr']:.2%} point in time vs "
        f"{b['cagr']:.2%} survivors ({b['cagr'] - a['cagr']:+.2%}); Sharpe {a['sharpe']:.2f} vs "
        f"{b['sharpe']:.2f} ({b['sharpe'] - a['sharpe']:+.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
