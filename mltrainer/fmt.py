"""One number format for every page, the report and the CLI text.

Rules: thousands separators; a minus sign before the currency (``-$27,416``, never
``$-27,416``); a value that rounds to zero is shown without a sign (``0.0%``, never
``-0.0%``; a Sharpe ratio of -0.001 is ``0.00``); ``sign=True`` adds ``+`` to positive
values (changes, returns); NaN, None and infinities are ``n/a`` (a figure the data
cannot give is said to be missing, not printed as a number).
"""

from __future__ import annotations

import math
from numbers import Real

import pandas as pd

MISSING = "n/a"


def _finite(x: object) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    if not isinstance(x, Real):
        try:
            x = float(x)  # numpy scalars, Decimal, numeric strings
        except (TypeError, ValueError):
            return None
    value = float(x)
    return value if math.isfinite(value) else None


def _signed(value: float, digits: int, sign: bool, body: str) -> str:
    rounded = round(value, digits)
    if rounded == 0:
        return body
    if rounded < 0:
        return "-" + body
    return ("+" + body) if sign else body


def number(x: object, digits: int = 2, sign: bool = False) -> str:
    """``1466`` -> ``1,466.00``; ``-0.001`` -> ``0.00``; ``sign``: ``+1.50``."""
    value = _finite(x)
    if value is None:
        return MISSING
    return _signed(value, digits, sign, f"{abs(value):,.{digits}f}")


def integer(x: object) -> str:
    """A count with thousands separators: ``12345`` -> ``12,345``."""
    return number(x, 0)


def count(n: int, noun: str) -> str:
    """``n`` things, the noun plural unless one: ``1 trading day``, ``1,250 trading days``."""
    return f"{integer(n)} {noun}{'' if n == 1 else 's'}"


def percent(x: object, digits: int = 1, sign: bool = False) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.3%``; ``-0.0004`` -> ``0.0%``."""
    value = _finite(x)
    if value is None:
        return MISSING
    pct = value * 100.0
    return _signed(pct, digits, sign, f"{abs(pct):,.{digits}f}%")


def level(x: object) -> str:
    """A confidence level or a tail share with the decimals it needs: ``0.99`` -> ``99%``,
    ``0.975`` -> ``97.5%``, ``0.005`` -> ``0.5%`` (``percent(x, 0)`` said 98% and 1%)."""
    value = _finite(x)
    if value is None:
        return MISSING
    digits = next((d for d in range(4) if abs(round(value * 100, d) - value * 100) < 1e-9), 4)
    return percent(value, digits)


def money(x: object, digits: int = 0, currency: str = "$", sign: bool = False) -> str:
    """An amount: ``-27416`` -> ``-$27,416``; ``1.5e6`` with ``digits=0`` -> ``$1,500,000``."""
    value = _finite(x)
    if value is None:
        return MISSING
    return _signed(value, digits, sign, f"{currency}{abs(value):,.{digits}f}")


def ratio(x: object, digits: int = 2) -> str:
    """A ratio such as Sharpe or Sortino: ``-0.004`` -> ``0.00``, ``1.234`` -> ``1.23``."""
    return number(x, digits)


def date(x: object) -> str:
    """A day as ``YYYY-MM-DD`` (``n/a`` when missing)."""
    if x is None:
        return MISSING
    try:
        stamp = pd.Timestamp(x)
    except (TypeError, ValueError):
        return MISSING
    return MISSING if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def date_range(start: object, end: object) -> str:
    """``2020-02-19 to 2020-03-23``; an open end says so (``from 2020-02-19 on``)."""
    first = date(start)
    last = date(end) if end is not None else MISSING
    if first == MISSING and last == MISSING:
        return "on any date"
    if first == MISSING:
        return f"up to {last}"
    if last == MISSING:
        return f"from {first} on"
    return f"from {first} to {last}"


def times(x: object, digits: int = 1) -> str:
    """A multiple, such as a yearly turnover: ``116.34`` -> ``116.3x``."""
    value = number(x, digits)
    return value if value == MISSING else value + "x"


# How each figure of a backtest or walk-forward summary is shown (performance_metrics,
# the engine's total_costs, the baselines' excess figures); a name not listed is a number.
_PERCENT = frozenset(
    {
        "total_return",
        "cagr",
        "annual_volatility",
        "max_drawdown",
        "hit_rate",
        "alpha",
        "benchmark_cagr",
        "avg_gross_exposure",
        "avg_net_exposure",
        "total_costs",
        "excess_cagr",
    }
)
_COUNT = frozenset({"max_drawdown_duration_days", "max_drawdown_duration_bars", "n_days"})
_MULTIPLE = frozenset({"annual_turnover"})


def metric(name: str, x: object, sign: bool = False) -> str:
    """A summary figure by its name: ``metric("cagr", 0.0438)`` -> ``4.4%``, counts such as
    ``n_days`` as integers, ``annual_turnover`` as a multiple, ratios (Sharpe, Sortino,
    beta, ...) with two decimals; ``sign`` adds ``+`` to a positive change."""
    if name in _PERCENT:
        return percent(x, sign=sign)
    if name in _COUNT:
        return integer(x)
    if name in _MULTIPLE:
        return times(x)
    return number(x, 2, sign=sign)
