"""Data the pages share, narrowed to what a page draws and cached by its inputs.

The full panel of a source is one ``st.cache_resource`` object (see :mod:`ui.context`);
everything here either selects a few tickers from it (cheap, not cached) or computes a
small result from it under ``st.cache_data`` keyed by plain values (source, dates,
tickers), so a rerun that did not change them recomputes nothing.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from ui import links
from ui.context import Selection, load

# A light, varied default basket (all in the bundled 20 stocks and in the local set).
DEFAULT_TICKERS = ("AAPL", "MSFT", "JPM", "XOM", "JNJ", "PG", "HD", "UNH")
INDEX_NAME = "SP500"


def panel(sel: Selection) -> MarketData | None:
    """The whole panel of the selected source (shared, never copied)."""
    return load(sel.source)


def universe_tickers(sel: Selection) -> list[str]:
    """Tickers of the source in the sidebar's sectors (all when none is chosen): those in
    one of them on some day of the sidebar's range, by that day's sector where the data
    dates its sectors (:meth:`MarketData.tickers_in_sectors`)."""
    data = panel(sel)
    if data is None:
        return []
    if not sel.sectors:
        return list(data.tickers)
    return data.tickers_in_sectors(sel.sectors, sel.start, sel.end)


def kept_picks(picked: object, offered: list[str], known: list[str]) -> list[str]:
    """The earlier picks (a widget's value) that the data has but ``offered`` no longer
    lists: a page keeps them, offered last, instead of dropping them unsaid."""
    if not isinstance(picked, (list, tuple, str)):
        return []
    picked = [picked] if isinstance(picked, str) else picked
    listed, have = set(offered), set(known)
    return [t for t in picked if t not in listed and t in have]


def picks_lacking(picked: object, known) -> list[str]:
    """The earlier picks (a widget's value, or the last run's list) that the data does not
    have at all: another source was chosen since (ABBV of the local files is not among
    the 20 bundled stocks). The widget drops them; :func:`say_dropped` names them."""
    if not isinstance(picked, (list, tuple, str)):
        return []
    picked = [picked] if isinstance(picked, str) else picked
    have = set(known)
    return [t for t in picked if t not in have]


def say_dropped(lost: list[str], source: str, instead: str) -> None:
    """A toast naming the picks the ``source`` data lacks and what the page does
    ``instead``: a switch of source left a run on AAPL alone, or no portfolio, unsaid."""
    if lost:
        names = ", ".join(str(t)[:20] for t in lost[:8]) + (" and more" if len(lost) > 8 else "")
        st.toast(
            links.plain(f"{names}: not in the {source} data; {instead}."),
            icon=":material/info:",
        )


def empty_output_reason(model, series: str, days: int, end) -> str:
    """Why a model gives ``series`` no value, as far as the data says: fewer than the
    model's ``min_history()`` days of prices (CARR's 275 against RealizedVolatility's
    523), else only that its windows found nothing usable in them (ChangePoint finds
    too few segments in some histories; a price that never moves gives nothing to fit)."""
    need, held = model.min_history(), fmt.count(days, "day")
    if days < need:
        return f"it needs {fmt.count(need, 'day')} of prices and {series} has {held} to {end}"
    return f"its windows found nothing usable in the {held} of prices {series} has to {end}"


def no_ticker_reason(sel: Selection) -> str | None:
    """Why the sidebar's sectors leave no ticker to pick in its range (None when they do
    leave some, or no sector is chosen): a sector that did not exist yet in the range."""
    if not sel.sectors or universe_tickers(sel):
        return None
    return (
        f"No stock of this data was in {', '.join(sel.sectors)} "
        f"{fmt.date_range(sel.start, sel.end)}: the lists take each stock's sector in the "
        "range (Real Estate from 2016-09-01; Communication Services from 2018-09-24, "
        "Telecommunication Services until 2018-09-21); widen the range or pick other "
        "sectors in the sidebar."
    )


def default_tickers(sel: Selection, n: int = 5) -> list[str]:
    """Up to ``n`` of DEFAULT_TICKERS available under the selection; when a sector filter
    leaves fewer (Energy keeps XOM alone), the selection's first tickers priced on the
    range's first and last days make up the ``n``, so a page opens on a portfolio."""
    available = universe_tickers(sel)
    have = set(available)
    picked = [t for t in DEFAULT_TICKERS if t in have][:n]
    if len(picked) < n:
        more = [t for t in _priced_throughout(sel, available) if t not in picked]
        picked += more[: n - len(picked)]
    return picked


