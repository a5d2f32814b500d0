"""The portfolio builder shared by Risk & Stress and Monitor, and the cached risk
computations behind those pages (VaR backtest, stress report, portfolio statistics)."""

from __future__ import annotations

from dataclasses import astuple, replace

import numpy as np
import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.data.ticker_hints import ticker_hints
from mltrainer.errors import DataError
from mltrainer.measures.var import no_forecast_reason
from mltrainer.models.registry import by_family
from ui import links
from ui.compute import params_key, run_model
from ui.context import Selection, load
from ui.data import (
    default_tickers,
    kept_picks,
    no_ticker_reason,
    picks_lacking,
    say_dropped,
    universe_tickers,
)

WEIGHTINGS = ("Equal", "Market cap", "Risk parity", "Sizing model", "Custom")
PORTFOLIO_KEY = "portfolio"  # survives page switches (widget state does not)
MAX_QUIET_GROSS = 2.0  # custom weights rescaled to more gross exposure than this are named


def _data(source: str, tickers: tuple, start, end, history: bool = False):
    """The tickers from ``start`` to ``end``; ``history``: from their first date instead
    (what an estimate may learn from; the range still decides what is scored)."""
    data = load(source)
    return data.select(tickers=list(tickers), start=None if history else start, end=end)


def _from(series: pd.Series, start) -> pd.Series:
    return series if start is None else series.loc[pd.Timestamp(start) :]


def _market_caps(source, tickers, start, end, sizing_key) -> dict:
    from mltrainer.sectors_pit import cap_weighting_inputs

    return cap_weighting_inputs(_naming_dates(source, tickers))


def _naming_dates(source: str, tickers) -> pd.Series:
    """The date each ticker names its company: its last price date in the whole panel
    (the keys of a later cap snapshot are that company's symbols of the snapshot's day)."""
    from mltrainer.sectors_pit import last_price_dates

    return last_price_dates(load(source).adj_close[list(tickers)])


def _returns(source, tickers, start, end, sizing_key) -> dict:
    return {"returns": _data(source, tickers, start, end).returns()}


def _sizing_weights(source, tickers, start, end, sizing_key) -> dict:
    out = run_model(source, sizing_key, params_key({}), tickers, start, end)
    return {"sizing_weights": out.primary, "name": sizing_key}


# display label -> (method of mltrainer.measures.weighting, loader of the inputs it needs)
METHODS = {
    "Equal": ("equal", lambda *args: {}),
    "Market cap": ("market_cap", _market_caps),
    "Risk parity": ("risk_parity", _returns),
    "Sizing model": ("sizing_model", _sizing_weights),
}


@st.cache_data(show_spinner="Computing the weights…", max_entries=32)
def weights_for(
    source: str, tickers: tuple, start, end, method: str, sizing_key: str | None = None
) -> tuple:
    """Portfolio weights (summing to 1) for ``tickers`` by ``method`` (WEIGHTINGS);
    the construction is :func:`mltrainer.measures.weighting.portfolio_weights`."""
    from mltrainer.measures.weighting import portfolio_weights

    if method not in METHODS:
        raise DataError(f"unknown weighting {method!r}; choose one of {', '.join(WEIGHTINGS)}")
    name, inputs = METHODS[method]
    w = portfolio_weights(name, list(tickers), **inputs(source, tickers, start, end, sizing_key))
    return tuple(w.to_numpy())


