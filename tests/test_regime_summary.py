"""The current regime run of a label series, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError
from mltrainer.regime_summary import current_run


def test_a_run_that_began_inside_the_labels_gives_its_start():
    idx = pd.bdate_range("2021-03-01", periods=6)
    run = current_run(pd.Series([np.nan, 0, 0, 2, 2, 2], index=idx))
    assert (run.start, run.days, run.cut) == (idx[3], 3, False)
    assert (run.days_text(), run.since_text()) == ("3", "since 2021-03-04")


def test_a_run_that_holds_from_the_first_label_is_a_lower_bound():
    idx = pd.bdate_range("2021-03-01", periods=5)
    run = current_run(pd.Series([np.nan, 1, 1, 1, 1], index=idx))
    assert (run.start, run.days, run.cut) == (idx[1], 4, True)
    assert (run.days_text(), run.since_text()) == ("4+", "since 2021-03-02 or earlier")
    with pytest.raises(DataError, match="no regime label"):
        current_run(pd.Series([np.nan, np.nan], index=idx[:2]))


def test_the_range_summary_leaves_out_what_a_short_range_cannot_measure():
    """A 6-day range gave a regime's mean return as +60 % a year and a regime never left
    an expected spell of 'inf': a regime held under MIN_STAT_DAYS days has no annualised
    figures, and one never left in the range no expected spell."""
    from mltrainer.regime_summary import MIN_STAT_DAYS, range_summary

    dates = pd.bdate_range("2021-01-04", periods=35)
    labels = pd.Series([0.0] * 30 + [1.0] * 5, index=dates)
    prices = pd.Series(100.0 * 1.001 ** np.arange(35), index=dates)  # +0.1 % a day
    stats = range_summary(labels, prices, 2, {0: "calm", 1: "stressed"}).stats
    assert MIN_STAT_DAYS == 21
    calm, stressed = stats.iloc[0], stats.iloc[1]
    assert calm["n_days"] == 30 and np.isfinite(calm["mean_return"])
    assert calm["expected_duration_days"] == pytest.approx(30.0)  # p_00 = 29/30
    assert stressed["n_days"] == 5
    assert np.isnan(stressed["mean_return"]) and np.isnan(stressed["volatility"])
    assert np.isnan(stressed["expected_duration_days"])  # never left: 1 / (1 - 1)
