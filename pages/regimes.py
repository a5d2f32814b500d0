"""Regimes: any regime models on the S&P 500 index or a ticker, their probabilities,
transitions and statistics, NBER recessions, and where the models agree."""

import pandas as pd
import streamlit as st

from mltrainer import fmt
from mltrainer.data.nber import RECESSIONS, recession_indicator
from mltrainer.models.registry import by_family, get_model
from mltrainer.plots.common import wrap_title
from mltrainer.plots.market import price_with_regimes
from mltrainer.plots.regimes import (
    agreement_heatmap,
    agreement_matrix,
    agreement_strip,
    consensus,
    probabilities_area,
    stress_level,
    transition_heatmap,
)
from mltrainer.regime_summary import MIN_STAT_DAYS, current_run, range_summary
from ui import links
from ui.compute import params_key, refits, run_index_model, run_model, run_with_progress
from ui.context import current, load
from ui.data import (
    empty_output_reason,
    index_close,
    kept_picks,
    picks_lacking,
    say_dropped,
    universe_tickers,
)
from ui.feedback import friendly, stop
from ui.figures import shared
from ui.layout import control_row, fit, metric_row
from ui.monitoring import regime_names
from ui.params import param_widgets

INDEX = "S&P 500 index"
DEFAULT_MODELS = ("regime/VolatilityRegimeModel", "regime/MarketConditionRegimeModel")


def short(key: str) -> str:
    return key.split("/")[1].removesuffix("Model").removesuffix("Regime")


st.title("Regimes")
sel = current()
data = load(sel.source)
if data is None:
    stop()

regime_keys = by_family().get("regime", [])
top = control_row()
series_options = [INDEX, *universe_tickers(sel)]
outside = kept_picks(st.session_state.get("rg_series"), series_options, data.tickers)
series_options += outside  # a ticker the new range's sector list leaves out stays
lacking = picks_lacking(st.session_state.get("rg_series"), series_options)
say_dropped(lacking, data.source, f"showing {series_options[0]}")
series = top.selectbox(
    "Series",
    series_options,
    key="rg_series",
    bind="query-params",
    help="The S&P 500 index bundled with skfolio/arch (1990-2022) or one "
    "ticker of the selected data source",
    width=fit(series_options),
)
if series in outside:
    top.caption(f"{series}: not in the sidebar's sectors in this range, kept")
chosen = top.multiselect(
    "Regime models",
    regime_keys,
    default=[k for k in DEFAULT_MODELS if k in regime_keys],
    format_func=links.label("rg_models", short),
    key="rg_models",
    bind="query-params",
    help="Each labels every day 0 = calmest ... k-1 = most stressed, from data up to that day only",
)
log_scale = top.toggle("Log price scale", value=series == INDEX, key="rg_log", bind="query-params")
if not chosen:
    st.info("Pick at least one regime model.")
    stop()

with st.expander("Model parameters", expanded=False):
    params = {}
    for key in chosen:
        st.markdown(f"**{short(key)}** — {get_model(key).description}")
        params[key] = param_widgets(
            get_model(key), key_prefix=f"rg:{short(key)}", columns=4, bind=True
        )

slow = [short(k) for k in chosen if get_model(k).costly_columns]
if slow:  # minutes without a word read as a hung page
    st.caption(
        f"{', '.join(slow)} refits a maximum-likelihood model on past data every "
        "`refit_every` days: a first run over "
        + ("the index's history (from 1990)" if series == INDEX else f"{series}'s history")
        + " takes seconds with 2 regimes and up to a few minutes with 3 (a bar counts the "
        "refits); the result is then kept for every session."
    )

end = sel.end
if series == INDEX:
    end = min(pd.Timestamp(sel.end or data.dates[-1]), index_close().index[-1]).date()
    price = index_close(end)
else:
    price = data.adj_close[series].loc[: pd.Timestamp(end) if end else None].dropna()
price = price.loc[pd.Timestamp(sel.start) if sel.start else None :].rename(series)
if price.empty:  # a weekend or a holiday picked as the whole range, or a gap in the series
    st.error(
        f"{series} has no close {fmt.date_range(sel.start, end)}: the range holds no "
        "trading day of it; widen the date range in the sidebar"
    )
    stop()

outputs, failed = {}, []
progress = st.progress(0.0, text="Running the regime models…") if len(chosen) > 1 else None
for i, key in enumerate(chosen):
    pk = params_key(params[key])
    with friendly(f"{short(key)} could not run", stop=False):
        if refits(get_model(key)):  # seconds to minutes of fits: a bar of its refits
            source, on = (None, ()) if series == INDEX else (sel.source, (series,))
            outputs[key] = run_with_progress(source, key, pk, on, sel.start, end, short(key))
        elif series == INDEX:
            outputs[key] = run_index_model(key, pk, sel.start, end)
        else:
            outputs[key] = run_model(sel.source, key, pk, (series,), sel.start, end)
    if key in outputs and outputs[key].primary.iloc[:, 0].isna().all():
        # no label on any day (ChangePoint on CARR's 275 days: too few segments) drew a
        # bare chart, blank metrics and a table of empty rows with no word
        last = price.index[-1]
        history = index_close(last) if series == INDEX else data.adj_close[series].loc[:last]
        days = int(history.count())  # all the history the model read, not only the range
        why = empty_output_reason(get_model(key)(**params[key]), series, days, fmt.date(last))
        st.warning(
            f"{short(key)} labels no day of {series} {fmt.date_range(price.index[0], last)}: "
            f"{why}; pick another series or model, or shorter windows."
        )
        del outputs[key]
    if key not in outputs:
        failed.append(key)
    if progress is not None:
        progress.progress((i + 1) / len(chosen), text=f"{short(key)} done")
