"""Walk-forward refitting for the machine-learning models (pure functions).

Schedule
--------
Refits happen at rows ``T_k = min_train + k * refit_every`` counted from the first date
of the data (so the schedule is the same whether or not later data exist). The model of
refit k predicts the dates ``T_k .. T_{k+1} - 1`` and is trained on the (date, ticker)
samples of dates ``t <= T_k - 1 - horizon`` (expanding) or of the last ``train_window``
of those dates (rolling): a label ``log(P_{t+h} / P_t)`` ends at ``t + h <= T_k - 1``, so
every training label is known before the first date the model is applied to (the purge
gap of the label horizon). Samples are pooled across tickers in date-major order; above
``max_train_samples`` a seeded random subset (seed ``[random_state, k]``) is used, the
same whatever data follow.

Refits are independent of each other, so they run through joblib; the number of workers
comes from the caller's ``joblib.parallel_config(n_jobs=...)`` (one by default) and the
results do not depend on it. Each refit runs with one BLAS/OpenMP thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

MIN_SAMPLES = 200
_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar("ml_refit_progress",
                                                                     default=None)


@contextmanager
def refit_progress(callback: Callable[[int, int], None]) -> Iterator[None]:
    """Within the block, every ML model calls ``callback(done, total)`` after each refit."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def refit_rows(n_dates: int, min_train: int, refit_every: int) -> np.ndarray:
    """Row positions of the refits inside ``n_dates`` dates."""
    return np.arange(min_train, n_dates, refit_every, dtype=np.intp)


def training_span(refit_row: int, horizon: int, train_window: int) -> tuple[int, int]:
    """Inclusive date rows ``(lo, hi)`` whose labels end strictly before ``refit_row``."""
    hi = refit_row - 1 - horizon
    lo = 0 if not train_window else max(0, hi - train_window + 1)
    return lo, hi


def _subsample(n: int, cap: int, seed: int, k: int) -> np.ndarray | None:
    if n <= cap:
        return None
    rng = np.random.default_rng([seed, k])
    return np.sort(rng.choice(n, size=cap, replace=False))


def _task(features: np.ndarray, labels: np.ndarray, k: int, row: int, next_row: int,
          horizon: int, train_window: int, cap: int, seed: int):
    """The training and prediction arrays of refit k (built lazily, one at a time)."""
    n_feat = features.shape[2]
    lo, hi = training_span(row, horizon, train_window)
    if hi < lo:
        return None
    x = features[lo:hi + 1].reshape(-1, n_feat)
    y = labels[lo:hi + 1].reshape(-1)
    t = np.repeat(np.arange(lo, hi + 1), features.shape[1])
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    x, y, t = x[ok], y[ok], t[ok]
    pick = _subsample(len(y), cap, seed, k)
    if pick is not None:
        x, y, t = x[pick], y[pick], t[pick]
    xp = features[row:next_row].reshape(-1, n_feat)
    okp = np.isfinite(xp).all(axis=1)
    return x, y, t, xp[okp], okp


def _job(features, labels, fit_predict, k, row, next_row, horizon, train_window, cap, seed,
         params):
    task = _task(features, labels, k, row, next_row, horizon, train_window, cap, seed)
    if task is None or len(task[1]) < MIN_SAMPLES or not len(task[3]):
        n = 0 if task is None else len(task[1])
        return k, None, None, {"n_train": n, "skipped": "too few samples"}
    x, y, t, xp, okp = task
    # one BLAS/OpenMP thread per refit: parallelism comes from running refits side by side
    # (OpenMP teams in gradient boosting stall badly when the cores are busy)
    with threadpool_limits(limits=1):
        res = fit_predict(x, y, t, xp, int(seed) * 1000 + k, params)
    if res is None:
        return k, None, None, {"n_train": len(y), "skipped": "degenerate labels"}
    pred, info = res
    return k, pred, okp, {"n_train": len(y), **info}


def walk_forward_predict(
    features: np.ndarray,
    labels: np.ndarray,
    fit_predict: Callable,
    *,
    horizon: int,
    refit_every: int,
    min_train: int,
    train_window: int,
    max_train_samples: int,
    seed: int,
    params: dict,
) -> tuple[np.ndarray, list[dict]]:
    """Predictions for every (date, ticker) from models refitted on the schedule.

    ``fit_predict(x, y, t, x_pred, seed, params) -> (pred, info)`` trains on samples
    ``x`` (n, F) with labels ``y`` and date rows ``t`` (time-ordered), and returns one
    score per row of ``x_pred`` plus a dict for the refit table. A refit with fewer
    than ``MIN_SAMPLES`` usable samples, or whose ``fit_predict`` returns None (e.g. one
    class only), leaves its dates NaN.
    """
    n_dates, n_tickers, _ = features.shape
    rows = refit_rows(n_dates, min_train, refit_every)
    ends = np.append(rows[1:], n_dates)
    out = np.full((n_dates, n_tickers), np.nan)
    # arguments, not a closure: joblib memory-maps the big arrays for its workers
    results = Parallel(return_as="generator")(
        delayed(_job)(features, labels, fit_predict, k, int(r), int(e), horizon, train_window,
                      max_train_samples, seed, params)
        for k, (r, e) in enumerate(zip(rows, ends, strict=True)))
    log = []
    progress = _PROGRESS.get()
    for k, pred, okp, info in results:
        row, next_row = int(rows[k]), int(ends[k])
        if pred is not None:
            block = np.full(okp.shape, np.nan)
            block[okp] = pred
            out[row:next_row] = block.reshape(next_row - row, n_tickers)
        log.append({"refit": k, "row": row, **info})
        if progress is not None:
            progress(len(log), len(rows))
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
    rows = []
    for name, score, guess in (("model", s, s > 0),
                               ("always_long", np.ones_like(s), np.ones(len(s), bool)),
                               ("last_sign", last, last > 0)):
        n = int(ok.sum())
        acc = float(np.mean(guess == up)) if n else float("nan")
        auc = (float(roc_auc_score(up, score)) if n and 0 < up.sum() < n
               and np.ptp(score) > 0 else (0.5 if n and 0 < up.sum() < n else float("nan")))
        rows.append({"predictor": name, "accuracy": acc, "auc": auc, "n": n})
    return pd.DataFrame(rows).set_index("predictor")
