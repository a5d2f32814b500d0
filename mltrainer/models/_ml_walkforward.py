"""Walk-forward refitting for the machine-learning models (pure functions).

Schedule
--------
Refits happen at rows ``T_k = min_train + k * refit_every`` counted from the first date
of the data (:func:`mltrainer.numerics.schedule.refit_rows`, so the schedule is the same
whether or not later data exist). The model of refit k predicts the dates
``T_k .. T_{k+1} - 1`` and is trained on the (date, ticker) samples of dates
``t <= T_k - 1 - horizon`` (expanding) or of the last ``train_window`` of those dates
(rolling): a label ``log(P_{t+h} / P_t)`` ends at ``t + h <= T_k - 1``, so every training
label is known before the first date the model is applied to (the purge gap of the label
horizon). Samples are pooled across tickers in date-major order; above
``max_train_samples`` a seeded random subset (seed ``[random_state, k]``) is used, the
same whatever data follow.

Refits are independent of each other, so they run through
:func:`mltrainer.numerics.engine.map_tickers` with the settings of the enclosing
:func:`~mltrainer.numerics.parallel.execution` block: ``n_jobs`` workers (None: one
refit after another in this process) and ``progress(done, total)`` counting refits. The
results do not depend on it: each refit runs with one BLAS/OpenMP thread.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mltrainer.numerics.engine import map_tickers
from mltrainer.numerics.parallel import current_execution, execution
from mltrainer.numerics.schedule import refit_rows, stops

MIN_SAMPLES = 200

FitResult = tuple[np.ndarray, dict] | None
"""What a fit function returns: one score per prediction row and a dict for the refit
table, or None when it cannot fit (one class only, too few samples)."""
FitFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, dict], FitResult]


def training_span(refit_row: int, horizon: int, train_window: int) -> tuple[int, int]:
    """Inclusive date rows ``(lo, hi)`` whose labels end strictly before ``refit_row``."""
    hi = refit_row - 1 - horizon
    lo = 0 if not train_window else max(0, hi - train_window + 1)
    return lo, hi


def _samples(features, labels, p, k, row, end):
    """The training and prediction arrays of refit k (built lazily, one at a time)."""
    n_feat = features.shape[2]
    lo, hi = training_span(row, p["horizon"], p["train_window"])
    if hi < lo:
        return None
    x = features[lo : hi + 1].reshape(-1, n_feat)
    y = labels[lo : hi + 1].reshape(-1)
    t = np.repeat(np.arange(lo, hi + 1), features.shape[1])
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    x, y, t = x[ok], y[ok], t[ok]
    cap = p["max_train_samples"]
    if len(y) > cap:  # a seeded subset, the same whatever data follow
        rng = np.random.default_rng([p["random_state"], k])
        pick = np.sort(rng.choice(len(y), size=cap, replace=False))
        x, y, t = x[pick], y[pick], t[pick]
    xp = features[row:end].reshape(-1, n_feat)
    okp = np.isfinite(xp).all(axis=1)
    return x, y, t, xp[okp], okp


def _refit(features, labels, fit_predict, p, k, row, end):
    """Refit k: ``(prediction, prediction mask, refit-table entry)``."""
    task = _samples(features, labels, p, k, row, end)
    if task is None or len(task[1]) < MIN_SAMPLES or not len(task[3]):
        n = 0 if task is None else len(task[1])
        return None, None, {"n_train": n, "skipped": "too few samples"}
    x, y, t, xp, okp = task
    res = fit_predict(x, y, t, xp, int(p["random_state"]) * 1000 + k, p)
    if res is None:
        return None, None, {"n_train": len(y), "skipped": "degenerate labels"}
    pred, info = res
    return pred, okp, {"n_train": len(y), **info}


def walk_forward_predict(
    features: np.ndarray, labels: np.ndarray, fit_predict: FitFunction, params: dict
) -> tuple[np.ndarray, list[dict]]:
    """Predictions for every (date, ticker) from models refitted on the schedule.

    Parameters
    ----------
    features, labels : ndarray
        The (dates, tickers, F) feature panel and the (dates, tickers) labels.
    fit_predict : callable
        ``fit_predict(x, y, t, x_pred, seed, params) -> (pred, info)`` trains on samples
        ``x`` (n, F) with labels ``y`` and date rows ``t`` (time-ordered), and returns one
        score per row of ``x_pred`` plus a dict for the refit table (or None). A
        module-level function, so that workers can unpickle it.
    params : dict
        The model's parameters: the schedule of the module notes (``horizon``,
        ``refit_every``, ``min_train``, ``train_window``, ``max_train_samples``,
        ``random_state``) and whatever ``fit_predict`` reads (it receives them all).

    Returns
    -------
    out : ndarray
        (dates, tickers) predictions; NaN before the first refit, and on the dates of a
        refit with fewer than ``MIN_SAMPLES`` usable samples or whose ``fit_predict``
        returned None.
    log : list of dict
        One entry per refit: ``refit``, ``row``, ``n_train``, then ``skipped`` or the
        fit function's information.
    """
    n_dates, n_tickers, _ = features.shape
    rows = refit_rows(n_dates, params["min_train"], params["refit_every"])
    ends = stops(rows, n_dates)
    # a partial, not a closure: it pickles, and joblib memory-maps the big arrays for workers
    refit = partial(_refit, features, labels, fit_predict, params)
    tasks = [(k, int(r), int(e)) for k, (r, e) in enumerate(zip(rows, ends, strict=True))]
    settings = current_execution()
    # n_jobs None: in-process, in turn (a configured Dask cluster still takes the refits)
    with execution(settings.n_jobs or 1, settings.progress, settings.scheduler):
        results = map_tickers(refit, tasks, unit="refits")
    out = np.full((n_dates, n_tickers), np.nan)
    log = []
    for k, (row, end, (pred, okp, info)) in enumerate(zip(rows, ends, results, strict=True)):
        if pred is not None:
            block = np.full(okp.shape, np.nan)
            block[okp] = pred
            out[row:end] = block.reshape(end - row, n_tickers)
        log.append({"refit": k, "row": int(row), **info})
    return out, log


def oos_scores(signal: np.ndarray, forward: np.ndarray, trailing: np.ndarray) -> pd.DataFrame:
    """Out-of-sample hit rate and AUC of a signal next to two naive baselines.

    Scored on the cells where the signal is non-zero and finite and the forward return
    is known and non-zero: ``accuracy`` = share of cells where the signal's sign equals
    the forward return's sign; ``auc`` = ROC AUC of the signal as a score for "up".
    Baselines on the same cells: ``always_long`` (always up: accuracy = share of up
    moves, AUC 0.5) and ``last_sign`` (the sign of the trailing return over the same
    horizon).
    """
    ok = np.isfinite(signal) & (signal != 0) & np.isfinite(forward) & (forward != 0)
    ok &= np.isfinite(trailing)
    up = forward[ok] > 0
    s, last = signal[ok], trailing[ok]
    n = int(ok.sum())
    both = bool(n and 0 < up.sum() < n)  # both classes present: an AUC exists
    rows = []
    for name, score, guess in (
        ("model", s, s > 0),
        ("always_long", np.ones_like(s), np.ones(len(s), bool)),
        ("last_sign", last, last > 0),
    ):
        acc = float(np.mean(guess == up)) if n else float("nan")
        auc = float(roc_auc_score(up, score)) if both and np.ptp(score) > 0 else 0.5
        rows.append({"predictor": name, "accuracy": acc, "auc": auc if both else np.nan, "n": n})
    return pd.DataFrame(rows).set_index("predictor")
