"""Trading the S&P 500 as it was: the membership mask of a price panel and the
survivorship comparison every point-in-time run reports.

A panel's tickers are keyed by the symbols its source uses (the local files by their
April-2021 symbols, a live source by today's), so each key is mapped to the company's
symbol of the day through its own last price date (:meth:`Membership.mask`). A ticker
is then held only on the days its company was an index member: the mask of day t filters
the weights set at t's close (which earn t+1's return), so a change acts a day after its
effective date, never before it (an index fund, told days ahead, trades the close before).

What this cannot fix, and every result says: the panel holds only the companies its
source has files for. Members that were delisted or left the index before the data was
collected have no prices, so even the point-in-time run trades a subset of the index
that leans toward survivors; :func:`universe_coverage` measures how large that subset is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.data.market_data import MarketData
from mltrainer.data.membership import Membership, load_membership
from mltrainer.validate import DateLike

SP500 = "sp500"
SURVIVORS = "survivors"
UNIVERSES = (SP500, SURVIVORS)
UNIVERSE_LABELS = {
    SP500: "S&P 500 as it was (a ticker is held only while an index member)",
    SURVIVORS: "the tickers as given, over the whole period (today's survivors)",
}
# keys of backtest.metrics.performance_metrics (a name it does not have is a KeyError)
_COMPARED = ("cagr", "sharpe", "max_drawdown", "annual_volatility", "total_return")


def key_dates(data: MarketData) -> pd.Series:
    """The date on which each ticker key is that company's symbol.

    A source keys its files by the symbols of one date, ``data.as_of`` (the local files
    by April 2021's, a live source by today's). When the panel runs to that date, each
    ticker's own last price date is used (a file that stops early stops under its own
    symbol); a panel cut short by a date range uses ``as_of`` for every key, since the
    keys did not change when the range was chosen (WELL is WELL in a 2005-2010 window).
    """
    close = data.adj_close
    values = close.to_numpy(dtype="float64", na_value=np.nan)
    has = np.isfinite(values)
    last = np.where(has.any(axis=0), len(close.index) - 1 - np.argmax(has[::-1], axis=0), -1)
    out = pd.Series(pd.NaT, index=close.columns, dtype="datetime64[ns]")
    ok = last >= 0
    out[ok] = close.index[last[ok]]
    as_of = None if data.as_of is None else pd.Timestamp(data.as_of).normalize()
    if as_of is not None and len(close.index) and close.index[-1].normalize() < as_of:
        out[:] = as_of
    return out


_MASKS: dict = {}


def membership_mask(data: MarketData, membership: Membership | None = None) -> pd.DataFrame:
    """Boolean dates x tickers of ``data``: True while the ticker's company was a member.

    Memoised on the panel's fingerprint (a Model Lab rerun or a sweep reuses it).
    """
    membership = membership or load_membership()
    memo = (data.fingerprint(), data.as_of)
    hit = _MASKS.get(memo)
    if hit is None or hit[0] is not membership:  # the object itself, not a reused id
        if len(_MASKS) > 8:
            _MASKS.clear()
        hit = _MASKS[memo] = (
            membership,
            membership.mask(data.adj_close.index, data.adj_close.columns, key_dates(data)),
        )
    return hit[1]


def universe_coverage(
    data: MarketData, mask: pd.DataFrame, membership: Membership, since: DateLike | None = None
) -> dict:
    """How much of the index the panel can trade: members with prices over all members,
    on the panel's dates from ``since`` (the first date traded; default: all)."""
    dates = data.adj_close.index
    if since is not None:
        dates = dates[dates >= pd.Timestamp(since)]
    if len(dates) == 0:
        return {"members_mean": 0.0, "tradable_mean": 0.0, "share_mean": None}
    sample = dates[:: max(1, len(dates) // 60)]  # monthly-ish sampling is plenty
    counts = np.array([len(membership.members_on(d)) for d in sample], dtype=float)
    tradable = (mask & data.adj_close.notna()).loc[sample].sum(axis=1).to_numpy(dtype=float)
    share = tradable / np.where(counts > 0, counts, np.nan)
    first = dates[0]
    return {
        "members_mean": float(np.nanmean(counts)),
        "tradable_mean": float(np.nanmean(tradable)),
        "share_mean": float(np.nanmean(share)),
        "first_date": first.date().isoformat(),
        "members_on_first_date": len(membership.members_on(first)),
        "tradable_on_first_date": int((mask.loc[first] & data.adj_close.loc[first].notna()).sum()),
    }


@dataclass
class UniverseSetting:
    """The universe a run trades: its name, mask (None: no membership), and what to say."""

    name: str
    mask: pd.DataFrame | None
    warnings: list[str] = field(default_factory=list)
    coverage: dict = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The universe's name as shown to a user."""
        return UNIVERSE_LABELS[self.name]

    def to_dict(self) -> dict:
        """JSON-ready: name, label, coverage, membership sources and warnings."""
        return {
            "name": self.name,
            "label": self.label,
            "coverage": self.coverage,
            "membership_sources": self.sources,
            "warnings": list(self.warnings),
        }


def resolve_universe(
    data: MarketData,
    name: str | None,
    tickers_given: bool,
    membership: Membership | None = None,
    traded_from: DateLike | None = None,
) -> UniverseSetting:
    """The universe for a run: ``name`` if given, else ``sp500`` when no tickers were
    picked and membership is known, else ``survivors``.

    ``traded_from``: the first date the run trades, when the panel starts earlier for
    the model to learn from; the coverage and its warnings speak of the traded dates.
    """
    from mltrainer.errors import DataError

    if name is not None and name not in UNIVERSES:
        raise DataError(f"unknown universe {name!r}; choose {' or '.join(UNIVERSES)}")
    if name == SURVIVORS or (name is None and tickers_given):
        return UniverseSetting(SURVIVORS, None)  # no membership needed: none is read
    try:
        membership = membership or load_membership()
    except DataError as exc:
        if name == SP500:
            raise DataError(f"--universe sp500 needs S&P 500 membership: {exc}") from None
        return UniverseSetting(
            SURVIVORS,
            None,
            [f"membership unknown ({exc}); the tickers are traded over the whole period"],
        )
    mask = membership_mask(data, membership)
    dates = data.adj_close.index
    if traded_from is not None:
        dates = dates[dates >= pd.Timestamp(traded_from)]
    warnings = membership.date_warnings(dates[0], dates[-1]) if len(dates) else []
    coverage = universe_coverage(data, mask, membership, since=traded_from)
    if tickers_given and len(dates):  # few members have prices because few were picked
        warnings.append(
            f"the {fmt.count(data.n_tickers, 'ticker')} given are a subset of the index: the "
            f"run holds those that are members ({coverage['tradable_on_first_date']} of the "
            f"{coverage['members_on_first_date']} members on {coverage['first_date']})"
        )
    elif coverage.get("share_mean") is not None and coverage["share_mean"] < 0.98:
        warnings.append(
            f"only {coverage['share_mean']:.0%} of the index members on an average day have "
            f"prices in this data ({coverage['tradable_on_first_date']} of "
            f"{coverage['members_on_first_date']} on {coverage['first_date']}): members "
            "delisted or removed before the data was collected are missing, so the run "
            "still leans toward survivors"
        )
    if not mask.to_numpy().any():
        raise DataError("none of the chosen tickers was an S&P 500 member in this period")
    return UniverseSetting(
        SP500, mask, warnings, coverage, [c.to_dict() for c in membership.coverage]
    )


def survivorship_effect(point_in_time: dict, survivors: dict) -> dict:
    """The same run's headline metrics with and without membership, and the difference
    (survivors minus point in time: how much the survivor view flatters the result)."""
    pit = {k: point_in_time[k] for k in _COMPARED}
    surv = {k: survivors[k] for k in _COMPARED}
    diff = {}
    for k in _COMPARED:
        a, b = pit[k], surv[k]
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float))
        diff[k] = float(b - a) if ok and np.isfinite(a) and np.isfinite(b) else None
    return {
        "point_in_time": pit,
        "survivors": surv,
        "survivors_minus_point_in_time": diff,
        "note": "survivors: the same tickers held over the whole period, as if today's "
        "members had always been in the index",
    }


__all__ = [
    "SP500",
    "SURVIVORS",
    "UNIVERSES",
    "UNIVERSE_LABELS",
    "UniverseSetting",
    "key_dates",
    "membership_mask",
    "resolve_universe",
    "survivorship_effect",
    "universe_coverage",
]
