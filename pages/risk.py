"""Risk & Stress: build a portfolio, forecast and backtest its VaR/ES, stress it with
historical and hypothetical scenarios, see what drives its risk, download the report."""

import numpy as np
import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.measures.backtest_var import BASEL_LEVEL_NOTE
from mltrainer.measures.var import METHODS
from mltrainer.plots.common import wrap_title
from mltrainer.plots.market import return_bar
from mltrainer.plots.portfolio import correlation_heatmap, risk_contribution_bar
from mltrainer.plots.risk import (
    ZONE_COLOURS,
    drawdown_chart,
    pnl_bar,
    replay_paths_chart,
    scenario_summary_bar,
    traffic_light_chart,
    var_backtest_chart,
    weights_bar,
)
from mltrainer.reports.stress_report import DEFAULT_METHODS, StressSettings
from mltrainer.reports.stress_var import MIN_BACKTEST_DAYS
from ui.context import current, load
from ui.feedback import friendly, stop
from ui.figures import shared
from ui.layout import control_row, fit, metric_row
from ui.risk import (
    VAR_LEVELS,
    partial_positions,
    portfolio_builder,
    portfolio_drawdowns,
    portfolio_stats,
    report_html,
    report_pdf,
    settings_tuple,
    skipped_lines,
    stress_report,
    trading_days,
    var_backtest,
    var_levels,
)
from ui.tables import table_height

st.title("Risk & Stress")
sel = current()
data = load(sel.source)
if data is None:
    stop()

built = portfolio_builder(sel, key="risk")
if built is None:
    stop()
tickers, weights, weighting, weight_notes = built
w = pd.Series(dict(zip(tickers, weights, strict=True)))

row = control_row()
value = row.number_input(
    "Portfolio value ($)",
    10_000.0,
    1e10,
    1_000_000.0,
    100_000.0,
    key="risk_value",
    bind="query-params",
    format="%.0f",
    width=170,  # a value of 10 digits and the step buttons
)
method = row.selectbox(
    "VaR method",
    METHODS,
    index=0,
    key="risk_method",
    bind="query-params",
    help="historical: empirical quantile; normal / student_t / "
    "cornish_fisher: parametric; fhs_*: filtered historical simulation",
    width=fit(METHODS, "VaR method"),
)
level = row.select_slider("VaR level", VAR_LEVELS, 0.99, key="risk_level", bind="query-params")
window = row.slider(
    "VaR window (days)",
    100,
    1000,
    250,
    50,
    key="risk_window",
    bind="query-params",
    help="Days of returns each one-day-ahead forecast is estimated from",
)

with friendly("The VaR backtest could not run"):
    vb = var_backtest(sel.source, tickers, weights, sel.start, sel.end, method, level, window)
kup, chris, light = vb["kupiec"], vb["christoffersen"], vb["traffic_light"]
if vb["gap_note"]:
    st.warning(vb["gap_note"])
coverage_box = st.container()  # filled once the report says which positions lack prices
# short labels and values, the detail in each help text
row = metric_row()
row.metric(
    f"VaR {level:.1%}",
    fmt.money(value * vb["latest_var"]),
    None if np.isnan(vb["latest_var"]) else f"{fmt.percent(vb['latest_var'], 2)} of value",
    delta_color="off",
    delta_arrow="off",
    help=f"One-day value at risk ({method}), forecast on {vb['latest_date']:%Y-%m-%d} "
    "for the next day",
)
row.metric(
    f"ES {level:.1%}",
    fmt.money(value * vb["latest_es"]),
    None if np.isnan(vb["latest_es"]) else f"{fmt.percent(vb['latest_es'], 2)} of value",
    delta_color="off",
    delta_arrow="off",
    help="One-day expected shortfall: the mean loss on the days beyond the VaR",
)
row.metric(
    "Exceptions",
    fmt.integer(kup["exceptions"]),
    f"{fmt.number(kup['expected'], 1)} expected",
    delta_color="off",
    delta_arrow="off",
    help=f"Losses beyond the forecast over {fmt.integer(kup['n'])} forecasts",
)
if light is None:  # too few scored days: no test can accept or reject the forecast
    untested = f"needs at least {MIN_BACKTEST_DAYS} scored days; the range has {vb['scored']}"
    for label in ("Kupiec p", "Christoffersen p", "Basel light"):
        row.metric(label, "not tested", help=f"Not tested: {untested}")
    st.warning(
        "The VaR forecasts are not tested: the range holds "
        f"{fmt.count(vb['scored'], 'scored day')} and a test needs at least "
        f"{MIN_BACKTEST_DAYS}; widen the dates in the sidebar."
    )
