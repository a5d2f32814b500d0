"""One S&P 500 constituents list: its member record, and the readers of the lists' files.

:class:`SP500Stock` is one member as a list gives it. The readers turn a constituents
frame (Wikipedia's table, a CSV) into members, take the GICS sector from the labels
``pytickersymbols`` lists, and read the market caps of the data folder's
``constituents-financials-*.csv`` snapshot. :mod:`mltrainer.data.universe` builds the
universe (and its sources) on them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mltrainer import config
from mltrainer.data.files import MAX_LIST_BYTES, read_bounded
from mltrainer.data.wikipedia_tables import CHANGE_COLUMNS
from mltrainer.errors import DataError

# When pytickersymbols lists two GICS sector names for one company (16 of 503 in
# version 1.17: utilities also tagged "Energy", REITs also "Financials" from before the
# 2016 Real Estate sector, ...), the first of these wins. The order was checked against
# the GICS sectors of the 2026 constituents list for every such company.
_SECTOR_PRIORITY = (
    "Real Estate",
    "Health Care",
    "Utilities",
    "Communication Services",
    "Consumer Discretionary",
    "Financials",
    "Information Technology",
    "Consumer Staples",
    "Industrials",
    "Materials",
    "Energy",
)
# Non-GICS labels of the same sectors (Refinitiv/Wikipedia infobox wording), used only
# when no GICS name is listed.
_SECTOR_ALIASES = {
    "healthcare": "Health Care",
    "technology": "Information Technology",
    "information technology": "Information Technology",
    "financial services": "Financials",
    "real estate": "Real Estate",
    "basic materials": "Materials",
    "consumer cyclicals": "Consumer Discretionary",
    "consumer non-cyclicals": "Consumer Staples",
    "telecommunications services": "Communication Services",
    "utilities": "Utilities",
    "energy": "Energy",
    "industrials": "Industrials",
}


@dataclass
class SP500Stock:
    """One index member. ``date_added`` is ISO ``YYYY-MM-DD``; ``cik`` 10 digits."""

    symbol: str
    name: str
    sector: str | None = None
    sub_industry: str | None = None
    date_added: str | None = None
    cik: str | None = None
    market_cap: float | None = None
    headquarters: str | None = None
    founded: str | None = None


def gics_sector(industries: Iterable[str] | None) -> str | None:
    """The GICS sector among pytickersymbols' ``industries`` labels (see _SECTOR_PRIORITY)."""
    labels = [str(x) for x in industries or ()]
    named = [s for s in _SECTOR_PRIORITY if s in labels]
    if named:
        return named[0]
    for label in labels:
        if label.lower() in _SECTOR_ALIASES:
            return _SECTOR_ALIASES[label.lower()]
    return None


def records(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as JSON-ready dicts (missing values as None)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def empty_changes() -> pd.DataFrame:
    """A changes table with no rows (the columns of the Wikipedia one)."""
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns]" if c == "date" else object) for c in CHANGE_COLUMNS}
    )


def snapshot_caps(path: str | Path | None = None) -> tuple[dict[str, float], str]:
    """Symbol -> market cap from a constituents-financials CSV (``path``, else the newest
    ``constituents-financials-*.csv`` of the data folder), and a note naming the file.

    Only Symbol and Market Cap are read (its Sector column holds sub-industries); caps
    that are not positive finite numbers are left out. DataError without such a file.
    """
    if path is None:
        root = config.data_dir()
        found = sorted(root.glob("constituents-financials-*.csv")) if root else []
        if not found:
            raise DataError(
                "no market-cap snapshot: no constituents-financials-*.csv in the "
                "data folder; use with_market_caps('polygon' or 'yahoo')"
            )
        path = found[-1]
    path = Path(path)
    table = read_csv(path)
    cols = {c.strip().lower(): c for c in table.columns}
    if "symbol" not in cols or "market cap" not in cols:
        raise DataError(
            f"{path}: needs Symbol and Market Cap columns (found "
            f"{', '.join(map(str, table.columns))})"
        )
    caps = pd.to_numeric(table[cols["market cap"]], errors="coerce")
    symbols = table[cols["symbol"]].astype(str).str.strip().str.upper()
    out = {s: float(c) for s, c in zip(symbols, caps, strict=True) if np.isfinite(c) and c > 0}
    return out, f"market caps from {path.name}"


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a frame, or DataError naming the file and what went wrong."""
    raw = read_bounded(path, MAX_LIST_BYTES, "a constituents CSV")
    try:
        return pd.read_csv(io.BytesIO(raw))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None


def date_in_name(path: Path) -> pd.Timestamp | None:
    """The ``YYYY-MM-DD`` date in a file's name, if any."""
    m = re.search(r"(\d{4}-\d{2}-\d{2})", path.name)
    return pd.Timestamp(m.group(1)) if m else None


def stocks_from_frame(frame: pd.DataFrame) -> list[SP500Stock]:
    """One :class:`SP500Stock` per row of a frame with columns named as its fields
    (``symbol`` and ``name`` at least; missing values become None)."""
    frame = frame.astype(object).where(frame.notna(), None)
    out = []
    for rec in frame.to_dict("records"):
        out.append(
            SP500Stock(
                symbol=str(rec["symbol"]).strip().upper(),
                name=str(rec.get("name") or ""),
                sector=rec.get("sector") or None,
                sub_industry=rec.get("sub_industry") or None,
                date_added=rec.get("date_added") or None,
                cik=rec.get("cik") or None,
                headquarters=rec.get("headquarters") or None,
                founded=None if rec.get("founded") is None else str(rec["founded"]),
            )
        )
    return out
