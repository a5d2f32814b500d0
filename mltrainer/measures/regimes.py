"""Descriptive statistics of a regime label series: its spells, the empirical transition
matrix, expected durations, and the returns observed in each regime.

Labels are integers ``0 .. k-1`` stored as float64, NaN where undefined (the convention
of the regime models, 0 the calmest). These describe labels already given, at every
date at once: they are summaries for tables and reports, not causal model outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS


def spells(labels: np.ndarray) -> pd.DataFrame:
    """Runs of consecutive equal labels (a NaN ends a run).

    Returns a frame with ``label``, ``start`` (row), ``length`` (rows).
    """
    labels = np.asarray(labels, dtype="float64")
    n = len(labels)
    if n == 0:
        return pd.DataFrame({"label": [], "start": [], "length": []})
    prev = np.concatenate(([np.nan], labels[:-1]))
    valid = ~np.isnan(labels)
    is_start = valid & ~(labels == prev)
    starts = np.flatnonzero(is_start)
    # a run ends where the next run starts or where a NaN interrupts it
    bounds = np.flatnonzero(is_start | ~valid)
    nxt = np.searchsorted(bounds, starts, side="right")
    ends = np.append(bounds, n)[nxt]
    return pd.DataFrame(
        {"label": labels[starts].astype(int), "start": starts, "length": ends - starts}
    )


def transition_matrix(labels: np.ndarray, k: int) -> np.ndarray:
    """Empirical one-day transition probabilities ``P[i, j] = P(s_t = j | s_{t-1} = i)``.

    Counted over consecutive rows where both labels are defined; a row of a regime that
    never occurs (with a successor) is NaN.
    """
    labels = np.asarray(labels, dtype="float64")
    a, b = labels[:-1], labels[1:]
    ok = ~(np.isnan(a) | np.isnan(b))
    counts = np.zeros((k, k))
    np.add.at(counts, (a[ok].astype(int), b[ok].astype(int)), 1.0)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, np.nan)


def expected_durations(matrix: np.ndarray) -> np.ndarray:
    """Expected regime durations of a Markov chain, ``1 / (1 - p_ii)`` (rows, in days)."""
    p = np.diag(np.asarray(matrix, dtype="float64"))
    with np.errstate(divide="ignore"):
        return np.where(p < 1, 1.0 / (1.0 - p), np.inf)


def regime_stats(
    labels: np.ndarray, returns: np.ndarray, k: int, names: tuple | None = None
) -> pd.DataFrame:
    """Per-regime statistics of the daily returns observed while in the regime.

    Returns
    -------
    DataFrame indexed by regime
        ``name``; ``mean_return`` = 252 x mean daily simple return on labelled days;
        ``volatility`` = sqrt(252) x their standard deviation (ddof=1);
        ``avg_duration_days`` = mean length of a spell (consecutive labelled days);
        ``share_of_days`` = labelled days in the regime / all labelled days;
        ``n_days``, ``n_spells``. Contemporaneous: the return of day t is attributed to
        the label of day t (a description of the regimes, not a forecast).
    """
    labels = np.asarray(labels, dtype="float64")
    returns = np.asarray(returns, dtype="float64")
    runs = spells(labels)
    defined = ~np.isnan(labels)
    total = defined.sum()
    rows = []
    for j in range(k):  # k regimes, a handful
        in_j = labels == j
        r = returns[in_j & np.isfinite(returns)]
        n_spells = int((runs["label"] == j).sum())
        n_days = int(in_j.sum())
        rows.append(
            {
                "name": names[j] if names is not None else f"regime {j}",
                "mean_return": r.mean() * TRADING_DAYS if len(r) else np.nan,
                "volatility": r.std(ddof=1) * SQRT_TRADING_DAYS if len(r) > 1 else np.nan,
                "avg_duration_days": n_days / n_spells if n_spells else np.nan,
                "share_of_days": n_days / total if total else np.nan,
                "n_days": n_days,
                "n_spells": n_spells,
            }
        )
    out = pd.DataFrame(rows)
    out.index.name = "regime"
    return out