def _priced_throughout(sel: Selection, tickers: list[str]) -> list[str]:
    """Those of ``tickers`` with a price on the first and the last day of the range (all
    of them when the range holds no day)."""
    data = panel(sel)
    if data is None or not tickers:
        return tickers
    start, end = (None if d is None else pd.Timestamp(d) for d in (sel.start, sel.end))
    close = data.adj_close[tickers].loc[start:end]
    if close.empty:
        return tickers
    both = close.iloc[0].notna() & close.iloc[-1].notna()
    return [t for t in tickers if both[t]]


def window(sel: Selection, tickers, start=None, end=None, warmup_days: int = 0) -> MarketData:
    """``tickers`` between the sidebar's dates (or ``start``/``end``), with
    ``warmup_days`` calendar days of extra history before the start when there is some.

    Raises DataError (shown by the caller) for unknown tickers or an empty range.
    """
    data = panel(sel)
    if data is None:
        raise DataError(f"no data from source '{sel.source}'")
    lo = pd.Timestamp(start or sel.start) if (start or sel.start) else None
    if lo is not None and warmup_days:
        lo = lo - pd.Timedelta(days=warmup_days)
    return data.select(tickers=list(tickers), start=lo, end=end or sel.end)


def trading_span(sel: Selection) -> tuple[dt.date, dt.date]:
    data = panel(sel)
    return data.dates[0].date(), data.dates[-1].date()


@st.cache_data(show_spinner="Loading the S&P 500 index…", max_entries=4)
def index_close(end: dt.date | None = None) -> pd.Series:
    """The S&P 500 index close bundled with skfolio/arch (1990-2022), up to ``end``."""
    from mltrainer.data.bundled import load_index

    close = load_index(INDEX_NAME).adj_close[INDEX_NAME].dropna()
    return close.loc[: pd.Timestamp(end)] if end is not None else close


def index_data(end: dt.date | None = None) -> MarketData:
    """The bundled S&P 500 index as one-column MarketData (close only), up to ``end``."""
    close = index_close(end)
    return MarketData.from_close(
        close.to_frame(INDEX_NAME), source="bundled index", as_of=close.index[-1]
    )


@st.cache_data(show_spinner="Computing sector returns…", max_entries=8)
def sector_daily_returns(source: str, start, end, sectors: tuple) -> pd.DataFrame:
    """Equal-weight daily returns of each GICS sector and of the whole universe.

    Columns: one per sector plus ``Universe`` (dates x ~12, small to pickle).
    """
    from mltrainer.sectors import sector_returns, universe_returns

    data = load(source)
    tickers = None if not sectors else [t for t in data.tickers if data.sectors.get(t) in sectors]
    if tickers == []:  # select() would name no ticker
        raise DataError(
            f"no stock of this data is in {', '.join(sectors)} today: without membership "
            "files the sector baskets take today's sectors"
        )
    sub = data.select(tickers=tickers, start=start, end=end)
    rets = sub.returns()
    out = sector_returns(rets, sub.sectors)
    out["Universe"] = universe_returns(rets)
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def ticker_returns(source: str, end, days: int) -> pd.DataFrame:
    """Per ticker of the source: its last close on or before ``end`` with that close's
    date, and the total return (adjusted closes) over the last ``days`` trading days
    (``ticker, last_close, last_date, return``). The close is as traded where the data
    has it, as a reader quotes a price (AAPL 322.56 on 2010-12-31, not 9.92 on April
    2021's scale); else the column is ``last_adj_close`` (:meth:`MarketData.quoted_close`).
    No sector here: the views take each member's sector on their own date."""
    data = load(source)
    tickers = data.tickers
    close = data.adj_close.loc[: pd.Timestamp(end), tickers]
    tail = close.iloc[-(days + 1) :].ffill()
    quoted, as_traded = data.quoted_close(tickers)
    quoted = quoted.loc[: pd.Timestamp(end)]
    dated = quoted.apply(pd.Series.last_valid_index)  # a ticker gone before end: its last
    return pd.DataFrame(
        {
            "ticker": tickers,
            "last_close" if as_traded else "last_adj_close": quoted.ffill().iloc[-1].to_numpy(),
            "last_date": pd.to_datetime(dated).dt.date.to_numpy(),
            "return": (tail.iloc[-1] / tail.iloc[0] - 1.0).to_numpy(),
        }
    )


@st.cache_data(show_spinner=False, ttl=60)
def cache_status() -> pd.DataFrame:
    """The disk cache's entries (kind, dates, staleness, size); re-read once a minute
    because reading it verifies every entry's checksum."""
    from mltrainer.data.cache import get_cache

    entries = get_cache().status()
    cols = ["kind", "stored_at", "expires_at", "stale", "bytes"]
    return pd.DataFrame(entries, columns=["key", *cols])[cols]
