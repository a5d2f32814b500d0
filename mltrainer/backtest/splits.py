"""Walk-forward and purged k-fold splits of a sample of decision dates.

Samples and labels
------------------
A sample is a decision date ``i``: the position taken at its close. Its label is what
it earns, the returns of dates ``i+1 .. i+h`` (``h = label_horizon``, 1 for a daily
backtest; a model whose target looks ``h`` days ahead has ``h``).

Purging and embargo (López de Prado 2018, ch. 7)
-----------------------------------------------
A training sample ``i`` is *purged* when its label interval ``[i, i+h]`` overlaps the
test fold's ``[a, b+h]`` (what the test decisions and their labels span), and
*embargoed* when it lies in the ``embargo`` dates right after that, ``(b+h, b+h+embargo]``.
In walk-forward splits the training set precedes the test set, so purging removes the
last ``h`` training dates and the embargo only matters for splits that train after a
test fold (:func:`purged_kfold_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.errors import DataError, ParameterError


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


def min_test_size(test_size: int) -> int:
    """The shortest last test fold kept by default: half a fold, at least 2 samples."""
    return max(2, test_size // 2)


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
    min_test = min_test_size(test_size) if min_test is None else min_test
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


def untested_tail(dates: pd.DatetimeIndex, splits: list[Split]) -> tuple[str, ...]:
    """A note when the range's last days are in no test fold (a last stretch shorter
    than half a fold is dropped): the out-of-sample figures end before the range does.
    ``splits`` are over the decision dates ``0 .. n - 2`` (each earns the next day)."""
    last = int(splits[-1].test[-1])
    if last >= len(dates) - 2:
        return ()
    untested = dates[last + 2 :]
    return (
        f"the last {fmt.count(len(untested), 'trading day')} of the range "
        f"({fmt.date_range(untested[0], untested[-1])}) are in no test fold (fewer than "
        "half a test fold): the out-of-sample figures end before the range does",
    )
