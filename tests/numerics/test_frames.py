"""The frame helpers on hand-made frames: which value is out of range, and where."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.numerics.frames import first_out_of_range

DATES = pd.to_datetime(["2012-03-14", "2012-03-15", "2012-03-16"])


def _frame(values) -> pd.DataFrame:
    return pd.DataFrame(values, index=DATES, columns=["AAPL", "MSFT"], dtype="float64")


def test_in_range_and_missing_values_pass():
    assert first_out_of_range(_frame([[1.0, np.nan], [2.0, 3.0], [np.nan, 1e7]]), 1e7) is None
    assert first_out_of_range(_frame([[np.nan] * 2] * 3), 1e7) is None
    assert first_out_of_range(_frame(np.empty((3, 2)))[:0], 1e7) is None


def test_the_first_bad_value_in_date_order_is_named_with_the_count():
    frame = _frame([[1.0, 2.0], [3.0, 0.0], [-np.inf, 5.0]])
    assert first_out_of_range(frame, 1e7) == "of MSFT on 2012-03-15 is 0 (2 such values)"
    for bad, shown in ((-5.0, "-5"), (np.inf, "inf"), (1e308, "1e+308"), (1e7 + 1, "10000001")):
        frame = _frame([[1.0, 2.0], [bad, 3.0], [4.0, np.nan]])
        assert first_out_of_range(frame, 1e7) == f"of AAPL on 2012-03-15 is {shown}"