def portfolio_builder(sel: Selection, key: str) -> tuple[tuple, tuple, str, tuple] | None:
    """Tickers and a weighting; returns (tickers, weights, description, notes on the
    weights that the figures must carry) or None."""
    saved = st.session_state.get(PORTFOLIO_KEY, {})
    options = universe_tickers(sel)
    wanted = saved["tickers"] if "tickers" in saved else default_tickers(sel, 8)  # not on reruns
    earlier = st.session_state.get(f"{key}:tickers", saved.get("tickers"))
    lacking = picks_lacking(earlier, load(sel.source).tickers)  # of another source
    say_dropped(lacking, load(sel.source).source, "left out of the portfolio")
    # the book's tickers outside the sidebar's sectors stay in it (a filter narrowed the
    # book to XOM for good, and the Monitor kept all eight): offered after the others
    outside = kept_picks(wanted, options, universe_tickers(replace(sel, sectors=())))
    options = options + outside
    default = [t for t in wanted if t in options]
    c1, c2, c3 = st.columns([4, 2, 2])
    links.hint(f"{key}:tickers", lambda lost: ticker_hints(lost, options))
    tickers = c1.multiselect(
        "Portfolio tickers",
        options,
        default=default,
        key=f"{key}:tickers",
        bind="query-params",
        max_selections=links.most(f"{key}:tickers", options, 60),
        help="Two to sixty stocks of the selected data source",
    )
    method = c2.selectbox(
        "Weighting",
        WEIGHTINGS,
        index=WEIGHTINGS.index(saved.get("method", "Equal")),
        key=f"{key}:method",
        bind="query-params",
        help="Market cap: the constituents-financials snapshot; risk "
        "parity: equal risk contributions (Ledoit-Wolf covariance of the range's "
        "last 756 days, three years, or all of a shorter range); sizing model: its "
        "weights on the last date",
    )
    sizing_key = None
    if method == "Sizing model":
        sizing = by_family().get("sizing", [])
        sizing_key = c3.selectbox(
            "Sizing model",
            sizing,
            key=f"{key}:sizing",
            bind="query-params",
            format_func=lambda k: k.split("/")[1],
        )
    if kept_outside := [t for t in outside if t in tickers]:
        c1.caption(f"{', '.join(kept_outside)}: outside the sidebar's sectors, kept in the book")
    if len(tickers) < 2:
        st.info(no_ticker_reason(sel) or "Pick at least two tickers for the portfolio.")
        return None
    tickers = tuple(tickers)
    if method == "Custom":
        previous = dict(zip(saved.get("tickers", ()), saved.get("weights", ()), strict=False))
        base = pd.DataFrame(
            {"ticker": tickers, "weight": [previous.get(t, 1.0 / len(tickers)) for t in tickers]}
        )
        edited = st.data_editor(
            base,
            hide_index=True,
            disabled=["ticker"],
            key=f"{key}:custom:{'|'.join(tickers)}",
            column_config={
                "weight": st.column_config.NumberColumn(
                    "weight", min_value=-1.0, max_value=1.0, step=0.01, format="%.3f"
                )
            },
        )
        raw = edited["weight"].fillna(0.0).to_numpy(dtype="float64")
        if raw.sum() <= 0:
            st.error(
                "Custom weights must add up to a positive number; they are rescaled to sum to 1."
            )
            return None
        weights = tuple(raw / raw.sum())
        gross = float(np.abs(weights).sum())
        if gross > MAX_QUIET_GROSS:  # a long/short book of small net: rescaling levers it
            st.warning(
                f"The custom weights net to {fmt.number(raw.sum(), 3)}; rescaled to sum to 1 "
                f"they hold {fmt.number(gross, 1)}x the book's value (gross exposure), and "
                "every figure below is that of this leveraged book."
            )
    else:
        try:
            weights = weights_for(sel.source, tickers, sel.start, sel.end, method, sizing_key)
        except DataError as exc:
            st.error(f"The weights could not be computed: {exc}")
            return None
    st.session_state[PORTFOLIO_KEY] = {"tickers": tickers, "weights": weights, "method": method}
    label = method if method != "Sizing model" else f"sizing: {sizing_key.split('/')[1]}"
    notes = ()
    if method == "Market cap":  # caps of a later date than the range say so
        from mltrainer.sectors_pit import cap_notes

        notes = cap_notes(sel.end or load(sel.source).dates[-1], _naming_dates(sel.source, tickers))
    for note in notes:
        st.warning(f"{note[0].upper()}{note[1:]}.")
    return tickers, tuple(float(w) for w in weights), label, notes


