"""Home on a fresh server, in Chromium: a first visit and a returning reader's browser.

Each round starts a new server as the product does (``python -m ui.serve``: the server,
then its headless warm-up; the clock starts once it is ready) and opens Home in Chromium,
timed from navigation to fully rendered (:mod:`ui.user_sessions`: script run over,
every chart drawn, still so 0.3 s later). Two browsers per round:

- **first visit**: a new browser profile, nothing cached: the browser fetches, parses and
  compiles Streamlit's and Plotly's JavaScript (several MB) before anything is drawn;
- **returning**: a profile that has opened the app before (on an earlier server), as a
  reader's own browser has: the hashed JavaScript bundles come from its disk cache with
  their compiled code (Streamlit serves them as cacheable; only the HTML is re-fetched).

Both browsers open the same fresh server in turn (the first visit first), so the
returning figure is not helped by the first visit's server work more than the warm-up
already does. Target (issue 11): Home <= 3 s on a fresh server.

Run: ``.venv/bin/python bench/bench_home.py [--rounds 3]`` (needs ../shared/data).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ui.user_sessions import CHROMIUM_ARGS, VIEWS, serve, wait_rendered  # noqa: E402

HOME = VIEWS[0]


async def _open_home(pw, profile: Path | None, url: str, key: str) -> float:
    """Seconds from navigation to Home rendered, in a browser with ``profile`` (a
    persistent user-data folder) or, with None, a new empty one."""
    args = dict(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport={"width": 1280, "height": 900},
    )
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as empty:
        context = await pw.chromium.launch_persistent_context(str(profile or empty), **args)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            started = time.perf_counter()
            await page.goto(f"{url}/", wait_until="domcontentloaded", timeout=300_000)
            served, drawn = await wait_rendered(page, HOME, key, 300_000)
            print(f"    served {served - started:.2f} s, drawn {drawn - started:.2f} s")
            return drawn - started
        finally:
            await context.close()


async def _rounds(n: int, folder: Path) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    profile = folder / "returning-profile"
    out: dict[str, list[float]] = {"first visit": [], "returning": []}
    async with async_playwright() as pw:
        with serve(folder, warm=True) as (url, _):  # the returning browser's earlier visit
            await _open_home(pw, profile, url, "prime")
        for i in range(n):
            with serve(folder, warm=True) as (url, _):
                first = await _open_home(pw, None, url, f"first-{i}")
                back = await _open_home(pw, profile, url, f"back-{i}")
            out["first visit"].append(first)
            out["returning"].append(back)
            print(f"  round {i + 1}: first visit {first:.2f} s, returning {back:.2f} s", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 21), metavar="1-20")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-home-") as folder:
        figures = asyncio.run(_rounds(args.rounds, Path(folder)))
    print("\nHome on a fresh server (navigation to fully rendered), target <= 3 s:")
    for name, times in figures.items():
        print(
            f"  {name:<12} median {statistics.median(times):.2f} s, "
            f"min {min(times):.2f} s, max {max(times):.2f} s ({len(times)} rounds)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
