"""Model Lab: pick a model, tune it with sliders, see its output, its backtest against the
benchmark, walk-forward in/out-of-sample, a parameter sweep and other models beside it.
The settings live in the URL, and every run lands in the audit trail."""

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.backtest.baselines import ROWS
from mltrainer.backtest.pit import survivorship_effect
from mltrainer.config import DEFAULT_COST_BPS
from mltrainer.models.registry import by_family, get_model
from mltrainer.plots.backtest import (
    equity_chart,
    model_output_chart,
    sweep_heatmap,
    walkforward_chart,
)
from mltrainer.plots.common import wrap_title
from ui import links
from ui.compute import backtest, params_key, prepare_with_progress, refits, run_model
from ui.context import current, load
from ui.data import (
    default_tickers,
    empty_output_reason,
    kept_picks,
    no_ticker_reason,
    picks_lacking,
    say_dropped,
    universe_tickers,
)
from ui.feedback import friendly, stop
from ui.figures import shared
from ui.lab import (
    BENCHMARKS,
    UNIVERSES,
    backtestable,
    capabilities,
    grid_problem,
    grid_values,
    lab_run,
    link_tickers,
    missing_fields,
    sweepable,
    url_state,
    walk_forward_done,
    walk_forward_run,
    write_url,
)
from ui.layout import control_row, fit, metric_row
from ui.params import param_widgets

METRICS = (
    ("cagr", "CAGR", fmt.percent),
    ("sharpe", "Sharpe", fmt.ratio),
    ("annual_volatility", "Volatility", fmt.percent),
    ("max_drawdown", "Max drawdown", fmt.percent),
    ("information_ratio", "Information ratio", fmt.ratio),
    ("beta", "Beta", fmt.ratio),
    ("annual_turnover", "Turnover / year", fmt.times),
)
# short option labels (the widgets' help explains them): longer ones were cut in the boxes
TRAIN_MODES = {"expanding": "Expanding", "rolling": "Rolling"}


def short(key: str) -> str:
    return key.split("/")[1].removesuffix("Model")


# under a quarter, an annualised figure is a few days' noise raised to a year (a 6-day
# range read "Sharpe 3.35"); the tile gives the total return instead and says why
MIN_ANNUAL_DAYS = 63
ANNUALISED = {"cagr", "sharpe", "annual_volatility", "information_ratio", "annual_turnover"}


def backtest_metrics(metrics: dict, bench: dict | None = None) -> None:
    row = metric_row()
    days = metrics.get("n_days") or 0
    short = days < MIN_ANNUAL_DAYS
    why = f"{fmt.count(days, 'trading day')}, under {MIN_ANNUAL_DAYS}: not annualised"
    for name, label, show in METRICS:
        if short and name == "cagr":
            row.metric("Total return", fmt.percent(metrics.get("total_return")), help=why)
        elif short and name in ANNUALISED:
            row.metric(label, "n/a", help=why)
        else:
            row.metric(label, show(metrics.get(name)))


st.title("Model Lab")
sel = current()
data = load(sel.source)
if data is None:
    stop()
url = url_state()
families = {f: keys for f, keys in by_family().items() if keys}

top = control_row()
family_list = list(families)
family = top.selectbox(
    "Family",
    family_list,
    index=family_list.index(url["family"])
    if url.get("family") in families
    else family_list.index("momentum")
    if "momentum" in families
    else 0,
    key="lab_family",
    width=fit(family_list),
)
models = families[family]
wanted = url.get("model") if url.get("model") in models else None
default_model = wanted or next(
    (k for k in models if k.endswith("TimeSeriesMomentumModel")), models[0]
)
key = top.selectbox(
    "Model",
    models,
    index=models.index(default_model),
    format_func=short,
    key=f"lab_model:{family}",
    width=fit(map(short, models)),
)
cls = get_model(key)
options = universe_tickers(sel)
universe = top.selectbox(
    "Universe",
    list(UNIVERSES),
    format_func=UNIVERSES.get,
    key="lab_universe",
    index=list(UNIVERSES).index(url["universe"]) if url.get("universe") in UNIVERSES else 0,
    help="Tickers picked: the tickers you choose, held over the whole period. S&P 500 as "
    "it was: every ticker of the data, each held only on the days it was an index member "
    "(the same run on the survivors is shown beside it)",
    width=fit(UNIVERSES.values()),
)
if universe == "sp500" and family == "ml":
    st.info(
        "S&P 500 as it was runs the model on every ticker of the data; the machine-"
        "learning models would take many minutes there. Use the CLI "
        "(`python -m mltrainer walkforward ... --universe sp500`) or pick tickers."
    )
    universe = "survivors"
