"""The model leaderboard: every signal and weights model of the registry through the same
walk-forward, out of sample, after costs and after the number of settings tried.

What a row says
---------------
Each model is run on a small grid (at most :data:`MAX_SETTINGS` settings, the defaults
among them: :data:`GRIDS` where declared, else :func:`derived_grid`). On each training
fold the setting with the best training Sharpe is chosen (training labels only, purged
and embargoed as :mod:`mltrainer.backtest.splits` says) and traded on the test fold that
follows; the stitched test folds are one backtest with the given costs. A row reports
that out-of-sample track's CAGR, Sharpe, maximum drawdown and annual turnover, its
deflated Sharpe ratio among the settings tried (Bailey & López de Prado 2014:
:mod:`mltrainer.backtest.deflated`), the model at its defaults on the same folds, and
the excess over equal-weight buy-and-hold. The naive baselines (equal weight, the S&P
500 price index: :mod:`mltrainer.backtest.baselines`) are rows of their own, on exactly
the same dates. Every model shares the folds, so every figure covers the same
out-of-sample span, stated in :attr:`Leaderboard.meta`.

How it runs
-----------
Registered models are causal, so one setting's output over the whole panel is what a
run truncated at any fold's end would give: it is computed once, as one task, and every
fold reads it (:func:`mltrainer.backtest.walkforward.score_trials` then chooses and
scores per fold). The (model, setting) tasks run through :mod:`mltrainer.numerics.engine`
(local workers or a Dask cluster, the panel sent to each worker once) and each finished
task is stored (:mod:`mltrainer.backtest.leaderboard_store`): a killed run resumes with
the tasks it had not finished, and a finished run is read back without any task. A model
whose settings were all read back needs its chosen settings' signals again for the
stitched backtest; those are rerun in this process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mltrainer.backtest.leaderboard_store import LeaderboardStore
from mltrainer.backtest.walkforward import (
    WalkForwardResult,
    WalkForwardSettings,
    grid_trials,
    run_point,
    score_trials,
)
from mltrainer.code_digest import source_digest
from mltrainer.data.market_data import MarketData
from mltrainer.errors import MLTrainerError, ParameterError
from mltrainer.models.base import SIGNAL, WEIGHTS, Model
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam, validate_params
from mltrainer.models.registry import MODELS
from mltrainer.numerics.engine import imap_tasks

MAX_SETTINGS = 4
# Declared grids: the parameter that matters most, around the default. Models not listed
# get derived_grid. The portfolio optimisers vary their rebalancing only (each setting
# re-estimates a few hundred portfolios of ~450 assets).
GRIDS: dict[str, dict[str, list]] = {
    "momentum/SimpleMomentumModel": {"window": [10, 21, 63, 126]},
    "momentum/TimeSeriesMomentumModel": {"short_window": [10, 21], "long_window": [60, 126]},
    "momentum/CrossSectionalMomentumModel": {"lookback": [126, 252], "skip": [0, 21]},
    "momentum/DualMomentumModel": {"window": [126, 252, 504]},
    "risk/PortfolioRiskModel": {"rebalance": [21, 63]},
    "sizing/PortfolioOptimizationModel": {"rebalance": [21, 63]},
    "risk/RiskParityModel": {"rebalance": [21, 63]},
    "sizing/RiskParityModel": {"rebalance": [21, 63]},
    # The learners: the label horizon (a week or a month ahead) crossed with the
    # capacity or regularisation that matters most, an order of magnitude apart. Tree
    # counts and near-equal penalties are not swept: twice the trees costs twice the
    # time and changes little, and near-duplicate trials only deflate the Sharpe ratio.
    "ml/BaseMLModel": {"C": [0.1, 1.0], "horizon": [5, 21]},
    "ml/EnsembleMLModel": {"max_depth": [3, 6], "horizon": [5, 21]},
    "ml/DeepLearningModel": {"alpha": [1e-4, 1e-2], "horizon": [5, 21]},
    "ml/ReinforcementLearningModel": {"momentum_window": [21, 63], "vol_window": [21, 63]},
}
# The slowest models, slowest first (CPU seconds for all their settings on 504 tickers
# 2000-2021, measured: 53, 28, 23, 18, 17, 13; every other model below 4): their tasks
# start first, so no worker is left with one at the end while the other idles.
SLOW_FIRST = (
    "sizing/CorrelationBasedSizingModel",
    "sizing/PortfolioOptimizationModel",
    "sizing/RiskAdjustedSizingModel",
    "risk/RiskParityModel",
    "sizing/RiskParityModel",
    "risk/PortfolioRiskModel",
)
# Not a modelling choice (seeds, sample caps, refit bookkeeping): never swept.
NOT_SWEPT = ("random_state", "max_train_samples", "sample_size", "svm_max_samples", "min_train")
COLUMNS = {
    "oos_cagr": "CAGR, out of sample (stitched test folds, after costs)",
    "oos_sharpe": "Sharpe ratio (annualised), out of sample",
    "oos_dsr": "deflated Sharpe ratio of the out-of-sample track among the settings tried",
    "oos_max_drawdown": "maximum drawdown, out of sample",
    "oos_turnover": "annual turnover (traded value / equity per year), out of sample",
    "default_oos_sharpe": "Sharpe ratio of the model at its defaults on the same test folds",
    "default_oos_cagr": "CAGR of the model at its defaults on the same test folds",
    "excess_sharpe_vs_equal_weight": "out-of-sample Sharpe minus equal-weight buy-and-hold's",
    "n_settings": "settings tried (the deflated Sharpe's number of trials)",
    "chosen_params": "the setting the last training fold chose (what would trade next)",
}
BASELINES = {"equal_weight": "baseline/EqualWeightBuyAndHold", "index": "baseline/SP500Index"}
Progress = Callable[[int, int], None] | None


def leaderboard_models(families: list[str] | None = None, keys: list[str] | None = None) -> list:
    """Registry keys of the signal and weights models, in registry order, optionally
    only some families or some keys (ParameterError naming what is unknown, a family
    with nothing to rank, or filters that leave no model)."""
    from mltrainer.models.registry import FAMILIES

    eligible = [k for k, c in MODELS.items() if c.output_kind in (SIGNAL, WEIGHTS)]
    if keys is not None and not keys:
        raise ParameterError("--models names no model; list registry keys or leave it out")
    if keys:
        unknown = [k for k in keys if k not in eligible]
        if unknown:
            raise ParameterError(
                f"not a signal or weights model: {', '.join(unknown)}; see `models list`"
            )
        eligible = [k for k in eligible if k in keys]
    if families:
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ParameterError(
                f"unknown family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
            )
        ranked = {k.split("/")[0] for k, c in MODELS.items() if c.output_kind in (SIGNAL, WEIGHTS)}
        idle = sorted(set(families) - ranked)
        if idle:
            raise ParameterError(
                f"the {', '.join(idle)} famil{'ies have' if len(idle) > 1 else 'y has'} no "
                "signal or weights model to backtest; choose from "
                + ", ".join(f for f in FAMILIES if f in ranked)
            )
        eligible = [k for k in eligible if k.split("/")[0] in families]
        if not eligible:
            raise ParameterError(
                f"none of --models {', '.join(keys or [])} is in --family {', '.join(families)}"
            )
    return eligible


def _other_value(spec: IntParam | FloatParam) -> int | float:
    """A second value for a numeric parameter: twice the default inside the bounds, else
    half, else a quarter of the way up the range (a zero default)."""
    d = spec.default
    for candidate in (d * 2, d / 2) if d else (spec.low + (spec.high - spec.low) / 4,):
        value = int(round(candidate)) if isinstance(spec, IntParam) else round(candidate, 6)
        if spec.low <= value <= spec.high and value != d:
            return value
    return d


def derived_grid(model_cls: type[Model]) -> dict[str, list]:
    """A grid around the defaults from the parameter specs: the first two numeric
    parameters at their default and :func:`_other_value` (2 x 2 settings), else the
    first choice parameter's values (the default first, at most four)."""
    specs = {k: s for k, s in model_cls.param_specs.items() if k not in NOT_SWEPT}
    numeric = [k for k, s in specs.items() if isinstance(s, (IntParam, FloatParam))]
    grid = {}
    for name in numeric[:2]:
        other = _other_value(specs[name])
        if other != specs[name].default:
            grid[name] = [specs[name].default, other]
    if grid:
        return grid
    for name, spec in specs.items():
        if isinstance(spec, ChoiceParam):
            rest = [c for c in spec.choices if c != spec.default]
            return {name: [spec.default, *rest][:MAX_SETTINGS]}
    return {}


