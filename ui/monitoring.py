"""Alerts for the Home and Monitor pages: risk limits as widgets, rules evaluated through
``st.cache_data`` on the S&P 500 index or a portfolio, shown as coloured cards."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, fields

import pandas as pd
import streamlit as st

from mltrainer.errors import DataError
from mltrainer.measures.var import METHODS
from mltrainer.models.registry import get_model
from mltrainer.monitor import Limits, evaluate, until_wipeout
from ui.compute import run_index_model
from ui.context import load

DEFAULT_REGIME = "regime/VolatilityRegimeModel"
ICONS = {
    "high": ":red[:material/error:]",
    "medium": ":orange[:material/warning:]",
    "ok": ":green[:material/check_circle:]",
}


def limits_from_tuple(values: tuple) -> Limits:
    return Limits(*values)


def limits_widgets(key: str = "mon") -> Limits:
    """Sliders for every limit (defaults from :class:`Limits`)."""
    d = Limits()
    c1, c2, c3 = st.columns(3)
    with c1:
        level = st.select_slider(
            "VaR level",
            [0.9, 0.95, 0.975, 0.99, 0.995],
            d.var_level,
            key=f"{key}:var_level",
            bind="query-params",
            help="Confidence level of the VaR forecast a day's loss is tested against",
        )
        window = st.slider(
            "VaR window (days)",
            100,
            1000,
            d.var_window,
            50,
            key=f"{key}:var_window",
            bind="query-params",
            help="Days each VaR forecast is estimated from",
        )
        method = st.selectbox(
            "VaR method",
            METHODS,
            METHODS.index(d.var_method),
            key=f"{key}:var_method",
            bind="query-params",
        )
    with c2:
        max_dd = st.slider(
            "Drawdown limit",
            0.02,
            0.50,
            d.max_drawdown,
            0.01,
            key=f"{key}:max_drawdown",
            bind="query-params",
            format="%.2f",
            help="Alert when the value falls this far below its running peak",
        )
        ratio = st.slider(
            "Volatility spike ratio",
            1.1,
            4.0,
            d.vol_ratio,
            0.1,
            key=f"{key}:vol_ratio",
            bind="query-params",
            help="Alert when short-term volatility exceeds this multiple of long-term volatility",
        )
        vs, vl = st.slider(
            "Volatility windows (short, long)",
            5,
            504,
            (d.vol_short, d.vol_long),
            key=f"{key}:vol_windows",
            bind="query-params",
        )
    with c3:
        stale = st.slider(
            "Stale data after (business days)",
            1,
            30,
            d.stale_days,
            key=f"{key}:stale_days",
            bind="query-params",
        )
        recent = st.slider(
            "Recent events window (days)",
            1,
            60,
            d.recent_days,
            key=f"{key}:recent_days",
            bind="query-params",
            help="A VaR breach or regime change this recent counts as an active alert",
        )
        confirm = st.slider(
            "Regime confirmed after (days)",
            1,
            30,
            d.regime_confirm,
            key=f"{key}:regime_confirm",
            bind="query-params",
            help="A new regime counts once it "
            "has held this many days in a row (daily labels flip back and "
            "forth)",
        )
    return Limits(
        var_level=float(level),
        var_window=int(window),
        var_method=method,
        max_drawdown=float(max_dd),
        vol_short=int(vs),
        vol_long=int(vl),
        vol_ratio=float(ratio),
        stale_days=int(stale),
        recent_days=int(recent),
        regime_confirm=int(confirm),
    )


def regime_names(key: str, params: tuple) -> dict:
    model = get_model(key)(**dict(params))
    names = model.regime_names() if hasattr(model, "regime_names") else ()
    return dict(enumerate(names))


@st.cache_data(show_spinner="Evaluating the risk limits…", max_entries=32)
def index_alerts(
    source: str, start, end, limits: tuple, regime_key: str, regime_params: tuple, today: dt.date
) -> tuple[list[dict], pd.DataFrame]:
    """Every rule on the bundled S&P 500 index between start and end (VaR and volatility
    windows estimated on all the history before start); stale data judged on the source."""
    from ui.data import index_close

    close = index_close(end)
    rets = close.pct_change(fill_method=None)  # all history: windows are full at start
    labels = run_index_model(regime_key, regime_params, start, end).primary.iloc[:, 0]
    data = load(source)
    dates = data.dates[data.dates <= pd.Timestamp(end)] if end else data.dates
    alerts, history = evaluate(
        rets,
        limits_from_tuple(limits),
        labels=labels,
        regime_names=regime_names(regime_key, regime_params),
        dates=dates,
        today=today,
        last_bar=data.dates[-1],
    )
    history = history[history["date"] >= pd.Timestamp(start)] if start else history
    return [a.as_dict() for a in alerts], history.reset_index(drop=True)


@st.cache_data(show_spinner="Evaluating the risk limits…", max_entries=32)
def portfolio_alerts(
    source: str,
    tickers: tuple,
    weights: tuple,
    start,
    end,
    limits: tuple,
    regime_key: str,
    regime_params: tuple,
    today: dt.date,
) -> tuple[list[dict], pd.DataFrame, tuple | None]:
    """Every rule on a fixed-weight portfolio of ``tickers`` (regimes of its value), and
    for a book that loses all its value, (that day, what the page must say): its alerts
    and their history run up to that day, as :func:`~mltrainer.monitor.evaluate` does."""
    from mltrainer.data.market_data import MarketData
    from mltrainer.measures.portfolio import equity_curve, portfolio_returns, wipeout_note

    data = load(source)
    sub = data.select(tickers=list(tickers), end=end)  # all history: windows full at start
    w = pd.Series(dict(zip(tickers, weights, strict=True)))
    rets, day = until_wipeout(portfolio_returns(sub.returns(), w))
    value = equity_curve(rets).to_frame("portfolio")
    wiped = None
    if day is not None:  # its value is 0 from then on: nothing after it to watch
        value = value.iloc[:-1]  # a value of 0 has no regime
        wiped = (
            f"{wipeout_note(rets, float(w.abs().sum()))}: the status and the history stop "
            "there (a book wiped out holds nothing to monitor); lower its leverage"
        )
    try:
        labels = (
            get_model(regime_key)(**dict(regime_params))
            .run(MarketData.from_close(value, source=source))
            .primary.iloc[:, 0]
        )
    except DataError as exc:
        if wiped is None:
            raise
        labels, wiped = None, f"{wiped}. No regime-change rule: before that day, {exc}"
    alerts, history = evaluate(
        rets,
        limits_from_tuple(limits),
        labels=labels,
        regime_names=regime_names(regime_key, regime_params),
        dates=data.dates[data.dates <= pd.Timestamp(end)],
        today=today,
        last_bar=data.dates[-1],
    )
    history = history[history["date"] >= pd.Timestamp(start)] if start else history
    gone = None if day is None else (day.date(), wiped)
    return [a.as_dict() for a in alerts], history.reset_index(drop=True), gone


def limits_tuple(limits: Limits) -> tuple:
    return astuple(limits)


LIMIT_FIELDS = [f.name for f in fields(Limits)]


CARD_PX = 220  # an alert card's width: its title and a message's words fit; five fit
# in a row at 1500 px


def alert_cards(alerts: list[dict], only_active: bool = False) -> None:
    """One bordered card per rule: icon, title, status and the message."""
    shown = [a for a in alerts if a["active"] or not only_active]
    if not shown:
        st.success("No active alerts: every risk limit is respected on the latest data.")
        return
    # cards of at least CARD_PX in a row that wraps: five equal columns were 75 px at
    # 800 px and broke words ("Drawd/own limit")
    row = st.container(horizontal=True, gap="small")
    for a in shown:
        with row.container(border=True, width=CARD_PX):
            status = "ACTIVE" if a["active"] else "ok"
            st.markdown(f"{ICONS[a['severity']]} **{a['title']}** · {status}")
            st.caption(a["message"])