if universe == "sp500":
    tickers = options
    within = f" in {', '.join(sel.sectors)} on some day of the range" if sel.sectors else ""
    top.caption(
        f"{len(options)} tickers of the {data.source} data{within}, each held only while an "
        "S&P 500 member"
    )
else:
    where = f"the {data.source} data" + (" in the chosen sectors" if sel.sectors else "")
    from_url = link_tickers(url, options, where)  # the whole universe needs none
    # picks the list no longer offers (a new range or sector filter) stay, offered last:
    # T and VZ picked under Telecommunication Services in 2010 vanished when the range
    # moved to 2020, and did not come back with 2010
    outside = kept_picks(st.session_state.get("lab_tickers"), options, data.tickers)
    earlier = st.session_state.get("lab_tickers")  # this page's, else the last run's
    if earlier is None and not url.get("from_link"):  # a link's are named by link_tickers
        earlier = [t for t in (url.get("tickers") or "").split(",") if t]
    say_dropped(picks_lacking(earlier, data.tickers), data.source, "left out of the tickers")
    tickers = st.multiselect(  # its own row: up to 50 chips were cut to "AAPL, MS…"
        "Tickers",
        options + outside,
        default=from_url or default_tickers(sel, 5),
        key="lab_tickers",
        max_selections=50,
        help="The model runs on these; the backtest trades them",
    )
    if kept := [t for t in outside if t in tickers]:
        reason = None if options else no_ticker_reason(sel)  # the list is empty: why
        tail = f" {reason}" if reason else ""
        st.caption(f"{', '.join(kept)}: not in the sidebar's sectors in this range, kept.{tail}")
st.caption(f"**{short(key)}** ({cls.output_kind}) — {cls.description}")
if not tickers:
    st.info(no_ticker_reason(sel) or "Pick at least one ticker.")
    stop()
have = capabilities(sel.source)
missing = missing_fields(cls, have)
if missing:
    what = {"volume": "traded volume", "ohlc": "high/low prices", "sectors": "GICS sectors"}
    st.warning(
        f"{short(key)} needs {' and '.join(what.get(m, m) for m in missing)}, which the "
        f"'{data.source}' data does not have (the bundled prices are adjusted closes "
        "only). Choose the local source in the sidebar, or another model."
    )
    stop()

with st.container(border=True):
    st.markdown("**Parameters**")
    params = param_widgets(
        cls,
        key_prefix=f"lab:{key}",
        initial=url.get("params") if url.get("model") == key else None,
        columns=4,
    )
shown_default = (
    url.get("ticker")
    if url.get("ticker") in tickers
    else (next((t for t in default_tickers(sel, 1) if t in tickers), tickers[0]))
)
if url.get("from_link") and url.get("ticker") not in (None, shown_default):
    st.warning(
        links.plain(
            f"The link's ticker={url['ticker'][:40]!r} is not among the tickers run; "
            f"the output is shown on {shown_default}."
        )
    )
row = control_row()
ticker = row.selectbox(
    "Show the output on",
    tickers,
    index=tickers.index(shown_default),
    key="lab_ticker",
    width=fit(tickers, "Show the output on"),
)
costs = row.slider(
    "Costs (bps per trade)",
    0.0,
    50.0,
    float(url.get("costs", DEFAULT_COST_BPS) or DEFAULT_COST_BPS),
    1.0,
    key="lab_costs",
    help="Commission plus slippage per unit of traded value",
)
bench = row.selectbox(
    "Benchmark",
    list(BENCHMARKS),
    format_func=BENCHMARKS.get,
    index=list(BENCHMARKS).index(url["bench"]) if url.get("bench") in BENCHMARKS else 0,
    key="lab_bench",
    width=fit(BENCHMARKS.values()),
)
write_url(
    sel, family, key, params, [] if universe == "sp500" else tickers, ticker, costs, bench, universe
)

pk, tk = params_key(params), tuple(tickers)
if family == "ml":
    st.caption(
        "Machine-learning models refit on a walk-forward schedule: a first run takes "
        "from seconds to about two minutes (the ensemble, on five tickers over ten years); "
        "the same settings are then served from the cache."
    )
