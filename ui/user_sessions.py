"""Many users at once: browser sessions that each open a list of pages of the served app,
timed from the click to the page fully rendered, with the server's CPU and memory.

Used by ``bench/bench_users.py`` (figures) and ``tests/browser/test_many_users.py`` (a
small run as a hang and error guard). Here, beside :mod:`ui.apptest_tools`, so that
``bench/`` does not import the test suite; nothing in the app imports this module.

A session is one browser context (its own cookies, its own Streamlit session) in one
shared Chromium; sessions run concurrently on one asyncio loop (Playwright's async API),
in a thread of their own so that a caller already running a loop (the browser tests'
sync Playwright) can use it. A session opens the first page by its URL and the others by
clicking them in the sidebar, as a reader does.

A view counts as **rendered** when all of these hold, and still hold 0.3 s later (a run
that triggers another would otherwise end the clock early):

- the URL is the page's and its title (the ``h1`` the page writes) is drawn;
- Streamlit's script run is over (the app root's ``data-test-script-state`` is
  ``notRunning``, what :func:`ui.apptest_tools.wait_until_idle` reads), no element is
  stale from the previous run and no spinner shows;
- the main area has a Plotly chart and every visible one has been drawn (all four pages
  of :data:`VIEWS` draw charts).

The view's **served** time is when the first three held (the server's part: its script
run is over and the page's elements have arrived); the rest, to rendered, is the
browser drawing the charts.

Errors: a view with an exception box, an error alert (``st.error``), a lost connection,
an HTTP response >= 400 or a failed request while it loads, or no render within the
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ui.warmup import healthy

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class View:
    """A page a session opens: its url_path (see :data:`ui.pages.PAGES`), the title its
    script writes first, and a short name for the figures."""

    path: str
    title: str
    name: str


# Home, Universe, Risk & Stress and Model Lab: the pages a reader opens first
VIEWS = (
    View("home", "mltrainer · S&P 500 research", "home"),
    View("universe", "Universe Explorer", "universe"),
    View("risk", "Risk & Stress", "risk"),
    View("model_lab", "Model Lab", "model_lab"),
)

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

# true once the page is rendered; notes in window.__views[key] when (performance.now())
# the server had sent it (script run over) and when the charts were drawn, cleared again
# if a later run makes the page stale
_RENDERED = """([path, title, key]) => {
    const seen = (window.__views = window.__views || {});
    const mark = (seen[key] = seen[key] || {served: null, drawn: null});
    const served = (() => {
        const here = location.pathname.replace(/\\/+$/, '');
        if (!(here.endsWith('/' + path) || (path === 'home' && here === ''))) return false;
        const app = document.querySelector('[data-testid="stApp"]');
        if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
        const main = document.querySelector('[data-testid="stMain"]');
        const h1 = main && main.querySelector('h1');
        if (!h1 || !h1.textContent.includes(title)) return false;
        return !document.querySelector('[data-stale="true"], [data-testid="stSpinner"]');
    })();
    if (!served) { mark.served = mark.drawn = null; return false; }
    if (mark.served === null) mark.served = performance.now();
    const main = document.querySelector('[data-testid="stMain"]');
    const failed = main.querySelector(
        '[data-testid="stException"], [data-testid="stAlertContentError"]');
    const plots = Array.from(main.querySelectorAll('.js-plotly-plot'));
    const drawn = failed  // rendered, with an error the caller counts
        || (plots.length > 0 && plots.every(p => p.offsetParent === null || p._fullData));
    if (!drawn) { mark.drawn = null; return false; }
    if (mark.drawn === null) mark.drawn = performance.now();
    return true;
}"""

_MARKS = """(key) => [window.__views[key].served, window.__views[key].drawn, performance.now()]"""

_PAGE_ERRORS = """() => {
    const out = [];
    const app = document.querySelector('[data-testid="stApp"]');
    const conn = app && app.getAttribute('data-test-connection-state');
    if (conn && conn !== 'CONNECTED') out.push('connection ' + conn);
    for (const el of document.querySelectorAll('[data-testid="stException"]'))
        out.push('exception: ' + el.innerText.split('\\n').slice(0, 2).join(' '));
    for (const el of document.querySelectorAll('[data-testid="stAlertContentError"]'))
        out.push('error alert: ' + el.innerText.slice(0, 160));
    return out;
}"""

SETTLE_S = 0.3  # how long a rendered page must stay rendered


@dataclass
class PageView:
    """One page view of one session; times in seconds from the run's start."""

    session: int
    view: str
    started: float
    ended: float = float("nan")  # when it rendered, or gave up
    served: float = float("nan")  # when its script run was over, before the charts drew
    rendered: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


