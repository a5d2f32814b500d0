"""Dashboard speed on the 504-ticker local set, measured with Streamlit's AppTest.

For every page: the first render in a new session when this process has not computed
anything for it yet (st.cache_data empty; the panel itself is already in the disk cache
and, after the first page, in st.cache_resource), the first render in another new
session once the caches are warm, and a slider (or select) change to the updated chart.
Then the process's peak memory.

    .venv/bin/python bench/bench_pages.py            # all pages
    .venv/bin/python bench/bench_pages.py risk regimes

Targets (issue 6): first render <= 3 s warm, slider change <= 1 s, memory < 1.5 GB.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLTRAINER_OFFLINE", "1")

import logging  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)

from streamlit.testing.v1 import AppTest  # noqa: E402

ENTRY = str(ROOT / "tests" / "ui" / "app_entry.py")

# page -> a change a user makes there, applied to an AppTest
CHANGES = {
    "home": ("regime model select",
             lambda at: at.selectbox(key="home_regime").select(
                 "regime/MarketConditionRegimeModel")),
    "universe": ("return window", lambda at: at.select_slider(key="uni_window").set_value(
        "1 year")),
    "regimes": ("volatility window", lambda at: at.slider(
        key="rg:regime/VolatilityRegimeModel:window").set_value(40)),
    "risk": ("VaR level", lambda at: at.select_slider(key="risk_level").set_value(0.95)),
    "model_lab": ("long window", lambda at: at.slider(
        key="lab:momentum/TimeSeriesMomentumModel:long_window").set_value(90)),
    "monitor": ("drawdown limit", lambda at: at.slider(key="mon:max_drawdown").set_value(0.2)),
}


def open_session(page: str) -> tuple[AppTest, float]:
    at = AppTest.from_file(ENTRY, default_timeout=600)
    at.run()
    started = time.perf_counter()
    at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{page}: {at.exception[0].message}")
    return at, elapsed


def main(pages: list[str]) -> None:
    from mltrainer.data.sources import load_market_data

    started = time.perf_counter()
    data = load_market_data("local")
    print(f"panel: {data.n_tickers} tickers x {len(data.dates)} dates, loaded in "
          f"{time.perf_counter() - started:.2f} s (disk cache)")
    del data
    at = AppTest.from_file(ENTRY, default_timeout=600)
    started = time.perf_counter()
    at.run()
    print(f"app start (home, panel into st.cache_resource): "
          f"{time.perf_counter() - started:.2f} s\n")
    print(f"{'page':<11} {'first (cold caches)':>20} {'first (warm)':>13} "
          f"{'change -> chart':>16}  change")
    for page in pages:
        _, cold = open_session(page)
        at, warm = open_session(page)
        label, change = CHANGES[page]
        change(at)
        started = time.perf_counter()
        at.run()
        slider = time.perf_counter() - started
        if at.exception:
            raise SystemExit(f"{page} after the change: {at.exception[0].message}")
        print(f"{page:<11} {cold:>18.2f} s {warm:>11.2f} s {slider:>14.2f} s  {label}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS of this process): {peak:,.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:] or list(CHANGES))