VAR_LEVELS = (0.9, 0.95, 0.975, 0.99, 0.995)  # the page's choices, estimated together


def var_levels(level: float) -> tuple:
    """The report's VaR levels: the chosen one and 95%."""
    return tuple(sorted({0.95, float(level)}))


def _forecasts_at(
    source: str, tickers: tuple, weights: tuple, end, method: str, window: int, levels: tuple
) -> pd.DataFrame:
    """:func:`rolling_var`'s forecasts at ``levels`` alone (``(measure, level)`` columns)."""
    wanted = tuple(float(x) for x in levels)
    every = tuple(sorted({*VAR_LEVELS, *wanted}))
    both = rolling_var(source, tickers, weights, end, method, every, window)
    return both.loc[:, [(m, x) for m in ("var", "es") for x in wanted]]


def _book(source: str, tickers: tuple, weights: tuple, end) -> pd.Series:
    """The fixed-weight book's daily returns over all its history up to ``end``."""
    from mltrainer.measures.portfolio import portfolio_returns

    data = _data(source, tickers, None, end, history=True)
    return portfolio_returns(data.returns(), pd.Series(dict(zip(tickers, weights, strict=True))))


@st.cache_data(show_spinner="Estimating the rolling VaR forecasts…", max_entries=32)
def rolling_var(
    source: str, tickers: tuple, weights: tuple, end, method: str, levels: tuple, window: int
) -> pd.DataFrame:
    """The book's rolling VaR/ES forecasts by one method at ``levels`` (see
    :func:`rolling_forecasts`), on all history up to ``end``. Kept by method, estimated
    at all the page's levels at once (at the cost of two) and not kept by start: the
    VaR tab and the report estimate a method once (fhs_garch takes a second on 22
    years), a change of method estimates only the new one, of level or start none."""
    from mltrainer.reports.stress_var import rolling_forecasts

    return rolling_forecasts(_book(source, tickers, weights, end), method, levels, window)


@st.cache_data(show_spinner="Backtesting the VaR forecasts…", max_entries=32)
def var_backtest(
    source: str, tickers: tuple, weights: tuple, start, end, method: str, level: float, window: int
) -> dict:
    """Rolling VaR/ES of the fixed-weight portfolio and its backtest (small dict).

    The forecasts are estimated on all history before each day (so the range's first
    day has a forecast); the exceptions and the tests score the range only.
    """
    from mltrainer.measures.backtest_var import (
        christoffersen,
        kupiec_pof,
        traffic_light,
        var_exceptions,
    )
    from mltrainer.reports.stress_var import MIN_BACKTEST_DAYS, unforecast_days

    port = _book(source, tickers, weights, end)
    one = _forecasts_at(source, tickers, weights, end, method, window, (level,))
    full = pd.DataFrame({"var": one["var"].iloc[:, 0], "es": one["es"].iloc[:, 0]})
    exc = _from(var_exceptions(port, full["var"]), start)
    rolling = {k: _from(v, start) for k, v in full.items()}
    port = _from(port, start)
    scored = int(exc.notna().sum())
    missed = unforecast_days(port, full["var"], start)
    if scored == 0 and missed:
        raise DataError(
            f"{method} gives no {window}-day VaR forecast on any day of the range "
            f"({fmt.date_range(start, end)}): "
            f"{no_forecast_reason(method)}; choose another method for this range"
        )
    if scored == 0:
        raise DataError(
            f"no day of the range ({fmt.date_range(start, end)}) has a {window}-day VaR "
            "forecast to score: the range holds no trading day, or the portfolio's history "
            "before it is too short; widen the dates or shorten the window"
        )
    tested = scored >= MIN_BACKTEST_DAYS  # fewer days cannot accept or reject a forecast
    return {
        "returns": port,
        "var": rolling["var"],
        "es": rolling["es"],
        "exceptions": exc,
        "scored": scored,
        "kupiec": kupiec_pof(exc, level),
        "christoffersen": christoffersen(exc, level) if tested else None,
        "traffic_light": traffic_light(exc, level) if tested else None,
        # the last day's forecast, NaN where the method gives none (Cornish-Fisher
        # outside its domain): an older figure would pass for today's
        "latest_var": float(rolling["var"].iloc[-1]),
        "latest_es": float(rolling["es"].iloc[-1]),
        "latest_date": rolling["var"].index[-1],
        "gap_note": _gap_note(method, float(rolling["var"].iloc[-1]), missed),
    }


