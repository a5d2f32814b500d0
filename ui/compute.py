"""Model runs and backtests behind ``st.cache_data``, keyed by plain values.

The key of a run is (source, model key, parameters, tickers, dates): the same inputs
never run twice. Models learn from all the history the source has before and inside
the chosen range (the range decides what is shown and scored, never what a model may
learn from: a GARCH fit or a regime model's expanding statistics on 1999-2011 are
there on the range's first day); they are causal, so the extra history changes no value
after it. Their output is cut to the chosen dates before it is cached, so what is
pickled is a few small frames.
"""

from __future__ import annotations

import copy

import streamlit as st

from mltrainer.errors import DataError
from mltrainer.models.base import ModelOutput
from mltrainer.models.registry import get_model
from ui.context import Selection, load


def params_key(params: dict) -> tuple:
    """A hashable, order-independent key for a parameter dict."""
    return tuple(sorted(params.items()))


def _data(source: str, tickers: tuple, start, end, history: str = "full"):
    """The tickers' data up to ``end``: all of it before ``start`` too (``history="full"``,
    what models learn from) or from ``start`` (``"exact"``, what a backtest trades)."""
    data = load(source)
    if data is None:
        raise DataError(f"no data from source '{source}'")
    lo = {"full": None, "exact": start}[history]
    try:
        return data.select(tickers=list(tickers), start=lo, end=end)
    except DataError:
        if lo is None and start is not None:  # no price before the end at all: say so for
            data.select(tickers=list(tickers), start=start, end=end)  # the reader's range
        raise


def _run(source: str | None, key: str, params: tuple, tickers: tuple, start, end) -> ModelOutput:
    """``Model(**params).run(data)`` on all the history up to ``end`` of the tickers (or
    of the bundled index when ``source`` is None), output from ``start`` to ``end``."""
    from ui.data import index_data

    model = get_model(key)(**dict(params))
    data = index_data(end) if source is None else _data(source, tickers, start, end)
    return model.run(data).since(start)


SLOW_RUNS = ("slow_model_runs", 64)  # run_with_progress's store: run_model reads it too


def run_model(source: str, key: str, params: tuple, tickers: tuple, start, end) -> ModelOutput:
    """``Model(**params).run(data)`` on all the tickers' history up to ``end``, output
    from ``start`` to ``end``: a copy of the result :func:`run_with_progress` keeps when
    it ran it (not cached a second time: a refit model's output over the whole index is
    tens of MB), else :func:`_cached_run`'s."""
    from ui.feedback import result_store

    done = result_store(*SLOW_RUNS).get((source, key, params, tickers, start, end))
    if done is not None:
        return copy.deepcopy(done)
    return _cached_run(source, key, params, tickers, start, end)


@st.cache_data(show_spinner="Running the model…", max_entries=64)
def _cached_run(source: str, key: str, params: tuple, tickers: tuple, start, end) -> ModelOutput:
    """:func:`_run`, memoised per server."""
    return _run(source, key, params, tickers, start, end)


@st.cache_data(show_spinner="Running the regime model on the index…", max_entries=32)
def run_index_model(key: str, params: tuple, start, end) -> ModelOutput:
    """A model on the bundled S&P 500 index (full history up to ``end``, cut to ``start``)."""
    return _run(None, key, params, (), start, end)


def refits(cls: type) -> bool:
    """Whether the model refits on a schedule (a ``refit`` or ``refit_every`` setting):
    GARCH, ARIMA, Markov switching, the ML models: seconds to minutes, so its run goes
    through :func:`run_with_progress`."""
    return any(name in cls.param_specs for name in ("refit", "refit_every"))


def run_with_progress(
    source: str | None, key: str, params: tuple, tickers: tuple, start, end, name: str = ""
) -> ModelOutput:
    """:func:`run_model` (:func:`run_index_model` when ``source`` is None) for a model
    whose fits take minutes (Markov switching with 3 regimes, the ML ensemble): a
    progress bar of its steps (the ML refits, a lone series' Markov refits, else the
    tickers) instead of a bare spinner; memoised per server, and what
    :func:`run_model` then serves for the same arguments. ``name``: the model as the
    page calls it (default: its class name). Returns a copy: the kept result is shared
    by every session."""
    return copy.deepcopy(prepare_with_progress(source, key, params, tickers, start, end, name))


def prepare_with_progress(
    source: str | None, key: str, params: tuple, tickers: tuple, start, end, name: str = ""
) -> ModelOutput:
    """:func:`run_with_progress`'s run and bar, returning the kept (shared, not to be
    changed) result: the Model Lab calls it for the bar only, then reads its copy
    through :func:`run_model`."""
    from mltrainer.numerics.parallel import execution
    from ui.feedback import result_store, with_progress

    def compute(progress):
        with execution(progress=progress):
            return _run(source, key, params, tickers, start, end)

    label = f"{name or key.split('/')[-1]}: walk-forward fits"
    cache_key = (source, key, params, tickers, start, end)
    return with_progress(result_store(*SLOW_RUNS), cache_key, label, compute)


@st.cache_data(show_spinner="Backtesting…", max_entries=64)
def backtest(
    source: str,
    key: str,
    params: tuple,
    tickers: tuple,
    start,
    end,
    costs_bps: float,
    benchmark: str,
    universe: str = "survivors",
) -> dict:
    """Backtest of a signal/weights model over [start, end].

    ``benchmark`` is ``"universe"`` (equal weight of the tickers the run may hold, the
    engine's default) or ``"sp500"`` (the bundled index). ``universe`` is
    ``"survivors"`` (the tickers over the whole period) or ``"sp500"`` (each ticker only
    while an index member, with the survivors' run beside it). Returns a small dict:
    equity and benchmark growth, daily returns, metrics, warnings, universe, survivorship.
    """
    from mltrainer.backtest.engine import run_backtest
    from mltrainer.backtest.pit import SP500, resolve_universe, survivorship_effect
    from mltrainer.models.base import WEIGHTS

    cls = get_model(key)
    out = run_model(source, key, params, tickers, start, end)
    data = _data(source, tickers, start, end, "exact")
    # the S&P 500 universe runs on every ticker of the data, or of a sidebar sector filter:
    # those few have prices for few members because they were chosen, not for want of data
    whole = universe == SP500 and len(tickers) == load(source).n_tickers
    setting = resolve_universe(data, universe, tickers_given=not whole)
    bench = None
    if benchmark == "sp500":
        from ui.data import index_close

        bench = index_close(end).pct_change(fill_method=None).reindex(data.dates)
    weighting = "weights" if cls.output_kind == WEIGHTS else "normalize"
    signal = out.primary.reindex(data.dates)
    res = run_backtest(
        signal,
        data,
        weighting=weighting,
        members=setting.mask,
        commission_bps=costs_bps,
        benchmark=bench,
    )
    effect = None
    if setting.mask is not None:
        survivors = run_backtest(
            signal, data, weighting=weighting, commission_bps=costs_bps, benchmark=bench
        )
        effect = survivorship_effect(res.metrics, survivors.metrics)
        effect["survivors_equity"] = survivors.equity
    bench_growth = (1.0 + res.benchmark.fillna(0.0)).cumprod()
    return {
        "equity": res.equity,
        "benchmark": bench_growth,
        "returns": res.returns,
        "metrics": dict(res.metrics),
        "warnings": [*setting.warnings, *res.warnings],
        "turnover": float(res.turnover.mean()),
        "universe": setting.to_dict(),
        "survivorship": effect,
    }


def selection_key(sel: Selection) -> tuple:
    return (sel.source, sel.start, sel.end, sel.sectors)