with friendly(f"{short(key)} could not run"):
    if refits(cls):  # seconds to minutes of fits: a bar of them, not a bare spinner
        prepare_with_progress(sel.source, key, pk, tk, sel.start, sel.end, short(key))
    out = run_model(sel.source, key, pk, tk, sel.start, sel.end)
    run = lab_run(sel.source, key, pk, tk, sel.start, sel.end, costs, bench, universe)
bt = run["backtest"]

tab_run, tab_wf, tab_compare = st.tabs(
    ["Output & backtest", "Walk-forward & sweep", "Side by side"],
    key="lab_tab",
    bind="query-params",
)
with tab_run:
    primary = out.primary
    shown = primary[[ticker]] if ticker in primary.columns else primary
    price = data.adj_close[ticker].loc[primary.index[0] : primary.index[-1]].rename(ticker)
    st.plotly_chart(
        shared(
            model_output_chart,
            price,
            shown,
            cls.output_kind,
            title=f"{short(key)} on {ticker}",
            # what the models read: AAPL closed at 560.99 on 2012-06-01, 17.26 adjusted
            price_label="adjusted close",
        ),
        width="stretch",
        key="lab_output",
    )
    for w in out.warnings:  # failed or non-converged fits: their values are NaN or loose
        st.warning(w)
    if shown.isna().all().all():  # RealizedVolatility on CARR drew the price alone, unsaid
        held = int(data.adj_close[ticker].loc[: primary.index[-1]].count())
        why = empty_output_reason(cls(**params), ticker, held, fmt.date(primary.index[-1]))
        st.warning(
            f"{short(key)} gives no value for {ticker} "
            f"{fmt.date_range(primary.index[0], primary.index[-1])}: {why}; pick a ticker "
            "with a longer history or shorter windows."
        )
    if bt is not None:
        st.caption(
            f"Backtest {bt['equity'].index[0]:%Y-%m-%d} to "
            f"{bt['equity'].index[-1]:%Y-%m-%d}, in sample (the parameters as set), "
            f"universe: {bt['universe']['label']}"
        )
        backtest_metrics(bt["metrics"])
        curves = {
            f"{short(key)} (net of {costs:g} bps)": bt["equity"],
            f"Benchmark: {BENCHMARKS[bench]}": bt["benchmark"],
        }
        effect = bt.get("survivorship")
        if effect is not None:
            curves[f"{short(key)} on the survivors (whole period)"] = effect["survivors_equity"]
            rows = {
                "S&P 500 as it was": effect["point_in_time"],
                "Survivors, whole period": effect["survivors"],
                "Survivors minus as it was": effect["survivors_minus_point_in_time"],
            }
            st.markdown(
                "**Survivorship effect**: the same signal held only while members "
                "vs held over the whole period"
            )
            st.dataframe(
                pd.DataFrame(rows).T[["cagr", "sharpe", "max_drawdown"]],
                width="stretch",
                key="lab_survivorship",
                column_config={
                    "cagr": st.column_config.NumberColumn("CAGR", format="percent"),
                    "sharpe": st.column_config.NumberColumn("Sharpe", format="%.2f"),
                    "max_drawdown": st.column_config.NumberColumn("max drawdown", format="percent"),
                },
            )
        st.plotly_chart(
            shared(equity_chart, curves, title="Backtest: growth of 1"),
            width="stretch",
            key="lab_equity",
        )
        for w in bt["warnings"]:
            st.caption(f"⚠ {w}")
    else:
        st.info(
            f"{short(key)} outputs {cls.output_kind}, not a signal or weights, so it is "
            "not backtested; its output is shown above."
        )
    if out.tables:
        with st.expander("Tables"):
            for name, table in out.tables.items():
                st.markdown(f"**{name}**")
                st.dataframe(table, width="stretch")
    st.caption(f"Audit trail: {run['audit']}")

