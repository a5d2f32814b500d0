"""Polygon.io REST: daily bars, dividends, market caps.

For each ticker two aggregate requests (``adjusted=false``: as-traded OHLCV;
``adjusted=true``: split-adjusted close) plus the dividends reference give everything
:class:`MarketData` holds:

- ``close``/``open``/``high``/``low``/``volume``: as traded (the unadjusted request);
- ``splits``: the day-to-day change of unadjusted / adjusted close (4.0 on a 4:1 split),
  read as a simple fraction, so no extra request is needed;
- ``adj_close``: Polygon's adjustment covers splits only, so dividends are folded in the
  way CRSP and Yahoo do it: every close before an ex-date ``e`` is multiplied by
  ``1 - D_e / C_{e-1}``, with ``D_e`` the cash dividend as declared and ``C_{e-1}`` the
  as-traded close the day before (both in the share units of that time).

:func:`polygon_ticker_events` reads symbol changes (FB -> META on 2022-06-09) from the
Ticker Events endpoint, as rows of the symbol-history table (:mod:`symbols`).

The key (``POLYGON_API_KEY``, environment or ``.streamlit/secrets.toml``) is sent as an
``Authorization: Bearer`` header, never in a URL, and only to the configured host: a
``next_url`` pointing elsewhere is refused. Results are cached per ticker and range.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

import pandas as pd

from mltrainer import config
from mltrainer.data.cache import get_cache
from mltrainer.data.http import HttpClient, default_client, env_url, printable
from mltrainer.data.market_data import MarketData, Progress
from mltrainer.data.polygon_bars import bars_frame, dividend_factor, split_coefficients
from mltrainer.data.symbols import COLUMNS as RENAME_COLUMNS
from mltrainer.data.symbols import normalise_symbol
from mltrainer.errors import DataError, SourceError
from mltrainer.validate import DateLike

log = logging.getLogger(__name__)

POLYGON_URL = "https://api.polygon.io"
URL_ENV = "MLTRAINER_POLYGON_URL"
KEY_NAME = "POLYGON_API_KEY"
DEFAULT_YEARS = 2  # the free plan's history; a longer range is passed explicitly
MAX_PAGES = 200  # bound on next_url pagination (a loop in the API must not hang us)
MAX_RESULTS = 200_000  # rows over all pages: a ticker's daily bars since 1970 are ~14,000
MAX_SECONDS = 600.0  # for all pages of one listing (each request has its own deadline)
EVENTS_PATH = "/vX/reference/tickers/{ticker}/events"


def base_url() -> str:
    """Polygon's base URL (``MLTRAINER_POLYGON_URL`` overrides it, e.g. for tests)."""
    return env_url(URL_ENV, POLYGON_URL)


def api_key() -> str:
    """The Polygon key, or SourceError saying where to put one."""
    key = config.api_key(KEY_NAME)
    if not key:
        problem = config.key_problem(KEY_NAME)  # set, but refused: say so, not "set it"
        if problem:
            raise SourceError(problem)
        raise SourceError(
            f"Polygon needs an API key: set {KEY_NAME} in the environment or in "
            ".streamlit/secrets.toml (free keys at polygon.io)"
        )
    return key


