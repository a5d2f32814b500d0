"""The stress-test report: a weighted portfolio's VaR/ES, their backtest, drawdowns and
every stress scenario, as one self-contained HTML file (and a PDF when Chromium is there).

:func:`build_stress_report` computes everything (pure: data in, :class:`StressReport`
out); :func:`~mltrainer.reports.stress_html.render_html` lays it out and
:func:`~mltrainer.reports.stress_html.write_stress_report` writes the files (the layout
depends on this module, never the reverse).
The numbers come from :mod:`mltrainer.measures` (VaR/ES, backtests, portfolio returns,
drawdowns; the VaR part is :mod:`mltrainer.reports.stress_var`) and
:mod:`mltrainer.risk_stress.scenarios`; the figures from :mod:`mltrainer.plots.risk`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd

from mltrainer import fmt
from mltrainer.data.bundled import sp500_index_close
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.portfolio import SCALED_UP, drawdown_series, wipeout_note
from mltrainer.measures.var import METHODS
from mltrainer.models import regime
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS
from mltrainer.reports.stress_var import (
    MIN_BACKTEST_DAYS,
    VarFigures,
    book_returns,
    range_equity,
    range_start,
    var_figures,
)
from mltrainer.risk_stress.scenarios import (
    UNKNOWN_SECTOR,
    ScenarioResult,
    Weights,
    correlation_breakdown,
    equal_weight_market,
    liquidity_crisis,
    market_crash,
    replay_all,
    scenario_table,
    validate_weights,
    volatility_spike,
)

DEFAULT_METHODS = ("historical", "normal", "student_t", "cornish_fisher", "fhs_ewma")


@dataclass(frozen=True)
class StressSettings:
    """The report's knobs (all have defaults a risk committee would recognise).

    ``levels`` are VaR confidence levels; ``var_window`` the days each VaR forecast is
    estimated from; ``chart_method`` the VaR method drawn against the returns.
    ``market`` is ``"sp500"`` (the S&P 500 index bundled with skfolio/arch) or
    ``"portfolio"`` (the equal-weight mean of the portfolio's own tickers).
    """

    portfolio_value: float = 1_000_000.0
    levels: tuple = (0.95, 0.99)
    methods: tuple = DEFAULT_METHODS
    var_window: int = 250
    chart_method: str = "historical"
    crash: float = -0.20
    vol_multiplier: float = 3.0
    correlation_push: float = 0.5
    spread_multiplier: float = 5.0
    beta_window: int = TRADING_DAYS
    market: str = "sp500"

    def var_only(self) -> StressSettings:
        """These settings with the scenarios' at their defaults: all that
        :func:`stress_var_part` depends on (a cache key that a scenario slider keeps)."""
        return StressSettings(
            portfolio_value=self.portfolio_value,
            levels=self.levels,
            methods=self.methods,
            var_window=self.var_window,
            chart_method=self.chart_method,
        )

    def check(self) -> None:
        """Raise ParameterError naming the first setting outside what is allowed."""
        rules = (
            (
                self.portfolio_value > 0,
                f"portfolio value must be positive (got {self.portfolio_value})",
            ),
            (
                len(self.levels) > 0 and all(0.5 < x < 1 for x in self.levels),
                f"VaR levels must be in (0.5, 1), e.g. 0.95,0.99 (got {self.levels})",
            ),
            (
                len(self.methods) > 0 and all(m in METHODS for m in self.methods),
                f"VaR methods must be among {', '.join(METHODS)} (got {self.methods})",
            ),
            (self.var_window >= 50, f"VaR window must be at least 50 days (got {self.var_window})"),
            (
                self.chart_method in self.methods,
                f"chart method {self.chart_method!r} is not among the methods",
            ),
            (-1.0 <= self.crash < 0.0, f"crash must be a fall in [-1, 0) (got {self.crash})"),
            (
                self.vol_multiplier > 0,
                f"volatility multiplier must be positive (got {self.vol_multiplier})",
            ),
            (
                0.0 <= self.correlation_push <= 1.0,
                f"correlation push must be in [0, 1] (got {self.correlation_push})",
            ),
            (
                self.spread_multiplier >= 0,
                f"spread multiplier must be >= 0 (got {self.spread_multiplier})",
            ),
            (
                self.beta_window >= 60,
                f"beta window must be at least 60 days (got {self.beta_window})",
            ),
            (
                self.market in ("sp500", "portfolio"),
                f"market must be 'sp500' or 'portfolio' (got {self.market!r})",
            ),
        )
        for ok, message in rules:
            if not ok:
                raise ParameterError(message)


@dataclass
class StressReport:
    """Everything the report shows, computed once (see :func:`build_stress_report`)."""

    settings: StressSettings
    weights: pd.Series
    portfolio: pd.DataFrame
    returns: pd.Series
    var_table: pd.DataFrame
    backtest: pd.DataFrame
    var_forecasts: pd.DataFrame
    exceptions: pd.Series
    drawdown: pd.Series
    drawdown_stats: dict
    scenarios: list[ScenarioResult]
    skipped: dict
    meta: dict
    warnings: list = field(default_factory=list)
    regime: dict = field(default_factory=dict)

    def scenario_table(self) -> pd.DataFrame:
        """One row per scenario (:func:`~mltrainer.risk_stress.scenarios.scenario_table`)."""
        return scenario_table(self.scenarios)

    def summary(self) -> dict:
        """JSON-ready headline figures (what ``report stress --json`` prints)."""
        return {
            "meta": self.meta,
            "settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()
            },
            "portfolio": self.portfolio.reset_index().to_dict("records"),
            "var": self.var_table.to_dict("records"),
            "backtest": self.backtest.to_dict("records"),
            "drawdown": self.drawdown_stats,
            "scenarios": [r.summary() for r in self.scenarios],
            "skipped": self.skipped,
            "warnings": list(self.warnings),
            "regime": self.regime,
            "executive_summary": executive_summary(self),
        }


# ----------------------------------------------------------------------------- inputs
def _market_returns(data: MarketData, choice: str, window: int) -> tuple[pd.Series, str, list]:
    """The market return series the crash scenario's betas are measured against."""
    notes = []
    if choice == "sp500":
        try:
            index = sp500_index_close()
            ret = index.pct_change(fill_method=None).reindex(data.dates)
            if ret.iloc[-window:].notna().all() and len(ret) >= window:
                return ret.rename("SP500"), "S&P 500 index (bundled with skfolio/arch)", notes
            notes.append(
                f"the bundled S&P 500 index ends {index.index[-1].date()}, before the "
                f"last {window} days of the data; "
            )
        except (ImportError, DataError, OSError) as exc:
            notes.append(f"the bundled S&P 500 index is unavailable ({exc}); ")
    elif choice != "portfolio":
        raise DataError(f"market must be 'sp500' or 'portfolio' (got {choice!r})")
    proxy = equal_weight_market(data.returns())
    name = f"equal-weight mean of the portfolio's {data.n_tickers} tickers"
    if notes:
        notes = ["".join(notes) + f"the crash scenario uses the {name} instead"]
    return proxy, name, notes


def _portfolio_table(
    data: MarketData, w: pd.Series, value: float, sectors: dict[str, str]
) -> pd.DataFrame:
    """Each holding's weight, sector (``sectors``), value, first and last price dates, last
    price and trailing one-year volatility (missing: no price in the range; fewer than 126
    returns in the year, as the volatility scenarios need). The price is the as-traded close
    (``last_close``) or, lacking it, the adjusted close: :meth:`MarketData.quoted_close`."""
    rets = data.returns()[w.index].iloc[-TRADING_DAYS:]
    shown, as_traded = data.quoted_close(list(w.index))
    priced = [shown[t].dropna() for t in w.index]  # none for a position with no price

    def date(i: int) -> list[str | None]:
        return [str(p.index[i].date()) if len(p) else None for p in priced]

    return pd.DataFrame(
        {
            "weight": w,
            "sector": [sectors[t] for t in w.index],
            "value": value * w,
            "first_date": date(0),
            "last_close" if as_traded else "last_adj_close": [
                float(p.iloc[-1]) if len(p) else float("nan") for p in priced
            ],
            "last_date": date(-1),
            "vol_1y": rets.std().where(rets.count() >= TRADING_DAYS // 2) * SQRT_TRADING_DAYS,
        }
    ).rename_axis("ticker")


def _drawdown_stats(equity: pd.Series, dd: pd.Series) -> dict:
    trough = dd.idxmin()
    peak = equity.loc[:trough].idxmax()
    after = equity.loc[trough:]
    rec = after.index[after >= equity.loc[peak]]
    return {
        "max_drawdown": float(-dd.min()),
        "peak": str(peak.date()),
        "trough": str(trough.date()),
        "recovery": str(rec[0].date()) if len(rec) else None,
        "current_drawdown": float(-dd.iloc[-1]),
    }


# ------------------------------------------------------------------------------ build
def build_stress_report(
    data: MarketData,
    weights: Weights | None = None,
    settings: StressSettings | None = None,
    generated: pd.Timestamp | None = None,
    start: object = None,
    notes: Sequence[str] = (),
    var: VarFigures | None = None,
) -> StressReport:
    """Compute every number and table of the stress report.

    Parameters
    ----------
    data : MarketData
        Prices of (at least) the portfolio's tickers, with all the history there is up to
        the report's last date: the VaR forecasts are estimated from it and every
        historical crisis it covers is replayed (2000-2002 and 2008 too when the range
        starts later). Other tickers are ignored.
    weights : Series or dict, optional
        Ticker -> weight, summing to one. Default: equal weights over every ticker.
    settings : StressSettings, optional
    generated : Timestamp, optional
        Generation time shown in the report (default: now, UTC).
    start : date-like, optional
        First day of the range the report shows and scores: the VaR backtest counts the
        exceptions from there (on fewer than 20 such days its tests are left out, with a
        warning), the returns, drawdowns and their figures cover it. None: the whole
        history.
    notes : sequence of str, optional
        What the figures owe to how the weights were made (market caps published after
        the range, say): the first of the report's warnings.
    var : VarFigures, optional
        The VaR part already computed by :func:`stress_var_part` on the same data,
        weights, VaR settings and start (a dashboard keeps it while only a scenario
        setting changes); None computes it.

    Raises
    ------
    DataError
        Bad weights (see :func:`validate_weights`), fewer than two positions, too
        little history for the VaR window, or a range with fewer than two returns.
    """
    s = settings or StressSettings()
    s.check()
    data, w = _positions(data, weights)
    value = float(s.portfolio_value)
    port = book_returns(data, w, s.var_window)
    first = range_start(port, start)
    var = var if var is not None else var_figures(port, s, first)
    shown = port.loc[first:]
    equity = range_equity(port, first)  # from the close before the range's first day
    dd = drawdown_series(equity).loc[first:]
    wiped = [note] if (note := wipeout_note(shown, float(w.abs().sum()))) else []
    market, market_name, market_notes = _market_returns(data, s.market, s.beta_window)
    on = data.sectors_on()  # the book's date's sectors, not today's (GOOGL in 2010: IT)
    sectors = {t: on.get(t, UNKNOWN_SECTOR) for t in w.index}
    results, skipped = _scenarios(data, w, s, market, sectors)
    return StressReport(
        settings=s,
        weights=w,
        portfolio=_portfolio_table(data, w, value, sectors),
        returns=shown,
        var_table=var.table,
        backtest=var.backtest,
        var_forecasts=var.forecasts,
        exceptions=var.exceptions,
        drawdown=dd,
        drawdown_stats=_drawdown_stats(equity, dd),
        scenarios=results,
        skipped=skipped,
        meta=_meta(data, len(w), value, market_name, generated, first),
        warnings=list(notes)
        + list(data.warnings)
        + _coverage_notes(data, first)
        + [f"{gone}: its value is 0 from then on and its drawdown -100%" for gone in wiped]
        + var.warnings
        + market_notes
        + [m for r in results for m in r.warnings],
        regime=index_regime(data.dates[-1]),
    )


def stress_var_part(
    data: MarketData,
    weights: Weights | None = None,
    settings: StressSettings | None = None,
    start: object = None,
    estimate: Callable[[str], pd.DataFrame] | None = None,
) -> VarFigures:
    """The report's VaR part alone (VaR/ES, rolling forecasts, their backtest): what
    depends on ``portfolio_value``, ``levels``, ``methods``, ``var_window`` and
    ``chart_method``, not on the scenarios; give it back to :func:`build_stress_report`
    as ``var`` with the same arguments. ``estimate(method)``: the rolling forecasts by
    a method, from a cache (see :func:`~mltrainer.reports.stress_var.var_figures`)."""
    s = settings or StressSettings()
    s.check()
    data, w = _positions(data, weights)
    port = book_returns(data, w, s.var_window)
    return var_figures(port, s, range_start(port, start), estimate)


@functools.lru_cache(maxsize=32)
def _index_labels(day: pd.Timestamp, cls: type) -> tuple[pd.Series, tuple]:
    """The bundled index's labels up to ``day`` by ``cls`` at its defaults, and its regime
    names. Kept: the index never changes, and every rebuild of a report (a dashboard's
    scenario slider) asks again for the same day. A failure raises and is not kept."""
    close = sp500_index_close().loc[:day].dropna()
    model = cls()
    out = model.run(MarketData.from_close(close.to_frame("SP500"), source="bundled"))
    return out.primary.iloc[:, 0].dropna(), tuple(model.regime_names())


def index_regime(day: object, key: str = "regime/VolatilityRegimeModel") -> dict:
    """The S&P 500's regime on ``day`` (or its last close before) by a model of the regime
    family at its defaults, on the index bundled with skfolio/arch; an ``error`` entry
    when unavailable."""
    family, _, name = key.partition("/")
    classes = {cls.__name__: cls for cls in regime.MODELS}
    if family != "regime" or name not in classes:
        raise ParameterError(f"{key!r} is not a model of the regime family")
    try:
        labels, names = _index_labels(pd.Timestamp(day), classes[name])
    except (ImportError, DataError, OSError, ValueError) as exc:
        return {"error": f"the index regime is unavailable ({exc})"}
    if labels.empty:
        return {"error": "the index regime model gave no label up to this date"}
    label = int(labels.iloc[-1])
    run = labels.ne(labels.shift()).cumsum()
    return {
        "model": key,
        "date": str(labels.index[-1].date()),
        "label": label,
        "name": names[label] if label < len(names) else f"regime {label}",
        "since": str(labels.index[run == run.iloc[-1]][0].date()),
    }


def _positions(data: MarketData, weights: Weights | None) -> tuple[MarketData, pd.Series]:
    """The checked weights (default equal) and the data cut to their tickers."""
    if weights is None:
        weights = pd.Series(1.0 / data.n_tickers, index=data.tickers)
    w = validate_weights(weights, data.tickers)
    if len(w) < 2:
        raise DataError(
            f"a stress report needs at least two positions (got {len(w)}: "
            f"{', '.join(w.index)}); correlation and diversification scenarios are "
            "undefined for one asset"
        )
    return data.select(tickers=list(w.index)), w


def _coverage_notes(data: MarketData, first: pd.Timestamp) -> list[str]:
    """A note per position priced over only part of the range (listed after ``first``,
    or gone before the last date): on those days the book's figures are the other
    positions' (their weights scaled up), which the range's label alone does not say."""
    close, last = data.adj_close.loc[first:], data.dates[-1]
    notes = []
    for ticker in close.columns:
        priced = close[ticker].dropna().index
        if not len(priced):
            notes.append(f"{ticker} has no price in the range")
        elif priced[0] > close.index[0]:
            notes.append(f"{ticker} has prices only from {priced[0].date()}")
        if len(priced) and priced[-1] < last:
            notes.append(f"{ticker} has no price after {priced[-1].date()}")
    if not notes:
        return []
    more = f"; and {len(notes) - 6} more" if len(notes) > 6 else ""
    return [
        "; ".join(notes[:6]) + more + f" (the range runs {fmt.date_range(close.index[0], last)}): "
        "on the days without a position's price, the book's returns, VaR and drawdowns are "
        f"{SCALED_UP}"
    ]


def _scenarios(
    data: MarketData, w: pd.Series, s: StressSettings, market: pd.Series, sectors: dict
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Every historical replay the data covers, then the four hypothetical shocks, with
    the positions in ``sectors``; a scenario that cannot run is skipped with the reason."""
    common = {"portfolio_value": float(s.portfolio_value), "sectors": sectors}
    results, skipped = replay_all(data, w, **common)
    top = max(float(x) for x in s.levels)
    window = s.beta_window
    shocks = (
        (market_crash, {"shock": s.crash, "market": market, "window": window}),
        (volatility_spike, {"multiplier": s.vol_multiplier, "confidence": top, "window": window}),
        (correlation_breakdown, {"push": s.correlation_push, "confidence": top, "window": window}),
        (liquidity_crisis, {"spread_multiplier": s.spread_multiplier}),
    )
    for fn, kwargs in shocks:
        try:
            results.append(fn(data, w, **kwargs, **common))
        except DataError as exc:
            skipped[fn.__name__] = str(exc)
    return results, skipped


def _meta(
    data: MarketData,
    n_positions: int,
    value: float,
    market: str,
    generated: pd.Timestamp | None,
    first: pd.Timestamp,
) -> dict:
    """Where the numbers come from: source, dates (the range shown and scored, and the
    history the estimates and replays used), size, market, time and fingerprint."""
    now = pd.Timestamp.now(tz="UTC") if generated is None else pd.Timestamp(generated)
    return {
        "source": data.source,
        "as_of": None if data.as_of is None else pd.Timestamp(data.as_of).isoformat(),
        "first_date": str(first.date()),
        "last_date": str(data.dates[-1].date()),
        "history_start": str(data.dates[0].date()),
        "n_positions": n_positions,
        "portfolio_value": value,
        "market": market,
        "generated": now.isoformat(timespec="seconds"),
        "fingerprint": data.fingerprint(),
        "data_warnings": list(data.warnings),
    }


# ------------------------------------------------------------------ executive summary
def _worst(report: StressReport, kind: str) -> dict | None:
    """The scenario of ``kind`` with the largest loss (None if none ran)."""
    runs = [r for r in report.scenarios if r.kind == kind and pd.notna(r.pnl)]
    if not runs:
        return None
    worst = min(runs, key=lambda r: r.pnl)
    window = (
        f"{worst.params['base_date']} to {worst.params['end_date']}" if kind == "historical" else ""
    )
    return {
        "name": worst.name,
        "window": window,
        "return": float(worst.portfolio_return),
        "pnl": float(worst.pnl),
        "covered_weight": float(worst.covered_weight),
    }


def _headline_var(report: StressReport) -> dict:
    """VaR/ES of the charted method at the top level, with its backtest verdict."""
    s = report.settings
    top = max(float(x) for x in s.levels)
    var = report.var_table
    row = var[(var["level"] == top) & (var["method"] == s.chart_method)].iloc[0]
    bt = report.backtest
    tests = bt[(bt["level"] == top) & (bt["method"] == s.chart_method)]
    scored = report.exceptions.dropna().index  # the days the backtest scored, not the data's
    out = {
        "method": s.chart_method,
        "level": top,
        "var": float(row["var"]),
        "var_value": float(row["var_value"]),
        "es": float(row["es"]),
        "es_value": float(row["es_value"]),
        "days": len(scored),
        "first_day": scored[0].date().isoformat() if len(scored) else None,
        "last_day": scored[-1].date().isoformat() if len(scored) else None,
        **dict.fromkeys(("zone", "basel_days", "exceptions", "expected", "kupiec_p")),
        "verdict": f"not tested (fewer than {MIN_BACKTEST_DAYS} scored days)",
    }
    if len(tests):  # else the range is too short to test the forecast (a warning says so)
        test = tests.iloc[0]
        kupiec_p = float(test["kupiec_p"])
        out |= {
            "zone": str(test["zone (250 d)"]),
            "basel_days": int(test["basel_days"]),
            "exceptions": int(test["exceptions"]),
            "expected": float(test["expected"]),
            "kupiec_p": kupiec_p,
            "verdict": "consistent with its level" if kupiec_p >= 0.05 else "rejected",
        }
    return out


def executive_summary(report: StressReport) -> dict:
    """The one-page summary a board member reads: the portfolio, the worst historical and
    hypothetical scenarios (loss in money and percent), VaR/ES and their backtest
    verdict, the market regime now, and three sentences written from those figures."""
    m = report.meta
    top = report.weights.sort_values(ascending=False).head(3)
    var = _headline_var(report)
    hist, hypo = _worst(report, "historical"), _worst(report, "hypothetical")
    value = float(m["portfolio_value"])
    gone = list(report.portfolio.index[report.portfolio["last_date"] != m["last_date"]])
    carry = f"; on days without one, the others carry {'its' if len(gone) == 1 else 'their'} weight"
    book = f"The {m['n_positions']}-position portfolio worth {fmt.money(value)}" + (
        f" ({', '.join(gone)}: no price on {m['last_date']}{carry})" if gone else ""
    )
    es = f"{fmt.money(var['es_value'])} on average on those days (expected shortfall)."
    sentences = [
        f"{book} would lose more than {fmt.money(var['var_value'])} "
        f"({fmt.percent(var['var'], 2)}) on one day in {fmt.level(1 - var['level'])} "
        f"of days by {var['method']} VaR, and {es}"
        if math.isfinite(var["var"])
        else f"{book} has no {fmt.level(var['level'])} {var['method']} VaR for the next "
        "day (see the notes).",
        _backtest_sentence(var),
    ]
    worst = [w for w in (hist, hypo) if w is not None]
    if worst:
        parts = [
            f"{w['name']}{' (' + w['window'] + ')' if w['window'] else ''}: "
            f"{fmt.money(w['pnl'])} ({fmt.percent(w['return'])}{_coverage(w)})"
            for w in worst
        ]
        regime = report.regime
        now = (
            f"; the S&P 500 has been in its '{regime['name']}' regime since {regime['since']}"
            if regime.get("name")
            else ""
        )
        sentences.append("Worst stress losses: " + "; ".join(parts) + now + ".")
    return {
        "portfolio": {
            "positions": int(m["n_positions"]),
            "value": value,
            "largest": {str(k): float(v) for k, v in top.items()},
        },
        "var": var,
        "worst_historical": hist,
        "worst_hypothetical": hypo,
        "regime": report.regime,
        "sentences": sentences,
    }


def _coverage(worst: dict) -> str:
    """The part of the book a worst scenario priced, when not all: the rest is proxied."""
    share = fmt.percent(worst["covered_weight"], 1)
    full = worst["covered_weight"] >= 1.0 - 1e-9
    return "" if full else f"; only {share} of the book had the data it needs, the rest proxied"


def _backtest_sentence(var: dict) -> str:
    """What the VaR backtest found, or that the range is too short to test it."""
    span = f"{fmt.count(var['days'], 'day')} from {var['first_day']} to {var['last_day']}"
    if not var["days"]:
        return f"No day of the range has a {var['method']} forecast to test (see the notes)."
    if var["kupiec_p"] is None:
        return (
            f"The {span} are too few to test the forecast (at least {MIN_BACKTEST_DAYS} "
            "are needed)."
        )
    return (
        f"Over {span} its losses beyond the forecast came {var['exceptions']:,} times against "
        f"{fmt.number(var['expected'], 1)} expected: the forecast is {var['verdict']} "
        f"(Kupiec p = {fmt.number(var['kupiec_p'], 3)}; Basel traffic light over the last "
        f"{fmt.count(var['basel_days'], 'day')}: {var['zone']})."
    )
