"""FRED (Federal Reserve Bank of St. Louis) series: the API with a key, the CSV without.

With ``FRED_API_KEY`` set, ``/fred/series/observations`` (JSON) is used; FRED only
accepts the key as a query parameter, so :mod:`mltrainer.data.http` strips it from every
error text and log line, and the cache key is the series id alone. Without a key, the
public CSV download ``fredgraph.csv?id=SERIES`` (``observation_date,SERIES``) is used.
Either way FRED's missing values ("." in JSON, empty in CSV) become NaN.

A series is cached whole (one entry per id, sliced to ``start``/``end`` on the way out)
and stays fresh for one period of its frequency (daily: one day, monthly: 31 days; the
frequency is read from the dates the first time, or passed in).
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import pandas as pd

from mltrainer import config
from mltrainer.data.cache import expiry_for, get_cache
from mltrainer.data.http import HttpClient, default_client, env_url, redact_url
from mltrainer.errors import DataError, SourceError
from mltrainer.validate import DateLike

log = logging.getLogger(__name__)

FRED_API_URL = "https://api.stlouisfed.org"
FRED_CSV_URL = "https://fred.stlouisfed.org"
API_ENV = "MLTRAINER_FRED_URL"
CSV_ENV = "MLTRAINER_FRED_CSV_URL"  # falls back to MLTRAINER_FRED_URL: one local test server
KEY_NAME = "FRED_API_KEY"
PAGE = 100_000  # FRED's maximum observations per request
MAX_PAGES = 20  # the longest series (daily since 1954, ~26k rows) take one page
_ID = re.compile(r"^[A-Z0-9_.]{1,40}$")


def api_url() -> str:
    """The FRED API's base URL (``MLTRAINER_FRED_URL`` overrides it, e.g. for tests)."""
    return env_url(API_ENV, FRED_API_URL)


def csv_url() -> str:
    """The base URL of FRED's CSV download (``MLTRAINER_FRED_CSV_URL``, else
    ``MLTRAINER_FRED_URL``, overrides it)."""
    return env_url(CSV_ENV, env_url(API_ENV, FRED_CSV_URL))


def check_series_id(series_id: str) -> str:
    """The series id upper-cased, or DataError if it is not 1-40 letters, digits, dots
    or underscores (it goes into a URL and a cache key)."""
    sid = str(series_id).strip().upper()
    if not _ID.match(sid):
        raise DataError(
            f"FRED series id {series_id!r} is not valid: use letters, digits and "
            "underscores, e.g. SP500, DGS10, CPIAUCSL"
        )
    return sid


# --------------------------------------------------------------------- parsing
def parse_observations(body: object, series_id: str, where: str) -> tuple[pd.Series, int]:
    """An observations JSON page -> (series, total count FRED reports); SourceError for
    anything malformed (so a stale cached copy is served instead, as for an HTTP 500)."""
    if not isinstance(body, dict) or not isinstance(body.get("observations"), list):
        raise SourceError(f"{where}: not a FRED observations response (no 'observations' list)")
    obs = body["observations"]
    odd = next((o for o in obs if not isinstance(o, dict)), None)
    if odd is not None:
        raise SourceError(f"{where}: an observation is not an object ({str(odd)[:40]!r})")
    count = body.get("count")
    if count is None:
        count = len(obs)
    elif isinstance(count, bool) or not isinstance(count, int | float) or count != int(count):
        raise SourceError(f"{where}: 'count' is not a whole number ({str(count)[:40]!r})")
    if count < 0:
        raise SourceError(f"{where}: 'count' is negative ({count})")
    dates = pd.to_datetime(
        [o.get("date") if isinstance(o.get("date"), str) else None for o in obs], errors="coerce"
    )
    values = _values([o.get("value") for o in obs], dates, where)
    return _series(dates, values, series_id, where), int(count)