class PolygonClient:
    """Thin wrapper: base URL, bearer header, ``next_url`` pagination, shape checks."""

    def __init__(
        self, key: str | None = None, base: str | None = None, http: HttpClient | None = None
    ):
        self.key = key or api_key()
        self.base = (base or base_url()).rstrip("/")
        self.http = http or default_client()

    def get(self, path_or_url: str, params: dict | None = None) -> dict:
        """The JSON object at a path (or a full URL on Polygon's host, e.g. a ``next_url``),
        the key sent as a bearer token; SourceError for another host, a body that is not
        an object, or an error status Polygon reports in the body."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        if urlsplit(url).netloc != urlsplit(self.base).netloc:
            raise SourceError(
                f"Polygon pointed to another host ({urlsplit(url).netloc}); "
                "refusing to send the API key there"
            )
        body = self.http.get_json(
            url, params=params, headers={"Authorization": f"Bearer {self.key}"}, secrets=(self.key,)
        )
        if not isinstance(body, dict):
            raise SourceError(
                f"{self.http_url(url, params)}: expected a JSON object, got {type(body).__name__}"
            )
        if not isinstance(body.get("status"), str):  # Polygon's always has: {} read as no bars
            raise SourceError(
                f"{self.http_url(url, params)}: not a Polygon response (no 'status' text); "
                "a proxy or a captive portal may have answered instead"
            )
        status = printable(str(body["status"]).upper())
        if status in ("ERROR", "NOT_AUTHORIZED", "NOT_FOUND"):
            message = body.get("error") or body.get("message") or status
            raise SourceError(
                f"{self.http_url(url, params)}: Polygon says {status}: "
                f"{printable(config.scrub(str(message), self.key))[:300]}"
            )
        return body

    def paged(self, path: str, params: dict | None = None) -> list[dict]:
        """All ``results`` across ``next_url`` pages: at most MAX_PAGES pages, MAX_RESULTS
        rows and MAX_SECONDS (a server paging on forever, with pages of up to the client's
        size limit or each just inside its deadline, must not fill memory or take hours)."""
        started = time.monotonic()
        body = self.get(path, params)
        results = list(_results(body, self.http_url(path, params)))
        pages = 1
        while body.get("next_url"):
            where = self.http_url(path, params)
            if pages >= MAX_PAGES:
                raise SourceError(f"{where}: more than {MAX_PAGES} pages")
            if len(results) > MAX_RESULTS or time.monotonic() - started > MAX_SECONDS:
                raise SourceError(
                    f"{where}: {len(results):,} rows in {pages} pages and more to come; at most "
                    f"{MAX_RESULTS:,} rows and {MAX_SECONDS:g} s are taken for one request"
                )
            if not isinstance(body["next_url"], str):
                raise SourceError(f"{where}: 'next_url' is not a URL")
            body = self.get(body["next_url"])
            results += _results(body, self.http_url(path, params))
            pages += 1
        return results

    def http_url(self, path_or_url: str, params: dict | None = None) -> str:
        """The full URL of a request with the key removed, for messages."""
        from mltrainer.data.http import redact_url

        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        return redact_url(url, params, self.key)


def _results(body: dict, where: str) -> list:
    results = body.get("results") or []
    if not isinstance(results, list):
        raise SourceError(f"{where}: 'results' is not a list")
    return results


# ------------------------------------------------------------------- requests
def aggs(client: PolygonClient, ticker: str, start: str, end: str, adjusted: bool) -> pd.DataFrame:
    """Daily bars (open, high, low, close, volume) indexed by New York trading date."""
    path = f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
    params = {"adjusted": str(adjusted).lower(), "sort": "asc", "limit": 50000}
    return bars_frame(client.paged(path, params), f"{ticker} ({client.http_url(path, params)})")


def dividends(client: PolygonClient, ticker: str, start: str, end: str) -> pd.Series:
    """Cash dividends by ex-date (as declared, not split-adjusted)."""
    params = {
        "ticker": ticker,
        "ex_dividend_date.gte": start,
        "ex_dividend_date.lte": end,
        "limit": 1000,
        "order": "asc",
    }
    rows = client.paged("/v3/reference/dividends", params)
    amounts: dict[pd.Timestamp, float] = {}
    for row in rows:
        if not isinstance(row, dict):
            where = client.http_url("/v3/reference/dividends", params)
            raise SourceError(f"{where}: a dividend is not an object ({str(row)[:40]!r})")
        if row.get("dividend_type", "CD") not in ("CD", "SC", "LT", "ST"):
            continue  # not a cash payout
        try:
            day = pd.Timestamp(row["ex_dividend_date"]).normalize()
            amounts[day] = amounts.get(day, 0.0) + float(row["cash_amount"])
        except (KeyError, TypeError, ValueError):
            continue
    return pd.Series(amounts, dtype="float64").sort_index()


def daily_bars(
    client: PolygonClient, ticker: str, start: str, end: str, with_dividends: bool = True
) -> pd.DataFrame:
    """One ticker's MarketData fields as columns (see the module docstring)."""
    raw = aggs(client, ticker, start, end, adjusted=False)
    if raw.empty:
        return raw
    adj = aggs(client, ticker, start, end, adjusted=True)["close"].reindex(raw.index)
    frame = raw.copy()
    frame["splits"] = split_coefficients(raw["close"], adj)
    divs = dividends(client, ticker, start, end) if with_dividends else pd.Series(dtype=float)
    frame["dividends"] = divs.reindex(raw.index).fillna(0.0)
    frame["adj_close"] = adj * dividend_factor(raw["close"], frame["dividends"])
    return frame[["open", "high", "low", "close", "adj_close", "volume", "dividends", "splits"]]