def _gap_note(method: str, latest: float, missed: int) -> str | None:
    """What a method without a forecast on some days must say (None when it has all)."""
    if not (np.isnan(latest) or missed):
        return None
    when = " and ".join(
        ([] if not np.isnan(latest) else ["for the next day"])
        + ([f"on {fmt.count(missed, 'day')} of the range"] if missed else [])
    )
    return (
        f"{method} gives no VaR forecast {when}: {no_forecast_reason(method)}. Those days are not "
        "scored, so its backtest covers fewer days; another method gives a figure for them."
    )


@st.cache_data(show_spinner="Running the stress scenarios…", max_entries=16)
def stress_report(
    source: str, tickers: tuple, weights: tuple, start, end, settings: tuple, notes: tuple = ()
):
    """:func:`build_stress_report` on the portfolio (``settings`` = StressSettings fields):
    all the history up to ``end`` is replayed and estimated from; ``start`` sets the range
    the report shows and scores; ``notes`` on the weights lead its warnings."""
    from mltrainer.reports.stress_report import StressSettings, build_stress_report

    data = _data(source, tickers, start, end, history=True)
    w = pd.Series(dict(zip(tickers, weights, strict=True)))
    s = StressSettings(*settings)
    var = stress_var(source, tickers, weights, start, end, astuple(s.var_only()))
    return build_stress_report(data, w, s, start=start, notes=notes, var=var)


@st.cache_data(show_spinner="Backtesting every VaR method…", max_entries=16)
def stress_var(source: str, tickers: tuple, weights: tuple, start, end, settings: tuple):
    """The report's VaR part (:func:`stress_var_part`), cached on the VaR settings alone:
    moving a scenario slider reuses it instead of re-estimating every method."""
    from mltrainer.reports.stress_report import StressSettings, stress_var_part

    data = _data(source, tickers, start, end, history=True)
    w = pd.Series(dict(zip(tickers, weights, strict=True)))
    s = StressSettings(*settings)

    def estimate(method: str) -> pd.DataFrame:
        return _forecasts_at(source, tickers, weights, end, method, s.var_window, s.levels)

    return stress_var_part(data, w, s, start=start, estimate=estimate)


def partial_positions(report) -> str | None:
    """The report's note on the positions priced over only part of the range (None when
    all are priced throughout): on those days the page's VaR, ES and drawdowns are the
    other positions', and only the stress tab's captions said so (CARR beside AAPL in
    2005-2010 showed AAPL's VaR and 2008 drawdown as the book's)."""
    from mltrainer.measures.portfolio import SCALED_UP

    return next((w for w in report.warnings if w.endswith(SCALED_UP)), None)


def unpriced_on(source: str, tickers: tuple, day) -> str | None:
    """A sentence naming the positions without a price on ``day`` (listed later, or gone
    before it), None when all have one: on such a day the book is the other positions,
    their weights scaled up (:func:`mltrainer.measures.portfolio.portfolio_returns`),
    and a status of the book on it is theirs (the Monitor watched CARR and AAPL in 2010
    as AAPL alone, unsaid)."""
    from mltrainer.measures.portfolio import SCALED_UP

    close = load(source).adj_close[list(tickers)].loc[: pd.Timestamp(day)]
    held = close.apply(pd.Series.last_valid_index)
    last = close.index[-1] if len(close) else None
    missing = [t for t in tickers if last is None or held[t] != last]
    if not missing:
        return None
    return (
        f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no price on "
        f"{fmt.date(last or day)}: the book's figures there are {SCALED_UP}"
    )


def settings_tuple(settings) -> tuple:
    return astuple(settings)


