"""Real data that ships inside installed packages: the offline default.

- skfolio: daily adjusted prices of 20 S&P 500 stocks (1990-2022), the S&P 500 index
  (1990-2022) and five factor ETFs (2014-2022);
- arch: S&P 500 and NASDAQ composite daily OHLCV (1999-2018), VIX, Fama-French
  factors, Moody's AAA/BAA yields, core CPI, WTI crude;
- pytickersymbols: the S&P 500 member list with industries (GICS sector among them).

The skfolio stock prices are adjusted closes only: the returned MarketData has no
open/high/low/volume, and models that need them say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.validate import DateLike

# Range Resources left the S&P 500 before pytickersymbols' list was made; its GICS sector
# is public record (Energy) and it is one of skfolio's 20 stocks.
_SECTOR_FALLBACK = {"RRC": "Energy"}

# arch's macro data under their FRED series names
_ARCH_MACRO = {
    "AAA": ("default", "AAA"),
    "BAA": ("default", "BAA"),
    "CPILFESL": ("core_cpi", "CPILFESL"),
    "DCOILWTICO": ("wti", "DCOILWTICO"),
    "VIXCLS": ("vix", "vix"),
}
INDEXES = {"SP500": "sp500", "NASDAQCOM": "nasdaq"}


@lru_cache(maxsize=1)
def _skfolio_prices() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset().astype("float64")


@lru_cache(maxsize=1)
def bundled_sectors() -> dict:
    """Ticker -> GICS sector for every S&P 500 member pytickersymbols knows."""
    from pytickersymbols import PyTickerSymbols

    from mltrainer.data.constituents import gics_sector

    out = dict(_SECTOR_FALLBACK)
    for stock in PyTickerSymbols().get_stocks_by_index("S&P 500"):
        sector = gics_sector(stock.get("industries"))
        if sector:
            out[stock["symbol"].upper()] = sector
    return out


def load_bundled(
    tickers: Iterable[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> MarketData:
    """skfolio's 20 S&P 500 stocks as MarketData (adjusted close only)."""
    prices = _skfolio_prices()
    prices.index = pd.DatetimeIndex(prices.index, name="date")
    sectors = {t: s for t, s in bundled_sectors().items() if t in prices.columns}
    data = MarketData.from_close(prices, source="bundled", as_of=prices.index[-1], sectors=sectors)
    if tickers is not None or start is not None or end is not None:
        data = data.select(tickers=tickers, start=start, end=end)
    return data


@lru_cache(maxsize=4)
def _index(name: str) -> MarketData:
    import importlib

    if name not in INDEXES:
        raise DataError(f"unknown bundled index {name!r}; available: {', '.join(INDEXES)}")
    ohlcv = importlib.import_module(f"arch.data.{INDEXES[name]}").load()
    ohlcv.index = pd.DatetimeIndex(ohlcv.index, name="date")
    frame = ohlcv.rename(columns=str.lower).rename(columns={"adj close": "adj_close"})
    if name == "SP500":
        # skfolio's index series runs 1990-2022 and equals arch's close where both exist
        from skfolio.datasets import load_sp500_index

        longer = load_sp500_index()["SP500"].astype("float64")
        longer.index = pd.DatetimeIndex(longer.index, name="date")
        frame = frame.reindex(longer.index.union(frame.index))
        frame["close"] = frame["close"].fillna(longer)
        frame["adj_close"] = frame["adj_close"].fillna(longer)
    fields = {
        f: frame[[f]].rename(columns={f: name}).astype("float64")
        for f in ("open", "high", "low", "close", "adj_close", "volume")
    }
    return MarketData(**fields, source="bundled", as_of=frame.index[-1])


def load_index(
    name: str = "SP500", start: DateLike | None = None, end: DateLike | None = None
) -> MarketData:
    """A bundled index as one-column MarketData (column = FRED-style name).

    SP500: close 1990-2022 (skfolio), with OHLCV where arch has it (1999-2018).
    NASDAQCOM: OHLCV 1999-2018 (arch).
    """
    data = _index(name)
    return data.select(start=start, end=end) if start is not None or end is not None else data


@lru_cache(maxsize=1)
def sp500_index_close() -> pd.Series:
    """The S&P 500 price index close shipped in skfolio's wheel (1990-2022), "SP500".

    Read straight from the wheel's CSV: importing skfolio (or arch, which
    :func:`load_macro` uses) costs seconds a caller that only needs the close does not
    need to spend; falls back to :func:`load_macro` if the file moved. Cached: do not
    modify the returned series.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("skfolio")
    path = (
        Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "sp500_index.csv.gz"
        if spec and spec.submodule_search_locations
        else None
    )
    if path is None or not path.is_file():
        return load_macro("SP500")
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    series = frame.iloc[:, 0].astype("float64").rename("SP500")
    series.index = pd.DatetimeIndex(series.index, name="date")
    return series


def load_macro(series_id: str) -> pd.Series:
    """A macro series bundled with arch, by its FRED id (AAA, BAA, CPILFESL, DCOILWTICO,
    VIXCLS), or the S&P 500 / NASDAQ index close (SP500, NASDAQCOM)."""
    import importlib

    key = series_id.upper()
    if key in INDEXES:
        return _index(key).adj_close[key].rename(key)
    if key not in _ARCH_MACRO:
        raise DataError(
            f"series {series_id!r} is not bundled; offline series: "
            f"{', '.join(sorted([*_ARCH_MACRO, *INDEXES]))}"
        )
    module, column = _ARCH_MACRO[key]
    frame = importlib.import_module(f"arch.data.{module}").load()
    series = frame[column].astype("float64").rename(key)
    series.index = pd.DatetimeIndex(series.index, name="date")
    return series


def load_factor_etfs() -> pd.DataFrame:
    """skfolio's factor ETF prices (MTUM, QUAL, SIZE, USMV, VLUE), 2014-2022."""
    from skfolio.datasets import load_factors_dataset

    return load_factors_dataset().astype("float64")


def load_fama_french() -> pd.DataFrame:
    """arch's monthly Fama-French factors (Mkt-RF, SMB, HML, RF), in percent."""
    import arch.data.frenchdata

    frame = arch.data.frenchdata.load()
    # arch stores the month as an integer yyyymm that pandas read as nanoseconds
    months = pd.Series(frame.index.asi8 if hasattr(frame.index, "asi8") else frame.index)
    frame.index = pd.to_datetime(months.astype(str), format="%Y%m") + pd.offsets.MonthEnd(0)
    return frame
