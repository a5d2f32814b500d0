"""What an unknown ticker is called in the data at hand.

A user types today's symbol (META) where the local files use those of April 2021 (FB),
an old one (FB) where Yahoo uses today's (META), or Yahoo's share-class spelling (BRK-B)
where the files write BRK.B. :func:`ticker_hints` names the ticker the data has for the
same company, for an error message; it never substitutes one silently.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from mltrainer import fmt
from mltrainer.data.symbols import NEG_INF, POS_INF, Segment, SymbolHistory, normalise_symbol
from mltrainer.errors import DataError

MAX_HINTED = 8  # unknown tickers looked up (about a millisecond each): a message names few


def ticker_hints(
    unknown: Iterable[str], known: Iterable[str], history: SymbolHistory | None = None
) -> list[str]:
    """One phrase per ``unknown`` ticker (the first :data:`MAX_HINTED`) that ``known``
    holds under another spelling or another symbol of the same company (``"META is FB
    here (its symbol until 2022-06-09)"``); the others are left out. ``history``
    defaults to the loaded membership's symbol history, else the curated table shipped
    with the package."""
    by_symbol = {normalise_symbol(k): str(k) for k in known}
    hints = []
    for ticker in list(unknown)[:MAX_HINTED]:
        symbol = normalise_symbol(ticker)
        spelled = by_symbol.get(symbol)
        if spelled is not None and spelled != ticker:
            hints.append(f"{ticker} is {spelled} here")
            continue
        history = history if history is not None else _history()
        for seg in _other_symbols(history, symbol):
            if seg.symbol in by_symbol:
                hints.append(f"{ticker} is {by_symbol[seg.symbol]} here ({_span(seg)})")
                break
    return hints


def with_hints(message: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """``message`` followed by the :func:`ticker_hints` of ``unknown``, if any."""
    hints = ticker_hints(unknown, known)
    return f"{message}; {'; '.join(hints)}" if hints else message


def _other_symbols(history: SymbolHistory, symbol: str) -> list[Segment]:
    """The company's other symbols, newest first: of the company that trades as
    ``symbol`` today, and of each company that left ``symbol`` for another."""
    anchors = [pd.Timestamp.today().normalize()]
    renames = history.renames()
    anchors += [d - pd.Timedelta(days=1) for d in renames.loc[renames["old"] == symbol, "date"]]
    segments = [seg for day in anchors for seg in history.segments(symbol, day)]
    return sorted(
        (seg for seg in segments if seg.symbol != symbol), key=lambda s: s.start, reverse=True
    )


def _span(seg: Segment) -> str:
    if seg.start == NEG_INF and seg.end == POS_INF:
        return "its symbol"
    if seg.start == NEG_INF:
        return f"its symbol until {fmt.date(seg.end)}"
    if seg.end == POS_INF:
        return f"its symbol since {fmt.date(seg.start)}"
    return f"its symbol from {fmt.date(seg.start)} to {fmt.date(seg.end)}"


def _history() -> SymbolHistory:
    from mltrainer.data.membership import load_membership

    try:
        return load_membership().history
    except DataError:  # no membership files: the curated renames still name most
        return SymbolHistory.default()