def model_settings(key: str) -> tuple[dict[str, list], list[dict]]:
    """The model's grid and its valid settings (at most :data:`MAX_SETTINGS`; a
    combination the model's own checks refuse, say a short window above the long one,
    is left out)."""
    cls = MODELS[key]
    grid = GRIDS.get(key) or derived_grid(cls)
    names = list(grid)
    points = []
    for combo in itertools.product(*(grid[k] for k in names)):
        params = dict(zip(names, combo, strict=True))
        try:
            validate_params(cls(**params))
        except (ParameterError, TypeError, ValueError):
            continue
        points.append(params)
    return grid, (points or [{}])[:MAX_SETTINGS]


@dataclass
class Leaderboard:
    """A finished leaderboard.

    Attributes
    ----------
    table : DataFrame
        One row per model and per baseline (index: registry key), columns
        :data:`COLUMNS` and ``family``, ``error`` (why a model has no figures).
    meta : dict
        What the figures cover: the out-of-sample span, the folds, universe, costs.
    n_tasks : int
        (model, setting) tasks run by this call; 0 when everything was stored.
    store : LeaderboardStore
        Where the run's tasks and rows are kept; :meth:`save` writes the table there.
    results : dict
        Registry key -> the out-of-sample daily net returns of the models scored by this
        call (not of those read back).
    """

    table: pd.DataFrame
    meta: dict
    n_tasks: int
    store: LeaderboardStore
    results: dict = field(default_factory=dict)

    def save(self, audit_id: str | None = None) -> Path:
        """Store the table as Parquet with its meta and the audit id; the file's path."""
        self.meta["audit_id"] = audit_id
        return self.store.save_table(self.table, self.meta)