with tab_wf:
    if not backtestable(key):
        st.info("Walk-forward validation needs a signal or weights model.")
    else:
        names = sweepable(cls)
        row = control_row()
        sweep = row.multiselect(
            "Sweep parameters (one or two)",
            names,
            default=names[:1],
            max_selections=links.most(f"lab_sweep:{key}", names, 2),
            key=f"lab_sweep:{key}",
            bind="query-params",
        )
        points = row.slider("Values per parameter", 2, 6, 3, key="lab_points", bind="query-params")
        mode = row.selectbox(
            "Training window",
            list(TRAIN_MODES),
            format_func=links.label("lab_mode", TRAIN_MODES.get),
            key="lab_mode",
            bind="query-params",
            help="Expanding: every fold trains on all dates from the range "
            "start up to the fold (at least the days below); rolling: on "
            "only the last days below",
            width=fit(TRAIN_MODES.values(), "Training window"),
        )
        train = row.slider(
            "Training days" + (" (first fold)" if mode == "expanding" else ""),
            252,
            1260,
            756,
            63,
            key="lab_train",
            bind="query-params",
        )
        test = row.slider("Test fold (days)", 63, 504, 252, 63, key="lab_test", bind="query-params")
        grid = tuple((n, tuple(grid_values(cls.param_specs[n], points, params[n]))) for n in sweep)
        st.caption(
            "Grid around the current values: "
            + ("; ".join(f"{n} ∈ {list(v)}" for n, v in grid) or "the current parameters only")
        )
        problem = grid_problem(cls, params, grid)
        if problem:
            st.warning(
                f"This grid has an invalid point ({problem}); move the sliders or "
                "sweep other parameters."
            )
        run_wf = st.button(
            "Run walk-forward", key="lab_run_wf", type="primary", disabled=problem is not None
        )
        args = (
            sel.source,
            key,
            pk,
            grid,
            tk,
            sel.start,
            sel.end,
            train,
            test,
            costs,
            universe,
            mode,
        )
        # the URL carries wf=1 while a walk-forward result is shown: a shared link runs it
        # on its first visit (later changes of the settings wait for the button again)
        if "lab_wf_link" not in st.session_state:
            st.session_state["lab_wf_link"] = st.query_params.get("wf") == "1"
        linked = st.session_state["lab_wf_link"] and problem is None
        st.session_state["lab_wf_link"] = False
        shown = run_wf or linked or walk_forward_done(*args)
        if shown:
            st.query_params["wf"] = "1"
        elif "wf" in st.query_params:
            del st.query_params["wf"]
        if shown:
            with friendly("The walk-forward could not run"):
                wf = walk_forward_run(*args)
            dsr = wf.deflated_sharpe
            row = metric_row()
            row.metric("Out-of-sample Sharpe", fmt.ratio(wf.oos_metrics["sharpe"]))
            row.metric("Out-of-sample CAGR", fmt.percent(wf.oos_metrics["cagr"]))
            row.metric(
                "Deflated Sharpe (OOS)",
                fmt.ratio(dsr["oos"]["dsr"]),
                help=f"Probability that the true Sharpe is above the best of "
                f"{dsr['oos']['n_trials']} trials under no skill",
            )
            row.metric(
                "Deflated Sharpe (best)",  # a longer label is cut at 1280 px
                fmt.ratio(dsr["best_trial"]["dsr"]),
                help="Deflated Sharpe of the best in-sample grid point, params "
                f"{dsr['best_trial']['params']}",
            )
            for w in wf.oos.warnings:  # e.g. a track that never held a position
                st.caption(f"⚠ Out of sample: {w}")
            if wf.survivors is not None:
                effect = survivorship_effect(wf.oos_metrics, wf.survivors.oos_metrics)
                st.markdown(
                    "**Survivorship effect, out of sample**: the same walk-forward "
                    "with each ticker held only while a member vs over the whole "
                    "period"
                )
                st.dataframe(
                    pd.DataFrame(
                        {
                            "S&P 500 as it was": effect["point_in_time"],
                            "Survivors, whole period": effect["survivors"],
                            "Survivors minus as it was": effect["survivors_minus_point_in_time"],
                        }
                    ).T[["cagr", "sharpe", "max_drawdown"]],
                    width="stretch",
                    column_config={
                        "cagr": st.column_config.NumberColumn("OOS CAGR", format="percent"),
                        "sharpe": st.column_config.NumberColumn("OOS Sharpe", format="%.2f"),
                        "max_drawdown": st.column_config.NumberColumn(
                            "OOS max drawdown", format="percent"
                        ),
                    },
                )
            base = wf.baselines
            if base is not None:
                span = base.span
                st.markdown(
                    f"**Out of sample beside naive baselines**, {span['first_date']} "
                    f"to {span['last_date']} ({span['n_dates']} dates, "
                    f"{span['n_folds']} test folds); universe {span['universe']}; "
                    f"{costs:g} bps per trade"
                )
                table = base.table()
                st.dataframe(
                    table.set_index("label").drop(columns="note"),
                    width="stretch",
                    key="lab_wf_baselines",
                    # short headers so the seven figures fit; turnover as a multiple
                    column_config={
                        "cagr": st.column_config.NumberColumn("CAGR", format="percent"),
                        "sharpe": st.column_config.NumberColumn("Sharpe", format="%.2f"),
                        "max_drawdown": st.column_config.NumberColumn("max DD", format="percent"),
                        "annual_turnover": st.column_config.NumberColumn(
                            "turnover / yr", format="%.1fx"
                        ),
                        "excess_cagr": st.column_config.NumberColumn(
                            "excess CAGR", format="percent"
                        ),
                        "excess_sharpe": st.column_config.NumberColumn(
                            "excess Sharpe", format="%+.2f"
                        ),
                        "information_ratio": st.column_config.NumberColumn("IR", format="%.2f"),
                    },
                )
                st.caption(
                    " · ".join(f"{row.label}: {row.note}" for row in table.itertuples() if row.note)
                )
            left, right = st.columns(2)
            with left:
                st.plotly_chart(
                    walkforward_chart(
                        wf.folds, title=wrap_title("Sharpe by fold: in- vs out-of-sample", 28)
                    ),
                    width="stretch",
                    key="lab_wf_folds",
                )
            with right:
                trials = wf.grid_table()
                if sweep:
                    st.plotly_chart(
                        sweep_heatmap(
                            trials,
                            sweep[0],
                            sweep[1] if len(sweep) > 1 else None,
                            title=wrap_title("Whole-sample Sharpe by grid point", 28),
                        ),
                        width="stretch",
                        key="lab_sweep_map",
                    )
            curves = {"Stitched out-of-sample": wf.oos.equity}
            if base is not None:
                growth = base.equity()
                curves.update({ROWS[k]: growth[k] for k in growth if k != "model"})
            st.plotly_chart(
                shared(
                    equity_chart,
                    curves,
                    title=wrap_title(
                        "Out-of-sample equity (each fold traded with the point its "
                        "training window chose)",
                        40,
                    ),
                ),
                width="stretch",
                key="lab_wf_equity",
            )
            st.dataframe(wf.folds, hide_index=True, width="stretch", key="lab_wf_table")
        else:
            st.info(
                "Press 'Run walk-forward' to search the grid on each training window and "
                "score the choice on the next test fold."
            )