def grouped_daily(
    date: DateLike, adjusted: bool = True, client: PolygonClient | None = None
) -> pd.DataFrame:
    """Every US stock's bar on one date (``/v2/aggs/grouped``), indexed by ticker."""
    client = client or PolygonClient()
    day = pd.Timestamp(date).date().isoformat()
    body = client.get(
        f"/v2/aggs/grouped/locale/us/market/stocks/{day}", {"adjusted": str(adjusted).lower()}
    )
    rows = _results(body, client.http_url(f"/v2/aggs/grouped/locale/us/market/stocks/{day}"))
    frame = bars_frame(rows, f"grouped {day}").reset_index(drop=True)
    frame.index = pd.Index([str(r.get("T", "")) for r in rows], name="ticker")
    return frame


def market_caps(
    tickers: str | Iterable[str], client: PolygonClient | None = None, use_cache: bool = True
) -> tuple[dict[str, float], list[str]]:
    """Market cap per ticker from ``/v3/reference/tickers/{T}``; problems as notes."""
    client = client or PolygonClient()
    caps, notes = {}, []
    for ticker in _clean(tickers):

        def produce(t=ticker):
            body = client.get(f"/v3/reference/tickers/{t}")
            results = body.get("results") or {}
            return {"market_cap": results.get("market_cap"), "name": results.get("name")}

        try:
            value = _fetch(f"polygon:reference:{ticker}", produce, "prices", "json", use_cache)
        except (SourceError, DataError) as exc:
            notes.append(f"{ticker}: {exc}")
            continue
        cap = value.get("market_cap")
        if cap:
            caps[ticker] = float(cap)
        else:
            notes.append(f"{ticker}: Polygon has no market cap")
    return caps, notes


