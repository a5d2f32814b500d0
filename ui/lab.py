"""Model Lab plumbing: settings in the URL, cached runs that land in the audit trail,
parameter grids, the walk-forward run with progress."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mltrainer.errors import MLTrainerError
from mltrainer.models.base import SIGNAL, WEIGHTS
from mltrainer.models.params import BoolParam, ChoiceParam, FloatParam, IntParam
from mltrainer.models.registry import get_model
from mltrainer.validate import from_query, parse_float, parse_tickers
from ui import links
from ui.compute import _data, backtest
from ui.feedback import result_store, with_progress

URL_KEYS = ("family", "model", "tickers", "ticker", "costs", "bench", "universe")
BENCHMARKS = {"universe": "Equal-weight tickers", "sp500": "S&P 500 index"}
UNIVERSES = {"survivors": "Tickers picked", "sp500": "S&P 500 as it was"}
PARAM_PREFIX = "p."
MAX_TICKERS = 50  # the ticker picker's max_selections
# URL values checked before the page uses them (the others are matched against lists)
URL_CHECKS = {
    "costs": lambda text: f"{parse_float(text, 'costs', 0.0, 50.0):g}",
    "tickers": lambda text: ",".join(parse_tickers(text, "tickers", MAX_TICKERS)),
}


def backtestable(key: str) -> bool:
    return get_model(key).output_kind in (SIGNAL, WEIGHTS)


@st.cache_data(show_spinner=False)
def capabilities(source: str) -> dict:
    """Which optional fields the source's data has (checked once per source)."""
    from ui.context import load

    data = load(source)
    return {"volume": data.has_volume, "ohlc": data.has_ohlc, "sectors": bool(data.sectors)}


def missing_fields(model_cls, have: dict) -> list[str]:
    """Fields the model needs that the data lacks (e.g. volume on the bundled prices)."""
    return [r for r in model_cls.requires if not have.get(r, True)]


# ------------------------------------------------------------------------- URL
MANAGED = (*URL_KEYS, "source", "start", "end", "sectors")  # keys write_url owns


def _sync_url(state: dict) -> None:
    """Make the URL's managed keys equal ``state``, leaving the others alone (widgets that
    keep their own value in the URL, e.g. the walk-forward settings, and ``wf``)."""
    qp = st.query_params
    for name in list(qp):
        if (name in MANAGED or name.startswith(PARAM_PREFIX)) and name not in state:
            del qp[name]
    for name, value in state.items():
        if qp.get_all(name) != [value]:  # a link's repeated key is written once
            qp[name] = value


def url_state() -> dict:
    """The Model Lab settings to start from: the URL on a session's first visit (a shared
    link; ``from_link`` is then True), afterwards the settings of the last run (see
    :func:`write_url`); plain values plus ``params`` {name: text}."""
    if "lab_url" not in st.session_state:
        qp = st.query_params
        for name in [*URL_KEYS, *(k for k in qp if k.startswith(PARAM_PREFIX))]:
            links.repeated(name)
        state = {k: qp.get(k) for k in URL_KEYS if qp.get(k) is not None}
        state["params"] = {
            k[len(PARAM_PREFIX) :]: v for k, v in qp.items() if k.startswith(PARAM_PREFIX)
        }
        for name, parse in URL_CHECKS.items():
            if name in state:  # a malformed value falls back to the page's default
                value, problem = from_query(state, name, parse, None)
                if problem:
                    st.warning(links.plain(problem))
                    del state[name]
                else:
                    state[name] = value
        for problem in link_choices(state):
            st.warning(links.plain(problem))
        state["from_link"] = True  # the settings of a link, not of this session's last run
        st.session_state["lab_url"] = state
    return st.session_state["lab_url"]


