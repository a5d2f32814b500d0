"""Yahoo Finance through yfinance: batched daily bars, with honest per-ticker reporting.

Yahoo's ``Open/High/Low/Close/Volume`` and ``Dividends`` are split-adjusted (to today)
and ``Adj Close`` is split- and dividend-adjusted. :class:`MarketData` wants as-traded
prices, so each ticker is downloaded from ``start`` to today with its actions, and the
split adjustment is undone: as-traded price = Yahoo price x (product of split
coefficients after that day), dividends likewise, volume divided by the same factor.
Downloading to today is what makes that product complete; the requested ``end`` is
applied afterwards.

yf.download never raises for one bad ticker: it logs "['MSFT']: YFRateLimitError(...)"
on the ``yfinance`` logger and returns NaN columns. :func:`yf_download` captures those
lines (:func:`_logged_failures`: yfinance 1.7 offers no structured route, see there) so
rate-limited tickers are retried with backoff and the others are reported in
``MarketData.warnings`` (never silently dropped). The download function is injectable,
which is how the tests exercise all of this without a network.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from mltrainer import config
from mltrainer.data.cache import CacheHit, get_cache
from mltrainer.data.http import RetryPolicy
from mltrainer.data.market_data import MarketData, Progress
from mltrainer.data.polygon import assemble
from mltrainer.errors import DataError, SourceError
from mltrainer.validate import DateLike

log = logging.getLogger(__name__)

DEFAULT_START = "2000-01-01"
BATCH_SIZE = 50
_RATE_LIMIT = re.compile(r"(?i)YFRateLimitError|too many requests|rate limit")
_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
    "Dividends": "dividends",
    "Stock Splits": "splits",
}

Download = Callable[[list, str, str], tuple]  # (yahoo tickers, start, end) -> (frame, errors)


# ------------------------------------------------------------------ spelling
def to_yahoo(ticker: str) -> str:
    """Index spelling -> Yahoo's: share classes use a dash (``BRK.B`` -> ``BRK-B``)."""
    return str(ticker).strip().upper().replace(".", "-")


def from_yahoo(symbol: str) -> str:
    """Yahoo's spelling -> the index's (``BRK-B`` -> ``BRK.B``); ``^GSPC`` unchanged."""
    return str(symbol).strip().upper().replace("-", ".")


def is_rate_limit(message: object) -> bool:
    """Whether an error (an exception or its logged text) is Yahoo refusing for rate:
    ``YFRateLimitError``, "Too Many Requests" or "rate limit" in its name or text."""
    return bool(_RATE_LIMIT.search(f"{type(message).__name__}: {message}"))


# ------------------------------------------------------------- the download
_LOCK = threading.Lock()  # the capture handler sees one download at a time


def _logged_failures(message: str) -> dict[str, str]:
    """{ticker: error} from one of yf.download's failure lines, "['A', 'B']: Error(...)";
    empty for any other line.

    Reading the log is the only route to per-ticker errors in yfinance 1.7: download()
    keeps them in a private per-call context (``multi._DownloadCtx``; the old
    ``shared._ERRORS`` is no longer written), has no ``raise_errors`` (proposed upstream
    in ranaroussi/yfinance#2396, not in 1.7), and ``Ticker.history``'s exceptions
    switch (``yf.config.debug.hide_exceptions``) is process-wide and does not reach
    download(), which catches every exception itself. Should the line's format
    change, failures show as "Yahoo sent no rows" and are not retried as rate limits.
    """
    m = re.match(r"^\s*(\[[^\]]*\])\s*:\s*(.*)$", message, re.S)
    if not m:
        return {}
    try:
        symbols = ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return {}
    return {str(sym).upper(): m.group(2).strip() for sym in symbols}