@dataclass(frozen=True)
class _Failed:
    """A setting the model refused or failed on (the message goes into the row)."""

    message: str


def _setting_task(
    shared: tuple[MarketData, WalkForwardSettings], model_cls: type[Model], params: dict
) -> tuple | _Failed:
    """One (model, setting) over the whole panel: net returns and the signal."""
    data, s = shared
    try:
        return run_point(data, model_cls, params, s.backtest(model_cls), True)
    except MLTrainerError as exc:
        return _Failed(f"{type(exc).__name__}: {exc}")


@dataclass
class _Plan:
    """One model's settings and their results so far (None: not run yet)."""

    key: str
    grid: dict
    points: list[dict]
    runs: list

    @property
    def complete(self) -> bool:
        return all(r is not None for r in self.runs)


def run_leaderboard(
    data: MarketData,
    keys: list[str],
    settings: WalkForwardSettings,
    *,
    identity: dict | None = None,
    root: Path | None = None,
    progress: Progress = None,
    index_close: pd.Series | None = None,
    n_jobs: int | None = None,
) -> Leaderboard:
    """Score ``keys`` (registry keys of signal/weights models) out of sample.

    Parameters
    ----------
    data : MarketData
    keys : list of str
        :func:`leaderboard_models`.
    settings : WalkForwardSettings
        Folds, purging, embargo and backtest settings (costs, a ``members`` mask); its
        ``grid`` and ``params`` are ignored (each model gets :func:`model_settings`).
    identity : dict, optional
        What names the stored run (default: the data's fingerprint and the settings);
        the CLI adds the universe and the range asked for.
    root : Path, optional
        The results folder (default ``results/leaderboard``).
    progress : callable(done, total), optional
        Called as (model, setting) tasks finish.
    index_close : Series, optional
        The index for the index baseline (default the bundled S&P 500 series).
    n_jobs : int, optional
        Local workers (ignored on a Dask cluster: :mod:`mltrainer.numerics.engine`).
    """
    settings.check_fits(data.dates)  # too little data for one fold: say so before any run
    store = LeaderboardStore(identity or default_identity(data, settings), root)
    store.root.mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before any run
    rows = {key: store.row(key) for key in keys}
    finish = _Finisher(data, settings, store, index_close)
    if finish.baselines() is None and any(r and r.get("error") is None for r in rows.values()):
        rows = dict.fromkeys(keys)  # scored rows without baselines (unreadable): score again
    plans = []
    for key in keys:
        grid, points = model_settings(key)
        if rows[key] is not None and rows[key].get("settings") == _settings_text(points):
            continue
        rows[key] = None
        runs = [_stored(store, key, p, data) for p in points]
        plans.append(_Plan(key, grid, points, runs))
    tasks = [(p, j) for p in plans for j, r in enumerate(p.runs) if r is None]
    tasks.sort(key=lambda t: _start_rank(t[0].key))
    if progress is not None:
        progress(0, len(tasks))
    todo = [(MODELS[p.key], p.points[j]) for p, j in tasks]
    runs = imap_tasks(_setting_task, todo, (data, settings), n_jobs=n_jobs, name="leaderboard")
    for done, (i, result) in enumerate(runs, start=1):
        plan, j = tasks[i]
        if not isinstance(result, _Failed):
            store.save_trial(plan.key, plan.points[j], data.dates, result[0])
        plan.runs[j] = result
        if plan.complete:  # score now and let its signals go
            rows[plan.key] = finish(plan)
        if progress is not None:
            progress(done, len(tasks))
    for plan in plans:
        if rows[plan.key] is None:  # every setting was read back from the store
            rows[plan.key] = finish(plan)
    table, meta = _assemble(keys, rows, finish.baselines(), store)
    return Leaderboard(table, meta, len(tasks), store, finish.results)