_ISSUED: set[int] = set()  # ports handed out by this process, never handed out twice


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that this process has not
    handed out before (the OS may offer a port again once its socket is closed)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _ISSUED:
            _ISSUED.add(port)
            return port


@contextlib.contextmanager
def serve(
    folder: Path, env: dict | None = None, timeout_s: float = 90, warm: bool = False
) -> Iterator[tuple]:
    """``streamlit run app.py`` on 127.0.0.1 at a free port (log in ``folder``); yields
    ``(url, process)`` once its health check answers, and stops it afterwards.

    ``warm``: start it as the product does, through :mod:`ui.serve` (the server, then the
    headless warm-up of the default pages), and yield once the warm-up has ended.
    """
    for attempt in range(3):  # another process may take the free port before the server
        try:
            with _serve_once(folder, env, timeout_s, warm) as served:
                yield served
                return
        except _PortTaken:
            if attempt == 2:
                raise RuntimeError("streamlit found its port taken three times") from None


class _PortTaken(RuntimeError):
    """The server exited before it answered: its port was taken meanwhile."""


def _port_taken(log: str) -> bool:
    """Whether a server's log says its port was taken ("Port 8501 is not available")."""
    return "is not available" in log or "already in use" in log


@contextlib.contextmanager
def _serve_once(folder: Path, env: dict | None, timeout_s: float, warm: bool) -> Iterator[tuple]:
    port = free_port()
    log_path = Path(folder) / "streamlit.log"
    ready = Path(folder) / "ready"
    launcher = ["ui.serve"] if warm else ["streamlit", "run", str(ROOT / "app.py")]
    command = [
        sys.executable,
        "-m",
        *launcher,
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    ready.unlink(missing_ok=True)
    env = {**os.environ, **(env or {}), "MLTRAINER_READY_FILE": str(ready)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout_s + (300 if warm else 0)
            while not (ready.exists() if warm else healthy(url)):
                if proc.poll() is not None and _port_taken(log_path.read_text()):
                    raise _PortTaken(url)
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"streamlit did not start on {url}; see {log_path}")
                time.sleep(0.25)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


class ServerSampler:
    """CPU seconds (user + system) and resident memory of a process and its children,
    sampled every ``interval`` seconds in a thread, as ``(time, cpu_s, rss_bytes)``
    with times on :func:`time.perf_counter` minus ``t0``; beside them
    (:meth:`client_cpu`) the CPU seconds of this process's other descendants (the
    Playwright driver and the browsers), to tell the users' side from the server's."""

    def __init__(self, pid: int, t0: float, interval: float = 0.25):
        import psutil

        self.process = psutil.Process(pid)
        self.t0, self.interval = t0, interval
        self.samples: list[tuple[float, float, int]] = []
        self._clients: dict[int, float] = {}  # pid -> its CPU seconds when last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[float, float, int]:
        import psutil

        cpu, rss = 0.0, 0
        server = (self.process, *self.process.children(recursive=True))
        ours = {p.pid for p in server}
        for proc in server:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        for proc in psutil.Process().children(recursive=True):
            if proc.pid not in ours:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    self._clients[proc.pid] = times.user + times.system
        return time.perf_counter() - self.t0, cpu, rss

    def _record(self) -> None:
        self.samples.append(self._sample())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record()
            self._stop.wait(self.interval)

    def __enter__(self) -> ServerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._record()

    def client_cpu(self) -> float:
        """CPU seconds the browsers and their driver used, each process as last sampled
        (they start after the sampler; the last 0.25 s of a closing tab is missed)."""
        return sum(self._clients.values())


async def wait_rendered(page, view: View, key: str, timeout_ms: float) -> tuple[float, float]:
    """Wait until the page is rendered (see the module docstring) and stays so; the
    :func:`time.perf_counter` times at which the server had sent it (its script run was
    over) and at which its charts were drawn."""
    args = [view.path, view.title, key]
    while True:
        await page.wait_for_function(_RENDERED, arg=args, polling=100, timeout=timeout_ms)
        await asyncio.sleep(SETTLE_S)
        if await page.evaluate(_RENDERED, args):
            served, drawn, now = await page.evaluate(_MARKS, key)
            clock = time.perf_counter()
            return clock - (now - served) / 1000, clock - (now - drawn) / 1000


def _watch(page, url: str, sink: list[str]) -> None:
    """Append the app's HTTP failures and a closed websocket of ``page`` to ``sink``
    (requests elsewhere, such as the icon font Streamlit asks Google for, are not the
    server's: offline they fail and the page falls back)."""

    def response(r) -> None:
        if r.status >= 400 and r.url.startswith(url):
            sink.append(f"HTTP {r.status} {r.url}")

    def failed(r) -> None:
        if r.url.startswith(url):
            sink.append(f"request failed: {r.url} {r.failure}")

    page.on("response", response)
    page.on("requestfailed", failed)
    page.on("websocket", lambda ws: ws.on("close", lambda _: sink.append("websocket closed")))


async def _session(browser, url: str, index: int, delay: float, t0: float, timeout_s: float):
    await asyncio.sleep(delay)
    views: list[PageView] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    sink: list[str] = []
    try:
        page = await context.new_page()
        _watch(page, url, sink)
        for i, view in enumerate(VIEWS):
            record = PageView(index, view.name, time.perf_counter() - t0)
            views.append(record)
            sink.clear()
            try:
                if i == 0:
                    await page.goto(
                        f"{url}/", wait_until="domcontentloaded", timeout=timeout_s * 1000
                    )
                else:
                    nav = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{view.path}"]')
                    await nav.click(timeout=timeout_s * 1000)
                served, drawn = await wait_rendered(page, view, f"{index}-{i}", timeout_s * 1000)
                record.served, record.ended, record.rendered = served - t0, drawn - t0, True
            except Exception as exc:  # noqa: BLE001 - a timeout or a crash is a finding
                record.ended = time.perf_counter() - t0
                record.errors.append(f"not rendered: {type(exc).__name__}: {exc}"[:300])
            record.errors += await page.evaluate(_PAGE_ERRORS)
            record.errors += sink
    finally:
        await context.close()
    return views


@contextlib.contextmanager
def _niced(chromium_path: str, nice: int) -> Iterator[str]:
    """An executable that starts ``chromium_path`` at niceness ``nice`` (its renderers
    inherit it), so that on a small machine the browsers, which stand in for the users'
    own computers, do not take the CPU the server needs."""
    if nice <= 0:
        yield chromium_path
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="niced-chromium-") as folder:
        wrapper = Path(folder) / "chromium"
        wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} "{chromium_path}" "$@"\n')
        wrapper.chmod(0o755)
        yield str(wrapper)