class _Capture(logging.Handler):
    """Collects yf.download's per-ticker failures from the ``yfinance`` logger."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.update(_logged_failures(record.getMessage()))


def yf_download(tickers: list[str], start: str, end: str) -> tuple[pd.DataFrame, dict]:
    """The real download: ``yf.download`` (ticker-grouped, unadjusted plus Adj Close,
    with dividends and splits, threaded) and the per-ticker errors it logged."""
    import yfinance as yf

    capture = _Capture()
    logger = logging.getLogger("yfinance")
    with _LOCK, warnings.catch_warnings():
        # yfinance's own use of deprecated pandas API (rename(inplace=True)) is not the
        # user's concern: it printed a Pandas4Warning over every Yahoo load
        warnings.filterwarnings("ignore", module=r"yfinance(\.|$)")
        logger.addHandler(capture)
        try:
            frame = yf.download(
                tickers,
                start=start,
                end=end,
                group_by="ticker",
                auto_adjust=False,
                actions=True,
                threads=True,
                progress=False,
                multi_level_index=True,
                timeout=20,
            )
        finally:
            logger.removeHandler(capture)
    return (frame if frame is not None else pd.DataFrame()), capture.errors


# -------------------------------------------------------------- conversion
def frame_to_bars(frame: pd.DataFrame, yahoo_tickers: list[str]) -> dict[str, pd.DataFrame]:
    """A yf.download frame -> {yahoo ticker: frame of MarketData fields, as traded}.

    Tickers whose columns are missing or hold no close at all are left out (the caller
    reports them). Rows without a close (the union index of other tickers) are dropped.
    """
    out: dict[str, pd.DataFrame] = {}
    if frame is None or frame.empty:
        return out
    multi = isinstance(frame.columns, pd.MultiIndex)
    if multi and not set(frame.columns.get_level_values(0)) & set(yahoo_tickers):
        frame = frame.swaplevel(0, 1, axis=1)  # group_by="column" layout
    for sym in yahoo_tickers:
        if multi:
            if sym not in frame.columns.get_level_values(0):
                continue
            sub = frame[sym]
        elif len(yahoo_tickers) == 1:
            sub = frame
        else:
            raise DataError("a yfinance frame for several tickers needs (Ticker, Price) columns")
        bars = _one(sub)
        if bars is not None:
            out[sym] = bars
    return out


def _one(sub: pd.DataFrame) -> pd.DataFrame | None:
    cols = {_FIELDS[c]: sub[c] for c in sub.columns if c in _FIELDS}
    if "close" not in cols and "adj_close" not in cols:
        return None
    bars = pd.DataFrame(cols).astype("float64")
    bars.index = pd.DatetimeIndex(pd.to_datetime(bars.index), name="date")
    if bars.index.tz is not None:
        bars.index = bars.index.tz_localize(None)
    bars.index = bars.index.normalize()
    key = "close" if "close" in bars else "adj_close"
    bars = bars[bars[key].notna()]
    if bars.empty:
        return None
    bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    if "adj_close" not in bars:
        bars["adj_close"] = bars["close"]
    if "close" not in bars:
        bars["close"] = bars["adj_close"]
    splits = bars["splits"] if "splits" in bars else pd.Series(0.0, index=bars.index)
    coef = splits.fillna(0.0).where(lambda s: s > 0, 1.0)  # Yahoo writes 0 on ordinary days
    # product of coefficients strictly after each day
    factor = coef.iloc[::-1].cumprod().shift(1, fill_value=1.0).iloc[::-1]
    for name in ("open", "high", "low", "close"):
        if name in bars:
            bars[name] = bars[name] * factor
    if "volume" in bars:
        bars["volume"] = bars["volume"] / factor
    bars["splits"] = coef
    # Yahoo's dividends are split-adjusted too (AAPL's $0.82 of Aug 2020 shows as $0.205)
    bars["dividends"] = bars["dividends"].fillna(0.0) * factor if "dividends" in bars else 0.0
    for name in ("open", "high", "low", "volume"):
        if name not in bars:
            bars[name] = np.nan
    return bars[["open", "high", "low", "close", "adj_close", "volume", "dividends", "splits"]]


def quality_warnings(bars: dict[str, pd.DataFrame]) -> list[str]:
    """Partial histories: days missing inside a ticker's own range, or a history that
    stops well before the others' (delisted or stale)."""
    if not bars:
        return []
    last = max(f.index.max() for f in bars.values())
    calendar = pd.DatetimeIndex(sorted(set().union(*[f.index for f in bars.values()])))
    notes = []
    for ticker, frame in bars.items():
        lo, hi = frame.index.min(), frame.index.max()
        span = calendar[(calendar >= lo) & (calendar <= hi)]
        gaps = span.difference(frame.index)
        if len(gaps):
            notes.append(
                f"{ticker}: partial history, {len(gaps)} trading day(s) without a "
                f"price between {lo.date()} and {hi.date()} (first {gaps[0].date()})"
            )
        behind = calendar[calendar > hi]
        if len(behind) > 5:
            notes.append(
                f"{ticker}: partial history, ends on {hi.date()} while others run to "
                f"{last.date()} (delisted or no recent data)"
            )
    return notes


