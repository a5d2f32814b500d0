"""Time mltrainer's vectorised indicators against TA-Lib looping over the columns.

Both sides do the same job: wide frames (dates x tickers) in, a wide frame out. TA-Lib is
given its best case (each column a contiguous float64 array, leading NaNs handled by the
talib wrapper) and its results are written into a preallocated output array.

Then times each technical-family model (``fit`` + ``predict_output`` with defaults,
including ``MarketData.adjusted()``) on the same panel.

Run: ``.venv/bin/python bench/bench_indicators.py [--repeat 15]`` (needs ../shared/data).
Prints, per indicator, the best-of-N seconds for ours and TA-Lib, and ours / TA-Lib;
then the best-of-N seconds per model and their total. On a shared machine compare the
ratios: both sides are slowed alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import talib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.models import technical  # noqa: E402
from mltrainer.numerics import indicators as ind  # noqa: E402


def best_of(fn, repeat: int) -> float:
    fn()  # warm caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_of_pair(ours, ref, repeat: int) -> tuple[float, float]:
    """Best-of-N of both, run alternately so that a busy spell slows both alike."""
    ours(), ref()
    best = [np.inf, np.inf]
    for _ in range(repeat):
        for i, fn in enumerate((ours, ref)):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[1]


def talib_loop(func, frames, n_out=1, **kwargs):
    arrays = [f.to_numpy() for f in frames]  # float64, column-major: columns contiguous
    n = arrays[0].shape[1]
    outs = [np.empty(arrays[0].shape) for _ in range(n_out)]
    for j in range(n):
        res = func(*[a[:, j] for a in arrays], **kwargs)
        res = res if n_out > 1 else (res,)
        for o, r in zip(outs, res, strict=True):
            o[:, j] = r
    return outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    raw = load_local(config.sp500_daily_dir())
    data = raw.adjusted()
    h, lo, c = data.high, data.low, data.close
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"panel: {c.shape[0]} dates x {c.shape[1]} tickers, best of {args.repeat}; "
        f"load average {load} on {os.cpu_count()} CPUs"
    )
    cases = [
        ("sma(30)", lambda: ind.sma(c, 30), lambda: talib_loop(talib.SMA, [c], timeperiod=30)),
        ("ema(20)", lambda: ind.ema(c, 20), lambda: talib_loop(talib.EMA, [c], timeperiod=20)),
        (
            "wilder(14)",
            lambda: ind.wilder(c, 14),
            lambda: talib_loop(talib.EMA, [c], timeperiod=27),
        ),  # Wilder n == EMA 2n-1
        ("rsi(14)", lambda: ind.rsi(c), lambda: talib_loop(talib.RSI, [c])),
        ("macd(12,26,9)", lambda: ind.macd(c), lambda: talib_loop(talib.MACD, [c], n_out=3)),
        (
            "stochastic(5,3,3)",
            lambda: ind.stochastic(h, lo, c),
            lambda: talib_loop(talib.STOCH, [h, lo, c], n_out=2),
        ),
        (
            "williams_r(14)",
            lambda: ind.williams_r(h, lo, c),
            lambda: talib_loop(talib.WILLR, [h, lo, c]),
        ),
        (
            "true_range",
            lambda: ind.true_range(h, lo, c),
            lambda: talib_loop(talib.TRANGE, [h, lo, c]),
        ),
        ("atr(14)", lambda: ind.atr(h, lo, c), lambda: talib_loop(talib.ATR, [h, lo, c])),
    ]
    print(f"{'indicator':<20}{'ours s':>10}{'talib s':>10}{'ratio':>8}")
    for name, ours, ref in cases:
        t_ours, t_ref = best_of_pair(ours, ref, args.repeat)
        print(f"{name:<20}{t_ours:>10.4f}{t_ref:>10.4f}{t_ours / t_ref:>8.2f}")
    print(f"\n{'technical model (defaults)':<32}{'seconds':>10}")
    total = 0.0
    for cls in technical.MODELS:
        seconds = best_of(lambda cls=cls: cls().run(raw), max(2, args.repeat // 2))
        total += seconds
        print(f"{cls.__name__:<32}{seconds:>10.3f}")
    print(f"{'total':<32}{total:>10.3f}")


if __name__ == "__main__":
    main()
