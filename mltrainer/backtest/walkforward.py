"""Walk-forward validation: purged splits, a parameter grid per fold, the deflated Sharpe.

Samples and labels
------------------
A sample is a decision date ``i``: the position taken at its close. Its label is what
it earns, the returns of dates ``i+1 .. i+h`` (``h = label_horizon``, 1 for a daily
backtest; a model whose target looks ``h`` days ahead has ``h``). A fold scores the net
returns earned by its decisions.

Purging and embargo
-------------------
Training samples whose labels overlap a test fold are purged, and an embargo may follow
it (López de Prado 2018, ch. 7): see :mod:`mltrainer.backtest.splits`.

Grid search
-----------
Each grid point (a dict of parameter values over the model's ``param_specs``) is run
once on the whole history: registered models are causal (``tests/models/test_common.py``
checks that the output up to t is the same with or without the data after t), so each
fold reads exactly what a run truncated at its end would have produced. On each fold
the point with the best training Sharpe is chosen and scored on the test fold. The
out-of-sample track is one backtest of the stitched signal (each test fold takes the
signal of the point its training fold chose), so the cost of switching points at a fold
boundary is paid. Grid points run as independent tasks (:mod:`mltrainer.numerics.engine`:
local joblib workers, or a Dask cluster when one is configured). The track runs from
the close of the first test decision (opening trades) to the last test label (closing
out), and :mod:`mltrainer.backtest.baselines` puts naive baselines beside it on exactly
those dates.

Deflated Sharpe ratio
---------------------
The out-of-sample track and the best whole-history grid point are scored by the DSR
among the grid's trials (:mod:`mltrainer.backtest.deflated`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.backtest.baselines import BaselineReport, baseline_report, oos_span
from mltrainer.backtest.deflated import deflated_sharpe_ratio, per_period_sharpe
from mltrainer.backtest.engine import BacktestResult, run_backtest
from mltrainer.backtest.grid import expand_grid
from mltrainer.backtest.metrics import performance_metrics, sharpe_ratio
from mltrainer.backtest.splits import Split, min_test_size, untested_tail, walk_forward_splits
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, MLTrainerError, ParameterError
from mltrainer.models.base import SIGNAL, WEIGHTS, Model
from mltrainer.numerics.engine import imap_tasks
from mltrainer.numerics.parallel import Progress
from mltrainer.numerics.units import TRADING_DAYS


# ------------------------------------------------------------------ walk-forward
@dataclass
class WalkForwardResult:
    """What a walk-forward run produced.

    Attributes
    ----------
    folds : DataFrame
        One row per fold: dates, chosen parameters, in-sample and out-of-sample
        metrics side by side (``is_sharpe``, ``oos_sharpe``, ...).
    grid : list of dict
        The grid points, in order.
    trial_returns : DataFrame
        Net daily returns of each grid point's whole-history backtest (columns 0..N-1).
    oos : BacktestResult
        The stitched out-of-sample backtest (from the first test date).
    oos_metrics : dict
        Its metrics.
    deflated_sharpe : dict
        DSR of the stitched out-of-sample returns among the N grid points
        (``oos``) and of the best whole-sample grid point (``best_trial``).
    splits : list of Split
    settings : dict
    model_tables : list of dict
        Each grid point's model output tables (e.g. an ML model's ``oos_scores``).
    baselines : BaselineReport or None
        The out-of-sample track beside equal-weight buy-and-hold, the index and the
        model's default parameters, on the same dates
        (:mod:`mltrainer.backtest.baselines`).
    survivors : WalkForwardResult or None
        For a point-in-time run (a ``members`` mask), the same walk-forward on the
        survivors (no mask), set by the caller that ran both.
    """

    folds: pd.DataFrame
    grid: list
    trial_returns: pd.DataFrame
    oos: BacktestResult
    oos_metrics: dict
    deflated_sharpe: dict
    splits: list
    settings: dict = field(default_factory=dict)
    model_tables: list = field(default_factory=list)
    baselines: BaselineReport | None = None
    survivors: WalkForwardResult | None = None

    def grid_table(self) -> pd.DataFrame:
        """One row per grid point: its parameters, whole-history Sharpe, CAGR and maximum
        drawdown (its own continuous backtest) and how many folds chose it."""
        chosen = [str(p) for p in self.folds["params"]] if len(self.folds) else []
        names = sorted({k for point in self.grid for k in point})
        rows = []
        for j, point in enumerate(self.grid):
            r = self.trial_returns[j].iloc[1:]
            m = performance_metrics(r)
            label = str({k: point[k] for k in self.settings.get("grid", {})})
            rows.append(
                {
                    **{k: point.get(k) for k in names},
                    "sharpe": m["sharpe"],
                    "cagr": m["cagr"],
                    "max_drawdown": m["max_drawdown"],
                    "times_chosen": chosen.count(label),
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        """JSON-ready: per-fold in/out-of-sample metrics, OOS metrics and the DSR."""
        return {
            "settings": dict(self.settings),
            "n_grid_points": len(self.grid),
            "folds": self.folds.to_dict(orient="records"),
            "oos_metrics": dict(self.oos_metrics),
            "deflated_sharpe": self.deflated_sharpe,
            "final_oos_equity": float(self.oos.equity.iloc[-1]),
            "baselines": self.baselines.summary() if self.baselines is not None else None,
            "warnings": list(self.oos.warnings),  # of the stitched out-of-sample track
        }


FOLD_FIGURES = ("sharpe", "cagr", "annual_volatility", "max_drawdown", "hit_rate")


FIT_REMEDY = "widen the dates or shorten the training window"  # check_fits' default


@dataclass(frozen=True)
class WalkForwardSettings:
    """The folds, the grid and the backtests of a walk-forward.

    :func:`walk_forward`'s keyword arguments other than how it runs (``n_jobs``,
    ``progress``) and the index series; ``params`` already holds a model instance's
    parameters.

    Attributes
    ----------
    grid : dict of lists
        Values to search per parameter, e.g. ``{"window": [20, 60, 120]}``. A grid with
        one point (or none) runs the model once; the DSR then equals the probabilistic
        Sharpe ratio against 0.
    params : dict
        Fixed parameters for every grid point.
    train_size, test_size : int
        Training window (the first one, in expanding mode) and test fold, in dates.
    mode : {"expanding", "rolling"}
    label_horizon, embargo : int
        Purging and embargo, in dates (:mod:`mltrainer.backtest.splits`).
    backtest_kwargs : dict
        Passed to :func:`~mltrainer.backtest.engine.run_backtest` (costs, limits, ...).
    periods_per_year : int
        Annualisation of the fold metrics and of the Sharpe ratios that choose a point.
    baselines : bool
        Put naive baselines beside the out-of-sample track (``result.baselines``): costs
        one more model run when the grid does not hold the default parameters. A
        ``members`` mask in ``backtest_kwargs`` also limits the equal-weight baseline.
    """

    grid: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    train_size: int = 756
    test_size: int = TRADING_DAYS
    mode: str = "expanding"
    label_horizon: int = 1
    embargo: int = 0
    backtest_kwargs: dict = field(default_factory=dict)
    periods_per_year: int = TRADING_DAYS
    baselines: bool = True

    def min_dates(self) -> int:
        """The fewest dates that hold one fold: the first training window and a test fold
        of :func:`~mltrainer.backtest.splits.min_test_size` (decision dates are one fewer
        than the dates: the last one has no next bar to earn)."""
        return self.train_size + min_test_size(self.test_size) + 1

    def check_fits(self, dates: pd.DatetimeIndex, remedy: str = FIT_REMEDY) -> None:
        """Refuse, before any run, dates too few for one fold, naming their range, what a
        fold needs (the splitter speaks of samples; a user of trading days) and ``remedy``."""
        if len(dates) < self.min_dates():
            span = fmt.date_range(dates[0], dates[-1]) if len(dates) else "with no date"
            held, need = fmt.count(len(dates), "trading day"), fmt.integer(self.min_dates())
            raise DataError(
                f"the range {span} holds {held}; a walk-forward needs {need} (a "
                f"{self.train_size}-day first training window and a test fold of "
                f"{min_test_size(self.test_size)} days or more): {remedy}"
            )
        self.splits(len(dates) - 1)  # purging and embargo may still leave too little

    def splits(self, n_samples: int) -> list[Split]:
        """The purged walk-forward folds over ``n_samples`` decision dates."""
        return walk_forward_splits(
            n_samples, self.train_size, self.test_size, self.mode, self.label_horizon, self.embargo
        )

    def backtest(self, model_cls: type[Model]) -> dict:
        """:func:`run_backtest`'s keyword arguments for the model's output:
        ``backtest_kwargs``, with a weights model's output read as weights unless
        ``weighting`` is given."""
        kwargs = dict(self.backtest_kwargs)
        kwargs.setdefault(
            "weighting", "weights" if model_cls.output_kind == WEIGHTS else "normalize"
        )
        return kwargs

    def as_dict(self, model_cls: type[Model], n_folds: int) -> dict:
        """The JSON-ready record of :attr:`WalkForwardResult.settings`."""
        return {
            "model": model_cls.key() if hasattr(model_cls, "key") else str(model_cls),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "params": dict(self.params),
            "train_size": self.train_size,
            "test_size": self.test_size,
            "mode": self.mode,
            "label_horizon": self.label_horizon,
            "embargo": self.embargo,
            "n_folds": n_folds,
            "baselines": self.baselines,
            "backtest": {k: v for k, v in self.backtest_kwargs.items() if np.isscalar(v)},
        }


def walk_forward(
    model_cls: type[Model] | Model,
    data: MarketData,
    grid: dict | None = None,
    *,
    params: dict | None = None,
    train_size: int = 756,
    test_size: int = TRADING_DAYS,
    mode: str = "expanding",
    label_horizon: int = 1,
    embargo: int = 0,
    backtest_kwargs: dict | None = None,
    n_jobs: int = -1,
    progress: Progress = None,
    periods_per_year: int = TRADING_DAYS,
    baselines: bool = True,
    index_close: pd.Series | None = None,
) -> WalkForwardResult:
    """Walk-forward validation of a signal or weights model over a parameter grid.

    Parameters
    ----------
    model_cls : type or Model
        A registered model class (output kind signal or weights), or an instance whose
        parameters become the fixed ``params`` (overridden by ``params`` and the grid).
    data : MarketData
    grid, params, train_size, test_size, mode, label_horizon, embargo, backtest_kwargs,
    periods_per_year, baselines :
        The folds, the grid and the backtests: the fields of
        :class:`WalkForwardSettings` (documented there).
    n_jobs : int
        Local joblib workers over grid points (-1 = all cores); with a Dask scheduler
        configured the points run there instead (:mod:`mltrainer.numerics.engine`).
    progress : callable(done, total), optional
        Called after each grid point and once at the end.
    index_close : Series, optional
        The index closes for the index baseline; default the bundled S&P 500 series
        (1990-2022). A series that does not cover the out-of-sample dates gives "not
        available".
    """
    model_cls, params = _model_class(model_cls, params)
    s = WalkForwardSettings(
        grid=dict(grid or {}),
        params=dict(params or {}),
        train_size=train_size,
        test_size=test_size,
        mode=mode,
        label_horizon=label_horizon,
        embargo=embargo,
        backtest_kwargs=dict(backtest_kwargs or {}),
        periods_per_year=periods_per_year,
        baselines=baselines,
    )
    points = expand_grid(model_cls, s.grid, s.params)
    s.check_fits(data.dates)  # too little data for one fold: say so before any run
    default_j = next((j for j, p in enumerate(points) if _is_default(model_cls, p)), None)
    total = len(points) + 1 + int(baselines and default_j is None)
    trials = _run_grid(model_cls, points, data, s.backtest(model_cls), n_jobs, progress, total)
    result = score_trials(trials, s, index_close)
    if progress is not None:
        progress(total, total)
    return result


def score_trials(
    trials: GridTrials,
    s: WalkForwardSettings,
    index_close: pd.Series | None = None,
    equal_weight: BacktestResult | None = None,
) -> WalkForwardResult:
    """The walk-forward of grid points already run over the whole history.

    On each fold the point with the best training Sharpe is chosen (training labels
    only), the chosen points' signals are stitched into one out-of-sample backtest and
    scored beside the baselines and the deflated Sharpe. :func:`walk_forward` runs the
    grid and calls this; the leaderboard runs many grids as one sweep and calls it per
    model (:func:`grid_trials` assembles its tasks' results) and passes the first
    model's equal-weight baseline back as ``equal_weight`` (the same for every model:
    :func:`mltrainer.backtest.baselines.baseline_report`).
    """
    model_cls, points, data = trials.model_cls, trials.points, trials.data
    splits = s.splits(len(data.dates) - 1)  # decisions 0 .. n-2 earn dates 1 .. n-1
    default_j = next((j for j, p in enumerate(points) if _is_default(model_cls, p)), None)
    chosen = [_best_point(trials.returns, sp.train, s.periods_per_year) for sp in splits]
    oos = _stitched_backtest(trials, chosen, splits)
    report = (
        _baselines(trials, s, splits, oos, chosen, default_j, index_close, equal_weight)
        if s.baselines
        else None
    )
    return WalkForwardResult(
        folds=_fold_table(trials, s, splits, chosen, oos),
        grid=points,
        trial_returns=pd.DataFrame(trials.returns, index=data.dates, columns=range(len(points))),
        oos=oos,
        oos_metrics=dict(oos.metrics),
        deflated_sharpe=_deflated_sharpes(trials, oos, splits[0].test[0]),
        splits=splits,
        settings=s.as_dict(model_cls, len(splits)),
        model_tables=trials.tables,
        baselines=report,
    )


def _model_class(
    model: type[Model] | Model, params: dict | None
) -> tuple[type[Model], dict | None]:
    """The model's class and the fixed parameters (an instance's own, then ``params``);
    a ParameterError unless it outputs a signal or weights."""
    if not isinstance(model, type):  # a configured instance: its parameters are the base
        params = {**model.get_params(), **(params or {})}
        model = type(model)
    if getattr(model, "output_kind", None) not in (SIGNAL, WEIGHTS):
        raise ParameterError(
            f"{getattr(model, '__name__', model)} outputs "
            f"{getattr(model, 'output_kind', '?')}; walk-forward needs "
            "a signal or weights model"
        )
    return model, params


# ------------------------------------------------------------------ the steps
@dataclass
class GridTrials:
    """Every grid point run once over the whole history (:func:`_run_grid`).

    ``returns`` are the net daily returns (dates x points); ``signals`` each point's
    signal, or None where it was not kept (too large: :meth:`signal` runs it again).
    """

    model_cls: type[Model]
    points: list[dict]
    data: MarketData
    backtest: dict
    returns: np.ndarray
    signals: list
    tables: list[dict]

    def signal(self, j: int) -> pd.DataFrame:
        """Point ``j``'s signal."""
        if self.signals[j] is not None:
            return self.signals[j]
        return run_point(self.data, self.model_cls, self.points[j], self.backtest, True)[1]


