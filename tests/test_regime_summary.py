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