if progress is not None:
    progress.empty()
if not outputs:
    stop()

detail = st.selectbox(
    "Details for",
    list(outputs),
    format_func=links.label("rg_detail", short),
    key="rg_detail",
    bind="query-params",
)
out = outputs[detail]
col = out.primary.columns[0]
labels = out.primary[col]
names = regime_names(detail, params_key(params[detail]))
valid = labels.dropna()

row = metric_row()
if len(valid):
    now = int(valid.iloc[-1])
    row.metric(
        "Regime on the last date",
        names.get(now, f"regime {now}").capitalize(),
        help=f"{valid.index[-1]:%Y-%m-%d}",
    )
    run_id = valid.ne(valid.shift()).cumsum()
    held = current_run(valid)  # cut: it held on the range's first day, may be older
    row.metric(
        "Days in this regime",
        held.days_text(),
        help=f"Trading days {held.since_text()}"
        + (" (it held on the range's first labelled day)" if held.cut else ""),
    )
    row.metric("Regime changes in range", int((run_id.diff() > 0).sum()))
rec = recession_indicator(valid.index)
if rec.any() and len(valid):
    stressed = valid == valid.max()
    row.metric(
        "Stressed during recessions",
        f"{stressed[rec].mean():.0%}",
        f"{stressed[~rec].mean():.0%} outside" if (~rec).any() else "every day a recession",
        delta_color="off",
        delta_arrow="off",
        help="Share of NBER recession days the model put in its most stressed regime, "
        "against the share of the other days",
    )

st.plotly_chart(
    shared(
        price_with_regimes,
        price,
        labels,
        names,
        recessions=RECESSIONS,
        log_scale=log_scale,
        height=440,
        title=f"{series}: {short(detail)} regimes",
        price_label="index level" if series == INDEX else "adjusted close",
    ),
    width="stretch",
    key="rg_price",
)

probs = out.extras
prob_cols = sorted((k for k in probs if k.startswith("prob_")), key=lambda k: int(k[5:]))
# one above the other: side by side, the heatmap had 179 px at 800 px (its axis title
# over its title, its cells' figures 5 px high)
if prob_cols:
    frame = pd.DataFrame({k: probs[k][col] for k in prob_cols})
    st.plotly_chart(
        shared(
            probabilities_area,
            frame,
            names,
            height=320,
            title="Regime probabilities (filtered)",
        ),
        width="stretch",
        key="rg_probs",
    )
summary = range_summary(labels, price, len(names) or int(valid.max()) + 1, names)
span = f"{fmt.date(summary.start)} to {fmt.date(summary.end)}" if summary.start is not None else ""
st.plotly_chart(
    shared(
        transition_heatmap,
        summary.transitions,
        names,
        height=320,
        title=wrap_title(f"Transitions, {span}"),
    ),
    width="stretch",
    key="rg_transitions",
)

st.subheader(f"Per-regime statistics, {span}")
st.dataframe(
    summary.stats,
    width="stretch",
    key="rg_stats",
    column_config={
        **{
            c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
            for c in ("mean_return", "volatility", "share_of_days")
        },
        "avg_duration_days": st.column_config.NumberColumn("mean spell (days)", format="%.1f"),
        "expected_duration_days": st.column_config.NumberColumn(
            "expected spell (days)", format="%.1f"
        ),
        "n_days": st.column_config.NumberColumn("days"),
        "n_spells": st.column_config.NumberColumn("spells"),
    },
)
st.caption(
    f"Over the range only ({span}): annualised mean return and volatility of the days in "
    f"each regime (blank for a regime held under {MIN_STAT_DAYS} days), and the empirical "
    "one-day transition probabilities between the labels (expected duration 1 / (1 - p_ii); "
    "blank for a regime never left in the range). The labels themselves are causal: each "
    "day's uses data up to that day, history before the range included."
)

if len(outputs) > 1:
    st.subheader("Where the models agree")
    levels = pd.DataFrame(
        {
            short(k): stress_level(
                o.primary.iloc[:, 0],
                len(regime_names(k, params_key(params[k]))) or int(o.primary.iloc[:, 0].max()) + 1,
            )
            for k, o in outputs.items()
        }
    )
    cons = consensus(levels)
    both = cons["n_models"] == len(outputs)
    row = metric_row()
    row.metric(
        "Days on which all models agree",
        f"{(cons['agreement'][both] == 1).mean():.0%}" if both.any() else "no common day",
        help="On the common calm / in-between / stressed scale, over the "
        f"{fmt.count(int(both.sum()), 'day')} every model labels",
    )
    defined = cons[cons["n_models"] > 0]
    if len(defined):
        latest, level_names = defined.iloc[-1], ("calm", "in between", "stressed")
        views = levels.loc[defined.index[-1]].dropna().astype(int)
        row.metric(
            "Majority view on the last date",
            "split" if pd.isna(latest["majority"]) else level_names[int(latest["majority"])],
            help=f"{defined.index[-1]:%Y-%m-%d}: "
            + ", ".join(f"{m} {level_names[v]}" for m, v in views.items()),
        )
    # one above the other: the heatmap beside the strip had 148 px at 800 px
    st.plotly_chart(
        shared(agreement_strip, levels, title="Stress level by model"),
        width="stretch",
        key="rg_agreement",
    )
    st.caption(
        "The majority row is blank on days without a strict majority (as many models "
        "on one level as on another)."
    )
    st.plotly_chart(
        shared(agreement_heatmap, agreement_matrix(levels), height=300, title="Pairwise agreement"),
        width="stretch",
        key="rg_pairs",
    )