# ------------------------------------------------------------------ loader
def load_yahoo(
    tickers: str | Iterable[str],
    start: DateLike | None = None,
    end: DateLike | None = None,
    progress: Progress | None = None,
    *,
    download: Download | None = None,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    use_cache: bool = True,
) -> MarketData:
    """Daily bars of ``tickers`` (index spelling, e.g. ``BRK.B``) from Yahoo Finance.

    Parameters
    ----------
    tickers : list of str, or one string of them separated by commas or spaces
    start, end : date-like, optional
        Inclusive range; default 2000-01-01 to today.
    progress : callable(fraction, text), optional
        Called after each batch (a Streamlit ``st.progress`` bar's ``.progress`` fits).
    download : callable, optional
        ``(yahoo_tickers, start, end_exclusive) -> (frame, {ticker: error})``; default
        :func:`yf_download`.

    Each ticker is cached on its own (kind ``prices``: fresh until the next close), so a
    basket that grows by one ticker downloads one ticker. Tickers with no data, partial
    histories and stale cache copies served after a failure are listed in ``warnings``;
    if no ticker has data, SourceError.
    """
    names = _clean(tickers)
    if not names:
        raise DataError("no tickers given for Yahoo")
    first = pd.Timestamp(start or DEFAULT_START).normalize()
    last = pd.Timestamp(end).normalize() if end is not None else pd.Timestamp(dt.date.today())
    if first > last:
        raise DataError(f"start {first.date()} is after end {last.date()}")
    policy = retry or RetryPolicy(max_attempts=4, backoff=2.0, max_backoff=60.0)
    cache = get_cache() if use_cache else None
    keys = {t: f"yahoo:daily:{t}:{first.date()}" for t in names}

    need = names
    if cache is not None:
        need = [t for t in names if (h := cache.get(keys[t])) is None or h.stale]
    fetched, errors = _download_needed(need, first, download, batch_size, policy, sleep, progress)

    frames, warnings = {}, []
    for ticker in names:

        def produce(t=ticker):
            if t in fetched:
                return fetched[t]
            raise SourceError(f"Yahoo returned no data for {t} ({errors.get(t, 'no rows')})")

        try:
            hit = (
                cache.fetch(keys[ticker], produce, kind="prices", fmt="arrow")
                if cache is not None
                else CacheHit(produce(), 0.0, float("inf"), False)
            )
        except (SourceError, DataError) as exc:
            warnings.append(str(exc))
            continue
        if hit.warning:
            warnings.append(f"{ticker}: {hit.warning}")
        bars = hit.value.loc[(hit.value.index >= first) & (hit.value.index <= last)]
        if bars.empty:
            warnings.append(f"{ticker}: no Yahoo data between {first.date()} and {last.date()}")
            continue
        frames[ticker] = bars
    if not frames and download is None and config.offline():
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise SourceError(f"Yahoo {config.OFFLINE_REASON}; the cache has none of: {shown}")
    if not frames:
        raise SourceError(
            f"Yahoo returned no data for any of {len(names)} ticker(s): " + "; ".join(warnings[:3])
        )
    return assemble(frames, "yahoo", warnings + quality_warnings(frames))


