"""Walk-forward validation: purged splits, a parameter grid per fold, the deflated Sharpe.

Samples and labels
------------------
A sample is a decision date ``i``: the position taken at its close. Its label is what
it earns, the returns of dates ``i+1 .. i+h`` (``h = label_horizon``, 1 for a daily
backtest; a model whose target looks ``h`` days ahead has ``h``). A fold scores the net
returns earned by its decisions.

Purging and embargo (López de Prado 2018, ch. 7)
-----------------------------------------------
A training sample ``i`` is *purged* when its label interval ``[i, i+h]`` overlaps the
test fold's ``[a, b+h]`` (what the test decisions and their labels span), and
*embargoed* when it lies in the ``embargo`` dates right after that, ``(b+h, b+h+embargo]``.
In walk-forward splits the training set precedes the test set, so purging removes the
last ``h`` training dates and the embargo only matters for splits that train after a
test fold (:func:`purged_kfold_splits`).

Grid search
-----------
Each grid point (a dict of parameter values over the model's ``param_specs``) is run
once on the whole history: registered models are causal (``tests/models/test_common.py``
checks that the output up to t is the same with or without the data after t), so each
fold reads exactly what a run truncated at its end would have produced. On each fold
the point with the best training Sharpe is chosen and scored on the test fold. The
out-of-sample track is one backtest of the stitched signal (each test fold takes the
signal of the point its training fold chose), so the cost of switching points at a fold
boundary is paid. Grid points run in parallel with joblib. The track runs from the close
of the first test decision (opening trades) to the last test label (closing out), and
:mod:`mltrainer.backtest.baselines` puts naive baselines beside it on exactly those dates.

Deflated Sharpe ratio (Bailey & López de Prado 2014)
---------------------------------------------------
With per-period Sharpe ratios, ``N`` trials whose Sharpe ratios have variance ``V``, and
the Euler-Mascheroni constant ``γ``::

    SR0 = sqrt(V) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))
    DSR = Φ( (SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR²) )

``kurt`` is the Pearson kurtosis (3 for a normal). With one trial there is no selection
to deflate for: ``SR0 = 0`` and the DSR is the probabilistic Sharpe ratio against 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from mltrainer.backtest.baselines import BaselineReport, baseline_report, oos_span
from mltrainer.backtest.engine import run_backtest
from mltrainer.backtest.metrics import PERIODS_PER_YEAR, performance_metrics, sharpe_ratio
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, MLTrainerError, ParameterError
from mltrainer.models.base import SIGNAL, WEIGHTS
from mltrainer.models.params import validate_params

EULER_GAMMA = 0.5772156649015329


# ------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Split:
    """One fold: integer positions of the training and test samples.

    ``purged`` and ``embargoed`` are the training positions removed by each rule.
    """

    fold: int
    train: np.ndarray
    test: np.ndarray
    purged: np.ndarray
    embargoed: np.ndarray


def purge(
    train: np.ndarray, test: np.ndarray, label_horizon: int = 1, embargo: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop training samples whose labels overlap a contiguous test fold.

    Returns ``(kept, purged, embargoed)``; see the module notes for the rule.
    """
    train = np.asarray(train, dtype=np.intp)
    test = np.asarray(test, dtype=np.intp)
    if label_horizon < 0 or embargo < 0:
        raise ParameterError(
            f"label_horizon and embargo must be 0 or more (got {label_horizon}, {embargo})"
        )
    if not len(test):
        return train, train[:0], train[:0]
    a, b = int(test.min()), int(test.max())
    overlap = (train + label_horizon >= a) & (train <= b + label_horizon)
    after = b + label_horizon
    embargoed = (train > after) & (train <= after + embargo)
    return train[~overlap & ~embargoed], train[overlap], train[embargoed]