async def _drive(url, sessions, window_s, chromium_path, timeout_s, t0, nice) -> list[PageView]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        with _niced(chromium_path, nice) as executable:
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
            )
            try:
                delays = [window_s * i / sessions for i in range(sessions)]
                done = await asyncio.gather(
                    *(
                        _session(browser, url, i, delay, t0, timeout_s)
                        for i, delay in enumerate(delays)
                    )
                )
            finally:
                await browser.close()
    return [v for views in done for v in views]


def run_sessions(
    url: str,
    sessions: int,
    window_s: float = 0.0,
    chromium_path: str = "/usr/bin/chromium",
    timeout_s: float = 180.0,
    t0: float | None = None,
    nice: int = 0,
) -> list[PageView]:
    """``sessions`` users arriving evenly over ``window_s`` seconds (0: all at once), each
    opening :data:`VIEWS` in order; every page view with its times and errors. ``nice``
    > 0 runs the browser at that lower priority."""
    t0 = time.perf_counter() if t0 is None else t0
    out: list = []

    def target() -> None:
        try:
            out.append(
                asyncio.run(_drive(url, sessions, window_s, chromium_path, timeout_s, t0, nice))
            )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out.append(exc)

    thread = threading.Thread(target=target, name="user-sessions")
    thread.start()
    thread.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# ----------------------------------------------------------------------- figures
def _percentiles(seconds: list[float]) -> dict:
    import numpy as np

    if not seconds:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    values = np.asarray(seconds)
    return {
        "n": len(values),
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
    }


def warm_flags(views: list[PageView]) -> list[bool]:
    """Per view: whether it started after the first view of its page had rendered (its
    page's shared caches were then warm)."""
    first: dict[str, float] = {}
    for v in views:
        if v.rendered:
            first[v.view] = min(first.get(v.view, float("inf")), v.ended)
    return [v.started >= first.get(v.view, float("inf")) for v in views]


