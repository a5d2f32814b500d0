"""Summaries of a regime label series over a chosen range (what the Regimes page shows).

A regime model's own tables (its transition matrix, per-regime statistics) describe the
whole run it was given, which includes the history before the range it learned from.
These functions describe only the dates asked for: the empirical one-day transition
probabilities between the labels inside the range and the returns observed in each
regime there, so the table and the matrix follow the range like the headline figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mltrainer.errors import DataError
from mltrainer.measures.regimes import expected_durations, regime_stats, transition_matrix


@dataclass(frozen=True)
class RangeSummary:
    """The range covered, per-regime statistics and the transition matrix of its labels."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    stats: pd.DataFrame
    transitions: pd.DataFrame


# days a regime must hold in the range before its annualised mean and volatility are shown
MIN_STAT_DAYS = 21


def range_summary(
    labels: pd.Series, prices: pd.Series, k: int, names: dict | None = None
) -> RangeSummary:
    """Per-regime statistics and empirical transitions of ``labels`` on their own dates.

    Parameters
    ----------
    labels : Series
        Regime labels (0 = calmest) on the dates of the range; NaN where undefined.
    prices : Series
        Prices of the same series; the daily return of a day is attributed to that
        day's label (a description, not a forecast).
    k : int
        Number of regimes of the model.
    names : dict, optional
        Label -> regime name.

    Returns
    -------
    RangeSummary
        ``stats`` as :func:`~mltrainer.measures.regimes.regime_stats` plus
        ``expected_duration_days`` (from the empirical matrix's diagonal; NaN for a
        regime never left in the range); mean and volatility NaN for a regime held
        fewer than :data:`MIN_STAT_DAYS` days;
        ``transitions`` a k x k frame of P(to | from) indexed by label, rows "from",
        columns "to" (a regime never left inside the range has a NaN row).
    """
    labels = labels.astype("float64")
    returns = prices.reindex(labels.index).pct_change(fill_method=None)
    names_ = tuple((names or {}).get(j, f"regime {j}") for j in range(k))
    values = labels.to_numpy()
    stats = regime_stats(values, returns.to_numpy(), k, names_)
    matrix = transition_matrix(values, k)
    stats["expected_duration_days"] = expected_durations(np.nan_to_num(matrix, nan=0.0))
    # a regime never entered, or never left inside the range (1 / (1 - 1) = inf), has no
    # duration this range can measure
    never_left = np.isnan(np.diag(matrix)) | (np.nan_to_num(np.diag(matrix)) >= 1.0)
    stats.loc[never_left, "expected_duration_days"] = np.nan
    # annualised from a handful of days is noise (10 days gave -426 % a year)
    few = stats["n_days"] < MIN_STAT_DAYS
    stats.loc[few, ["mean_return", "volatility"]] = np.nan
    transitions = pd.DataFrame(
        matrix, index=pd.RangeIndex(k, name="from"), columns=pd.RangeIndex(k, name="to")
    )
    valid = labels.dropna()
    return RangeSummary(
        start=valid.index[0] if len(valid) else None,
        end=valid.index[-1] if len(valid) else None,
        stats=stats,
        transitions=transitions,
    )


@dataclass(frozen=True)
class RegimeRun:
    """The latest regime of a label series: its first day, its length in rows, and
    whether it already held on the series' first day (it may have begun earlier, so
    ``days`` is a lower bound and ``start`` only the first day seen)."""

    start: pd.Timestamp
    days: int
    cut: bool

    def days_text(self) -> str:
        """``"269"``, or ``"42+"`` when the run began before the labels do."""
        return f"{self.days:,}+" if self.cut else f"{self.days:,}"

    def since_text(self) -> str:
        """``"since 2008-06-06"``, or ``"since 2017-03-01 or earlier"`` when cut."""
        return f"since {self.start:%Y-%m-%d}{' or earlier' if self.cut else ''}"


def current_run(labels: pd.Series) -> RegimeRun:
    """The run of equal labels that ends on the last labelled row (NaNs dropped)."""
    valid = labels.dropna()
    if valid.empty:
        raise DataError("no regime label to read a current regime from")
    run = valid.ne(valid.shift()).cumsum()
    held = valid.index[run == run.iloc[-1]]
    return RegimeRun(held[0], len(held), bool(run.iloc[-1] == run.iloc[0]))
