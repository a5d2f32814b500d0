"""The index as it was on a past date: its members, their sectors then, sizes known then.

A view of "the S&P 500 on D" must not draw today's survivors with today's sizes. Here:

- members are those of D (:meth:`Membership.members_on`), mapped to the keys of the
  price panel through :meth:`Membership.mask` (each key is its company's symbol on the
  key's last price date: the local files use April-2021 symbols, Yahoo today's);
  members with no price file are still counted ("N members; M have price data");
- sectors are those of D (:func:`mltrainer.data.gics.sectors_as_of`), with the dated
  list and reclassifications used, for a caption;
- size is a cap proxy known on D: price x shares outstanding where a point-in-time share
  count is given (``shares``; none ships with the offline data), else the market caps
  of a dated cap snapshot when D is on or after the snapshot's date, else equal weight.
  Today's caps are never used for an earlier date.

Sector baskets over a window (:func:`pit_sector_returns`) hold, on each day, the members
of that day in their sectors of that day.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mltrainer import config
from mltrainer.data.gics import (
    UNKNOWN,
    SectorList,
    SectorsAsOf,
    sector_lists,
    sector_regimes,
    sectors_as_of,
)
from mltrainer.data.market_data import last_valid_dates
from mltrainer.data.membership_combined import Membership
from mltrainer.errors import DataError
from mltrainer.sectors import sector_returns, universe_returns
from mltrainer.validate import DateLike

EQUAL = "equal weight: no point-in-time market caps"
SHARES = "price x shares outstanding on the date"
_CAPS_FILE = re.compile(r"^constituents-financials-(\d{4}-\d{2}-\d{2})\.csv$")


@dataclass(frozen=True)
class CapSnapshot:
    """Market caps by symbol (symbols of ``date``) as published on ``date``."""

    caps: pd.Series
    date: pd.Timestamp
    name: str


def cap_snapshot(data_dir: str | Path | None = None) -> CapSnapshot | None:
    """The newest ``constituents-financials-YYYY-MM-DD.csv`` of the data folder, or None
    (its caps are shared between callers: read them, do not change them)."""
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    found = (
        sorted(p for p in root.glob("constituents-financials-*.csv") if _CAPS_FILE.match(p.name))
        if root is not None and root.is_dir()
        else []
    )
    if not found:
        return None
    stat = found[-1].stat()
    return _read_snapshot(str(found[-1]), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_snapshot(path: str, mtime_ns: int, size: int) -> CapSnapshot:
    """One read per version of the file (its time and size are part of the key): a page
    asks for the caps on every rerun of a widget change."""
    from mltrainer.data.constituents import snapshot_caps  # the one reader of that file

    caps, _ = snapshot_caps(path)
    name = Path(path).name
    return CapSnapshot(
        pd.Series(caps, dtype="float64"), pd.Timestamp(_CAPS_FILE.match(name).group(1)), name
    )


def cap_weighting_inputs(anchors: pd.Series | None = None) -> dict:
    """The ``market_caps`` and ``source`` that market-cap weighting
    (:func:`~mltrainer.measures.weighting.portfolio_weights`) takes: the snapshot's, by
    price key (see :func:`caps_by_key`; without ``anchors``, by the snapshot's symbols)."""
    snap = cap_snapshot()
    if snap is None:
        raise DataError(
            "no market-cap snapshot (constituents-financials-YYYY-MM-DD.csv) in the data "
            "folder; use another weighting"
        )
    caps = snap.caps.to_dict() if anchors is None else caps_by_key(snap, anchors)[0]
    return {"market_caps": caps, "source": snap.name}


def caps_by_key(
    snapshot: CapSnapshot, anchors: pd.Series, membership: Membership | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """The snapshot's cap of each price key's company, and the keys it lists under
    another symbol (``{"FB": "META"}``).

    ``anchors`` gives, by key, a date on which the key named its company (its last price
    date in the whole panel, :func:`last_price_dates`): the company is looked up under
    its symbol on the snapshot's date. A key whose walk stops (its symbol named another
    company then) has no cap. Without a membership source, the walk uses the package's
    curated renames alone (:meth:`SymbolHistory.default`: FB -> META is one of them).
    """
    if membership is None:
        from mltrainer.data.membership import load_membership

        try:
            membership = load_membership()
        except DataError:
            membership = None
    if membership is not None:
        history = membership.history
    else:
        from mltrainer.data.symbols import SymbolHistory

        history = SymbolHistory.default()
    caps, renamed = {}, {}
    for key, anchor in anchors.items():
        symbol = key
        if pd.notna(anchor):
            symbol = history.symbol_on(key, anchor, snapshot.date)
        if symbol is not None and symbol in snapshot.caps.index:
            caps[key] = float(snapshot.caps[symbol])
            if symbol != key:
                renamed[key] = symbol
    return caps, renamed


def cap_notes(end: DateLike, anchors: pd.Series | None = None) -> tuple[str, ...]:
    """What market-cap weights over a range ending ``end`` must say: the snapshot's
    :func:`later_caps_note`, and which keys it lists under a later symbol (``anchors``
    as in :func:`caps_by_key`); nothing without a snapshot."""
    snap = cap_snapshot()
    if snap is None:
        return ()
    later = later_caps_note(snap, end)
    renamed = caps_by_key(snap, anchors)[1] if anchors is not None else {}
    return tuple(note for note in (later, _renamed_note(snap, renamed)) if note)


def _renamed_note(snapshot: CapSnapshot, renamed: dict[str, str]) -> str | None:
    """``FB's cap is the one listed for META, ...`` (six at most), or None."""
    if not renamed:
        return None
    pairs = [f"{key}'s the one listed for {symbol}" for key, symbol in renamed.items()]
    pairs[0] = pairs[0].replace("'s the one", "'s cap is the one", 1)
    more = f"; and {len(pairs) - 6} more under their later symbols" if len(pairs) > 6 else ""
    return (
        f"{snapshot.name} lists companies by their symbols of {snapshot.date:%Y-%m-%d}: "
        + ", ".join(pairs[:6])
        + more
    )


def later_caps_note(snapshot: CapSnapshot, end: DateLike) -> str | None:
    """None when ``snapshot`` was published by ``end``; else the sentence a weighting by
    its caps must carry: those caps are from after the range, not of its time."""
    last = pd.Timestamp(end)
    if snapshot.date <= last:
        return None
    return (
        f"market-cap weights use the caps of {snapshot.date:%Y-%m-%d} ({snapshot.name}), "
        f"published after the range ends on {last:%Y-%m-%d}: the data has no market caps "
        "of the range's time, so these weights reflect what the companies became later"
    )


def last_price_dates(prices: pd.DataFrame) -> pd.Series:
    """Each column's last date with a price (the date its key names the company)."""
    return last_valid_dates(prices)


@dataclass
class IndexOnDate:
    """The index on ``date``: ``stocks`` has one row per member with price data,
    columns ``ticker`` (price key), ``symbol`` (of the day), ``sector``, ``size``."""

    date: pd.Timestamp
    stocks: pd.DataFrame
    members: list[str]
    without_prices: list[str]
    weighting: str
    sectors: SectorsAsOf
    n_unsized: int = 0

    @property
    def n_members(self) -> int:
        """Members of the index on the date (with or without price data)."""
        return len(self.members)

    @property
    def n_with_prices(self) -> int:
        """Members with price data on the date (the rows of ``stocks``)."""
        return len(self.stocks)

    @property
    def size_label(self) -> str:
        """The weighting in two or three words (``equal weight``), for titles and hovers."""
        return {EQUAL: "equal weight", SHARES: "price x shares"}.get(self.weighting, "market cap")

    def title(self) -> str:
        """One short line for a chart title (it must fit the treemap's column in a 1280 px
        window): date, members with prices of all members, the weighting in brief;
        :meth:`caption` says the rest."""
        return (
            f"S&P 500 on {self.date:%Y-%m-%d}: {self.n_with_prices} of {self.n_members} "
            f"members, {self.size_label}"
        )

    def caption(self) -> str:
        """Weighting, date, counts and the sectors' provenance, for a caption."""
        text = (
            f"Members of {self.date:%Y-%m-%d}: {self.n_members} members; "
            f"{self.n_with_prices} have price data"
            + (
                f" ({', '.join(self.without_prices[:6])}"
                + (" …" if len(self.without_prices) > 6 else "")
                + " have none)"
                if self.without_prices
                else ""
            )
            + f". Area: {self.weighting}"
            + (f"; {self.n_unsized} without a size are left out" if self.n_unsized else "")
            + f". {self.sectors.provenance()}."
        )
        return text

    def sector_weights(self, kind: str = "size") -> pd.Series:
        """Weight of each sector among the members with prices: by ``size`` or ``equal``."""
        if kind not in ("size", "equal"):
            raise DataError(f"sector weight kind must be 'size' or 'equal' (got {kind!r})")
        s = self.stocks.dropna(subset=["size"])
        w = s["size"] if kind == "size" else pd.Series(1.0, index=s.index)
        out = w.groupby(s["sector"]).sum()
        out = (out / out.sum()).sort_values(ascending=False) if out.sum() > 0 else out
        out.index.name = "sector"
        return out.rename("weight")


def index_on(
    date: DateLike,
    prices: pd.DataFrame,
    membership: Membership | None = None,
    lists: list[SectorList] | None = None,
    caps: CapSnapshot | None = None,
    shares: pd.Series | None = None,
    close: pd.DataFrame | None = None,
) -> IndexOnDate:
    """The members of ``date`` with price data in ``prices``, their sectors then, and a
    size known then (module notes).

    Parameters
    ----------
    date : date-like
    prices : DataFrame
        Dates x keys (adjusted closes); a key counts as having price data on ``date``
        when it has a price on its last trading day at or before ``date``.
    membership : Membership, optional
        Default :func:`mltrainer.data.membership.load_membership`.
    lists : list of SectorList, optional
        Dated sector lists; default those of the membership and the saved pages.
    caps : CapSnapshot, optional
        Used only when ``date`` is on or after ``caps.date``.
    shares : Series, optional
        Shares outstanding on ``date`` by key (the hook for a point-in-time share count):
        size = unadjusted close (``close``, else ``prices``) x shares.
    """
    if membership is None:
        from mltrainer.data.membership import load_membership

        membership = load_membership()
    lists = sector_lists(membership) if lists is None else lists
    when = pd.Timestamp(date).normalize()
    upto = prices.loc[:when]
    if upto.empty:
        raise DataError(f"no prices on or before {when.date()}")
    anchors = last_price_dates(prices).dropna()
    keys = list(anchors.index)
    is_member = membership.mask([when], keys, anchors).iloc[0]
    day_prices = upto.iloc[-1].reindex(keys)
    held = [k for k in keys if is_member[k] and np.isfinite(day_prices[k])]
    symbol_of = {k: membership.history.symbol_on(k, anchors[k], when) for k in held}
    members = membership.members_on(when)
    without = sorted(set(members) - set(symbol_of.values()))
    sectors = sectors_as_of(
        members + sorted(set(symbol_of.values()) - set(members)), when, lists, membership.history
    )
    sector = sectors.frame["sector"]
    stocks = pd.DataFrame(
        {
            "ticker": held,
            "symbol": [symbol_of[k] for k in held],
            "sector": [sector.get(symbol_of[k], UNKNOWN) for k in held],
        }
    )
    size, weighting = _sizes(
        stocks,
        when,
        anchors,
        membership,
        caps,
        shares,
        (close if close is not None else prices).loc[:when],
    )
    stocks["size"] = size
    return IndexOnDate(
        when, stocks, members, without, weighting, sectors, int(stocks["size"].isna().sum())
    )


def _sizes(
    stocks: pd.DataFrame,
    when: pd.Timestamp,
    anchors: pd.Series,
    membership: Membership,
    caps: CapSnapshot | None,
    shares: pd.Series | None,
    close: pd.DataFrame,
) -> tuple[np.ndarray, str]:
    keys = stocks["ticker"]
    if shares is not None:
        last_close = close.iloc[-1].reindex(keys).to_numpy(dtype="float64")
        counts = pd.Series(shares, dtype="float64").reindex(keys).to_numpy()
        size = last_close * counts
        return np.where(size > 0, size, np.nan), SHARES
    if caps is not None and when >= caps.date:
        today = [membership.history.symbol_on(k, anchors[k], caps.date) for k in keys]
        size = caps.caps.reindex(today).to_numpy(dtype="float64")
        return (
            np.where(size > 0, size, np.nan),
            f"market cap from {caps.name} (dated {caps.date:%Y-%m-%d})",
        )
    return np.ones(len(keys)), EQUAL


def pit_sector_returns(
    returns: pd.DataFrame,
    membership: Membership | None = None,
    lists: list[SectorList] | None = None,
    anchors: pd.Series | None = None,
    keep: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, str]:
    """Equal-weight daily returns of each sector basket and of the whole index, holding
    on each day the members of that day in their sectors of that day.

    ``returns`` is dates x keys; ``anchors`` each key's date of its symbol (default its
    last return date); ``keep`` (sector names) limits the baskets, ``Universe``
    included, to the members in those sectors on each day (not in today's: the REITs
    were Financials until 2016-09-01). Returns the frame (columns: sectors of the span,
    then ``Universe``) and a note on the sectors' provenance at the end of the span.
    Sector names change with GICS: Telecommunication Services before 2018-09-24,
    Real Estate from 2016-09-01.
    """
    if membership is None:
        from mltrainer.data.membership import load_membership

        membership = load_membership()
    lists = sector_lists(membership) if lists is None else lists
    if anchors is None:
        anchors = last_price_dates(returns)
    anchors = anchors.reindex(returns.columns).fillna(returns.index[-1])
    live = returns.where(membership.mask(returns.index, returns.columns, anchors))
    regimes = sector_regimes(
        returns.columns, returns.index[0], returns.index[-1], lists, membership.history, anchors
    )
    parts, held = [], []
    for i, (start, sectors) in enumerate(regimes):
        stop = regimes[i + 1][0] if i + 1 < len(regimes) else None
        rows = live.loc[start:] if stop is None else live.loc[start : stop - pd.Timedelta(1)]
        if keep:  # members of the other sectors that day count in no basket
            out_of = [t for t in rows.columns if sectors.sectors.get(t, UNKNOWN) not in keep]
            rows = rows.assign(**{t: np.nan for t in out_of}) if out_of else rows
        if len(rows):
            parts.append(sector_returns(rows, sectors.sectors))
            held.append(rows)
    out = pd.concat(parts).reindex(returns.index)
    if keep:
        out = out[[c for c in out.columns if c in keep]]
    out = out[sorted(out.columns, key=lambda c: (c == UNKNOWN, c))]
    out["Universe"] = universe_returns(pd.concat(held).reindex(returns.index) if keep else live)
    return out, regimes[-1][1].provenance()