def cpu_shares(views: list[PageView], samples: list[tuple[float, float, int]]) -> list[float]:
    """Server CPU seconds per view: each sampling interval's CPU split among the views
    open during it, in proportion to how much of the interval each was open (CPU while no
    view was open is left out)."""
    shares = [0.0] * len(views)
    for (a, cpu_a, _), (b, cpu_b, _) in zip(samples, samples[1:], strict=False):
        overlap = [max(0.0, min(b, v.ended) - max(a, v.started)) for v in views]
        total = sum(overlap)
        if total > 0:
            for i, o in enumerate(overlap):
                shares[i] += (cpu_b - cpu_a) * o / total
    return shares


def summarize(views: list[PageView], samples: list[tuple[float, float, int]]) -> dict:
    """The figures of a run: counts, time to rendered (overall and per page), server CPU
    per view (all, and warm views only) and peak server memory."""
    warm = warm_flags(views)
    shares = cpu_shares(views, samples) if samples else [float("nan")] * len(views)
    n_warm = sum(warm)
    out = {
        "sessions": len({v.session for v in views}),
        "views": len(views),
        "rendered": sum(v.rendered for v in views),
        "errors": sum(bool(v.errors) for v in views),
        "error_messages": [f"session {v.session} {v.view}: {e}" for v in views for e in v.errors],
        "seconds": _percentiles([v.seconds for v in views if v.rendered]),
        "served": _percentiles([v.served - v.started for v in views if v.rendered]),
        "seconds_warm": _percentiles(
            [v.seconds for v, w in zip(views, warm, strict=True) if v.rendered and w]
        ),
        "pages": {},
        "warm_views": n_warm,
    }
    for name in dict.fromkeys(v.view for v in views):
        mine = [(v, w) for v, w in zip(views, warm, strict=True) if v.view == name]
        first = min((v for v, _ in mine), key=lambda v: v.started)
        out["pages"][name] = {
            "first": first.seconds if first.rendered else float("nan"),
            "all": _percentiles([v.seconds for v, _ in mine if v.rendered]),
            "warm": _percentiles([v.seconds for v, w in mine if v.rendered and w]),
        }
    if samples:
        cpu = samples[-1][1] - samples[0][1]
        out["cpu_s"] = cpu
        out["cpu_per_view"] = cpu / max(len(views), 1)
        out["cpu_per_warm_view"] = (
            sum(s for s, w in zip(shares, warm, strict=True) if w) / n_warm
            if n_warm
            else float("nan")
        )
        out["peak_rss_mb"] = max(s[2] for s in samples) / 2**20
    return out


def report(figures: dict) -> str:
    """The figures as text, one line per measure."""
    s = figures["seconds"]
    w = figures["seconds_warm"]
    lines = [
        f"sessions {figures['sessions']}, page views {figures['views']}, rendered "
        f"{figures['rendered']}, views with errors {figures['errors']}",
        f"time to rendered, all views:  p50 {s['p50']:.2f} s  p95 {s['p95']:.2f} s  "
        f"max {s['max']:.2f} s",
        f"time to rendered, warm views: p50 {w['p50']:.2f} s  p95 {w['p95']:.2f} s  "
        f"max {w['max']:.2f} s  ({figures['warm_views']} views)",
        f"time to served (script run over, charts not yet drawn), all views: "
        f"p50 {figures['served']['p50']:.2f} s  p95 {figures['served']['p95']:.2f} s  "
        f"max {figures['served']['max']:.2f} s",
        f"{'page':<10} {'first':>7} {'p50':>7} {'p95':>7} {'max':>7} "
        f"{'warm p50':>9} {'warm p95':>9} {'warm max':>9}",
    ]
    for name, p in figures["pages"].items():
        a, m = p["all"], p["warm"]
        lines.append(
            f"{name:<10} {p['first']:>6.2f}s {a['p50']:>6.2f}s {a['p95']:>6.2f}s "
            f"{a['max']:>6.2f}s {m['p50']:>8.2f}s {m['p95']:>8.2f}s {m['max']:>8.2f}s"
        )
    if "cpu_s" in figures:
        lines += [
            f"server CPU: {figures['cpu_s']:.1f} s in all, {figures['cpu_per_view']:.3f} s "
            f"per page view, {figures['cpu_per_warm_view']:.3f} s per warm page view",
            f"server peak RSS: {figures['peak_rss_mb']:,.0f} MB",
        ]
    lines += [f"  error: {e}" for e in figures["error_messages"][:20]]
    return "\n".join(lines)