# ---------------------------------------------------------------- ticker events
def polygon_ticker_events(
    tickers: str | Iterable[str],
    client: PolygonClient | None = None,
    *,
    progress: Progress | None = None,
    use_cache: bool = True,
    max_failures_in_a_row: int = 10,
) -> tuple[pd.DataFrame, list[str]]:
    """Symbol changes of the companies trading as ``tickers`` today, from Polygon.

    One ``GET /vX/reference/tickers/{T}/events?types=ticker_change`` per ticker, through
    the disk cache (kept until the next index rebalance, like the constituents: a
    company's past symbols do not change). Each event names the ticker used *from* its
    date; two consecutive events give a rename ``old -> new`` dated by the newer one, and
    the earliest event is the listing, not a rename.

    Parameters
    ----------
    tickers : list of str
        Today's symbols (``BRK.B`` spelling); Polygon answers for the company that trades
        under each one now.
    progress : callable(fraction, text), optional
        Called after each ticker.
    max_failures_in_a_row : int
        Stop asking after this many tickers in a row failed (Polygon unreachable, or the
        key refused): with the client's retries each failure can take seconds, and ~500
        of them would hold the caller for an hour.

    Returns
    -------
    renames : DataFrame
        ``old, new, date, kind, source, note`` (kind ``rename``), the columns of
        :data:`mltrainer.data.symbols.COLUMNS`, oldest first; ``attrs["answered"]`` lists
        the tickers Polygon answered for (with or without a rename).
    warnings : list of str
        One per ticker that failed (unknown to Polygon, a server error after the client's
        retries, a malformed body); the others still count.
    """
    client = client or PolygonClient()
    names = list(dict.fromkeys(normalise_symbol(t) for t in _clean(tickers)))  # BRK.B, Polygon's
    rows: list[dict] = []
    warnings: list[str] = []
    answered: list[str] = []
    failed_in_a_row = 0
    for i, ticker in enumerate(names, 1):
        if failed_in_a_row >= max_failures_in_a_row:
            warnings.append(
                f"stopped after {failed_in_a_row} tickers in a row failed; "
                f"{len(names) - i + 1} ticker(s) not asked"
            )
            if progress is not None:
                progress(1.0, "Polygon ticker events: stopped after repeated failures")
            break

        def produce(t=ticker):
            path = EVENTS_PATH.format(ticker=quote(t, safe="."))
            params = {"types": "ticker_change"}
            return ticker_change_events(client.get(path, params), client.http_url(path, params))

        try:
            hit = _fetch_hit(f"polygon:events:{ticker}", produce, "constituents", "json", use_cache)
        except (SourceError, DataError) as exc:
            warnings.append(f"{ticker}: no ticker events ({exc})")
            failed_in_a_row += 1
        else:
            failed_in_a_row = 0
            if hit.warning:
                warnings.append(f"{ticker}: {hit.warning}")
            rows += _rename_rows(ticker, hit.value)
            answered.append(ticker)
        if progress is not None:
            progress(i / len(names), f"Polygon ticker events: {ticker} ({i} of {len(names)})")
    frame = pd.DataFrame(rows, columns=list(RENAME_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    frame.attrs["answered"] = answered
    return frame, warnings


def ticker_change_events(body: dict, where: str = "Polygon") -> dict:
    """The checked content of one Ticker Events response (JSON-ready, for the cache):
    ``name``, ``cik``, ``composite_figi`` and ``events`` as ``[date, ticker]`` pairs,
    oldest first. Anything malformed raises SourceError, so it is never cached."""
    results = body.get("results")
    if not isinstance(results, dict):
        raise SourceError(f"{where}: 'results' is missing or not an object")
    events = results.get("events")
    if not isinstance(events, list):
        raise SourceError(f"{where}: 'results.events' is missing or not a list")
    pairs = []
    for event in events:
        if not isinstance(event, dict):
            raise SourceError(f"{where}: an event is not an object")
        if event.get("type", "ticker_change") != "ticker_change":
            continue  # another event type: only ticker changes are asked for
        change = event.get("ticker_change")
        symbol = change.get("ticker") if isinstance(change, dict) else None
        try:
            day = dt.date.fromisoformat(str(event.get("date")))
        except ValueError:
            raise SourceError(
                f"{where}: an event has no valid date ({str(event.get('date'))[:40]!r})"
            ) from None
        if not isinstance(symbol, str) or not symbol.strip():
            raise SourceError(f"{where}: the event of {day} has no 'ticker_change.ticker'")
        pairs.append([day.isoformat(), symbol.strip()])
    pairs.sort()
    return {
        key: str(results[key]) if results.get(key) is not None else None
        for key in ("name", "cik", "composite_figi")
    } | {"events": pairs}


def _rename_rows(ticker: str, value: dict) -> list[dict]:
    about = "; ".join(
        [value["name"]] * bool(value.get("name"))
        + [
            f"{label} {value[k]}"
            for k, label in (("cik", "CIK"), ("composite_figi", "FIGI"))
            if value.get(k)
        ]
    )
    rows = []
    for (_, old), (day, new) in zip(value["events"], value["events"][1:], strict=False):
        old, new = normalise_symbol(old), normalise_symbol(new)
        if old != new:
            rows.append(
                {
                    "old": old,
                    "new": new,
                    "date": day,
                    "kind": "rename",
                    "source": f"Polygon ticker events for {ticker}",
                    "note": about,
                }
            )
    return rows


# ---------------------------------------------------------------------- loader
def load_polygon(
    tickers: str | Iterable[str],
    start: DateLike | None = None,
    end: DateLike | None = None,
    progress: Progress | None = None,
    *,
    client: PolygonClient | None = None,
    use_cache: bool = True,
    with_dividends: bool = True,
    max_failures_in_a_row: int = 10,
) -> MarketData:
    """Daily bars of ``tickers`` from Polygon as one :class:`MarketData`.

    Parameters
    ----------
    tickers : list of str
        ``BRK.B`` spelling (Polygon's own).
    start, end : date-like, optional
        Inclusive range; default the last two years (the free plan's depth).
    progress : callable(fraction, text), optional
        Called after each ticker (a Streamlit ``st.progress`` bar's ``.progress`` fits).
    max_failures_in_a_row : int
        Stop asking Polygon after this many tickers in a row failed (unreachable, key
        refused): with the client's retries each failure takes seconds, and ~500 of them
        held the caller for an hour. The remaining tickers still come from the cache
        (fresh or stale); the others are named in one warning.

    A ticker that fails or has no bars is listed in ``warnings``; if every ticker fails,
    SourceError. A missing key raises SourceError before any request.
    """
    client = client or PolygonClient()
    names = _clean(tickers)
    if not names:
        raise DataError("no tickers given for Polygon")
    first, last = _range(start, end)
    frames, warnings, not_asked, failed_in_a_row = {}, [], [], 0
    for i, ticker in enumerate(names, 1):
        stopped = failed_in_a_row >= max_failures_in_a_row

        def produce(t=ticker, stopped=stopped):
            if stopped:  # the cache's stale copy, if any, is served instead
                raise SourceError(f"not asked: {max_failures_in_a_row} tickers in a row failed")
            return daily_bars(client, t, first, last, with_dividends)

        key = f"polygon:daily:{ticker}:{first}:{last}:{'tr' if with_dividends else 'px'}"
        try:
            hit = _fetch_hit(key, produce, "prices", "arrow", use_cache)
        except (SourceError, DataError) as exc:
            if stopped:
                not_asked.append(ticker)
            else:
                warnings.append(f"{ticker}: skipped ({exc})")
                failed_in_a_row += 1
        else:
            if not stopped:  # a stale copy served because Polygon failed is a failure too
                failed_in_a_row = failed_in_a_row + 1 if hit.stale and hit.warning else 0
            _keep(ticker, hit, frames, warnings, f"from {first} to {last}")
        if progress is not None:
            progress(i / len(names), f"Polygon: {ticker} ({i} of {len(names)})")
    if not_asked:
        shown = ", ".join(not_asked[:10]) + (", ..." if len(not_asked) > 10 else "")
        warnings.insert(
            0,
            f"stopped asking Polygon after {max_failures_in_a_row} tickers in a row failed; "
            f"{len(not_asked)} ticker(s) neither asked nor cached: {shown}",
        )
    if not frames:
        shown = "; ".join(warnings[:3])
        raise SourceError(f"Polygon returned no data for any of {len(names)} ticker(s): {shown}")
    return assemble(frames, "polygon", warnings)


def _keep(ticker: str, hit, frames: dict, warnings: list, span: str) -> None:
    if hit.warning:
        warnings.append(f"{ticker}: {hit.warning}")
    if hit.value.empty:
        warnings.append(f"{ticker}: Polygon has no bars {span}")
    else:
        frames[ticker] = hit.value


def assemble(frames: dict[str, pd.DataFrame], source: str, warnings: Iterable[str]) -> MarketData:
    """Per-ticker frames (columns = MarketData fields) -> one MarketData."""
    from mltrainer.data.market_data import from_long

    long = pd.concat(
        [f.rename_axis("date").reset_index().assign(ticker=t) for t, f in frames.items()],
        ignore_index=True,
    )
    data = from_long(
        long, source=source, as_of=pd.Timestamp.now().floor("s"), warnings=tuple(warnings)
    )
    from dataclasses import replace

    data = replace(
        data,
        dividends=None if data.dividends is None else data.dividends.fillna(0.0),
        splits=None if data.splits is None else data.splits.fillna(1.0),
    )
    return data.select(tickers=list(frames))  # the caller's ticker order, not alphabetical


def _fetch_hit(key, produce, kind, fmt, use_cache):
    if not use_cache:
        from mltrainer.data.cache import CacheHit

        return CacheHit(produce(), 0.0, float("inf"), False)
    return get_cache().fetch(key, produce, kind=kind, fmt=fmt)


def _fetch(key, produce, kind, fmt, use_cache):
    return _fetch_hit(key, produce, kind, fmt, use_cache).value


def _clean(tickers) -> list[str]:
    if isinstance(tickers, str):
        tickers = tickers.replace(",", " ").split()
    return list(dict.fromkeys(str(t).strip().upper() for t in tickers or () if str(t).strip()))


def _range(start, end) -> tuple[str, str]:
    last = pd.Timestamp(end).date() if end is not None else dt.date.today()
    first = (
        pd.Timestamp(start).date()
        if start is not None
        else (pd.Timestamp(last) - pd.DateOffset(years=DEFAULT_YEARS)).date()
    )
    if first > last:
        raise DataError(f"start {first} is after end {last}")
    return first.isoformat(), last.isoformat()


__all__ = [
    "POLYGON_URL",
    "PolygonClient",
    "api_key",
    "assemble",
    "bars_frame",
    "daily_bars",
    "dividend_factor",
    "grouped_daily",
    "load_polygon",
    "market_caps",
    "polygon_ticker_events",
    "split_coefficients",
    "ticker_change_events",
]