def walk_forward_splits(
    n: int,
    train_size: int,
    test_size: int,
    mode: str = "expanding",
    label_horizon: int = 1,
    embargo: int = 0,
    min_test: int | None = None,
) -> list[Split]:
    """Consecutive test folds of ``test_size`` samples after a first ``train_size``.

    ``mode="expanding"`` trains on every sample before the test fold, ``"rolling"`` on the
    last ``train_size`` of them; either way purged and embargoed. A last fold shorter
    than ``min_test`` (default half a fold) is dropped.
    """
    if mode not in ("expanding", "rolling"):
        raise ParameterError(f"mode must be 'expanding' or 'rolling' (got {mode!r})")
    if train_size < 2 or test_size < 2:
        raise ParameterError(
            f"train_size and test_size must be at least 2 samples (got {train_size}, {test_size})"
        )
    min_test = max(2, test_size // 2) if min_test is None else min_test
    if n - train_size < min_test:
        raise DataError(
            f"{n} samples cannot hold a training window of {train_size} and a "
            f"test fold of at least {min_test}; use a shorter window or more data"
        )
    splits = []
    start = train_size
    while n - start >= min_test:
        test = np.arange(start, min(start + test_size, n))
        lo = 0 if mode == "expanding" else start - train_size
        kept, purged, embargoed = purge(np.arange(lo, start), test, label_horizon, embargo)
        if len(kept) < 2:
            raise DataError(
                f"fold {len(splits)}: purging left {len(kept)} training samples; "
                "label_horizon or embargo is too long for train_size"
            )
        splits.append(Split(len(splits), kept, test, purged, embargoed))
        start += test_size
    return splits


def purged_kfold_splits(
    n: int, n_folds: int, label_horizon: int = 1, embargo: int = 0
) -> list[Split]:
    """K contiguous test folds, training on all other samples, purged and embargoed.

    Not a walk-forward (training data can follow the test fold): use it for
    cross-validated model selection where the embargo matters.
    """
    if n_folds < 2 or n_folds > n:
        raise ParameterError(f"n_folds must be between 2 and {n} (got {n_folds})")
    bounds = np.linspace(0, n, n_folds + 1).astype(int)
    out = []
    everything = np.arange(n)
    for k in range(n_folds):
        test = everything[bounds[k] : bounds[k + 1]]
        train = np.concatenate([everything[: bounds[k]], everything[bounds[k + 1] :]])
        kept, purged, embargoed = purge(train, test, label_horizon, embargo)
        out.append(Split(k, kept, test, purged, embargoed))
    return out


# ------------------------------------------------------------------- the DSR
def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """``Φ((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR²))`` (per period)."""
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if n_obs < 2 or not np.isfinite(sr) or denom <= 0:
        return float("nan")
    return float(stats.norm.cdf((sr - sr_benchmark) * np.sqrt(n_obs - 1) / np.sqrt(denom)))


def expected_max_sharpe(var_trials: float, n_trials: int) -> float:
    """``SR0``: the expected largest of ``n_trials`` Sharpe ratios under no skill."""
    if n_trials < 1:
        raise ParameterError(f"n_trials must be at least 1 (got {n_trials})")
    if n_trials == 1:
        return 0.0
    return float(
        np.sqrt(var_trials)
        * (
            (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
            + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e))
        )
    )


