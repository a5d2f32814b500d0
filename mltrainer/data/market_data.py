"""The one container every data source returns and every model reads.

Wide frames (trading dates x tickers) for open, high, low, close, adjusted close and
volume, plus what was paid or split on each day, and metadata saying where the data
came from and how fresh it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.errors import DataError

# No listed share has traded near this (BRK.A peaked below 1e6): a larger number is a
# corrupted value (1e308, an overflow) that would turn every return into nonsense.
MAX_PRICE = 1e7
_PRICE_FIELDS = ("open", "high", "low", "close", "adj_close")

FIELDS = ("open", "high", "low", "close", "adj_close", "volume")
UNKNOWN_SECTOR = "Unknown"  # a company's sector where no list can place it

# A loader's progress callback: (fraction done, text); a Streamlit ``st.progress`` bar's
# ``.progress`` fits.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MarketData:
    """Daily bars as wide frames, one per field, sharing one index and one column set.

    Attributes
    ----------
    open, high, low, close : DataFrame
        As-traded prices (not split-adjusted). Open, high and low are all-NaN where a
        source has no such field, and close is then the adjusted close (the bundled
        skfolio prices carry only an adjusted close: :meth:`from_close`).
    adj_close : DataFrame
        Split- and dividend-adjusted close; the series returns are computed from.
    volume : DataFrame
        Shares traded, as reported (not split-adjusted).
    dividends, splits : DataFrame or None
        Cash dividend paid and split coefficient (1.0 on ordinary days), where known.
    source : str
        Which source produced the data (``local``, ``bundled``, ``yahoo``, ``polygon``).
    as_of : Timestamp
        When the data was produced (file time, fetch time).
    sectors : dict
        Ticker -> GICS sector, where the source or the universe knows it (today's).
    sector_periods : tuple of (Timestamp, dict), or None
        Point-in-time sectors where a membership source knows them: from each date, the
        tickers' sectors until the next date (REITs are Financials before 2016-09-01);
        empty when only ``sectors`` is known (:meth:`sector_spans`). None: to be dated on
        first use (the loaders' setting: the membership files then load only for what
        needs them), from ``sector_anchors``.
    sector_anchors : dict
        Ticker -> the date on which its key is the company's symbol (its last price date
        in what was loaded, before any selection), for dating its sectors.
    warnings : tuple of str
        Problems the user should see (stale cache served, tickers skipped, ...).
    """

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    adj_close: pd.DataFrame
    volume: pd.DataFrame
    dividends: pd.DataFrame | None = None
    splits: pd.DataFrame | None = None
    source: str = "unknown"
    as_of: pd.Timestamp | None = None
    sectors: dict = field(default_factory=dict)
    warnings: tuple = ()
    sector_periods: tuple | None = ()
    sector_anchors: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ref = self.adj_close
        if not isinstance(ref.index, pd.DatetimeIndex):
            raise DataError("MarketData needs a DatetimeIndex of trading dates")
        if not ref.index.is_monotonic_increasing or ref.index.has_duplicates:
            raise DataError("MarketData dates must be sorted and unique")
        for name in FIELDS[:-1] + ("volume",):
            frame = getattr(self, name)
            if not frame.index.equals(ref.index) or not frame.columns.equals(ref.columns):
                raise DataError(f"MarketData field '{name}' is not aligned with adj_close")
        for name in ("dividends", "splits"):
            frame = getattr(self, name)
            if frame is not None and (
                not frame.index.equals(ref.index) or not frame.columns.equals(ref.columns)
            ):
                raise DataError(f"MarketData field '{name}' is not aligned with adj_close")

    # ------------------------------------------------------------------ basics
    @property
    def tickers(self) -> list[str]:
        """The column labels, in panel order."""
        return list(self.adj_close.columns)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The trading dates (sorted, unique)."""
        return self.adj_close.index

    @property
    def n_tickers(self) -> int:
        """How many tickers (columns) the panel has."""
        return self.adj_close.shape[1]

    @property
    def has_ohlc(self) -> bool:
        """Whether any high and any low is known (False for close-only sources)."""
        return bool(self.high.notna().any().any() and self.low.notna().any().any())

    @property
    def has_volume(self) -> bool:
        """Whether any volume is known."""
        return bool(self.volume.notna().any().any())

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every non-empty field by name (the six price fields, then dividends/splits)."""
        out = {name: getattr(self, name) for name in FIELDS}
        for name in ("dividends", "splits"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def returns(self) -> pd.DataFrame:
        """Simple daily returns of the adjusted close (NaN before a ticker's first bar)."""
        return self.adj_close.pct_change(fill_method=None)

    def log_returns(self) -> pd.DataFrame:
        """Daily log returns of the adjusted close, ``log(p_t / p_{t-1})``."""
        return np.log(self.adj_close).diff()

    def quoted_close(self, tickers: list[str] | None = None) -> tuple[pd.DataFrame, bool]:
        """The closes to show as prices, and whether they are as traded.

        The as-traded ``close`` where it is known for every adjusted close and differs from
        it somewhere; else the adjusted close (on the scale of the data's last adjustment:
        AAPL's 2010-12-31 close is 322.56 as traded, 9.92 adjusted to April 2021). Sources
        with an adjusted close only fill ``close`` with it (:meth:`from_close`).
        """
        cols = self.tickers if tickers is None else list(tickers)
        adjusted, traded = self.adj_close[cols], self.close[cols]
        as_traded = bool((traded.notna() | adjusted.isna()).all(axis=None))
        as_traded = as_traded and not traded.equals(adjusted)
        return (traded if as_traded else adjusted), as_traded

    def sector_spans(self) -> list[tuple[int, dict]]:
        """``(first row, ticker -> sector)`` of each span of rows with constant sectors:
        the point-in-time :attr:`sector_periods` where known, else ``sectors`` throughout
        (a model ranking sectors in 2007 should not see 2018's Communication Services)."""
        if self.sector_periods is None:  # dated now, once (frozen: set past the guard)
            from mltrainer.data.gics import dated_sectors

            object.__setattr__(self, "sector_periods", dated_sectors(self))
        periods = self.sector_periods
        if not periods:
            return [(0, self.sectors)]
        starts = self.dates.searchsorted([day for day, _ in periods], side="left")
        spans = {0: periods[0][1]}
        for row, (day, mapping) in zip(starts, periods, strict=True):
            row = 0 if day <= self.dates[0] else int(row)
            if row < len(self.dates):
                spans[row] = mapping
        return sorted(spans.items())

    def sector_codes(self) -> tuple[list[str], list[tuple[int, np.ndarray]]]:
        """The sector names (sorted) and, for each span of :meth:`sector_spans`, its first
        row and each column's index in the names (-1: no sector, or an unknown one)."""
        spans = self.sector_spans()
        names = self.sector_names()
        pos = {s: k for k, s in enumerate(names)}
        codes = [np.array([pos.get(str(of.get(t)), -1) for t in self.tickers]) for _, of in spans]
        return names, [(row, c) for (row, _), c in zip(spans, codes, strict=True)]

    def sectors_on(self, date: str | pd.Timestamp | None = None) -> dict[str, str]:
        """Ticker -> sector on ``date`` (default the last date; before the first, the
        first date's), from :meth:`sector_spans`: a book of 2010-12-31 has GOOGL in
        Information Technology. A ticker the date's sectors do not place is absent."""
        spans = self.sector_spans()
        row = max(len(self.dates) - 1, 0)
        if date is not None:
            row = max(int(self.dates.searchsorted(pd.Timestamp(date), side="right")) - 1, 0)
        mapping = [of for first, of in spans if first <= row][-1]
        return {t: mapping[t] for t in self.tickers if mapping.get(t)}

    def sector_names(self) -> list[str]:
        """Every sector (sorted) a ticker is in on some date of :meth:`sector_spans`: with
        dated sectors, those of earlier classifications too (Telecommunication Services
        before 2018-09-24)."""
        spans = self.sector_spans()
        return sorted({str(s) for _, of in spans for s in of.values() if s and s != UNKNOWN_SECTOR})

    def tickers_in_sectors(
        self,
        sectors: Iterable[str],
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
    ) -> list[str]:
        """The tickers (panel order) in one of ``sectors`` on some trading day from
        ``start`` to ``end`` (inclusive; the whole panel by default), by each day's sector
        where :meth:`sector_spans` dates them: GOOGL is in Information Technology for a
        2010 range, in Communication Services for 2020. A range holding no trading day
        takes the day after it (the last day after the data's end)."""
        wanted = set(sectors)
        n = len(self.dates)
        lo = 0 if start is None else int(self.dates.searchsorted(pd.Timestamp(start)))
        hi = n if end is None else int(self.dates.searchsorted(pd.Timestamp(end), side="right"))
        if lo >= hi:
            lo = min(lo, n - 1)
            hi = lo + 1
        spans = self.sector_spans()
        stops = [row for row, _ in spans[1:]] + [n]
        found = {
            t
            for (row, mapping), stop in zip(spans, stops, strict=True)
            if row < hi and stop > lo
            for t, sector in mapping.items()
            if sector in wanted
        }
        return [t for t in self.tickers if t in found]

    def first_valid_dates(self) -> pd.Series:
        """Ticker -> date of its first adjusted close (NaT for a ticker with none)."""
        return self.adj_close.apply(pd.Series.first_valid_index)

    def last_valid_dates(self) -> pd.Series:
        """Ticker -> date of its last adjusted close (NaT for a ticker with none)."""
        return last_valid_dates(self.adj_close)

    # ------------------------------------------------------------ selections
    def select(
        self,
        tickers: list[str] | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
    ) -> MarketData:
        """A copy restricted to some tickers and an inclusive date range; with
        ``tickers``, the range runs from the first to the last date one of them has a
        price.

        Raises DataError naming any unknown ticker, or an empty date range.
        """
        cols = self.adj_close.columns
        if tickers is not None:
            tickers = [str(t).strip().upper() for t in tickers if str(t).strip()]
            unknown = [t for t in tickers if t not in cols]
            if unknown:
                from mltrainer.data.ticker_hints import with_hints

                raise DataError(
                    with_hints(
                        f"unknown ticker(s) {', '.join(unknown)} for source '{self.source}'; "
                        f"it has {len(cols)} tickers (e.g. {', '.join(map(str, cols[:5]))})",
                        unknown,
                        cols,
                    )
                )
            if not tickers:  # "no price for  from ..." said nothing of what was wrong
                raise DataError("no tickers selected: name at least one")
            cols = pd.Index(list(dict.fromkeys(tickers)))
        idx = self.dates
        lo = pd.Timestamp(start) if start is not None else None
        hi = pd.Timestamp(end) if end is not None else None
        if lo is not None and hi is not None and lo > hi:
            raise DataError(f"start {lo.date()} is after end {hi.date()}")
        mask = np.ones(len(idx), dtype=bool)
        if lo is not None:
            mask &= idx >= lo
        if hi is not None:
            mask &= idx <= hi
        if not mask.any():
            raise DataError(
                f"no trading dates {fmt.date_range(lo, hi)}; the data covers "
                f"{idx[0].date()} to {idx[-1].date()}"
                if len(idx)
                else "the data has no dates"
            )
        if tickers is not None:
            # tickers listed after the range began, or gone before it ends, do not
            # stretch it: the rows before any chosen ticker has a price, and after the
            # last one has, are dropped (as a cold load, which reads only their files,
            # already does), so a backtest or a label does not count years of cash
            priced = self.adj_close.loc[mask, cols].notna().any(axis=1).to_numpy()
            if not priced.any():  # a backtest of nothing would report zeros as results
                raise DataError(self._no_price(cols, idx[mask]))
            rows = np.flatnonzero(mask)
            mask[rows[: int(priced.argmax())]] = False
            mask[rows[len(priced) - int(priced[::-1].argmax()) :]] = False
        narrowed = self._map(lambda f: f.loc[mask, cols])
        periods = self.sector_periods and tuple(
            (day, {t: mapping[t] for t in cols if t in mapping})
            for day, mapping in self.sector_periods
        )
        return replace(
            narrowed,
            sectors={t: self.sectors[t] for t in cols if t in self.sectors},
            sector_periods=periods,
            sector_anchors={t: self.sector_anchors[t] for t in cols if t in self.sector_anchors},
        )

    def __getstate__(self) -> dict:
        """Pickled (a Dask worker, a process pool) with its sectors dated: the receiver
        may have no membership files to date them from."""
        self.sector_spans()
        return dict(self.__dict__)

    def _no_price(self, cols: pd.Index, dates: pd.DatetimeIndex) -> str:
        """Why ``cols`` have nothing in ``dates``, with the dates they do have prices."""
        named = ", ".join(map(str, cols[:10])) + (
            f" and {len(cols) - 10} more" if len(cols) > 10 else ""
        )
        anywhere = self.adj_close[cols].notna().any(axis=1)
        its = "its" if len(cols) == 1 else "their"
        when = (
            f"{its} prices run from {anywhere.idxmax().date()} to {anywhere[::-1].idxmax().date()}"
            if anywhere.any()
            else f"{'it has' if len(cols) == 1 else 'they have'} no price at all"
        )
        return f"no price for {named} from {dates[0].date()} to {dates[-1].date()}; {when}"

    def truncate(self, end: str | pd.Timestamp) -> MarketData:
        """Only the data known at the close of ``end`` (used by causality tests)."""
        return self.select(end=end)

    def _map(self, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> MarketData:
        kwargs = {name: fn(getattr(self, name)) for name in FIELDS}
        for name in ("dividends", "splits"):
            frame = getattr(self, name)
            kwargs[name] = fn(frame) if frame is not None else None
        return replace(self, **kwargs)

    def drop_empty(self) -> MarketData:
        """Drop tickers with no adjusted close at all in the selected range."""
        keep = self.adj_close.columns[self.adj_close.notna().any()]
        return self._map(lambda f: f.loc[:, keep])

    # ------------------------------------------------------------ adjustment
    def adjustment_factor(self) -> pd.DataFrame:
        """adj_close / close: scales as-traded prices onto the adjusted-close scale."""
        return self.adj_close / self.close

    def adjusted(self) -> MarketData:
        """OHLC scaled onto the adjusted close (splits and dividends), volume split-adjusted.

        Indicators that mix high/low with the close (ATR, Stochastic, range volatility)
        must use this, or a split shows up as a crash. Where a source has no as-traded
        close (close == adj_close) this is the identity. Like the adjusted close itself,
        the scale uses later splits and dividends: ratios of prices on or before t are
        unchanged by them, levels are not, so level-dependent maths (cumulative volume,
        e.g. OBV) should divide volume by the splits up to t instead.
        """
        factor = self.adjustment_factor()
        return replace(
            self,
            open=self.open * factor,
            high=self.high * factor,
            low=self.low * factor,
            close=self.adj_close.copy(),
            volume=self.volume * self.split_factor(),
        )

    def split_factor(self) -> pd.DataFrame:
        """Cumulative factor that divides as-traded prices by all later splits.

        A 4:1 split on day s gives 4.0 for every day before s and 1.0 from s on; prices
        divided (volume multiplied) by it are comparable across the split.
        """
        if self.splits is None:
            return pd.DataFrame(1.0, index=self.dates, columns=self.adj_close.columns)
        coef = self.splits.fillna(1.0).replace(0.0, 1.0)
        # product of coefficients strictly after each day, computed backwards in time
        rev = coef.iloc[::-1]
        after = rev.cumprod().shift(1, fill_value=1.0).iloc[::-1]
        after.iloc[-1] = 1.0
        return after

    def split_adjusted(self) -> MarketData:
        """OHLC adjusted for splits only (dividends left in), volume scaled inversely."""
        factor = self.split_factor()
        return replace(
            self,
            open=self.open / factor,
            high=self.high / factor,
            low=self.low / factor,
            close=self.close / factor,
            volume=self.volume * factor,
        )

    # --------------------------------------------------------------- summary
    def fingerprint(self) -> str:
        """A short hash of the values, labels and sectors (for the audit trail and cache
        keys)."""
        h = hashlib.blake2b(digest_size=12)
        h.update(np.asarray(self.dates.asi8).tobytes())
        h.update("|".join(map(str, self.tickers)).encode())
        for name in FIELDS:
            values = getattr(self, name).to_numpy(dtype="float64", na_value=np.nan)
            h.update(np.ascontiguousarray(values).tobytes())
        # the sectors decide sector models' figures too: loaded data by the anchors its
        # periods are dated from, so the hash is the same before and after they are dated
        # (a run's identity must not change with a model having asked for them)
        periods = () if self.sector_anchors else self.sector_periods or ()
        for day, mapping in [(None, self.sectors), *periods]:
            h.update(f"{day}|{sorted(mapping.items())}".encode())
        h.update(f"{sorted(self.sector_anchors.items())}".encode())
        return h.hexdigest()

    def summary(self) -> dict:
        """Counts and dates, JSON-ready (what ``data load --json`` prints)."""
        idx = self.dates
        return {
            "source": self.source,
            "as_of": None if self.as_of is None else pd.Timestamp(self.as_of).isoformat(),
            "n_tickers": self.n_tickers,
            "n_dates": len(idx),
            "first_date": None if not len(idx) else str(idx[0].date()),
            "last_date": None if not len(idx) else str(idx[-1].date()),
            "has_ohlc": self.has_ohlc,
            "has_volume": self.has_volume,
            "n_observations": int(self.adj_close.notna().to_numpy().sum()),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_close(
        cls,
        adj_close: pd.DataFrame,
        source: str,
        as_of: pd.Timestamp | None = None,
        sectors: Mapping[str, str] | None = None,
        warnings: Iterable[str] = (),
    ) -> MarketData:
        """A container for a source that has only an adjusted close series."""
        adj_close = adj_close.sort_index().astype("float64")
        empty = pd.DataFrame(np.nan, index=adj_close.index, columns=adj_close.columns)
        return cls(
            open=empty,
            high=empty.copy(),
            low=empty.copy(),
            close=adj_close.copy(),
            adj_close=adj_close,
            volume=empty.copy(),
            source=source,
            as_of=as_of,
            sectors=dict(sectors or {}),
            warnings=tuple(warnings),
        )


def last_valid_dates(frame: pd.DataFrame) -> pd.Series:
    """Each column's last date with a value (NaT for a column with none)."""
    valid = frame.notna().to_numpy()
    last = frame.index[len(valid) - 1 - np.argmax(valid[::-1], axis=0)] if len(valid) else []
    return pd.Series(last, index=frame.columns).where(valid.any(axis=0))


def screen_bars(long: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Drop the bars a live source should never send, each kind with a warning naming
    the ticker, the count and the first dates: a price that is not a positive finite
    number below MAX_PRICE, a high below the low, a bar dated after today; a negative
    volume becomes missing. The same rules the local files get (:mod:`.local`)."""
    notes: list[str] = []
    today = pd.Timestamp.today().normalize()
    prices = [c for c in _PRICE_FIELDS if c in long]
    values = long[prices].apply(pd.to_numeric, errors="coerce")
    checks = [
        (
            f"a price that is not a positive finite number below {MAX_PRICE:g}",
            ((values <= 0) | (values > MAX_PRICE) | np.isinf(values)).any(axis=1),
        ),
        (
            "a high below the low",
            (values["high"] < values["low"])
            if {"high", "low"} <= set(prices)
            else pd.Series(False, index=long.index),
        ),
        ("a date after today", long["date"] > today),
    ]
    drop = pd.Series(False, index=long.index)
    for what, bad in checks:
        bad = bad & ~drop
        for ticker, rows in long[bad].groupby("ticker"):
            dates = ", ".join(d.date().isoformat() for d in rows["date"].head(3))
            notes.append(
                f"{source} {ticker}: {len(rows)} bar(s) with {what} dropped "
                f"({dates}{', ...' if len(rows) > 3 else ''})"
            )
        drop |= bad
    long = long[~drop]
    if "volume" in long:
        negative = pd.to_numeric(long["volume"], errors="coerce") < 0
        for ticker, rows in long[negative].groupby("ticker"):
            notes.append(
                f"{source} {ticker}: {len(rows)} negative volume(s) set to missing "
                f"({rows['date'].iloc[0].date()})"
            )
        long = long.assign(volume=long["volume"].where(~negative))
    return long, notes


def from_long(
    long: pd.DataFrame,
    source: str,
    as_of: pd.Timestamp | None = None,
    sectors: Mapping[str, str] | None = None,
    warnings: Iterable[str] = (),
) -> MarketData:
    """Build MarketData from a long frame with columns date, ticker and the fields.

    Missing price fields become NaN; ``adj_close`` defaults to ``close``.
    """
    if long.empty:
        raise DataError(f"source '{source}' returned no rows")
    long = long.copy()
    long["date"] = pd.to_datetime(long["date"]).dt.tz_localize(None).dt.normalize()
    if "adj_close" not in long:
        long["adj_close"] = long["close"]
    long, notes = screen_bars(long, source)
    warnings = (*warnings, *notes)
    if long.empty:
        raise DataError(f"source '{source}' returned no usable rows ({'; '.join(notes)})")
    dup = long.duplicated(["date", "ticker"])
    if dup.any():
        bad = long.loc[dup, ["ticker", "date"]].head(3).to_dict("records")
        raise DataError(f"source '{source}' has duplicated (ticker, date) rows, e.g. {bad}")
    frames = {}
    extra = {}
    for name in FIELDS + ("dividends", "splits"):
        if name in long:
            wide = long.pivot(index="date", columns="ticker", values=name).sort_index()
            wide.columns.name = None
            wide.index.name = "date"
            (frames if name in FIELDS else extra)[name] = wide.astype("float64")
    ref = frames["adj_close"]
    for name in FIELDS:
        frames.setdefault(name, pd.DataFrame(np.nan, index=ref.index, columns=ref.columns))
    return MarketData(
        **frames,
        dividends=extra.get("dividends"),
        splits=extra.get("splits"),
        source=source,
        as_of=as_of,
        sectors=dict(sectors or {}),
        warnings=tuple(warnings),
    )
