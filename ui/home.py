"""Home's two charts, built once per server for their inputs and shared by every session.

Every reader opens Home, most with the same inputs (the default regime model, the default
range), so its charts are ``st.cache_resource`` objects: a figure kept by
``st.cache_data`` would be pickled per reader and validated by plotly again on each load,
and building them was the largest part of a warm Home view's server time. They are
read-only (``st.plotly_chart`` copies a figure, never changes it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mltrainer import fmt
from mltrainer.data.nber import RECESSIONS
from mltrainer.errors import DataError
from mltrainer.plots.market import price_with_regimes, sector_performance_bar
from mltrainer.sectors import trailing_returns
from ui.compute import run_index_model
from ui.data import index_close
from ui.monitoring import regime_names
from ui.universe import pit_sector_daily_returns

HORIZONS = {"1 month": 21, "3 months": 63, "12 months": 252}


@dataclass(frozen=True)
class IndexRegime:
    """The S&P 500 over the range with a regime model's labels, and the chart of both."""

    figure: go.Figure
    labels: pd.Series
    names: dict
    close: pd.Series


@st.cache_resource(show_spinner=False, max_entries=32)
def index_regime(key: str, params: tuple, start: dt.date | None, end: dt.date) -> IndexRegime:
    """Regime model ``key`` on the bundled S&P 500 index up to ``end``, shown from
    ``start``, with recessions shaded."""
    close = index_close(end).loc[pd.Timestamp(start) if start else None :]
    if close.empty:  # a weekend or a holiday picked as the whole range
        raise DataError(
            f"the index has no close {fmt.date_range(start, end)}: the range holds no "
            "trading day; widen the date range in the sidebar"
        )
    labels = run_index_model(key, params, start, end).primary.iloc[:, 0]
    names = regime_names(key, params)
    figure = price_with_regimes(
        close.rename("S&P 500"), labels, names, recessions=RECESSIONS, height=400
    )
    return IndexRegime(figure, labels, names, close)


@dataclass(frozen=True)
class SectorPerformance:
    """Trailing returns of the point-in-time sector baskets and their chart."""

    figure: go.Figure
    last_date: pd.Timestamp
    note: str


# calendar days of baskets the longest horizon needs (252 trading days, and holidays)
LOOKBACK = pd.Timedelta(days=400)


@st.cache_resource(show_spinner=False, max_entries=16)
def sector_performance(source: str, end: dt.date, sectors: tuple) -> SectorPerformance:
    """1, 3 and 12-month returns to ``end`` of equal-weighted baskets of each day's
    members in that day's sectors: over those months whatever the sidebar's start."""
    start = (pd.Timestamp(end) - LOOKBACK).date()
    daily, note = pit_sector_daily_returns(source, start, end, sectors)
    table = trailing_returns(daily, HORIZONS)
    short = [label for label, days in HORIZONS.items() if len(daily) < days]
    if short:  # the data starts too late for them: no bar rather than a shorter return
        note += (
            f"; no {' or '.join(short)} return: the data holds "
            f"{fmt.count(len(daily), 'trading day')} to {daily.index[-1]:%Y-%m-%d}"
        )
    table = table.drop(index=[i for i in ("Unknown",) if i in table.index])
    note += _partial_baskets(daily, table, short)
    table = table.dropna(how="all")  # a sector that no longer exists on the end date
    return SectorPerformance(sector_performance_bar(table, height=420), daily.index[-1], note)


def _partial_baskets(daily: pd.DataFrame, table: pd.DataFrame, short: list) -> str:
    """Which sectors lack a horizon's bar because their basket begins inside it or ended
    before the end date (Communication Services from 2018-09-24, Telecommunication
    Services until 2018-09-21): a shorter return under that label would be untrue."""
    said = []
    for sector, row in table.iterrows():
        missing = [h for h in row.index[row.isna()] if h not in short]
        held = daily[sector].dropna()
        if not missing or held.empty:
            continue
        if held.index[-1] < daily.index[-1]:
            said.append(f"{sector} ended {held.index[-1]:%Y-%m-%d}")
        else:
            said.append(
                f"{sector} has no {' or '.join(missing)} return: it begins {held.index[0]:%Y-%m-%d}"
            )
    return "; " + "; ".join(said) if said else ""