def deflated_sharpe_ratio(
    returns: np.ndarray | pd.Series, trial_sharpes: np.ndarray | None, n_trials: int | None = None
) -> dict:
    """The DSR of a return series selected among trials (all per period).

    Parameters
    ----------
    returns : array
        The selected strategy's per-period returns (T observations).
    trial_sharpes : array, optional
        Per-period Sharpe ratios of every trial (their sample variance, ddof=1, is V).
    n_trials : int, optional
        Number of trials (default: ``len(trial_sharpes)``, or 1).

    Returns
    -------
    dict with ``dsr, sharpe, sr0, n_trials, var_trials, n_obs, skew, kurtosis``.
    """
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    trial = np.asarray(trial_sharpes, dtype="float64") if trial_sharpes is not None else np.empty(0)
    trial = trial[np.isfinite(trial)]
    n = int(n_trials if n_trials is not None else max(len(trial), 1))
    var = float(np.var(trial, ddof=1)) if len(trial) > 1 else 0.0
    sd = np.std(r, ddof=1) if len(r) > 1 else 0.0
    sr = float(np.mean(r) / sd) if sd > 0 else float("nan")
    skew = float(stats.skew(r, bias=True)) if len(r) > 2 else float("nan")
    kurt = float(stats.kurtosis(r, fisher=False, bias=True)) if len(r) > 3 else float("nan")
    sr0 = expected_max_sharpe(var, n)
    return {
        "dsr": probabilistic_sharpe_ratio(sr, sr0, len(r), skew, kurt),
        "sharpe": sr,
        "sr0": sr0,
        "n_trials": n,
        "var_trials": var,
        "n_obs": int(len(r)),
        "skew": skew,
        "kurtosis": kurt,
    }


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
    oos: object
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
        }


def expand_grid(model_cls, grid: dict | None, base_params: dict | None = None) -> list[dict]:
    """Every combination of a grid (dict of lists) over a model's params, validated."""
    grid = dict(grid or {})
    base = dict(base_params or {})
    specs = model_cls.param_specs
    for name, values in grid.items():
        if name not in specs:
            raise ParameterError(
                f"grid parameter {name!r} is not a parameter of "
                f"{model_cls.__name__}; it takes: {', '.join(specs) or 'none'}"
            )
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"grid parameter {name!r} needs a non-empty list of values")
    names = list(grid)
    points = [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(grid[k] for k in names))
    ] or [{}]
    out = []
    for point in points:
        params = {**base, **point}
        validate_params(model_cls(**params))  # the error names the parameter and the bounds
        out.append(params)
    return out


def _run_point(model_cls, params: dict, data: MarketData, bt_kwargs: dict, keep_signal: bool):
    model = model_cls(**params)
    output = model.run(data)
    kwargs = dict(bt_kwargs)
    kwargs.setdefault("weighting", "weights" if model_cls.output_kind == WEIGHTS else "normalize")
    res = run_backtest(output.primary, data, **kwargs)
    signal = output.primary if keep_signal else None
    return res.returns.to_numpy(), signal, dict(output.tables)