else:
    row.metric(
        "Kupiec p",
        fmt.number(kup["p_value"], 3),
        help="Kupiec p-value, unconditional coverage: a small p-value rejects the VaR's "
        "exception rate",
    )
    row.metric(
        "Christoffersen p",
        fmt.number(chris["p_value_cc"], 3),
        help="Christoffersen p-value, conditional coverage (rate and independence of the "
        "exceptions)",
    )
    row.metric(
        "Basel light",
        light["zone"].upper(),
        f"{fmt.integer(light['exceptions'])} in {fmt.integer(light['n'])} days",
        delta_color="off",
        delta_arrow="off",
        help=f"Basel traffic light: {fmt.integer(light['exceptions'])} exceptions in the last "
        f"{fmt.integer(light['n'])} days" + ("" if level == 0.99 else f". {BASEL_LEVEL_NOTE}"),
    )
    st.markdown(
        f"<div style='height:4px;background:{ZONE_COLOURS[light['zone']]}'></div>",
        unsafe_allow_html=True,
    )

with st.expander("Scenario settings", expanded=False):
    s1, s2, s3, s4 = st.columns(4)
    crash = s1.slider(
        "Market crash",
        -0.5,
        -0.05,
        -0.20,
        0.05,
        key="risk_crash",
        bind="query-params",
        help="One-day fall of the market; each position moves by its beta",
    )
    vol_mult = s2.slider(
        "Volatility multiplier", 1.5, 6.0, 3.0, 0.5, key="risk_volmult", bind="query-params"
    )
    push = s3.slider(
        "Correlation push toward 1", 0.1, 1.0, 0.5, 0.1, key="risk_push", bind="query-params"
    )
    spread = s4.slider(
        "Spread multiplier (liquidity)", 1.0, 20.0, 5.0, 1.0, key="risk_spread", bind="query-params"
    )
methods = tuple(dict.fromkeys([method, *DEFAULT_METHODS]))
settings = StressSettings(
    portfolio_value=float(value),
    levels=var_levels(level),
    methods=methods,
    var_window=int(window),
    chart_method=method,
    crash=float(crash),
    vol_multiplier=float(vol_mult),
    correlation_push=float(push),
    spread_multiplier=float(spread),
)
stkey = settings_tuple(settings)

with friendly("The stress scenarios could not run"):
    report = stress_report(sel.source, tickers, weights, sel.start, sel.end, stkey, weight_notes)
coverage = partial_positions(report)
if coverage:  # the VaR, ES and drawdowns of days without a position are the others'
    coverage_box.warning(f"{coverage[0].upper()}{coverage[1:]}.")

# Lazy tabs: a run draws the open tab only (switching tabs reruns the page); controls
# bound to the URL are drawn in every run, so a shared link keeps them all.
tab_var, tab_stress, tab_drivers, tab_dd = st.tabs(
    ["VaR backtest", "Stress scenarios", "Correlation & risk contributions", "Drawdowns"],
    key="risk_tab",
    bind="query-params",
)

