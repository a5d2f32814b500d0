"""Walk-forward refit schedules: the rows at which an estimator is refitted."""

from __future__ import annotations

import numpy as np
import pandas as pd

CALENDAR_FREQUENCIES = ("yearly", "quarterly", "monthly")


def refit_rows(n_rows: int, first: int, every: int) -> np.ndarray:
    """Rows ``first, first + every, ...`` below ``n_rows`` (empty if ``first >= n_rows``).

    Each fit uses rows strictly before its refit row and is applied from that row up to
    the next one. The schedule depends only on ``first`` (where the series starts plus
    the training rows needed), never on ``n_rows``: truncating the data after t leaves
    every refit row up to t unchanged (the causality contract).
    """
    if every < 1:
        raise ValueError(f"refit interval must be at least one row (got {every})")
    return np.arange(max(int(first), 0), n_rows, int(every), dtype=np.intp)


def calendar_refit_rows(dates: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """Rows that open a new calendar year, quarter or month (row 0 excluded).

    The schedule depends on the calendar only, so truncating the data after t leaves
    every refit row up to t unchanged.
    """
    if frequency == "yearly":
        key = dates.year.to_numpy()
    elif frequency == "quarterly":
        key = dates.year.to_numpy() * 4 + dates.quarter.to_numpy()
    elif frequency == "monthly":
        key = dates.year.to_numpy() * 12 + dates.month.to_numpy()
    else:
        raise ValueError(
            f"refit frequency must be one of {CALENDAR_FREQUENCIES} (got {frequency!r})"
        )
    return np.flatnonzero(key[1:] != key[:-1]) + 1


def stops(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """The end (exclusive) of each refit's block: the next refit row, or ``n_rows``."""
    return np.append(rows[1:], n_rows)[: len(rows)]


def skipped_note(refits: pd.DataFrame, min_samples: int) -> tuple[str, ...]:
    """What the refits of a log (``date`` and ``skipped`` columns, one row a refit) that
    could not fit leave out: their dates have no value until the next refit. An all-NaN
    output with no word read as a model with nothing to say."""
    if "skipped" not in refits or refits["skipped"].isna().all():
        return ()
    skipped = refits[refits["skipped"].notna()]
    why = ", ".join(sorted(set(skipped["skipped"].astype(str))))
    head = f"{len(skipped)} of {len(refits)} refits skipped ({why}; a fit needs {min_samples})"
    if len(skipped) == len(refits):
        return (f"{head}: the model gives no signal; widen the range or the training window",)
    dates = ", ".join(str(d.date()) for d in skipped["date"].iloc[:3])
    more = " ..." if len(skipped) > 3 else ""
    return (f"{head}: no signal from {dates}{more} to the next refit",)