def link_choices(state: dict) -> list[str]:
    """Check a link's family, model, benchmark, universe and parameter names against
    what the page offers: an unknown one is dropped from ``state`` (the page shows its
    default) and named in a sentence; a known model brings its own family."""
    from mltrainer.models.registry import by_family
    from ui.params import RENAMED_PARAMS  # an old link's names are still taken

    owners = {k: f for f, keys in by_family().items() for k in keys}
    said, family, model = [], state.get("family"), state.get("model")
    if family is not None and family not in set(owners.values()):
        said.append(
            f"The link's family={family[:40]!r} is not a model family; showing the default."
        )
        del state["family"]
    if model is not None and model not in owners:
        said.append(f"The link's model={model[:60]!r} is not a registered model; ignored.")
        del state["model"]
    elif model is not None:
        if state.get("family", owners[model]) != owners[model]:
            said.append(
                f"The link's model {model} is of the {owners[model]} family, not "
                f"{state['family']}; it is shown in its own family."
            )
        state["family"] = owners[model]
        specs = get_model(model).param_specs
        taken = {*specs, *(old for new in specs for old in RENAMED_PARAMS.get(new, ()))}
        unknown = [n for n in state.get("params", {}) if n not in taken]
        if unknown:
            names = ", ".join(f"p.{n[:30]}" for n in unknown[:5])
            said.append(f"The link's {names}: not a parameter of {model}; ignored.")
    if state.get("params") and "model" not in state:  # settings of no model in the link
        names = ", ".join(f"p.{n[:30]}" for n in list(state["params"])[:5])
        said.append(f"The link's {names}: no registered model in the link takes them; ignored.")
    for name, allowed in (("bench", BENCHMARKS), ("universe", UNIVERSES)):
        if state.get(name) is not None and state[name] not in allowed:
            said.append(
                f"The link's {name}={state[name][:40]!r} is not one of "
                f"{', '.join(allowed)}; showing {next(iter(allowed))}."
            )
            del state[name]
    return said


def link_tickers(url: dict, options: list[str], where: str) -> list[str]:
    """The link's tickers that the data has. The others are named in a warning, with
    what the data calls the same company (a link made on today's symbols, opened on the
    local files' of 2021): a page silently showing other tickers would mislead.
    ``where`` says what ``options`` are (``the local data``). Only a link's are named:
    the settings of the session's last run are kept where the options still have them."""
    from mltrainer.data.ticker_hints import ticker_hints

    asked = [t for t in (url.get("tickers") or "").split(",") if t]
    kept = [t for t in asked if t in options]
    lost = [t for t in asked if t not in options]
    if lost and url.get("from_link"):  # not the last run's, which a sector filter cut
        hints = ticker_hints(lost, options)
        st.warning(
            links.plain(
                f"The link's ticker{'s' if len(lost) > 1 else ''} {', '.join(lost[:8])}"
                f"{' and more' if len(lost) > 8 else ''} "
                f"{'are' if len(lost) > 1 else 'is'} not in {where}"
                + ("; left out." if kept else "; showing the default tickers.")
                + "".join(f" {h[0].upper()}{h[1:]}." for h in hints)
            )
        )
    return kept


def write_url(
    sel,
    family: str,
    key: str,
    params: dict,
    tickers,
    ticker: str,
    costs: float,
    bench: str,
    universe: str = "survivors",
) -> None:
    """Put the current settings in the URL so a copied link reproduces this run."""
    state = {
        "family": family,
        "model": key,
        "ticker": ticker,
        "costs": f"{costs:g}",
        "bench": bench,
        "source": sel.source,
        "universe": universe,
    }
    if tickers:  # the index as it was trades every ticker: no list to carry
        state["tickers"] = ",".join(tickers)
    if sel.start is not None and sel.end is not None:
        state.update(start=str(sel.start), end=str(sel.end))
    if sel.sectors:
        state["sectors"] = ",".join(sel.sectors)
    state.update({f"{PARAM_PREFIX}{k}": str(v) for k, v in params.items()})
    _sync_url(state)
    # Streamlit drops a page's widget state when another page runs: remember the settings
    # so coming back to the lab restores them (url_state reads this first)
    st.session_state["lab_url"] = {
        **{k: state[k] for k in URL_KEYS if k in state},
        "params": {k: str(v) for k, v in params.items()},
    }


# ----------------------------------------------------------------------- runs
@st.cache_data(show_spinner="Running and backtesting…", max_entries=64)
def lab_run(
    source: str,
    key: str,
    params: tuple,
    tickers: tuple,
    start,
    end,
    costs: float,
    bench: str,
    universe: str = "survivors",
) -> dict:
    """The backtest of a signal/weights model (None for other kinds) and the run's audit
    record, recorded once per distinct run. The output itself is :func:`run_model`'s:
    not kept here a second time."""
    from mltrainer import audit

    bt = (
        backtest(source, key, params, tickers, start, end, costs, bench, universe)
        if backtestable(key)
        else None
    )
    note = None
    try:
        data = _data(source, tickers, start, end, "exact")
        rec = audit.record(
            "backtest" if bt else "model_run",
            key,
            dict(params),
            data=data,
            tickers=list(tickers),
            start=start,
            end=end,
            metrics=bt["metrics"] if bt else {},
            extra={
                "page": "model_lab",
                "commission_bps": costs,
                "benchmark": bench,
                "universe": universe,
            },
        )
        note = rec["id"]
    except (OSError, MLTrainerError) as exc:
        note = f"not recorded in the audit trail: {exc}"
    return {"backtest": bt, "audit": note}