def run_point(
    data: MarketData, model_cls: type[Model], params: dict, backtest: dict, keep_signal: bool
) -> tuple[np.ndarray, pd.DataFrame | None, dict]:
    """One grid point on the whole history: net returns, the signal (if kept), tables.

    ``data`` comes first: it is the input every task of a sweep shares (scattered once
    on a Dask cluster, :mod:`mltrainer.numerics.engine`).
    """
    output = model_cls(**params).run(data)
    res = run_backtest(output.primary, data, **backtest)
    signal = output.primary if keep_signal else None
    return res.returns.to_numpy(), signal, dict(output.tables)


def _run_grid(
    model_cls: type[Model],
    points: list[dict],
    data: MarketData,
    backtest: dict,
    n_jobs: int,
    progress: Progress,
    total: int,
) -> GridTrials:
    """Run every grid point, one task each (:func:`mltrainer.numerics.engine.imap_tasks`:
    in-process, local joblib workers or a Dask cluster), and collect them in grid order."""
    keep = len(points) * data.adj_close.size <= 10_000_000  # ~80 MB of signals
    tasks = [(model_cls, p, backtest, keep) for p in points]
    out: list = [None] * len(points)
    runs = imap_tasks(run_point, tasks, data, n_jobs=n_jobs, name=f"grid-{model_cls.__name__}")
    for done, (i, res) in enumerate(runs, start=1):
        out[i] = res
        if progress is not None:
            progress(done, total)
    return grid_trials(model_cls, points, data, backtest, out)