def _download_needed(
    need: list[str],
    first: pd.Timestamp,
    download: Download | None,
    batch_size: int,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    progress: Progress | None,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """:func:`_download_all` of the tickers the cache cannot serve fresh, through tomorrow
    (yfinance's end is exclusive, so every split is known); under ``MLTRAINER_OFFLINE``
    the real download is not called and each ticker's error says why."""
    if download is None and config.offline():
        return {}, dict.fromkeys(need, config.OFFLINE_REASON)
    until = (pd.Timestamp(dt.date.today()) + pd.Timedelta(days=1)).date().isoformat()
    start = first.date().isoformat()
    download = download or yf_download
    return _download_all(need, start, until, download, batch_size, policy, sleep, progress)


def _download_all(
    names: list[str],
    start: str,
    until: str,
    download: Download,
    batch_size: int,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    progress: Progress | None,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Batches of yahoo tickers; rate-limited ones retried with backoff, bounded."""
    fetched: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    batches = [names[i : i + batch_size] for i in range(0, len(names), max(1, batch_size))]
    for b, batch in enumerate(batches, 1):
        todo = {to_yahoo(t): t for t in batch}
        for attempt in range(1, policy.max_attempts + 1):
            limited: list[str] = []
            try:
                frame, errs = download(list(todo), start, until)
            except Exception as exc:  # noqa: BLE001 (yfinance raises many kinds)
                # YFRateLimitError, or the network failing under it: retry the batch
                errs = {sym: f"{type(exc).__name__}: {exc}" for sym in todo}
                limited = list(todo)
            else:
                errs = {str(k).upper(): str(v) for k, v in (errs or {}).items()}
                for sym, bars in frame_to_bars(frame, list(todo)).items():
                    fetched[todo[sym]] = bars
                for sym in todo:
                    if todo[sym] in fetched:
                        continue
                    if is_rate_limit(errs.get(sym, "")):
                        limited.append(sym)
                    else:
                        errors[todo[sym]] = errs.get(sym) or "Yahoo sent no rows"
            if not limited:
                break
            if attempt == policy.max_attempts:
                for sym in limited:
                    errors[todo[sym]] = (
                        f"{errs.get(sym, 'failed')}; gave up after {policy.max_attempts} attempts"
                    )
                break
            wait = policy.delay(attempt)
            log.warning(
                "Yahoo: %d ticker(s) rate limited or failed (%s); retrying in %.0f s",
                len(limited),
                errs.get(limited[0], "")[:120],
                wait,
            )
            sleep(wait)
            todo = {sym: todo[sym] for sym in limited}
        if progress is not None:
            progress(b / len(batches), f"Yahoo: batch {b} of {len(batches)}")
    return fetched, errors


def yahoo_market_caps(
    tickers: str | Iterable[str],
    ticker_factory: Callable[[str], Any] | None = None,
    use_cache: bool = True,
) -> tuple[dict[str, float], list[str]]:
    """Market cap per ticker (index spelling) from yfinance's ``fast_info``, in the
    quote currency, and a note for each ticker without one.

    ``ticker_factory`` makes the object whose ``fast_info["marketCap"]`` is read from a
    Yahoo symbol (default ``yf.Ticker``; the tests inject one). Each answer is cached
    (kind ``prices``).
    """
    if ticker_factory is None and config.offline():
        ticker_factory = _offline_ticker
    elif ticker_factory is None:
        import yfinance as yf

        ticker_factory = yf.Ticker
    caps, notes = {}, []
    for ticker in _clean(tickers):

        def produce(t=ticker):
            try:
                cap = ticker_factory(to_yahoo(t)).fast_info["marketCap"]
            except Exception as exc:  # noqa: BLE001 (yfinance raises many kinds)
                raise SourceError(f"Yahoo has no market cap for {t} ({exc})") from None
            return {"market_cap": None if cap is None else float(cap)}

        try:
            if use_cache:
                value = (
                    get_cache()
                    .fetch(f"yahoo:marketcap:{ticker}", produce, kind="prices", fmt="json")
                    .value
                )
            else:
                value = produce()
        except SourceError as exc:
            notes.append(str(exc))
            continue
        if value.get("market_cap"):
            caps[ticker] = value["market_cap"]
        else:
            notes.append(f"Yahoo has no market cap for {ticker}")
    return caps, notes


def _offline_ticker(symbol: str) -> Any:
    raise SourceError(config.OFFLINE_REASON)


def _clean(tickers: str | Iterable[str] | None) -> list[str]:
    if isinstance(tickers, str):
        tickers = tickers.replace(",", " ").split()
    return list(dict.fromkeys(from_yahoo(t) for t in tickers or () if str(t).strip()))


__all__ = [
    "from_yahoo",
    "frame_to_bars",
    "is_rate_limit",
    "load_yahoo",
    "quality_warnings",
    "to_yahoo",
    "yahoo_market_caps",
    "yf_download",
]