def walk_forward(
    model_cls,
    data: MarketData,
    grid: dict | None = None,
    *,
    params: dict | None = None,
    train_size: int = 756,
    test_size: int = 252,
    mode: str = "expanding",
    label_horizon: int = 1,
    embargo: int = 0,
    backtest_kwargs: dict | None = None,
    n_jobs: int = -1,
    progress: Callable[[int, int], None] | None = None,
    periods_per_year: int = PERIODS_PER_YEAR,
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
    grid : dict of lists, optional
        Values to search per parameter, e.g. ``{"window": [20, 60, 120]}``. A grid with
        one point (or none) runs the model once; the DSR then equals the probabilistic
        Sharpe ratio against 0.
    params : dict, optional
        Fixed parameters for every grid point.
    train_size, test_size : int
        Training window (the first one, in expanding mode) and test fold, in dates.
    mode : {"expanding", "rolling"}
    label_horizon, embargo : int
        Purging and embargo, in dates (module notes).
    backtest_kwargs : dict, optional
        Passed to :func:`~mltrainer.backtest.engine.run_backtest` (costs, limits, ...).
    n_jobs : int
        joblib workers over grid points (-1 = all cores).
    progress : callable(done, total), optional
        Called after each grid point and once at the end.
    baselines : bool
        Put naive baselines beside the out-of-sample track (``result.baselines``): costs
        one more model run when the grid does not hold the default parameters. A
        ``members`` mask in ``backtest_kwargs`` also limits the equal-weight baseline.
    index_close : Series, optional
        The index closes for the index baseline; default the bundled S&P 500 series
        (1990-2022). A series that does not cover the out-of-sample dates gives "not
        available".
    """
    if not isinstance(model_cls, type):  # a configured instance: its parameters are the base
        params = {**model_cls.get_params(), **(params or {})}
        model_cls = type(model_cls)
    if getattr(model_cls, "output_kind", None) not in (SIGNAL, WEIGHTS):
        raise ParameterError(
            f"{getattr(model_cls, '__name__', model_cls)} outputs "
            f"{getattr(model_cls, 'output_kind', '?')}; walk-forward needs "
            "a signal or weights model"
        )
    points = expand_grid(model_cls, grid, params)
    bt_kwargs = dict(backtest_kwargs or {})
    dates = data.dates
    # decisions 0 .. n-2 earn the returns of dates 1 .. n-1
    n = len(dates) - 1
    splits = walk_forward_splits(n, train_size, test_size, mode, label_horizon, embargo)
    default_j = next((j for j, p in enumerate(points) if _is_default(model_cls, p)), None)
    total = len(points) + 1 + int(baselines and default_j is None)
    keep = len(points) * data.adj_close.size <= 10_000_000  # ~80 MB of signals
    results = _run_grid(model_cls, points, data, bt_kwargs, keep, n_jobs, progress, total)
    rets = np.column_stack([r[0] for r in results])  # dates x points

    def window_returns(col: int, idx: np.ndarray) -> np.ndarray:
        return rets[idx + 1, col]

    chosen, rows = [], []
    for sp in splits:
        train_sharpes = [
            sharpe_ratio(window_returns(j, sp.train), None, periods_per_year)
            for j in range(len(points))
        ]
        scores = np.where(np.isfinite(train_sharpes), train_sharpes, -np.inf)
        best = int(np.argmax(scores))
        chosen.append(best)
        ins = performance_metrics(
            pd.Series(window_returns(best, sp.train), index=dates[sp.train + 1]),
            periods_per_year=periods_per_year,
        )
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
                "params": {k: points[best][k] for k in (grid or {})},
                **{
                    f"is_{k}": ins[k]
                    for k in ("sharpe", "cagr", "annual_volatility", "max_drawdown", "hit_rate")
                },
            }
        )

    # the stitched out-of-sample signal: each test fold from its chosen point
    signals = {}
    for j in sorted(set(chosen)):
        signals[j] = (
            results[j][1] if keep else _run_point(model_cls, points[j], data, bt_kwargs, True)[1]
        )
    first = splits[0].test[0]
    kwargs = dict(bt_kwargs)
    kwargs.setdefault("weighting", "weights" if model_cls.output_kind == WEIGHTS else "normalize")
    oos = run_backtest(_stitch([signals[j] for j in chosen], splits, dates), data, **kwargs)
    report = None
    if baselines:
        report = _baselines(
            model_cls,
            data,
            splits,
            oos,
            chosen,
            default_j,
            results[default_j][1] if keep and default_j is not None else None,
            bt_kwargs,
            kwargs,
            index_close,
            periods_per_year,
        )
    if progress is not None:
        progress(total, total)
    for sp, row in zip(splits, rows, strict=True):
        r = oos.returns.reindex(dates[sp.test + 1]).dropna()
        out = performance_metrics(r, periods_per_year=periods_per_year)
        row.update(
            {
                f"oos_{k}": out[k]
                for k in ("sharpe", "cagr", "annual_volatility", "max_drawdown", "hit_rate")
            }
        )
    folds = pd.DataFrame(rows)
    oos_span = oos.returns.iloc[1:]  # the first date only pays the opening trades' costs
    trial_sr = np.array([_per_period_sharpe(rets[first + 1 :, j]) for j in range(len(points))])
    full_sr = np.array([_per_period_sharpe(rets[1:, j]) for j in range(len(points))])
    best_full = int(np.nanargmax(np.where(np.isfinite(full_sr), full_sr, -np.inf)))
    dsr = {
        "oos": deflated_sharpe_ratio(oos_span.to_numpy(), trial_sr, len(points)),
        "best_trial": {
            **deflated_sharpe_ratio(rets[1:, best_full], full_sr, len(points)),
            "params": points[best_full],
        },
    }
    settings = {
        "model": model_cls.key() if hasattr(model_cls, "key") else str(model_cls),
        "grid": {k: list(v) for k, v in (grid or {}).items()},
        "params": dict(params or {}),
        "train_size": train_size,
        "test_size": test_size,
        "mode": mode,
        "label_horizon": label_horizon,
        "embargo": embargo,
        "n_folds": len(splits),
        "baselines": baselines,
        "backtest": {k: v for k, v in bt_kwargs.items() if np.isscalar(v)},
    }
    trial_returns = pd.DataFrame(rets, index=dates, columns=range(len(points)))
    return WalkForwardResult(
        folds=folds,
        grid=points,
        trial_returns=trial_returns,
        oos=oos,
        oos_metrics=dict(oos.metrics),
        deflated_sharpe=dsr,
        splits=splits,
        settings=settings,
        model_tables=[r[2] for r in results],
        baselines=report,
    )


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


def _is_default(model_cls, point: dict) -> bool:
    try:
        return bool(model_cls(**point).get_params(deep=False) == model_cls().get_params(deep=False))
    except (TypeError, ValueError):  # parameters that do not compare (arrays)
        return False


def _baselines(
    model_cls,
    data,
    splits,
    oos,
    chosen,
    default_j,
    default_signal,
    bt_kwargs,
    kwargs,
    index_close,
    periods_per_year,
) -> BaselineReport:
    """The baseline report; the default-parameter track reuses the grid's run of the
    defaults (or the stitched track itself when every fold chose them)."""
    span = oos_span(data.dates, splits)
    default, note = None, "the model with its default parameters on every test fold"
    if default_j is not None and all(j == default_j for j in chosen):
        default = oos
        note += " (every fold chose them: the same track as the model)"
    else:
        try:
            if default_signal is None:
                default_signal = _run_point(model_cls, {}, data, bt_kwargs, True)[1]
            default = run_backtest(
                _stitch([default_signal] * len(splits), splits, data.dates), data, **kwargs
            )
        except MLTrainerError as exc:
            note = f"not available: the default parameters could not run ({exc})"
    if index_close is None:
        from mltrainer.data.bundled import sp500_index_close

        try:
            index_close = sp500_index_close()
        except (ImportError, OSError, MLTrainerError):
            index_close = None
    return baseline_report(
        oos,
        data,
        span,
        n_folds=len(splits),
        default=default,
        default_note=note,
        index_close=index_close,
        backtest_kwargs=bt_kwargs,
        members=bt_kwargs.get("members"),
        periods_per_year=periods_per_year,
    )


def _per_period_sharpe(r: np.ndarray) -> float:
    r = r[np.isfinite(r)]
    sd = np.std(r, ddof=1) if len(r) > 1 else 0.0
    return float(np.mean(r) / sd) if sd > 0 else float("nan")


def _run_grid(model_cls, points, data, bt_kwargs, keep, n_jobs, progress, total):
    """Run every grid point; in parallel (joblib) when there is more than one."""
    if len(points) == 1 or n_jobs == 1:
        out = []
        for i, p in enumerate(points):
            out.append(_run_point(model_cls, p, data, bt_kwargs, keep))
            if progress is not None:
                progress(i + 1, total)
        return out
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    out = []
    for i, res in enumerate(
        parallel(delayed(_run_point)(model_cls, p, data, bt_kwargs, keep) for p in points)
    ):
        out.append(res)
        if progress is not None:
            progress(i + 1, total)
    return out