with tab_var:
    if tab_var.open:  # a lazy tab: drawn only while open
        forecast = vb["var"].shift(1).rename(f"{level:.1%} {method}").to_frame()
        st.plotly_chart(
            shared(
                var_backtest_chart,
                vb["returns"],
                forecast,
                vb["exceptions"],
                title=f"Daily returns vs the {level:.1%} {method} VaR",
            ),
            width="stretch",
            key="risk_var_chart",
        )
        st.caption(
            "The forecast for each day is made at the previous close; red crosses are "
            "exceptions (losses beyond it)."
        )
        zones = report.backtest[report.backtest["level"] == level]
        if zones.empty:  # the range is too short to test a forecast
            st.info(
                f"No backtest table: a forecast is tested on {MIN_BACKTEST_DAYS} scored days "
                f"or more, and the range holds {vb['scored']}."
            )
        else:
            basel = int(zones["basel_days"].max())  # 250, or the range's scored days if fewer
            # stacked at full width: beside the table, a 800 px window cut its titles
            st.plotly_chart(
                shared(
                    traffic_light_chart,
                    pd.DataFrame(
                        {
                            "model": zones["method"],
                            "exceptions": zones["exceptions (250 d)"],
                            "zone": zones["zone (250 d)"],
                        }
                    ),
                    title=f"Basel traffic light, {level:.1%} VaR, last {basel} days",
                ),
                width="stretch",
                key="risk_light",
            )
            st.dataframe(
                zones,
                hide_index=True,
                width="stretch",
                key="risk_bt_table",
                # the figures a reader compares; the likelihood ratios are in the report
                column_order=[
                    "method",
                    "exceptions",
                    "expected",
                    "rate",
                    "kupiec_p",
                    "conditional_coverage_p",
                    "exceptions (250 d)",
                    "zone (250 d)",
                ],
                column_config={
                    "expected": st.column_config.NumberColumn(format="%.1f"),
                    "rate": st.column_config.NumberColumn("rate", format="percent"),
                    "kupiec_p": st.column_config.NumberColumn("Kupiec p", format="%.3f"),
                    "conditional_coverage_p": st.column_config.NumberColumn(
                        "Christoffersen p", format="%.3f"
                    ),
                    "exceptions (250 d)": st.column_config.NumberColumn(f"last {basel} d"),
                    "zone (250 d)": st.column_config.TextColumn("zone"),
                },
            )

with tab_stress:
    if tab_stress.open:  # a lazy tab: drawn only while open
        table = report.scenario_table()
        paths = {r.name: r.path for r in report.scenarios if r.path is not None and len(r.path)}
        # one above the other: side by side, a 1024 px window left the bars 218 px, their
        # labels printed over the scenario names and the largest cut off
        st.plotly_chart(shared(scenario_summary_bar, table), width="stretch", key="risk_scen_bar")
        if paths:
            st.plotly_chart(shared(replay_paths_chart, paths), width="stretch", key="risk_paths")
        else:
            st.info(
                "No historical episode falls inside the portfolio's price history "
                f"(from {report.meta['history_start']}); pick tickers listed longer."
            )
        # the full width: seven columns are cut in half of the page
        shown = table.drop(columns=["n_missing", "description"])
        st.dataframe(
            # drawdowns signed as falls, as in the charts and the drawdown tab
            shown.assign(max_drawdown=-shown["max_drawdown"]),
            hide_index=True,
            width="stretch",
            height=table_height(len(shown)),  # every scenario, no inner scroll
            key="risk_scen_table",
            column_config={
                "portfolio_return": st.column_config.NumberColumn("return", format="percent"),
                "pnl": st.column_config.NumberColumn("P&L ($)", format="dollar"),
                "max_drawdown": st.column_config.NumberColumn(
                    "max drawdown",
                    format="percent",
                    help="Worst fall from a peak inside a historical episode; none for the "
                    "hypothetical scenarios, which are instantaneous shocks",
                ),
                "covered_weight": st.column_config.NumberColumn("weight covered", format="percent"),
            },
        )
        st.caption(
            "Hypothetical scenarios are instantaneous shocks to today's book: they have no "
            "window and no drawdown path (blank cells)."
        )
        for line in skipped_lines(report):
            st.caption(line)
    left, right = st.columns([1, 2])
    names = [r.name for r in report.scenarios]
    # drawn while the tab is closed too: the selection stays in the URL
    before = st.session_state.get("risk_scen_pick")
    pick = left.selectbox("P&L by position under", names, key="risk_scen_pick", bind="query-params")
    if before is not None and before not in names:  # Streamlit falls back to the first unsaid
        left.caption(f"{before} is not replayed for this range; showing {pick}.")
    if tab_stress.open:
        res = next(r for r in report.scenarios if r.name == pick)
        right.plotly_chart(
            shared(pnl_bar, res.positions["pnl"], f"{pick}: P&L by position", currency="$"),
            width="stretch",
            key="risk_pnl",
        )
        st.subheader("Stress-test report")
        st.caption(
            "VaR/ES by every method, their backtests, drawdowns and every scenario in one "
            "self-contained HTML file (charts included; open it in any browser)."
        )
        args = (sel.source, tickers, weights, sel.start, sel.end, stkey, weight_notes)
        # buttons in a row that wraps: in two columns at 800-1024 px they read "Download
        # the stress-test re…" and "Prepare the PDF (A4/letter, …"
        b1 = b2 = control_row()
        b1.download_button(
            "Download the stress-test report (HTML)",
            data=lambda: report_html(*args),
            file_name="stress_report.html",
            mime="text/html",
            key="risk_report",
            type="primary",
            on_click="ignore",
            icon=":material/description:",
        )
        if (
            b2.button(
                "Prepare the PDF (A4/letter, executive summary first)",
                key="risk_pdf_prepare",
                icon=":material/picture_as_pdf:",
            )
            or st.session_state.get("risk_pdf_for") == args
        ):
            st.session_state["risk_pdf_for"] = args
            printed = report_pdf(*args)
            if "pdf" in printed:
                b2.download_button(
                    "Download the PDF",
                    data=printed["pdf"],
                    file_name="stress_report.pdf",
                    mime="application/pdf",
                    key="risk_report_pdf",
                    on_click="ignore",
                    icon=":material/download:",
                )
            else:
                b2.warning(printed["message"])
        notes = [w for w in report.warnings if w != coverage]  # that one is above the tabs
        for warning in notes[:5]:
            st.caption(f"⚠ {warning}")
        if len(notes) > 5:  # every note is kept: the rest fold away
            with st.expander(f"{len(notes) - 5} more notes on the scenarios"):
                for warning in notes[5:]:
                    st.caption(f"⚠ {warning}")