def data_meta(data: MarketData, tickers: list[str] | None) -> dict:
    """What reproduces a leaderboard's data (a Model Lab link): source, dates, tickers
    (None: every ticker of the source)."""
    return {
        "source": data.source,
        "first_date": str(data.dates[0].date()),
        "last_date": str(data.dates[-1].date()),
        "n_tickers": data.n_tickers,
        "tickers": list(tickers) if tickers else None,
    }


def _start_rank(key: str) -> int:
    """ML models first, then :data:`SLOW_FIRST` in order, then the rest (registry order)."""
    if key.startswith("ml/"):
        return -1
    return SLOW_FIRST.index(key) if key in SLOW_FIRST else len(SLOW_FIRST)


def default_identity(data: MarketData, settings: WalkForwardSettings) -> dict:
    """What decides a leaderboard's numbers: the data, the walk-forward settings and the
    package's code."""
    members = settings.backtest_kwargs.get("members")
    mask = None
    if members is not None:
        mask = pd.util.hash_pandas_object(members.astype("int8"), index=True).sum()
    return {
        "data": data.fingerprint(),
        "source": data.source,
        "folds": [settings.train_size, settings.test_size, settings.mode],
        "purging": [settings.label_horizon, settings.embargo, settings.periods_per_year],
        "backtest": {k: v for k, v in settings.backtest_kwargs.items() if np.isscalar(v)},
        "members": None if mask is None else int(mask),
        "code": source_digest(),
    }


def _settings_text(points: list[dict]) -> str:
    import json

    return json.dumps(points, sort_keys=True, default=str)


def _stored(store: LeaderboardStore, key: str, params: dict, data: MarketData) -> tuple | None:
    """A finished setting read back (returns only: its signal is rerun if chosen)."""
    if not store.has_trial(key, params):
        return None
    returns = store.load_trial(key, params)  # None: unreadable, run again
    return (returns, None, {}) if returns is not None and len(returns) == len(data.dates) else None


