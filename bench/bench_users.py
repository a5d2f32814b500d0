"""Many users at once: a fresh server on 127.0.0.1, started as README and the image start
it (`python -m ui.serve`: `streamlit run app.py`, then a headless warm-up of the default
pages; `--no-warm-up` for bare `streamlit run`), and N browser sessions (separate contexts
of one Chromium) that each open Home, Universe, Risk & Stress and the Model Lab, arriving
evenly over a window or all at once, once the server says it is ready.

    .venv/bin/python bench/bench_users.py --sessions 20 --window 60
    .venv/bin/python bench/bench_users.py --sessions 20 --burst

Prints the page views, the errors, the time from navigation to the page rendered (p50,
p95, max; overall and per page, with each page's first view on the fresh server and its
warm views: those that started after the page had rendered once) and to the page served
(its script run over and its elements arrived, before the browser drew the charts), the
server's CPU seconds per page view (all views, and warm views with each sampling
interval's CPU split among the views open in it), the server's peak resident memory and
the browsers' CPU; then one more session alone on the warmed server (each page warm
without the other browsers' load). "Rendered" and "error" are defined in
:mod:`ui.user_sessions`.

The browsers stand in for the users' own computers but share this machine with the
server; ``--nice N`` runs them at a lower priority (which starves them instead when other
jobs keep the machine busy).

The data is the local folder (MLTRAINER_DATA_DIR, default ../shared/data); the disk
cache is the project's (a deployed server keeps its cache between restarts), unless
``--cold-cache`` gives the server an empty one.

Targets (issue 11): 20 sessions over 60 s with 0 errors, p95 <= 5 s, server CPU per warm
page view <= 0.25 s, peak RSS <= 1.5 GB; Home <= 3 s on a fresh server; every page
<= 1.5 s warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ui.user_sessions import (  # noqa: E402
    ServerSampler,
    report,
    run_sessions,
    serve,
    summarize,
)


def warm_pass(url: str, pid: int, args) -> None:
    """One more session on the warmed server with no other session running: each page's
    warm time without the other browsers' load, and the server's CPU per warm view
    without sharing it out among concurrent views."""
    t0 = time.perf_counter()
    with ServerSampler(pid, t0) as sampler:
        views = run_sessions(url, 1, 0.0, args.chromium, args.timeout, t0, args.nice)
    figures = summarize(views, sampler.samples)
    times = ", ".join(f"{v.view} {v.seconds:.2f} s" for v in views)
    print(
        f"warm pass, 1 session alone: {times}; errors {figures['errors']}; server CPU "
        f"{figures['cpu_per_view']:.3f} s per page view, the browser's "
        f"{sampler.client_cpu() / max(len(views), 1):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--window", type=float, default=60.0, help="arrivals over seconds")
    parser.add_argument("--burst", action="store_true", help="every session at once")
    parser.add_argument("--timeout", type=float, default=180.0, help="per page view, seconds")
    parser.add_argument(
        "--no-warm-pass",
        dest="warm_pass",
        action="store_false",
        help="skip the last single session on the warmed server",
    )
    parser.add_argument("--cold-cache", action="store_true", help="an empty disk cache")
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="start bare `streamlit run app.py`, not `python -m ui.serve` (the server and "
        "its headless warm-up of the default pages, as README and the image start it)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the browsers at this lower priority (0: same as the server)",
    )
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    window = 0.0 if args.burst else args.window

    with tempfile.TemporaryDirectory(prefix="bench-users-") as tmp:
        env = {"MLTRAINER_OFFLINE": "1", "MLTRAINER_AUDIT_DIR": str(Path(tmp) / "audit")}
        env.setdefault("MLTRAINER_DATA_DIR", os.environ.get("MLTRAINER_DATA_DIR", ""))
        if not env["MLTRAINER_DATA_DIR"]:
            del env["MLTRAINER_DATA_DIR"]
        if args.cold_cache:
            env["MLTRAINER_CACHE_DIR"] = str(Path(tmp) / "cache")
        started = time.perf_counter()
        with serve(Path(tmp), env, warm=args.warm_up) as (url, proc):
            up = time.perf_counter() - started
            print(
                f"{args.sessions} sessions "
                + ("all at once" if args.burst else f"arriving over {window:g} s")
                + f" on {url} (fresh server, {'empty' if args.cold_cache else 'project'} "
                f"disk cache, "
                + (f"warmed up: ready {up:.1f} s after start" if args.warm_up else "no warm-up")
                + f"); load average before: {os.getloadavg()[0]:.2f}"
            )
            t0 = time.perf_counter()
            with ServerSampler(proc.pid, t0) as sampler:
                views = run_sessions(
                    url, args.sessions, window, args.chromium, args.timeout, t0, args.nice
                )
            elapsed = time.perf_counter() - t0
            figures = summarize(views, sampler.samples)
            print(report(figures))
            print(
                f"browsers (Chromium and the Playwright driver, on this machine too): "
                f"{sampler.client_cpu():.1f} s CPU, "
                f"{sampler.client_cpu() / max(len(views), 1):.2f} s per page view"
            )
            if args.warm_pass:
                warm_pass(url, proc.pid, args)
    print(f"run took {elapsed:.1f} s; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