def parse_fred_csv(text: str, series_id: str, where: str) -> pd.Series:
    """FRED's CSV (``observation_date,SERIES`` or the older ``DATE,SERIES``) -> series."""
    try:
        frame = pd.read_csv(io.StringIO(text), na_values=["."], keep_default_na=True, dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SourceError(f"{where}: not a FRED CSV ({str(exc).splitlines()[0]})") from None
    cols = [c.strip() for c in frame.columns]
    if len(cols) < 2 or cols[0].lower() not in ("observation_date", "date"):
        head = text[:60].replace("\n", " ")
        raise SourceError(
            f"{where}: not a FRED CSV (expected observation_date,{series_id}; got {head!r})"
        )
    value_col = next((c for c in frame.columns if c.strip().upper() == series_id), frame.columns[1])
    dates = pd.to_datetime(frame.iloc[:, 0], errors="coerce")
    return _series(dates, _values(frame[value_col].tolist(), dates, where), series_id, where)


def _values(raw: list, dates, where: str) -> np.ndarray:
    """FRED's values as floats, NaN where FRED has none ("." or empty, null in JSON, an
    empty CSV cell); SourceError for any other value that is not a number, which used to
    become NaN as well: a junk answer was cached over a good copy as a series of gaps."""
    out = np.full(len(raw), np.nan)
    for i, value in enumerate(raw):
        if value is None or value != value or str(value).strip() in (".", ""):  # NaN != NaN
            continue
        try:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise TypeError
            out[i] = float(value)
        except (TypeError, ValueError, OverflowError):
            day = str(pd.Timestamp(dates[i]).date()) if pd.notna(dates[i]) else f"row {i + 1}"
            raise SourceError(
                f"{where}: the value of {day} is not a number ({str(value)[:40]!r})"
            ) from None
    return out


def _series(dates, values: np.ndarray, series_id: str, where: str) -> pd.Series:
    dates = pd.DatetimeIndex(dates)
    if dates.isna().any():
        raise SourceError(
            f"{where}: {int(dates.isna().sum())} observation(s) have no readable date"
        )
    infinite = np.isinf(values)
    if infinite.any():  # FRED marks a missing value "."; an infinity is a broken answer
        first = int(np.flatnonzero(infinite)[0])
        raise SourceError(
            f"{where}: {int(infinite.sum())} observation(s) are infinite "
            f"(first: {dates[first]:%Y-%m-%d} = {values[first]})"
        )
    series = pd.Series(values, index=dates.rename("date"), name=series_id, dtype="float64")
    return series[~series.index.duplicated(keep="last")].sort_index()


def infer_frequency(series: pd.Series) -> str:
    """FRED frequency code (D, W, BW, M, Q, SA, A) from the median spacing of dates."""
    if len(series) < 3:
        return "D"
    days = float(np.median(np.diff(series.index.values).astype("timedelta64[D]").astype(float)))
    for code, limit in (("D", 4), ("W", 10), ("BW", 20), ("M", 45), ("Q", 120), ("SA", 240)):
        if days <= limit:
            return code
    return "A"


# -------------------------------------------------------------------- fetching
def fetch_api(series_id: str, key: str, client: HttpClient | None = None) -> pd.Series:
    """Every observation through the API (paged by ``offset``, at most MAX_PAGES pages)."""
    client = client or default_client()
    url = api_url() + "/fred/series/observations"
    parts, offset = [], 0
    for _ in range(MAX_PAGES):
        params = {
            "series_id": series_id,
            "api_key": key,
            "file_type": "json",
            "limit": PAGE,
            "offset": offset,
        }
        body = client.get_json(url, params=params, secrets=(key,))
        where = redact_url(url, params, key)
        part, count = parse_observations(body, series_id, where)
        if count > MAX_PAGES * PAGE:
            raise SourceError(
                f"{where}: FRED says the series has {count} observations; at most "
                f"{MAX_PAGES * PAGE} ({MAX_PAGES} pages) are read"
            )
        parts.append(part)
        offset += PAGE
        if offset >= count or part.empty:
            break  # always within MAX_PAGES pages, since count <= MAX_PAGES * PAGE
    series = pd.concat(parts) if len(parts) > 1 else parts[0]
    return series[~series.index.duplicated(keep="last")].sort_index().rename(series_id)


def fetch_csv(series_id: str, client: HttpClient | None = None) -> pd.Series:
    """Every observation through the public CSV download (no key needed)."""
    client = client or default_client()
    url = csv_url() + "/graph/fredgraph.csv"
    params = {"id": series_id}
    text = client.get_text(url, params=params)
    series = parse_fred_csv(text, series_id, redact_url(url, params))
    if not text.endswith("\n"):  # FRED ends its CSV with one; a body sent with no
        # Content-Length and cut mid-line read as a shorter series with a wrong last value
        raise SourceError(
            f"{redact_url(url, params)}: the CSV does not end with a line break "
            f"(last line {text.splitlines()[-1][:40]!r}): it looks cut short"
        )
    return series


def load_fred(
    series_id: str,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    frequency: str | None = None,
    client: HttpClient | None = None,
    use_cache: bool = True,
) -> pd.Series:
    """A FRED series by id, float values (NaN where FRED has none), DatetimeIndex.

    ``start``/``end`` slice inclusively. ``series.attrs`` carries ``source`` (api or
    csv) and ``warning`` (set when a stale cached copy was served because FRED failed).
    """
    sid = check_series_id(series_id)
    key = config.api_key(KEY_NAME)

    def produce() -> pd.DataFrame:
        series = fetch_api(sid, key, client) if key else fetch_csv(sid, client)
        if series.empty:
            raise SourceError(f"FRED returned no observations for {sid}")
        return series.to_frame(sid)

    warning = None
    if use_cache:
        cache = get_cache()
        cache_key = f"fred:series:{sid}"
        previous = cache.get(cache_key)
        freq = frequency or (infer_frequency(previous.value[sid]) if previous else "D")
        hit = cache.fetch(
            cache_key,
            produce,
            kind="fred",
            fmt="arrow",
            expires_at=expiry_for("fred", frequency=freq),
        )
        frame, warning = hit.value, hit.warning
    else:
        frame = produce()
    series = frame[sid].astype("float64").rename(sid)
    series.index = pd.DatetimeIndex(series.index, name="date")
    if start is not None:
        series = series[series.index >= pd.Timestamp(start)]
    if end is not None:
        series = series[series.index <= pd.Timestamp(end)]
    series.attrs["source"] = "fred-api" if key else "fred-csv"
    if warning:
        log.warning("FRED %s: %s", sid, warning)
        series.attrs["warning"] = warning
    return series


__all__ = [
    "FRED_API_URL",
    "FRED_CSV_URL",
    "check_series_id",
    "fetch_api",
    "fetch_csv",
    "infer_frequency",
    "load_fred",
    "parse_fred_csv",
    "parse_observations",
]
