"""Layout of the stress-test report: sections, tables and figures as one HTML page.

:func:`render_html` lays out a :class:`~mltrainer.reports.stress_report.StressReport`
and :func:`write_stress_report` writes it (and its PDF). This module reads the report;
:mod:`~mltrainer.reports.stress_report` computes it and never imports this one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mltrainer.fmt import count as fmt_count
from mltrainer.fmt import level as fmt_level
from mltrainer.measures.backtest_var import BASEL_LEVEL_NOTE
from mltrainer.outputs import is_device, write_atomic
from mltrainer.plots import risk as plots
from mltrainer.reports.html import esc, figure, money, number, page, pct, print_pdf, table
from mltrainer.reports.stress_report import executive_summary
from mltrainer.reports.stress_var import MIN_BACKTEST_DAYS
from mltrainer.risk_stress.historical import scenario_title, skipped_reason

if TYPE_CHECKING:  # pragma: no cover
    from mltrainer.reports.stress_report import StressReport
    from mltrainer.risk_stress.scenarios import ScenarioResult

METHOD_NOTES = {
    "historical": "empirical quantile of the window",
    "normal": "normal with the window's mean and volatility",
    "student_t": "Student t, degrees of freedom from the excess kurtosis",
    "cornish_fisher": "Cornish-Fisher (skewness and kurtosis corrected normal)",
    "fhs_ewma": "filtered historical simulation with EWMA (0.94) volatility",
    "fhs_garch": "filtered historical simulation with GARCH(1,1) volatility",
}

BACKTEST_LABELS = {
    "kupiec_lr": "Kupiec LR",
    "kupiec_p": "Kupiec p",
    "christoffersen_lr_ind": "indep. LR",
    "christoffersen_p_ind": "indep. p",
    "conditional_coverage_p": "cond. cov. p",
}

POSITION_FORMATS = {
    "weight": pct,
    "value": money,
    "return": pct,
    "pnl": money,
    "max_drawdown": pct,
    "beta": lambda x: number(x, 2),
    "daily_vol": pct,
    "adv_dollars": money,
    "days_to_liquidate": lambda x: number(x, 3),
    "haircut": lambda x: pct(x, 3),
}


def _kpi(label: str, value: str) -> str:
    return (
        f'<div class="kpi"><div class="v">{esc(value)}</div><div class="l">{esc(label)}</div></div>'
    )


def _header(r: StressReport) -> str:
    """Title and provenance: source, the range covered, the history used, fingerprint."""
    m = r.meta
    stamp = pd.Timestamp(m["as_of"]) if m["as_of"] else None
    # a daily file's as-of is a date: '00:00' would claim a time nobody recorded
    as_of = (
        "unknown"
        if stamp is None
        else stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")
    )
    return (
        "<h1>Stress test report</h1>"
        f'<p class="meta">{m["n_positions"]} positions, portfolio value '
        f"{money(m['portfolio_value'])}. Data source: <b>{esc(m['source'])}</b>; the report "
        f"covers {esc(m['first_date'])} to <b>{esc(m['last_date'])}</b> (last trading day "
        "in the data); VaR forecasts and crisis replays use the history from "
        f"{esc(m.get('history_start', m['first_date']))}; data as of <b>{esc(as_of)}</b>. "
        f"Generated {esc(m['generated'])}. Data fingerprint {esc(m['fingerprint'])}.</p>"
    )


def _portfolio(r: StressReport) -> str:
    sectors = r.portfolio.groupby("sector").agg(
        weight=("weight", "sum"), value=("value", "sum"), positions=("weight", "size")
    )
    sectors = sectors.sort_values("weight", ascending=False)
    return (
        "<h2>Portfolio</h2>"
        + table(
            r.portfolio,
            {
                "weight": pct,
                "value": money,
                "last_close": lambda x: number(x, 2),
                "last_adj_close": lambda x: number(x, 2),
                "vol_1y": lambda x: pct(x, 1),
            },
        )
        + "<h3>By GICS sector</h3>"
        + table(sectors, {"weight": pct, "value": money})
        + figure(
            plots.weights_bar(
                r.weights,
                r.portfolio["sector"],
                title=f"Portfolio weights on {r.meta['last_date']}",
            )
        )
    )


def _var(r: StressReport) -> str:
    t = r.var_table.copy()
    t["level"] = t["level"].map(lambda x: f"{x:.1%}")
    t["method"] = t["method"].map(lambda m: f"{m} ({METHOD_NOTES.get(m, '')})")
    t = t.rename(
        columns={"var": "VaR", "es": "ES", "var_value": "VaR (value)", "es_value": "ES (value)"}
    )
    return (
        "<h2>Value at Risk and Expected Shortfall</h2>"
        f'<p class="note">One-day figures for the trading day after {esc(r.meta["last_date"])}, '
        f"estimated from the last {r.settings.var_window} daily returns of the portfolio up to "
        "that day (fixed weights, rebalanced "
        "daily; before a position listed, the others are rescaled). Positive numbers are "
        "losses.</p>"
        + table(t, {"VaR": pct, "ES": pct, "VaR (value)": money, "ES (value)": money}, index=False)
    )


def _zone_class(z) -> str:
    return f"zone-{z}" if z in ("green", "yellow", "red") else ""


def _backtest(r: StressReport) -> str:
    first = r.var_forecasts.dropna(how="all").index
    span = f"{first[0].date()} to {first[-1].date()}" if len(first) else "no forecast"
    chart = figure(
        plots.var_backtest_chart(
            r.returns,
            r.var_forecasts,
            r.exceptions,
            title=f"Daily returns {r.meta['first_date']} to {r.meta['last_date']} against the "
            f"{r.settings.chart_method} VaR forecast made the day before (out of sample)",
        )
    )
    if r.backtest.empty:  # too few scored days to test a forecast
        note = (
            f"{esc(span)}: {fmt_count(int(r.exceptions.notna().sum()), 'scored day')}, fewer "
            f"than the {MIN_BACKTEST_DAYS} a test of the forecast needs; the Kupiec, "
            "Christoffersen and Basel figures are left out."
        )
        return f'<h2>VaR backtest</h2><p class="note">{note}</p>' + chart
    top = r.backtest[r.backtest["level"] == r.backtest["level"].max()]
    basel = int(
        top["basel_days"].max()
    )  # 250, or the range's scored days when fewer (Cornish-Fisher may miss some)
    last = {f"{x} (250 d)": f"{x} (last {basel} d)" for x in ("exceptions", "zone")}
    b = r.backtest.drop(columns="basel_days")
    b["level"] = b["level"].map(lambda x: f"{x:.1%}")
    b = b.rename(columns={**BACKTEST_LABELS, **last})
    p3 = lambda x: number(x, 3)  # noqa: E731
    fmt = {"expected": lambda x: number(x, 1), "rate": pct}
    fmt.update({label: p3 for label in BACKTEST_LABELS.values()})
    zones = pd.DataFrame(
        {
            "model": top["method"],
            "exceptions": top["exceptions (250 d)"],
            "zone": top["zone (250 d)"],
        }
    )
    return (
        "<h2>VaR backtest</h2>"
        f'<p class="note">Each day\'s forecast (made at the previous close from the last '
        f"{r.settings.var_window} returns) is compared with the realised return; an exception "
        f"is a loss above the forecast. Backtest period {esc(span)}. Kupiec: proportion of "
        "failures; Christoffersen: independence of exceptions and conditional coverage "
        "(p-values below 0.05 reject the model); Basel traffic light over the last "
        f"{basel} days ({BASEL_LEVEL_NOTE}).</p>"
        + table(b, fmt, index=False, css={last["zone (250 d)"]: _zone_class})
        + chart
        + figure(
            plots.traffic_light_chart(
                zones,
                title=f"Basel traffic light, {fmt_level(top['level'].max())} VaR, last "
                f"{basel} days to {first[-1].date()}",
            )
        )
    )


def _drawdowns(r: StressReport) -> str:
    d = r.drawdown_stats
    stats = pd.DataFrame(
        [
            {
                "max drawdown": pct(-d["max_drawdown"], 1),  # a fall: signed as the chart
                "peak": d["peak"],
                "trough": d["trough"],
                "recovered": d["recovery"] or "not yet",
                "current drawdown": pct(-d["current_drawdown"], 1),
            }
        ]
    )
    return (
        "<h2>Drawdowns</h2>"
        + table(stats, index=False)
        + figure(
            plots.drawdown_chart(
                r.drawdown.rename("portfolio"),
                title="Portfolio drawdown from its running peak, "
                f"{r.meta['first_date']} to {r.meta['last_date']}",
            )
        )
    )


def _params_line(res: ScenarioResult) -> str:
    parts = []
    for k, v in res.params.items():
        if isinstance(v, float):
            v = pct(v) if ("vol" in k or "var" in k) else number(v, 4)
        parts.append(f"{k} = {v}")
    return "; ".join(parts)


def _sector_note(res: ScenarioResult, as_of: str) -> str:
    """What the sector table covers: the sectors' date, and when positions are missing,
    why its P&L does not add up to the headline (their exposure is proxied there only)."""
    text = f"Sectors of {as_of}, the book's date."
    if res.covered_weight < 1:
        covered = float(res.positions["pnl"].sum(min_count=1))
        text += (
            f" The sectors add up to the covered positions' P&L, {money(covered)}; the "
            f"headline {money(res.pnl)} also counts the {pct(1 - res.covered_weight)} of "
            f"gross exposure without data, proxied by the covered positions "
            f"({money(res.pnl - covered)})."
        )
    return f'<p class="note">{esc(text)}</p>'


def _scenario(res: ScenarioResult, value: float, as_of: str) -> str:
    cols = [c for c in res.positions.columns if c != "value"]
    pos = res.positions[cols]
    warn = "".join(f'<div class="warn">{esc(w)}</div>' for w in res.warnings)
    held = res.kind == "historical"
    span = f"{res.params['base_date']} to {res.params['end_date']}" if held else f"on {as_of}"
    label, of = f"{res.name} ({span})", f" (sectors of {as_of})" if held else ""
    dd = (
        f", max drawdown in the window {pct(-res.max_drawdown, 1)}"
        if res.kind == "historical"
        else ""
    )
    return (
        f'<div class="scenario"><h3>{esc(res.name)}</h3>'
        f"<p>{esc(res.description)}. Portfolio: <b>{pct(res.portfolio_return)}</b>, "
        f"P&amp;L <b>{money(res.pnl)}</b>{dd}.</p>"
        f'<p class="note">{esc(_params_line(res))}</p>{warn}'
        "<h4>By position</h4>"
        + table(pos, POSITION_FORMATS, signed=("return", "pnl"))
        + figure(plots.pnl_bar(res.positions["pnl"], f"{label}: P&L by position"))
        + "<h4>By GICS sector</h4>"
        + _sector_note(res, as_of)
        + table(
            res.by_sector, {"weight": pct, "pnl": money, "return": pct}, signed=("pnl", "return")
        )
        + figure(plots.pnl_bar(res.by_sector["pnl"], f"{label}: P&L by sector{of}"))
        + "</div>"
    )


def _scenarios(r: StressReport) -> str:
    t = r.scenario_table()
    as_of = r.meta["last_date"]
    held = f" (the positions of {as_of})"
    paths = {res.name: res.path for res in r.scenarios if res.path is not None}
    body = (
        "<h2>Stress scenarios</h2>"
        '<p class="note">Historical replays hold today\'s positions through a real episode '
        "(adjusted closes, buy and hold from the close of the first day). Hypothetical "
        "shocks: a market fall through each position's beta; every volatility multiplied; "
        "correlations pushed toward one (parametric VaR at the top confidence level); a forced "
        "sale with widened spreads and square-root market impact. A position without data "
        "is shown as <i>missing</i>, not zero, and the portfolio figure proxies it by the "
        "others.</p>"
        + table(
            t.drop(columns=["description"]),
            {"portfolio_return": pct, "pnl": money, "max_drawdown": pct, "covered_weight": pct},
            index=False,
            signed=("portfolio_return", "pnl"),
            missing="",
        )
        + figure(plots.scenario_summary_bar(t, title=f"Portfolio return by scenario{held}"))
    )
    if paths:
        title = f"Portfolio value through each historical window{held}"
        body += figure(plots.replay_paths_chart(paths, title=title))
    body += "".join(_scenario(res, r.meta["portfolio_value"], as_of) for res in r.scenarios)
    if r.skipped:
        body += (
            "<h3>Scenarios not run</h3><ul>"
            + "".join(
                f"<li><b>{esc(scenario_title(k))}</b>: {esc(skipped_reason(k, v))}</li>"
                for k, v in r.skipped.items()
            )
            + "</ul>"
        )
    return body


def _notes(r: StressReport) -> str:
    warn = "".join(f'<div class="warn">{esc(w)}</div>' for w in r.warnings)
    return (
        ("<h2>Warnings</h2>" + warn if warn else "") + "<h2>Method</h2><ul>"
        f"<li>Market for betas: {esc(r.meta['market'])}; betas are OLS over the last "
        f"{r.settings.beta_window} trading days.</li>"
        "<li>Parametric scenario losses assume zero-mean normal returns: VaR = z &middot; "
        "&radic;(w&prime;&Sigma;w); per-position figures are Euler contributions, which sum to "
        "the portfolio figure.</li>"
        "<li>Correlation breakdown: C&prime; = (1 &minus; a) C + a 11&prime;, positive "
        "semi-definite by construction (checked).</li>"
        "<li>Liquidity: days to liquidate = |value| / (participation &middot; ADV &middot; "
        "price); haircut = stressed half-spread + &sigma;&radic;(participation &middot; days)."
        "</li></ul>"
    )


def _summary(r: StressReport) -> str:
    """The one-page executive summary (a page of its own when printed)."""
    e = executive_summary(r)
    v = e["var"]
    kpis = [
        _kpi(
            "portfolio",
            f"{e['portfolio']['positions']} positions, {money(e['portfolio']['value'])}",
        ),
        _kpi(
            f"1-day {fmt_level(v['level'])} VaR ({v['method']})",
            f"{money(v['var_value'])} ({pct(v['var'])})",
        ),
        _kpi(
            f"1-day {fmt_level(v['level'])} expected shortfall",
            f"{money(v['es_value'])} ({pct(v['es'])})",
        ),
        _kpi(
            f"VaR backtest: Kupiec over the range; Basel, last {v['basel_days']} days",
            f"Kupiec: {v['verdict']} · Basel: {v['zone']}",
        )
        if v["kupiec_p"] is not None
        else _kpi("VaR backtest", v["verdict"]),
    ]
    for label, w in (
        ("worst historical", e["worst_historical"]),
        ("worst hypothetical", e["worst_hypothetical"]),
    ):
        if w is not None:
            covered = (
                ""
                if w["covered_weight"] >= 1 - 1e-9
                else f" ({pct(w['covered_weight'])} of the book with data)"
            )
            kpis.append(
                _kpi(f"{label}: {w['name']}{covered}", f"{money(w['pnl'])} ({pct(w['return'], 1)})")
            )
    m = r.meta
    kpis.append(
        _kpi(
            f"max drawdown {m['first_date']} to {m['last_date']}",
            pct(-r.drawdown_stats["max_drawdown"], 1),
        )
    )
    regime = e["regime"]
    if regime.get("name"):
        kpis.append(
            _kpi(f"S&P 500 regime on {regime['date']}", f"{regime['name']} since {regime['since']}")
        )
    largest = ", ".join(f"{esc(t)} {pct(x, 1)}" for t, x in e["portfolio"]["largest"].items())
    return (
        '<section class="summary"><h2>Executive summary</h2>'
        + "".join(f'<p class="lead">{esc(t)}</p>' for t in e["sentences"])
        + f'<div class="kpis">{"".join(kpis)}</div>'
        + f'<p class="note">Largest positions: {largest}. Scenario losses are for today\'s '
        "positions held through the episode or shock; the details follow.</p></section>"
    )


def render_html(r: StressReport) -> str:
    """The whole report as one self-contained HTML document: the executive summary
    first (its own page in print), then the details."""
    body = (
        _header(r)
        + _summary(r)
        + _portfolio(r)
        + _var(r)
        + _backtest(r)
        + _drawdowns(r)
        + _scenarios(r)
        + _notes(r)
    )
    return page(f"Stress test report ({r.meta['last_date']})", body)


def write_stress_report(
    report: StressReport, out: str | Path, pdf: str | Path | None = None
) -> dict:
    """Write the HTML report (and the PDF if asked); returns paths and the PDF status."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(report)
    write_atomic(out, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    result = {
        "html": str(out.resolve()),
        "html_bytes": len(html.encode("utf-8")),  # what was written (a device has no size)
        "pdf": None,
        "pdf_message": "no PDF requested",
    }
    if pdf is not None:
        printed = _print(html, out, pdf)
        result.update(
            pdf=str(printed.path) if printed.ok else None,
            pdf_ok=printed.ok,
            pdf_message=printed.message,
        )
    return result


def _print(html: str, out: Path, pdf: str | Path):
    """The PDF printed from the page written to ``out``, or from a temporary copy when
    ``out`` is a device (``--out /dev/null``: the page reads back empty)."""
    if not is_device(out):
        return print_pdf(out, pdf)
    with tempfile.TemporaryDirectory(prefix="mltrainer-report-") as folder:
        page_file = Path(folder) / "report.html"
        page_file.write_text(html, encoding="utf-8")
        return print_pdf(page_file, pdf)