with tab_drivers:
    if tab_drivers.open:  # a lazy tab: drawn only while open
        with friendly("Correlations could not be computed"):
            stats = portfolio_stats(sel.source, tickers, weights, sel.start, sel.end)
        v0, v1, n_vol = stats["volatility_span"]
        st.metric(
            f"Annualised volatility (Ledoit-Wolf, last {fmt.count(n_vol, 'day')})",
            fmt.percent(stats["volatility"]),
            help=f"From the daily returns of {fmt.date_range(v0, v1)} on which every position "
            "has a return (at most the last 756, three years)",
        )
        left, right = st.columns(2)
        with left:
            st.plotly_chart(
                shared(
                    correlation_heatmap,
                    stats["corr"],
                    title=wrap_title(
                        "Correlation of daily returns, " + fmt.date_range(*stats["common_span"])
                    ),
                ),
                width="stretch",
                key="risk_corr",
            )
        with right:
            st.plotly_chart(
                shared(
                    risk_contribution_bar,
                    w,
                    stats["contributions"],
                    title="Weight vs share of volatility",
                ),
                width="stretch",
                key="risk_contrib",
            )
        st.plotly_chart(
            shared(
                weights_bar,
                w,
                pd.Series(data.sectors_on(sel.end)),  # the range end's: GOOGL in 2010 is IT
                title=f"Weights ({weighting}), sectors of {fmt.date(sel.end or data.dates[-1])}",
            ),
            width="stretch",
            key="risk_weights",
        )

with tab_dd:
    if tab_dd.open:  # a lazy tab: drawn only while open
        with friendly("Drawdowns could not be computed"):
            stats = portfolio_drawdowns(sel.source, tickers, weights, sel.start, sel.end)
        ds = report.drawdown_stats
        row = metric_row()
        days = report.drawdown.index  # from the range's first day, as its figures
        row.metric(
            "Max drawdown",
            fmt.percent(-ds["max_drawdown"]),  # a fall, signed as on the chart and the Lab
            help=f"Fall from the peak on {ds['peak']} to the trough on {ds['trough']}",
        )
        with row.container():
            st.metric("Peak to trough", trading_days(days, ds["peak"], ds["trough"]))
            st.caption("Trading days " + fmt.date_range(ds["peak"], ds["trough"]))
        with row.container():
            st.metric(
                "Trough to recovery",
                trading_days(days, ds["trough"], ds["recovery"]) if ds["recovery"] else "not yet",
            )
            st.caption(
                f"Trading days to regain the peak, on {ds['recovery']}"
                if ds["recovery"]
                else f"Still below the {ds['peak']} peak at the end of the range"
            )
        row.metric("Current drawdown", fmt.percent(-ds["current_drawdown"]))
        st.plotly_chart(
            shared(drawdown_chart, report.drawdown.rename("portfolio")),
            width="stretch",
            key="risk_dd",
        )
        st.plotly_chart(
            shared(
                return_bar,
                stats["stock_drawdowns"],
                "Worst drawdown of each position",
                height=max(300, 60 + 24 * len(tickers)),
            ),
            width="stretch",
            key="risk_stock_dd",
        )
