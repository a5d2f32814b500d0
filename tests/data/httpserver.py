"""A local HTTP server for testing the network sources without the internet.

``http.server`` in a daemon thread on 127.0.0.1 and an ephemeral port. Each path gets a
queue of :class:`Reply` objects, served in order (the last one repeats), so a test can
script "429, then 500, then the real response". Replies can be the real-format files
from ``../shared/data`` or the failures real services produce: rate limits with
``Retry-After``, 5xx, answers slower than the client's timeout, garbage, JSON cut off
mid-document, a connection dropped before the promised Content-Length, bodies that trickle
one byte at a time, bodies of gigabytes (streamed, never held in memory) and redirects.

Use ``LocalServer`` as a context manager, or the ``http_server`` fixture: bind it in a
test module with ``http_server = httpserver.http_server``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to trigger client timeouts)
    claim_length: int | None = None  # Content-Length larger than the body: a cut transfer
    trickle: float = 0.0  # seconds between single bytes of the body (a stalled transfer)
    filler: int = 0  # zero bytes streamed after the body, 64 kB at a time (a huge body)
    no_length: bool = False  # no Content-Length: the body ends when the connection closes
    extra: bytes = b""  # sent after the body, past its Content-Length, on a kept-alive link

    @classmethod
    def json(cls, obj, status: int = 200, **kw) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, **kw)

    @classmethod
    def file(cls, path: str | Path, content_type: str | None = None, **kw) -> Reply:
        path = Path(path)
        ctype = content_type or {
            ".json": "application/json",
            ".csv": "text/csv; charset=utf-8",
            ".html": "text/html; charset=UTF-8",
        }.get(path.suffix, "application/octet-stream")
        return cls(200, path.read_bytes(), {"Content-Type": ctype}, **kw)

    @classmethod
    def text(
        cls, text: str, content_type: str = "text/plain; charset=utf-8", status: int = 200, **kw
    ) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type}, **kw)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Reply:
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        body = b'{"status":"ERROR","error":"You\'ve exceeded the maximum requests per minute"}'
        return cls(429, body, headers)

    @classmethod
    def error(cls, status: int = 500, message: str = "Internal Server Error") -> Reply:
        return cls(
            status,
            f"<html><body><h1>{message}</h1></body></html>".encode(),
            {"Content-Type": "text/html"},
        )

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        base = then or cls.json({"status": "OK"})
        return cls(base.status, base.body, dict(base.headers), delay=seconds)

    @classmethod
    def trickling(cls, body: bytes, interval: float = 2.0) -> Reply:
        """A body sent one byte every ``interval`` seconds: each read succeeds well within
        any read timeout, so only a deadline on the whole transfer ends it."""
        return cls(200, body, {"Content-Type": "application/json"}, trickle=interval)

    @classmethod
    def huge(cls, announce: int, send: int, content_type: str = "application/json") -> Reply:
        """``Content-Length: announce``, then ``send`` zero bytes streamed (never held in
        memory) before the connection closes."""
        return cls(200, b"", {"Content-Type": content_type}, claim_length=announce, filler=send)

    @classmethod
    def endless(cls, send: int, content_type: str = "text/html") -> Reply:
        """``send`` zero bytes with no Content-Length (the size is learnt only by reading)."""
        return cls(200, b"", {"Content-Type": content_type}, filler=send, no_length=True)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"Location": location})

    @classmethod
    def garbage(cls) -> Reply:
        body = b"\x89PNG\r\n\x1a\n\x00\x00garbage<<>>{{"
        return cls(200, body, {"Content-Type": "application/json"})

    @classmethod
    def truncated_json(cls, path: str | Path) -> Reply:
        """The first half of a real JSON file, served as a complete (but broken) body."""
        body = Path(path).read_bytes()
        return cls(200, body[: len(body) // 2], {"Content-Type": "application/json"})

    @classmethod
    def dropped(cls, path: str | Path) -> Reply:
        """Half the file, then the connection closes before the promised length arrives."""
        body = Path(path).read_bytes()
        return cls(
            200,
            body[: len(body) // 2],
            {"Content-Type": "application/json"},
            claim_length=len(body),
        )


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict
    headers: dict


class LocalServer:
    """Scripted replies per path; records every request it sees."""

    def __init__(self, host: str = "127.0.0.1"):
        self._routes: dict[tuple[str, frozenset], list[Reply]] = {}
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as separate writes: with Nagle on, each response
            # waited ~40 ms for the client's delayed ACK (500 requests took 25 s)
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                seen = Seen(
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    dict(self.headers.items()),
                )
                reply = server._next(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                closing = bool(reply.claim_length or reply.no_length)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if not reply.no_length:
                        self.send_header(
                            "Content-Length", str(reply.claim_length or len(reply.body))
                        )
                    if closing:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    self._body(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, too large): nothing to do
                if closing:
                    self.close_connection = True

            def _body(self, reply: Reply) -> None:
                if reply.trickle:
                    for i in range(len(reply.body)):
                        self.wfile.write(reply.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                else:
                    self.wfile.write(reply.body)
                self.wfile.write(reply.extra)
                chunk = bytes(2**16)
                left = reply.filler
                while left > 0:
                    self.wfile.write(chunk[:left])
                    left -= len(chunk)
                self.wfile.flush()

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ------------------------------------------------------------ scripting
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def other_name_url(self) -> str:
        """The same server as ``localhost``: to a client, another host than 127.0.0.1."""
        return f"http://localhost:{self._httpd.server_address[1]}"

    def route(self, path: str, *replies: Reply, query: dict | None = None) -> None:
        """Serve ``replies`` in order at ``path``; the last one repeats.

        With ``query``, only requests carrying those parameter values match (the route
        with the most matching parameters wins), e.g. ``adjusted=false`` vs ``true``.
        """
        if not replies:
            raise ValueError("route needs at least one reply")
        key = (path, frozenset((k, str(v)) for k, v in (query or {}).items()))
        with self._lock:
            self._routes[key] = list(replies)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            items = set(seen.query.items())
            matches = [
                (len(q), key)
                for key in self._routes
                for p, q in [key]
                if p == seen.path and q <= items
            ]
            queue = self._routes[max(matches, key=lambda m: m[0])[1]] if matches else None
            if not queue:
                return Reply.json(
                    {"status": "NOT_FOUND", "message": f"no route {seen.path}"}, status=404
                )
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def http_server():
    """A running :class:`LocalServer` for one test."""
    with LocalServer() as server:
        yield server