def grid_trials(
    model_cls: type[Model], points: list[dict], data: MarketData, backtest: dict, runs: list
) -> GridTrials:
    """The trials of a grid from each point's :func:`run_point` result, in grid order."""
    return GridTrials(
        model_cls,
        points,
        data,
        backtest,
        returns=np.column_stack([r[0] for r in runs]),
        signals=[r[1] for r in runs],
        tables=[r[2] for r in runs],
    )


def _best_point(returns: np.ndarray, train: np.ndarray, periods_per_year: int) -> int:
    """The grid point with the best Sharpe ratio over a fold's training labels."""
    sharpes = [
        sharpe_ratio(returns[train + 1, j], None, periods_per_year) for j in range(returns.shape[1])
    ]
    return int(np.argmax(np.where(np.isfinite(sharpes), sharpes, -np.inf)))


def _stitched_backtest(
    trials: GridTrials, chosen: list[int], splits: list[Split]
) -> BacktestResult:
    """One backtest of the out-of-sample signal: each test fold from its chosen point."""
    signals = {j: trials.signal(j) for j in sorted(set(chosen))}
    stitched = _stitch([signals[j] for j in chosen], splits, trials.data.dates)
    oos = run_backtest(stitched, trials.data, **trials.backtest)
    oos.warnings = (*oos.warnings, *untested_tail(trials.data.dates, splits))
    return oos