def _num(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _figures(result: WalkForwardResult) -> dict:
    """A scored model's row figures (:data:`COLUMNS`) from its walk-forward."""
    import json

    table = result.baselines.table()
    model, default = table.loc["model"], table.loc["default_params"]
    chosen = [json.dumps(p, sort_keys=True, default=str) for p in result.folds["params"]]
    return {
        "oos_cagr": _num(model["cagr"]),
        "oos_sharpe": _num(model["sharpe"]),
        "oos_dsr": _num(result.deflated_sharpe["oos"]["dsr"]),
        "oos_max_drawdown": _num(model["max_drawdown"]),
        "oos_turnover": _num(model["annual_turnover"]),
        "default_oos_sharpe": _num(default["sharpe"]),
        "default_oos_cagr": _num(default["cagr"]),
        "excess_sharpe_vs_equal_weight": _num(table.loc["equal_weight", "excess_sharpe"]),
        "chosen_params": chosen[-1],
        "n_distinct_chosen": len(set(chosen)),
        "n_folds": len(chosen),
    }


def _baseline_rows(result: WalkForwardResult) -> dict:
    """The naive baselines' rows and the span they (and every model) cover."""
    table = result.baselines.table()
    rows = {}
    for name, key in BASELINES.items():
        rows[key] = {
            "key": key,
            "family": "baseline",
            "output_kind": "baseline",
            "n_settings": 0,
            "oos_cagr": _num(table.loc[name, "cagr"]),
            "oos_sharpe": _num(table.loc[name, "sharpe"]),
            "oos_max_drawdown": _num(table.loc[name, "max_drawdown"]),
            "oos_turnover": _num(table.loc[name, "annual_turnover"]),
            "error": None if name in result.baselines.returns else table.loc[name, "note"],
            "note": table.loc[name, "note"],
        }
    return {"span": dict(result.baselines.span), "rows": rows}


class _Finisher:
    """Scores a model whose settings have all run, stores its row, keeps the baselines."""

    def __init__(
        self,
        data: MarketData,
        settings: WalkForwardSettings,
        store: LeaderboardStore,
        index_close: pd.Series | None,
    ) -> None:
        self.data, self.settings, self.store = data, settings, store
        self.index_close = index_close
        self.results: dict[str, pd.Series] = {}
        self._equal_weight = None  # every model's baseline: computed for the first only
        self._baselines = store.row("baselines")

    def __call__(self, plan: _Plan) -> dict:
        cls = MODELS[plan.key]
        row = {
            "key": plan.key,
            "family": cls.family,
            "output_kind": cls.output_kind,
            "n_settings": len(plan.points),
            "settings": _settings_text(plan.points),
            "error": None,
        }
        failed = [r for r in plan.runs if isinstance(r, _Failed)]
        try:
            if failed:
                raise MLTrainerError(failed[0].message)
            s = replace(self.settings, grid=dict(plan.grid), baselines=True)
            trials = grid_trials(cls, plan.points, self.data, s.backtest(cls), plan.runs)
            result = score_trials(trials, s, self.index_close, self._equal_weight)
        except MLTrainerError as exc:
            row["error"] = str(exc)
        else:
            row.update(_figures(result))
            self.results[plan.key] = result.oos.returns
            self._equal_weight = result.baselines.equal_weight
            if self._baselines is None:
                self._baselines = _baseline_rows(result)
                self.store.save_row("baselines", self._baselines)
        self.store.save_row(plan.key, row)
        return row

    def baselines(self) -> dict | None:
        """The baseline rows and span (None if no model could be scored)."""
        return self._baselines


def _assemble(
    keys: list[str], rows: dict, baselines: dict | None, store: LeaderboardStore
) -> tuple[pd.DataFrame, dict]:
    """The table (models by out-of-sample Sharpe, then the baselines) and its meta."""
    models = pd.DataFrame([rows[k] for k in keys]).set_index("key")
    # a figure column is absent when no model could be scored (each row holds its error)
    models = models.reindex(columns=[*models.columns, *(c for c in COLUMNS if c not in models)])
    models = models.sort_values("oos_sharpe", ascending=False, na_position="last")
    extra = pd.DataFrame(list(baselines["rows"].values())).set_index("key") if baselines else None
    table = pd.concat([models, extra]) if extra is not None else models
    meta = {
        "out_of_sample": baselines["span"] if baselines else None,
        "columns": COLUMNS,
        "run_id": store.root.name,
        "identity": store.identity,
        "grids": {k: rows[k].get("settings") for k in keys},
    }
    if store.warnings:  # stored results that could not be read back, computed again
        meta["warnings"] = list(store.warnings)
    return table, meta
