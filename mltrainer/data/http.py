"""The one HTTP layer every network source uses (Polygon, FRED, Wikipedia).

What it does for its callers:

- sends a real User-Agent (Wikipedia's policy asks for one; anonymous ``python-requests``
  clients are throttled first) and a (connect, read) timeout on every request;
- retries with exponential backoff on HTTP 429 (honouring ``Retry-After``), 5xx,
  timeouts and dropped connections, a bounded number of times;
- turns every failure into a :class:`~mltrainer.errors.SourceError` whose text names the
  URL with any API key removed, and says what went wrong;
- never lets a key reach a log record: retries are logged with the redacted URL, and a
  filter on urllib3's connection-pool logger redacts the request lines it writes at
  DEBUG level (FRED only accepts its key as a query parameter).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from mltrainer import __version__, config
from mltrainer.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = (
    f"mltrainer/{__version__} (S&P 500 research dashboard; python-requests/"
    f"{requests.__version__})"
)
DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds to connect, seconds between bytes read

# Query parameters that carry credentials; removed from every URL shown to a user.
SECRET_PARAMS = frozenset({"apikey", "api_key", "api-key", "token", "access_token", "key"})
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(apikey|api_key|api-key|access_token|token)=[^&\s'\"<>)]*"
)
_DNS_FAILURE = re.compile(r"NameResolutionError|Name or service not known|nodename nor "
                          r"servname|name resolution|getaddrinfo failed")
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
    ``min(backoff * 2**(n-1), max_backoff)`` seconds, or the server's ``Retry-After``
    (capped at ``max_retry_after``) on a 429, before attempt ``n + 1``.
    """

    max_attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpClient:
    """A requests session with our User-Agent, timeouts, retries and safe errors.

    Parameters
    ----------
    timeout : float or (float, float)
        Seconds to connect and to wait between bytes of the response.
    retry : RetryPolicy
        Attempts and backoff.
    session : requests.Session, optional
        Injected for tests; by default one session (connection pool) per client.
    sleep : callable
        ``time.sleep``; tests inject a recorder to check the backoff without waiting.
    """

    def __init__(
        self,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = USER_AGENT,
    ):
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.sleep = sleep

    def get(
        self,
        url: str,
        params: dict | None = None,
        headers: dict | None = None,
        secrets: tuple = (),
    ) -> requests.Response:
        """GET ``url``, retrying transient failures; a 2xx response or SourceError.

        ``secrets`` are extra strings (API keys) to remove from any error text.
        """
        shown = redact_url(url, params, *secrets)
        policy = self.retry
        reason = "no attempt made"
        for attempt in range(1, policy.max_attempts + 1):
            retry_after = None
            try:
                resp = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except requests.Timeout:
                reason = f"timed out (no answer within {self._read_timeout():g} s)"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                text = str(exc)
                if _DNS_FAILURE.search(text):  # offline: retrying only makes the user wait
                    raise SourceError(f"{shown}: cannot resolve {urlsplit(url).hostname} "
                                      "(no network connection, or DNS failed)") from None
                if "timed out" in text.lower():
                    reason = f"timed out (no answer within {self._read_timeout():g} s)"
                elif "refused" in text.lower():
                    reason = f"connection refused by {urlsplit(url).netloc}"
                else:
                    reason = f"connection failed ({_short(redact(text, *secrets))})"
            except requests.RequestException as exc:  # invalid URL, too many redirects, ...
                raise SourceError(
                    f"{shown}: request failed ({_short(redact(exc, *secrets))})"
                ) from None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    return resp
                detail = _body_hint(resp, secrets)
                if status == 429:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    reason = "HTTP 429 Too Many Requests (rate limited)"
                elif status >= 500:
                    reason = f"HTTP {status} {resp.reason or ''}".rstrip() + detail
                else:
                    raise SourceError(f"{shown}: HTTP {status} {resp.reason or ''}".rstrip()
                                      + detail + _hint(status)) from None
            if attempt == policy.max_attempts:
                break
            wait = policy.delay(attempt, retry_after)
            log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)",
                        shown, reason, wait, attempt + 1, policy.max_attempts)
            self.sleep(wait)
        raise SourceError(f"{shown}: {reason}; gave up after {policy.max_attempts} attempt(s)")

    def get_json(self, url: str, params: dict | None = None, headers: dict | None = None,
                 secrets: tuple = ()) -> Any:
        """GET and decode JSON; a body that is not JSON raises SourceError naming the URL."""
        resp = self.get(url, params=params, headers=headers, secrets=secrets)
        try:
            return resp.json()
        except ValueError as exc:
            ctype = resp.headers.get("Content-Type", "unknown type")
            raise SourceError(
                f"{redact_url(url, params, *secrets)}: the response is not valid JSON "
                f"({_short(str(exc))}; {len(resp.content)} bytes of {ctype}); the service "
                "may be down or the response was cut off"
            ) from None

    def get_text(self, url: str, params: dict | None = None, headers: dict | None = None,
                 secrets: tuple = ()) -> str:
        resp = self.get(url, params=params, headers=headers, secrets=secrets)
        if resp.encoding is None or resp.encoding.lower() == "iso-8859-1":
            resp.encoding = resp.apparent_encoding or "utf-8"
        return resp.text

    def _read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else float(self.timeout)


def _short(text: str, limit: int = 200) -> str:
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return first[:limit]


def _body_hint(resp: requests.Response, secrets: tuple) -> str:
    """A short, redacted excerpt of an error body (APIs put the reason there)."""
    try:
        body = resp.text
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


__all__ = ["HttpClient", "RetryPolicy", "USER_AGENT", "default_client", "env_url",
           "parse_retry_after", "redact", "redact_url"]