def _stitch(
    signals: list[pd.DataFrame], splits: list[Split], dates: pd.DatetimeIndex
) -> pd.DataFrame:
    """Each test fold's rows from its signal over the out-of-sample span; the last
    date (the last test label) is left NaN, which closes the positions out."""
    span = oos_span(dates, splits)
    first = splits[0].test[0]
    stitched = pd.DataFrame(np.nan, index=span, columns=signals[0].columns)
    for sp, signal in zip(splits, signals, strict=True):
        stitched.iloc[sp.test - first] = signal.iloc[sp.test].to_numpy()
    return stitched


def _is_default(model_cls: type[Model], point: dict) -> bool:
    try:
        return bool(model_cls(**point).get_params(deep=False) == model_cls().get_params(deep=False))
    except (TypeError, ValueError):  # parameters that do not compare (arrays)
        return False


def _baselines(
    trials: GridTrials,
    s: WalkForwardSettings,
    splits: list[Split],
    oos: BacktestResult,
    chosen: list[int],
    default_j: int | None,
    index_close: pd.Series | None,
    equal_weight: BacktestResult | None = None,
) -> BaselineReport:
    """The baseline report; the default-parameter track reuses the grid's run of the
    defaults (or the stitched track itself when every fold chose them)."""
    data = trials.data
    default, note = None, "the model with its default parameters on every test fold"
    if default_j is not None and all(j == default_j for j in chosen):
        default = oos
        note += " (every fold chose them: the same track as the model)"
    else:
        try:
            signal = trials.signals[default_j] if default_j is not None else None
            if signal is None:
                signal = run_point(data, trials.model_cls, {}, trials.backtest, True)[1]
            stitched = _stitch([signal] * len(splits), splits, data.dates)
            default = run_backtest(stitched, data, **trials.backtest)
        except MLTrainerError as exc:
            note = f"not available: the default parameters could not run ({exc})"
    if index_close is None:
        from mltrainer.data.bundled import sp500_index_close

        try:
            index_close = sp500_index_close()
        except (ImportError, OSError, MLTrainerError):
            index_close = None
    bt_kwargs = s.backtest_kwargs
    return baseline_report(
        oos,
        data,
        oos_span(data.dates, splits),
        n_folds=len(splits),
        default=default,
        default_note=note,
        index_close=index_close,
        backtest_kwargs=bt_kwargs,
        members=bt_kwargs.get("members"),
        periods_per_year=s.periods_per_year,
        equal_weight=equal_weight,
    )


