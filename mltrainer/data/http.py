"""The one HTTP layer every network source uses (Polygon, FRED, Wikipedia).

What it does for its callers:

- sends a real User-Agent (Wikipedia's policy asks for one; anonymous ``python-requests``
  clients are throttled first) and a (connect, read) timeout on every request;
- retries with exponential backoff on HTTP 429 (honouring ``Retry-After``), 5xx,
  timeouts and dropped connections, a bounded number of times and within a bounded total
  wait (a ``Retry-After`` of a day fails at once instead of holding the page for hours);
- bounds every attempt: a deadline for the whole transfer (a body trickling one byte at a
  time never trips the read timeout) and a maximum body size (checked against
  ``Content-Length`` before reading and while reading), so a hostile or broken server
  can neither hang the app nor fill its memory;
- follows redirects itself, and never to another host when the request carries a key
  (FRED takes its key in the query string, which a redirect would hand to the new host),
  nor off this machine while ``MLTRAINER_OFFLINE`` is set;
- turns every failure into a :class:`~mltrainer.errors.SourceError` whose text names the
  URL with any API key removed, and says what went wrong; text from the server (an error
  body, a reason phrase) is shown with its control characters replaced, so it cannot
  drive the user's terminal;
- never lets a key reach a log record: retries are logged with the redacted URL, and a
  filter on urllib3's connection-pool logger redacts the request lines it writes at
  DEBUG level (FRED only accepts its key as a query parameter).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import math
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import charset_normalizer
import requests

from mltrainer import __version__, config
from mltrainer.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = (
    f"mltrainer/{__version__} (S&P 500 research dashboard; python-requests/{requests.__version__})"
)
DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds to connect, seconds between bytes read
DEFAULT_DEADLINE = 120.0  # seconds for one whole attempt: connect, redirects, every byte
# The largest real response (FRED's 100,000-observation page, Polygon's 50,000 bars) is
# under 10 MB; a body far beyond that is a fault or an attack, never data we want.
DEFAULT_MAX_BYTES = 64 * 2**20
_ERROR_BODY = 64 * 2**10  # of an error response, only the start is read (for its reason)
_CHUNK = 64 * 2**10
# hosts on this machine: still served when MLTRAINER_OFFLINE forbids the network
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

# Query parameters that carry credentials; removed from every URL shown to a user.
SECRET_PARAMS = frozenset({"apikey", "api_key", "api-key", "token", "access_token", "key"})
_SECRET_IN_TEXT = re.compile(r"(?i)\b(apikey|api_key|api-key|access_token|token)=[^&\s'\"<>)]*")
_DNS_FAILURE = re.compile(
    r"NameResolutionError|Name or service not known|nodename nor "
    r"servname|name resolution|getaddrinfo failed"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: object, *secrets: str | None) -> str:
    """``text`` with key-like query parameters, bearer tokens and known keys replaced."""
    out = _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=***", str(text))
    out = _BEARER.sub(r"\1***", out)
    return config.scrub(out, *secrets)


def redact_url(url: str, params: dict | None = None, *secrets: str | None) -> str:
    """The URL (with ``params`` merged in) minus credential parameters, for messages."""
    parts = urlsplit(str(url))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query += [(str(k), str(v)) for k, v in (params or {}).items() if v is not None]
    kept = [(k, v) for k, v in query if k.lower() not in SECRET_PARAMS]
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
    return redact(clean, *secrets)


def env_url(variable: str, default: str) -> str:
    """A base URL: the environment override ``variable`` if set, else ``default``."""
    return (os.environ.get(variable) or default).rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failing request.

    Attempt ``n`` (1-based) that fails with a retryable error waits
    ``min(backoff * 2**(n-1), max_backoff)`` seconds, or the server's ``Retry-After`` on a
    429, before attempt ``n + 1``. A ``Retry-After`` longer than ``max_retry_after`` is not
    waited at all (the server says "come back much later": the request fails at once), and
    the waits of one request never add up to more than ``max_total_wait``.
    """

    max_attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    # Polygon's free plan counts requests per minute, so its Retry-After is up to 60 s.
    max_retry_after: float = 60.0
    max_total_wait: float = 90.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): the server's
        ``Retry-After`` capped at ``max_retry_after``, else the capped exponential backoff."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class HttpReply:
    """A complete response, read within the client's deadline and size limit."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def encoding(self) -> str | None:
        """The charset the ``Content-Type`` header declares, if any."""
        return requests.utils.get_encoding_from_headers(self.headers)

    @property
    def text(self) -> str:
        """The body as text: the declared charset, else UTF-8, else a detected one (what
        ``requests`` does, minus its ISO-8859-1 default for ``text/*``)."""
        encoding = self.encoding
        if encoding is None or encoding.lower() == "iso-8859-1":
            try:
                return self.content.decode("utf-8")
            except UnicodeDecodeError:
                encoding = charset_normalizer.detect(self.content)["encoding"] or "utf-8"
        try:
            return str(self.content, encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return str(self.content, "utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON (ValueError if it is not)."""
        return json.loads(self.content)


class _GiveUp(Exception):
    """A failure that retrying cannot fix (too large, too slow, unsafe redirect)."""


class HttpClient:
    """A requests session with our User-Agent, timeouts, limits, retries and safe errors.

    Parameters
    ----------
    timeout : float or (float, float)
        Seconds to connect and to wait between bytes of the response.
    retry : RetryPolicy
        Attempts, backoff and the retry-wait budget.
    session : requests.Session, optional
        Injected for tests; by default one session (connection pool) per client.
    sleep : callable
        ``time.sleep``; tests inject a recorder to check the backoff without waiting.
    deadline : float
        Seconds one attempt may take from connecting to the last byte of the body
        (redirects included). A server that trickles its body stays within the read
        timeout forever; this bounds the whole transfer. Not retried: a second attempt
        would only make the user wait as long again.
    max_bytes : int
        Largest body accepted, checked against ``Content-Length`` before reading and
        against the bytes received (after decompression) while reading.
    max_redirects : int
        Redirects followed per attempt. A request that carries a secret (a key in
        ``secrets`` or an ``Authorization`` header) is never redirected to another host
        or from https to http: the key would go with it.

    Notes
    -----
    The deadline is enforced while the body streams in: a timer shuts the socket down
    when it passes (``urllib3``'s ``HTTPResponse.shutdown``, made for exactly this), and
    the time is checked between chunks. Until the headers have arrived each socket read
    is bounded by the read timeout (capped at the deadline).
    """

    def __init__(
        self,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = USER_AGENT,
        deadline: float = DEFAULT_DEADLINE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
    ):
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.sleep = sleep
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects

    def get(
        self,
        url: str,
        params: dict | None = None,
        headers: dict | None = None,
        secrets: tuple = (),
    ) -> HttpReply:
        """GET ``url``, retrying transient failures; a 2xx reply or SourceError.

        ``secrets`` are extra strings (API keys) to remove from any error text; a
        request that carries one is not redirected to another host.
        """
        shown = redact_url(url, params, *secrets)
        if config.offline() and urlsplit(url).hostname not in _LOOPBACK:
            raise SourceError(f"{shown}: {config.OFFLINE_REASON}")
        policy = self.retry
        reason = "no attempt made"
        waited = 0.0
        for attempt in range(1, policy.max_attempts + 1):
            reply, reason, retry_after = self._try_once(url, params, headers, secrets, shown)
            if reply is not None:
                return reply
            if attempt == policy.max_attempts:
                break
            wait = policy.delay(attempt, retry_after)
            if waited + wait > policy.max_total_wait:
                raise SourceError(
                    f"{shown}: {reason}; gave up after {attempt} attempt(s): waiting another "
                    f"{wait:g} s would pass the {policy.max_total_wait:g} s retry budget"
                )
            waited += wait
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                shown,
                reason,
                wait,
                attempt + 1,
                policy.max_attempts,
            )
            self.sleep(wait)
        raise SourceError(f"{shown}: {reason}; gave up after {policy.max_attempts} attempt(s)")

    def _try_once(
        self, url: str, params: dict | None, headers: dict | None, secrets: tuple, shown: str
    ) -> tuple[HttpReply | None, str, float | None]:
        """One attempt: ``(reply, "", None)`` on a 2xx, ``(None, why, Retry-After)`` on a
        failure worth retrying, SourceError on one that is not (``shown``: the URL
        redacted, for the message)."""
        try:
            reply = self._attempt(url, params, headers, secrets)
        except _GiveUp as exc:
            raise SourceError(f"{shown}: {exc}") from None
        except requests.Timeout:
            return None, f"timed out (no answer within {self._read_timeout():g} s)", None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            text = str(exc)
            if "timed out" in text.lower():
                return None, f"timed out (no answer within {self._read_timeout():g} s)", None
            if "refused" in text.lower():
                return None, f"connection refused by {urlsplit(url).netloc}", None
            return None, f"connection failed ({_short(redact(text, *secrets))})", None
        except requests.RequestException as exc:  # invalid URL, ...
            raise SourceError(
                f"{shown}: request failed ({_short(redact(exc, *secrets))})"
            ) from None
        status = reply.status_code
        if 200 <= status < 300:
            return reply, "", None
        detail = _body_hint(reply, secrets)
        if status == 429:
            retry_after = parse_retry_after(reply.headers.get("Retry-After"))
            reason = "HTTP 429 Too Many Requests (rate limited)"
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                raise SourceError(
                    f"{shown}: {reason}; the server asks to wait {_duration(retry_after)}"
                    f", longer than the {self.retry.max_retry_after:g} s this client waits;"
                    " try again later"
                ) from None
            return None, reason, retry_after
        if status >= 500:
            return None, f"HTTP {status} {reply.reason or ''}".rstrip() + detail, None
        raise SourceError(
            f"{shown}: HTTP {status} {reply.reason or ''}".rstrip() + detail + _hint(status)
        ) from None

    def get_json(
        self, url: str, params: dict | None = None, headers: dict | None = None, secrets: tuple = ()
    ) -> Any:
        """GET and decode JSON; a body that is not JSON raises SourceError naming the URL."""
        reply = self.get(url, params=params, headers=headers, secrets=secrets)
        try:
            return reply.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            ctype = reply.headers.get("Content-Type", "unknown type")
            raise SourceError(
                f"{redact_url(url, params, *secrets)}: the response is not valid JSON "
                f"({_short(str(exc))}; {len(reply.content)} bytes of {ctype}); the service "
                "may be down or the response was cut off"
            ) from None

    def get_text(
        self, url: str, params: dict | None = None, headers: dict | None = None, secrets: tuple = ()
    ) -> str:
        """GET and decode the body as text (see :attr:`HttpReply.text`)."""
        return self.get(url, params=params, headers=headers, secrets=secrets).text

    # ------------------------------------------------------------ one attempt
    def _attempt(
        self, url: str, params: dict | None, headers: dict | None, secrets: tuple
    ) -> HttpReply:
        """One request and its redirects, read whole within the deadline."""
        ends = time.monotonic() + self.deadline
        keyed = bool([s for s in secrets if s]) or any(
            k.lower() == "authorization" for k in (headers or {})
        )
        for _ in range(self.max_redirects + 1):
            left = ends - time.monotonic()
            if left <= 0:
                raise _GiveUp(self._late())
            try:
                resp = self.session.get(
                    url,
                    params=params,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=self._timeouts(left),
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if time.monotonic() >= ends - 0.05:  # the read timeout was cut to the deadline
                    raise _GiveUp(self._late()) from None
                if _DNS_FAILURE.search(str(exc)):  # offline: retrying only makes the user wait
                    raise _GiveUp(  # the host of this URL: a redirect may have changed it
                        f"cannot resolve {printable(str(urlsplit(url).hostname))} "
                        "(no network connection, or DNS failed)"
                    ) from None
                raise
            except requests.RequestException:
                raise  # (InvalidURL is a ValueError too)
            except ValueError as exc:  # requests parses a Location even when not following it
                why = _short(redact(exc, *secrets))
                raise _GiveUp(f"redirected to a malformed URL ({why}); not followed") from None
            try:
                if resp.is_redirect:
                    url = self._follow(url, resp.headers["Location"], keyed)
                    params = None  # the Location carries the query the server wants
                    continue
                limit = self.max_bytes if 200 <= resp.status_code < 300 else _ERROR_BODY
                body = self._read(resp, ends, limit, truncate=limit == _ERROR_BODY)
                reason = printable(resp.reason or "")
                return HttpReply(resp.status_code, reason, resp.headers, body)
            finally:
                resp.close()  # a body left unread must not go back to the pool
        raise _GiveUp(f"more than {self.max_redirects} redirects")

    def _follow(self, current: str, location: str, keyed: bool) -> str:
        """The redirect target, unless it is not a valid http(s) URL, would leave this
        machine while MLTRAINER_OFFLINE is set, or would carry a key to another host."""
        try:
            target = urljoin(current, location)
            old, new = urlsplit(current), urlsplit(target)
            old_port, new_port = old.port, new.port  # ValueError: out of range, not a number
        except ValueError:
            shown = printable(redact(location))[:100]
            raise _GiveUp(f"redirected to a malformed URL ({shown!r}); not followed") from None
        if new.scheme not in ("http", "https"):
            raise _GiveUp(f"redirected to a {new.scheme or 'relative'} URL; not followed")
        where = printable(f"{new.scheme}://{new.netloc.rpartition('@')[2]}")  # no user:pass
        if config.offline() and new.hostname not in _LOOPBACK:
            raise _GiveUp(f"redirected to {where}, {config.OFFLINE_REASON}")
        same_origin = (old.scheme, old.hostname, old_port) == (new.scheme, new.hostname, new_port)
        # http://host/ -> https://host/ (default ports) only makes the key safer in transit
        upgrade = (old.scheme, new.scheme) == ("http", "https") and (
            old.hostname == new.hostname and old_port in (None, 80) and new_port in (None, 443)
        )
        if keyed and not (same_origin or upgrade):
            raise _GiveUp(
                f"redirected to another host ({where}); refusing to send the API key there"
            )
        return target

    def _read(
        self, resp: requests.Response, ends: float, limit: int, truncate: bool = False
    ) -> bytes:
        """The body, at most ``limit`` bytes, by ``ends`` (monotonic) at the latest."""
        declared = resp.headers.get("Content-Length", "")
        if not truncate and declared.strip().isdigit() and int(declared) > limit:
            raise _GiveUp(
                f"the response announces {_size(int(declared))}, more than the "
                f"{_size(limit)} limit; not downloaded"
            )
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            try:
                resp.raw.shutdown()  # wakes a read blocked on a trickling socket
            except (AttributeError, ValueError, RuntimeError, OSError):
                pass  # urllib3 < 2.3, or the body is already complete

        timer = threading.Timer(max(0.0, ends - time.monotonic()), stop)
        timer.daemon = True
        timer.start()
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                if fired.is_set() or time.monotonic() >= ends:
                    break
                size += len(chunk)
                if size > limit:
                    if truncate:
                        chunks.append(chunk[: limit - size + len(chunk)])
                        return b"".join(chunks)
                    raise _GiveUp(
                        f"the response is larger than the {_size(limit)} limit; download stopped"
                    )
                chunks.append(chunk)
        except requests.RequestException:
            if not (fired.is_set() or time.monotonic() >= ends):
                raise
        finally:
            timer.cancel()
        if fired.is_set() or time.monotonic() >= ends:
            raise _GiveUp(self._late())  # an error page that trickles is not retried either
        return b"".join(chunks)

    def _late(self) -> str:
        return (
            f"the response did not complete within the {self.deadline:g} s deadline; "
            "the server is too slow or stalled"
        )

    def _timeouts(self, left: float) -> tuple[float, float]:
        connect, read = (
            self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        )
        return min(float(connect), left), min(float(read), left)

    def _read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else float(self.timeout)


def printable(text: str) -> str:
    """``text`` with control and format characters (a terminal's escape sequences, bidi
    overrides) replaced by "?": what a server sends is shown, never obeyed."""
    return "".join("?" if unicodedata.category(c)[0] == "C" else c for c in text)


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _duration(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 3600:.1f} h"


def _short(text: str, limit: int = 200) -> str:
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return printable(first[:limit])


def _body_hint(reply: HttpReply, secrets: tuple) -> str:
    """A short, redacted excerpt of an error body (APIs put the reason there)."""
    try:
        body = reply.text
    except Exception:  # a body that cannot be decoded says nothing useful
        return ""
    body = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    return f": {_short(redact(body, *secrets), 160)}" if body else ""


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check that the API key is set and valid)"
    if status == 404:
        return " (not found: check the ticker or series id)"
    return ""


class _RedactFilter(logging.Filter):
    """Redacts credentials in urllib3's DEBUG request lines ("GET /x?api_key=... 200")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


# Installed once, at import: the only logger outside our package that sees full URLs.
_pool_logger = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactFilter) for f in _pool_logger.filters):
    _pool_logger.addFilter(_RedactFilter())

_DEFAULT: HttpClient | None = None


def default_client() -> HttpClient:
    """A process-wide client (one connection pool) for callers that do not inject one."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = HttpClient()
    return _DEFAULT


__all__ = [
    "HttpClient",
    "HttpReply",
    "RetryPolicy",
    "USER_AGENT",
    "default_client",
    "env_url",
    "parse_retry_after",
    "printable",
    "redact",
    "redact_url",
]
