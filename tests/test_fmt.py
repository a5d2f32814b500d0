"""The one number format (issue 13): signs, percent, money, thousands, missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer import fmt


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: fmt.money(-27416), "-$27,416"),
        (lambda: fmt.money(1_500_000), "$1,500,000"),
        (lambda: fmt.money(-0.4), "$0"),
        (lambda: fmt.money(12.5, digits=2, sign=True), "+$12.50"),
        (lambda: fmt.percent(-0.0004), "0.0%"),
        (lambda: fmt.percent(0.1234), "12.3%"),
        (lambda: fmt.percent(-0.5678, digits=2), "-56.78%"),
        (lambda: fmt.percent(0.02, sign=True), "+2.0%"),
        (lambda: fmt.percent(12.5), "1,250.0%"),
        (lambda: fmt.ratio(-0.004), "0.00"),
        (lambda: fmt.ratio(np.float64(1.236)), "1.24"),
        (lambda: fmt.number(1466.0), "1,466.00"),
        (lambda: fmt.number(-1466.0, 0), "-1,466"),
        (lambda: fmt.integer(12345), "12,345"),
        (lambda: fmt.number(float("nan")), "n/a"),
        (lambda: fmt.percent(float("inf")), "n/a"),
        (lambda: fmt.money(None), "n/a"),
        (lambda: fmt.number("abc"), "n/a"),
        (lambda: fmt.number(True), "n/a"),
        (lambda: fmt.number(1e308), f"{1e308:,.2f}"),
        (lambda: fmt.date(pd.Timestamp("2020-02-19 15:00")), "2020-02-19"),
        (lambda: fmt.date(pd.NaT), "n/a"),
        (lambda: fmt.date("not a date"), "n/a"),
        (lambda: fmt.date_range("2020-02-19", "2020-03-23"), "from 2020-02-19 to 2020-03-23"),
        (lambda: fmt.date_range("2020-02-19", None), "from 2020-02-19 on"),
        (lambda: fmt.date_range(None, "2020-03-23"), "up to 2020-03-23"),
        (lambda: fmt.date_range(None, None), "on any date"),
    ],
)
def test_format(call, expected):
    assert call() == expected


def test_metric_picks_the_format_by_the_figure_name():
    assert fmt.metric("cagr", 0.0438) == "4.4%"
    assert fmt.metric("max_drawdown", -0.2866) == "-28.7%"
    assert fmt.metric("excess_cagr", 0.125, sign=True) == "+12.5%"
    assert fmt.metric("excess_cagr", -0.0004, sign=True) == "0.0%"
    assert fmt.metric("sharpe", 0.3217) == "0.32"
    assert fmt.metric("n_days", 1258) == "1,258"
    assert fmt.metric("annual_turnover", 100.93) == "100.9x"
    assert fmt.metric("sharpe", None) == fmt.metric("annual_turnover", float("nan")) == "n/a"


def test_count_is_singular_for_one_only():
    assert fmt.count(1, "trading day") == "1 trading day"
    assert fmt.count(0, "trading day") == "0 trading days"
    assert fmt.count(1250, "position") == "1,250 positions"
