"""Benchmark of the risk measures (prints figures; not a test).

Targets from the risk brief:

- rolling one-day 99 % VaR (and ES) by every method for a 50-stock equal-weight
  portfolio over 20 years: at most 3 s in total;
- risk parity weights for 100 assets: at most 1 s.

Run: ``.venv/bin/python bench/bench_risk.py`` (needs ../shared/data).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mltrainer import config  # noqa: E402
from mltrainer.data.local import load_local  # noqa: E402
from mltrainer.measures import allocation as A  # noqa: E402
from mltrainer.measures import covariance as C  # noqa: E402
from mltrainer.measures import portfolio as pf  # noqa: E402
from mltrainer.measures import var as vr  # noqa: E402


def _timed(fn, repeat: int = 3):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    folder = config.sp500_daily_dir()
    if folder is None:
        raise SystemExit("../shared/data/sp500_daily is absent; nothing to benchmark")
    panel = load_local(folder)
    rets = panel.returns()
    full = rets.columns[rets.loc["2000-01-03":].notna().all()]
    stocks50 = list(full[:50])
    port = pf.portfolio_returns(rets[stocks50]).iloc[1:]
    years = (port.index[-1] - port.index[0]).days / 365.25
    print(
        f"portfolio: {len(stocks50)} stocks equal weight, {len(port)} days "
        f"({port.index[0].date()} to {port.index[-1].date()}, {years:.1f} years)"
    )
    print("rolling 1-day 99% VaR+ES, window 250 (best of 3; GARCH refit every 252 days):")
    total = 0.0
    for method in vr.METHODS:
        secs, out = _timed(lambda m=method: vr.rolling_var_es(port, 250, 0.99, m))
        total += secs
        v = out["var"].dropna()
        print(f"  {method:15s} {secs * 1000:8.1f} ms   mean VaR {v.mean():.4f}  n={len(v)}")
    print(f"  {'TOTAL':15s} {total * 1000:8.1f} ms   (target <= 3000 ms)")

    secs, _ = _timed(lambda: vr.rolling_var_es(port, 250, [0.95, 0.975, 0.99], "historical"))
    print(f"  historical, 3 levels at once: {secs * 1000:.1f} ms")

    stocks100 = list(full[:100])
    window = rets.loc["2015":"2019", stocks100]
    cov = C.covariance(window, "sample")
    secs, w = _timed(lambda: A.risk_parity_weights(cov), repeat=5)
    rc = pf.risk_contributions(w, cov, relative=True)
    print(
        f"risk parity, 100 assets: {secs * 1000:.2f} ms (target <= 1000 ms); "
        f"max |RC - 1/100| = {np.abs(rc - 0.01).max():.2e}"
    )
    secs, _ = _timed(lambda: A.risk_parity_weights(C.covariance(window, "ledoit_wolf")))
    print(f"risk parity, 100 assets incl. Ledoit-Wolf covariance: {secs * 1000:.2f} ms")
    secs, _ = _timed(
        lambda: A.walk_forward_optimised(rets.loc["2001":, stocks100], "risk_parity", 252, 21),
        repeat=1,
    )
    print(f"walk-forward risk parity, 100 assets, monthly over 20 years: {secs:.2f} s")


if __name__ == "__main__":
    main()
