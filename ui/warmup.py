"""Warm a freshly started dashboard: open its pages once, headless, before users do.

A fresh server has computed nothing: the first reader of Home waits while it loads the
panel, runs the index regime model, evaluates the risk limits and builds the sector
baskets (10-20 s on a 2-core machine), although all of that is shared by every session
(``st.cache_resource``). :func:`warm` opens each page the way a browser does, as one
Streamlit session over the app's WebSocket (``/_stcore/stream``, Streamlit's own protobuf
messages, no browser), waits for its script to finish and closes the session; the
shared results then stay in the server for every later reader.

    python -m ui.warmup --url http://127.0.0.1:8501 [--pages home,universe] [--wait 120]

waits for ``/_stcore/health``, then visits the pages in turn and prints what each took;
exit status 0 when every page finished, 1 otherwise (the server keeps running either way:
a page that failed to warm is computed by its first reader, as without a warm-up).
:mod:`ui.serve` starts the server and this warm-up together.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

# Home first (every reader opens it), then the pages whose defaults are shared work, then
# the other tabs of those pages (tabs are lazy: a tab computes when it is first opened);
# a page may carry a query string, as in a link
DEFAULT_PAGES = (
    "home",
    "universe",
    "risk",
    "model_lab",
    "universe?uni_tab=Sector+rotation",
    "universe?uni_tab=Membership+history",
    "risk?risk_tab=Stress+scenarios",
    "risk?risk_tab=Correlation+%26+risk+contributions",
    "risk?risk_tab=Drawdowns",
)
MAX_WAIT = 3600.0  # seconds a start-up may take before the warm-up gives up on it
MAX_MESSAGE = 64 * 2**20  # a page's largest message (a chart) is a few MB


@dataclass(frozen=True)
class Visit:
    """One headless page view: the page, seconds to its script's end, and an error."""

    page: str
    seconds: float
    error: str | None = None


def healthy(url: str) -> bool:
    """Whether the app at ``url`` answers 200 on ``/_stcore/health`` within 2 s."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return False  # nothing there yet, or another server's protocol on the port


def wait_healthy(url: str, timeout: float) -> None:
    """Block until ``url``/_stcore/health answers 200; TimeoutError after ``timeout`` s,
    ValueError for an address that is not the app's (scheme, host, port)."""
    _stream_url(url)
    if not 0 <= timeout <= MAX_WAIT:  # NaN, inf or 1e308 would wait for ever
        raise ValueError(
            f"the wait for the server must be finite seconds, 0 to {MAX_WAIT:g}, got {timeout}"
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            if healthy(url):
                return
        except ValueError as exc:  # a malformed host or port (urllib's InvalidURL, IDNA)
            raise ValueError(f"cannot reach {_short(url)}: {exc}") from None
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_short(url)} did not answer its health check in {timeout:g} s")
        time.sleep(0.25)


def _short(url: str) -> str:
    """``url`` as an error shows it: a pasted file is named by its start and length."""
    return repr(url) if len(url) <= 120 else f"{url[:60]!r}... ({len(url):,} characters)"


def _stream_url(url: str) -> str:
    """The app's WebSocket address; ValueError naming ``url`` unless it is an http(s)
    address with a host and, if any, a numeric port."""
    expected = f"expected the app's http(s)://host:port address, got {_short(url)}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        raise ValueError(f"{expected} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(expected)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"


def visit(url: str, page: str = "home", timeout: float = 300.0) -> Visit:
    """Open ``page`` (its URL path, ``home`` for the main page, optionally with a query
    string: ``universe?uni_tab=Sector+rotation``) as one session and wait for its script
    to finish; the session is closed after."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    started = time.perf_counter()
    request = BackMsg()
    path, _, query = page.partition("?")
    request.rerun_script.query_string = query
    request.rerun_script.page_name = "" if path == "home" else path
    deadline = time.monotonic() + timeout
    try:
        with connect(
            _stream_url(url),
            subprotocols=["streamlit"],
            open_timeout=10,
            max_size=MAX_MESSAGE,
        ) as ws:
            ws.send(request.SerializeToString())
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no end of the script within {timeout:.0f} s")
                msg = ForwardMsg()
                msg.ParseFromString(ws.recv(timeout=left))
                kind = msg.WhichOneof("type")
                if kind == "page_not_found":
                    raise LookupError(f"the app has no page {page!r}")
                if kind == "script_finished":
                    if msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        continue  # the app reran itself (a query parameter bound): wait on
                    if msg.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                        raise RuntimeError(f"the script ended with status {msg.script_finished}")
                    return Visit(page, time.perf_counter() - started)
    except Exception as exc:  # a warm-up never takes the server down: it reports
        return Visit(page, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")


def warm(
    url: str, pages: Sequence[str] = DEFAULT_PAGES, wait: float = 120.0, timeout: float = 300.0
) -> list[Visit]:
    """Wait for the server at ``url`` to be healthy, then visit ``pages`` in turn."""
    wait_healthy(url, wait)
    return [visit(url, page, timeout) for page in pages]


def report(visits: Sequence[Visit]) -> None:
    """One line per visit on stderr: the page, ready or why not, and its seconds."""
    for v in visits:
        outcome = f"failed ({v.error})" if v.error else "ready"
        page = v.page if len(v.page) <= 120 else _short(v.page)  # a pasted file, not a page
        print(f"warm-up: {page} {outcome} in {v.seconds:.1f} s", file=sys.stderr, flush=True)


def _seconds(text: str) -> float:
    from mltrainer.errors import ParameterError
    from mltrainer.validate import parse_float

    try:
        return parse_float(text, "--wait", 0.0, MAX_WAIT)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ui.warmup``: see the module's docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the app's address")
    parser.add_argument(
        "--pages", default=",".join(DEFAULT_PAGES), help="URL paths to open, comma-separated"
    )
    parser.add_argument(
        "--wait", type=_seconds, default=120.0, help="seconds to wait for health (0-3600)"
    )
    args = parser.parse_args(argv)
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    try:
        visits = warm(args.url, pages, args.wait)
    except (TimeoutError, ValueError) as exc:
        print(f"warm-up: {exc}", file=sys.stderr)
        return 1
    report(visits)
    return 0 if all(v.error is None for v in visits) else 1


if __name__ == "__main__":
    raise SystemExit(main())