with tab_compare:
    candidates = [
        k
        for fam in families.values()
        for k in fam
        if k != key and backtestable(k) and not missing_fields(get_model(k), have)
    ]
    others = st.multiselect(
        "Compare with (default parameters)",
        candidates,
        default=[],
        format_func=lambda k: f"{k.split('/')[0]} · {short(k)}",
        key="lab_compare",
    )
    if bt is None:
        st.info("The chosen model is not backtestable; pick a signal or weights model.")
    elif not others:
        st.info("Add models to compare their backtests on the same tickers and dates.")
    else:
        curves = {short(key): bt["equity"]}
        rows = [{"model": short(key), **bt["metrics"]}]
        progress = st.progress(0.0)
        for i, other in enumerate(others):
            with friendly(f"{short(other)} could not run", stop=False):
                res = backtest(
                    sel.source,
                    other,
                    params_key({}),
                    tk,
                    sel.start,
                    sel.end,
                    costs,
                    bench,
                    universe,
                )
                curves[short(other)] = res["equity"]
                rows.append({"model": short(other), **res["metrics"]})
            progress.progress((i + 1) / len(others), text=f"{short(other)} done")
        progress.empty()
        curves[f"Benchmark: {BENCHMARKS[bench]}"] = bt["benchmark"]
        st.plotly_chart(
            shared(equity_chart, curves, title="Growth of 1, side by side"),
            width="stretch",
            key="lab_compare_chart",
        )
        table = pd.DataFrame(rows).set_index("model")[[m for m, _, _ in METRICS if m in rows[0]]]
        st.dataframe(table, width="stretch", key="lab_compare_table")