def grid_values(spec, n: int, center=None) -> list:
    """``n`` values of a parameter around ``center``, ``center`` always among them.

    Numbers: from half to twice ``center`` (inside the spec's bounds; the whole range
    without a positive centre), on the spec's step; a value the step makes equal to
    another is dropped, and the value nearest ``center`` gives way to ``center`` itself.
    Choices and flags: every value.
    """
    if isinstance(spec, BoolParam):
        return [False, True]
    if isinstance(spec, ChoiceParam):
        return list(spec.choices)
    if not isinstance(spec, (IntParam, FloatParam)):
        return [spec.default]
    lo, hi = float(spec.low), float(spec.high)
    if center is not None and float(center) > 0:
        lo, hi = max(lo, float(center) / 2), min(hi, float(center) * 2)
    step = float(spec.step or (1 if isinstance(spec, IntParam) else 0.01))
    digits = max(0, int(-np.floor(np.log10(step)))) if step < 1 else 0

    def snap(values) -> set:
        vals = np.clip(
            spec.low + np.round((np.asarray(values) - spec.low) / step) * step, spec.low, spec.high
        )
        if isinstance(spec, IntParam):
            return {int(v) for v in vals}
        return {round(float(v), digits) for v in vals}

    points = snap(np.linspace(lo, hi, n))
    if center is not None and spec.low <= center <= spec.high:
        mid = int(center) if isinstance(spec, IntParam) else float(center)
        if mid not in points:
            points.discard(min(points, key=lambda v: (abs(v - mid), v)))
            points.add(mid)
    return sorted(points)


def grid_problem(model_cls, params: dict, grid: tuple) -> str | None:
    """Why some point of the grid is not a valid set of parameters (None if all are)."""
    from mltrainer.backtest.grid import expand_grid

    try:
        expand_grid(model_cls, {k: list(v) for k, v in grid}, params)
    except MLTrainerError as exc:
        return str(exc)
    return None


def sweepable(model_cls) -> list[str]:
    return [
        name
        for name, spec in model_cls.param_specs.items()
        if isinstance(spec, (IntParam, FloatParam, ChoiceParam, BoolParam))
    ]


def walk_forward_run(
    source: str,
    key: str,
    params: tuple,
    grid: tuple,
    tickers: tuple,
    start,
    end,
    train: int,
    test: int,
    costs: float,
    universe: str = "survivors",
    mode: str = "expanding",
):
    """:func:`mltrainer.backtest.walkforward.walk_forward` memoised by its inputs, with a
    progress bar on a miss; recorded in the audit trail."""
    from mltrainer import audit
    from mltrainer.backtest.walkforward import walk_forward

    store = result_store("walk_forward", 6)
    cache_key = (source, key, params, grid, tickers, start, end, train, test, costs, universe, mode)
    n_points = int(np.prod([len(v) for _, v in grid])) if grid else 1

    def compute(progress):
        from mltrainer.backtest.pit import SP500, resolve_universe

        data = _data(source, tickers, start, end, "exact")
        fixed = {k: v for k, v in params if k not in dict(grid)}
        members = resolve_universe(data, universe, tickers_given=universe != SP500).mask
        runs = [members] if members is None else [members, None]

        def run(mask, i):  # the survivors' run (no mask) follows the point-in-time one
            def step(done, total):
                progress(i * total + done, len(runs) * total)

            return walk_forward(
                get_model(key),
                data,
                {k: list(v) for k, v in grid},
                params=fixed,
                train_size=train,
                test_size=test,
                mode=mode,
                backtest_kwargs={"commission_bps": costs, "members": mask},
                n_jobs=1,
                progress=step,
            )

        res = run(runs[0], 0)
        res.survivors = run(None, 1) if members is not None else None
        try:
            audit.record(
                "walkforward",
                key,
                fixed,
                data=data,
                tickers=list(tickers),
                start=start,
                end=end,
                metrics=res.oos_metrics,
                extra={
                    "page": "model_lab",
                    "universe": universe,
                    "grid": {k: list(v) for k, v in grid},
                    "train_size": train,
                    "mode": mode,
                    "test_size": test,
                    "dsr_oos": res.deflated_sharpe["oos"]["dsr"],
                },
            )
        except (OSError, MLTrainerError):
            pass
        return res

    return with_progress(store, cache_key, f"Walk-forward over {n_points} grid point(s)", compute)


def walk_forward_done(*args) -> bool:
    """Whether :func:`walk_forward_run` with these arguments has a stored result."""
    return args in result_store("walk_forward", 6)
