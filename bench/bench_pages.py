"""Dashboard speed on the 504-ticker local set, measured with Streamlit's AppTest.

For every page: the first render in a new session when this process has not computed
anything for it yet (st.cache_data empty; the panel itself is already in the disk cache
and, after the first page, in st.cache_resource), the first render in another new
session once the caches are warm, and a slider (or select) change to the updated chart.
Then the process's peak memory.

    .venv/bin/python bench/bench_pages.py            # all pages
    .venv/bin/python bench/bench_pages.py risk regimes
    .venv/bin/python bench/bench_pages.py --browser  # streamlit run + Chromium instead

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

from ui.apptest_tools import APP_ENTRY as ENTRY  # noqa: E402

# page -> a change a user makes there, applied to an AppTest
CHANGES = {
    "home": (
        "regime model select",
        lambda at: at.selectbox(key="home_regime").select("regime/MarketConditionRegimeModel"),
    ),
    "universe": (
        "return window",
        lambda at: at.select_slider(key="uni_window").set_value("1 year"),
    ),
    "regimes": (
        "volatility window",
        lambda at: at.slider(key="rg:regime/VolatilityRegimeModel:window").set_value(40),
    ),
    "risk": ("VaR level", lambda at: at.select_slider(key="risk_level").set_value(0.95)),
    "model_lab": (
        "long window",
        lambda at: at.slider(key="lab:momentum/TimeSeriesMomentumModel:long_window").set_value(90),
    ),
    "monitor": ("drawdown limit", lambda at: at.slider(key="mon:max_drawdown").set_value(0.2)),
}
# further changes timed one after another on the same session
MORE_CHANGES = {
    "risk": [
        ("crash size (scenarios only)", lambda at: at.slider(key="risk_crash").set_value(-0.3)),
        ("VaR method fhs_garch", lambda at: at.selectbox(key="risk_method").select("fhs_garch")),
        ("crash size, fhs_garch", lambda at: at.slider(key="risk_crash").set_value(-0.35)),
        ("VaR level, fhs_garch", lambda at: at.select_slider(key="risk_level").set_value(0.99)),
        ("VaR window, fhs_garch", lambda at: at.slider(key="risk_window").set_value(300)),
    ],
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
    print(
        f"panel: {data.n_tickers} tickers x {len(data.dates)} dates, loaded in "
        f"{time.perf_counter() - started:.2f} s (disk cache)"
    )
    del data
    at = AppTest.from_file(ENTRY, default_timeout=600)
    started = time.perf_counter()
    at.run()
    print(
        f"app start (home, panel into st.cache_resource): {time.perf_counter() - started:.2f} s\n"
    )
    print(
        f"{'page':<11} {'first (cold caches)':>20} {'first (warm)':>13} "
        f"{'change -> chart':>16}  change"
    )
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
        for label, change in MORE_CHANGES.get(page, []):
            change(at)
            started = time.perf_counter()
            at.run()
            print(f"{'':<11} {'':>20} {'':>13} {time.perf_counter() - started:>14.2f} s  {label}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS of this process): {peak:,.0f} MB")


def _rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process (Linux /proc), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def browser(pages: list[str]) -> None:
    """The same pages through `streamlit run` and Chromium: time from navigation to the
    last chart drawn, and from a keyboard slider step to the chart redrawn."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from ui.apptest_tools import CHART_SUMS, wait_until_idle
    from ui.user_sessions import CHROMIUM_ARGS, serve

    with tempfile.TemporaryDirectory() as folder, serve(Path(folder)) as (url, proc):
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=list(CHROMIUM_ARGS),
            )
            page = chromium.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url)
            page.wait_for_selector(".js-plotly-plot", timeout=300_000)
            wait_until_idle(page)  # server warm: panel loaded, home computed
            from ui.pages import PAGES

            titles = {p.url_path: p.title for p in PAGES}
            print(
                f"{'page':<11} {'open link (cold caches)':>24} {'open link (warm)':>17} "
                f"{'reload (warm)':>14}"
            )
            for name in pages:
                times = []
                for _ in range(2):  # in-app navigation: click the page in the sidebar
                    page.goto(f"{url}/")
                    page.wait_for_selector(".js-plotly-plot", timeout=300_000)
                    wait_until_idle(page)
                    started = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"]').get_by_text(
                        titles[name], exact=True
                    ).click()
                    page.wait_for_url(f"**/{name}*")
                    page.wait_for_selector(".js-plotly-plot", timeout=300_000)
                    wait_until_idle(page)
                    times.append(time.perf_counter() - started - 0.5)  # idle check's pause
                started = time.perf_counter()
                page.reload()
                page.wait_for_selector(".js-plotly-plot", timeout=300_000)
                wait_until_idle(page)
                times.append(time.perf_counter() - started - 0.5)
                print(f"{name:<11} {times[0]:>22.2f} s {times[1]:>15.2f} s {times[2]:>12.2f} s")
            page.goto(f"{url}/model_lab")
            page.wait_for_selector(".js-plotly-plot", timeout=300_000)
            wait_until_idle(page)
            page.evaluate(f"() => {{ window.__before = ({CHART_SUMS})().toString(); }}")
            thumb = page.get_by_role("slider", name="long window")
            thumb.focus()
            started = time.perf_counter()
            thumb.press("ArrowRight")
            page.wait_for_function(
                f"() => ({CHART_SUMS})().toString() !== window.__before", timeout=60_000
            )
            print(
                f"\nModel Lab slider step -> chart redrawn: {time.perf_counter() - started:.2f} s"
            )
            chromium.close()
        rss, peak = _rss_mb(proc.pid)
        print(f"streamlit server memory: {rss:,.0f} MB now, {peak:,.0f} MB peak")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--browser"]
    if "--browser" in sys.argv:
        browser(args or [p for p in CHANGES if p != "home"])
    else:
        main(args or list(CHANGES))