def _fold_table(
    trials: GridTrials,
    s: WalkForwardSettings,
    splits: list[Split],
    chosen: list[int],
    oos: BacktestResult,
) -> pd.DataFrame:
    """One row per fold: dates, sizes, the chosen parameters and the in-sample (the
    chosen point's training labels) and out-of-sample figures side by side."""
    dates, ppy = trials.data.dates, s.periods_per_year
    rows = []
    for sp, best in zip(splits, chosen, strict=True):
        train = pd.Series(trials.returns[sp.train + 1, best], index=dates[sp.train + 1])
        ins = performance_metrics(train, periods_per_year=ppy)
        test = oos.returns.reindex(dates[sp.test + 1]).dropna()
        out = performance_metrics(test, periods_per_year=ppy)
        rows.append(
            {
                "fold": sp.fold,
                "train_start": str(dates[sp.train[0]].date()),
                "train_end": str(dates[sp.train[-1]].date()),
                "test_start": str(dates[sp.test[0]].date()),
                "test_end": str(dates[sp.test[-1]].date()),
                "n_train": len(sp.train),
                "n_test": len(sp.test),
                "n_purged": len(sp.purged),
                "n_embargoed": len(sp.embargoed),
                "params": {k: trials.points[best][k] for k in s.grid},
                **{f"is_{k}": ins[k] for k in FOLD_FIGURES},
                **{f"oos_{k}": out[k] for k in FOLD_FIGURES},
            }
        )
    return pd.DataFrame(rows)


def _deflated_sharpes(trials: GridTrials, oos: BacktestResult, first: int) -> dict:
    """The DSR of the stitched out-of-sample track (``oos``) and of the best
    whole-history grid point (``best_trial``), among every grid point."""
    rets, n = trials.returns, len(trials.points)
    trial_sr = np.array([per_period_sharpe(rets[first + 1 :, j]) for j in range(n)])
    full_sr = np.array([per_period_sharpe(rets[1:, j]) for j in range(n)])
    best_full = int(np.nanargmax(np.where(np.isfinite(full_sr), full_sr, -np.inf)))
    # the first out-of-sample date only pays the opening trades' costs
    return {
        "oos": deflated_sharpe_ratio(oos.returns.iloc[1:].to_numpy(), trial_sr, n),
        "best_trial": {
            **deflated_sharpe_ratio(rets[1:, best_full], full_sr, n),
            "params": trials.points[best_full],
        },
    }