@st.cache_data(show_spinner=False, max_entries=16)
def report_html(
    source: str, tickers: tuple, weights: tuple, start, end, settings: tuple, notes: tuple = ()
) -> bytes:
    """The stress report as one self-contained HTML file."""
    from mltrainer.reports.stress_html import render_html

    report = stress_report(source, tickers, weights, start, end, settings, notes)
    return render_html(report).encode()


@st.cache_data(show_spinner="Printing the report to PDF…", max_entries=8)
def report_pdf(
    source: str, tickers: tuple, weights: tuple, start, end, settings: tuple, notes: tuple = ()
) -> dict:
    """The stress report printed to PDF by headless Chromium: ``{"pdf": bytes}``, or
    ``{"message": why not}`` when Chromium is missing or fails."""
    import tempfile
    from pathlib import Path

    from mltrainer.reports.html import print_pdf

    with tempfile.TemporaryDirectory(prefix="mltrainer-report-") as folder:
        html_path = Path(folder) / "stress_report.html"
        html_path.write_bytes(report_html(source, tickers, weights, start, end, settings, notes))
        printed = print_pdf(html_path, Path(folder) / "stress_report.pdf")
        if not printed.ok:
            return {"message": printed.message}
        return {"pdf": printed.path.read_bytes()}


@st.cache_data(show_spinner="Computing correlations and risk contributions…", max_entries=32)
def portfolio_stats(source: str, tickers: tuple, weights: tuple, start, end) -> dict:
    """Correlation, risk contributions, drawdowns of the portfolio and of each position."""
    from mltrainer.measures.portfolio import portfolio_summary

    data = _data(source, tickers, start, end)
    return portfolio_summary(data.returns(), pd.Series(dict(zip(tickers, weights, strict=True))))


@st.cache_data(show_spinner="Computing the drawdowns…", max_entries=16)
def portfolio_drawdowns(source: str, tickers: tuple, weights: tuple, start, end) -> dict:
    """The portfolio's drawdown path and each position's worst drawdown over the range."""
    from mltrainer.measures.portfolio import drawdown_summary

    # from the close before the range, as the report's portfolio path: a position that
    # fell on the range's first day had that fall left out
    data = _data(source, tickers, start, end, history=True)
    weights = pd.Series(dict(zip(tickers, weights, strict=True)))
    return drawdown_summary(data.returns(), weights, first=start or data.dates[0])


def trading_days(dates: pd.DatetimeIndex, start, end) -> str:
    """How many trading days of ``dates`` lie after ``start`` up to ``end`` (``23 days``),
    short enough for a metric; its caption says they are trading days and gives the dates."""
    n = int(((dates > pd.Timestamp(start)) & (dates <= pd.Timestamp(end))).sum())
    return f"{fmt.integer(n)} day{'' if n == 1 else 's'}"


def skipped_lines(report) -> list[str]:
    """Captions for the scenarios the report did not run, one per reason: an episode
    after the book's date is not one without prices (a 2010 book read 'COVID-19: the
    portfolio's tickers have no prices then')."""
    from mltrainer.risk_stress.scenarios import (
        HISTORICAL_SCENARIOS,
        scenario_title,
        skipped_reason,
    )

    last, first = (pd.Timestamp(report.meta[k]) for k in ("last_date", "history_start"))
    groups: dict[str, list[str]] = {}
    for s in HISTORICAL_SCENARIOS:
        if s.key not in report.skipped:
            continue
        if s.end > last:
            why = f"it ends after the book's date, {last.date()}"
        elif s.start < first:
            why = f"it starts before the data's history ({first.date()} on)"
        else:
            why = report.skipped[s.key]
        groups.setdefault(why, []).append(s.name)
    lines = [f"Not replayed: {', '.join(names)}: {why}." for why, names in groups.items()]
    known = {s.key for s in HISTORICAL_SCENARIOS}
    lines += [
        f"Skipped {scenario_title(k)}: {skipped_reason(k, v)}"
        for k, v in report.skipped.items()
        if k not in known
    ]
    return lines
