"""Start the dashboard and warm it: ``streamlit run app.py``, then :mod:`ui.warmup`.

    python -m ui.serve [streamlit options, e.g. --server.port 8501]

Runs ``streamlit run app.py`` with the options given as a child process, waits until it
is healthy, opens the default pages once headless (:func:`ui.warmup.warm`) so the work
every session shares is done before the first reader arrives, prints what each page
took on stderr, and then waits for the server: its exit status is this command's.
SIGTERM and SIGINT are passed on to the server. ``MLTRAINER_WARMUP=0`` skips the warm-up
(the ready file below is then written as soon as the server is healthy).

When the warm-up has ended (every page ready or not: a page that failed to warm is
computed by its first reader), the file ``$MLTRAINER_READY_FILE`` is written if that is
set: a readiness probe can wait for it, so that no reader is sent to a cold server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ui.warmup import DEFAULT_PAGES, report, warm

ROOT = Path(__file__).resolve().parents[1]


def _option(args: Sequence[str], name: str, default: str) -> str:
    """The value of a streamlit option given as ``--name value`` or ``--name=value``."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def app_url(args: Sequence[str]) -> str:
    """Where this machine reaches the server started with the streamlit options ``args``
    (an address that listens everywhere is reached on the loopback)."""
    address = _option(args, "--server.address", "127.0.0.1")
    if address in ("", "0.0.0.0", "::"):
        address = "127.0.0.1"
    port = _option(args, "--server.port", os.environ.get("STREAMLIT_SERVER_PORT", "8501"))
    base = _option(args, "--server.baseUrlPath", "").strip("/")
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}" + (f"/{base}" if base else "")


def _warm_then_mark(url: str, server: subprocess.Popen, pages: Sequence[str]) -> None:
    try:
        visits = warm(url, pages, wait=180.0)
    except (TimeoutError, ValueError) as exc:
        print(f"warm-up: skipped ({exc})", file=sys.stderr, flush=True)
        visits = []
    report(visits)
    ready = os.environ.get("MLTRAINER_READY_FILE")
    if ready and server.poll() is None:
        Path(ready).parent.mkdir(parents=True, exist_ok=True)
        Path(ready).write_text("warm\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ui.serve``: see the module's docstring."""
    args = list(sys.argv[1:] if argv is None else argv)
    ready = os.environ.get("MLTRAINER_READY_FILE")
    if ready:  # left by an earlier run (a restarted container keeps its /tmp volume)
        Path(ready).unlink(missing_ok=True)
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *args]
    server = subprocess.Popen(command, cwd=ROOT)

    def forward(signum: int, _frame: object) -> None:
        server.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    # MLTRAINER_WARMUP=0: no page is opened, the ready file is written once healthy
    off = os.environ.get("MLTRAINER_WARMUP", "1").strip().lower() in ("0", "false", "no", "off")
    pages = () if off else DEFAULT_PAGES
    thread = threading.Thread(
        target=_warm_then_mark, args=(app_url(args), server, pages), daemon=True
    )
    thread.start()
    return server.wait()


if __name__ == "__main__":
    raise SystemExit(main())
