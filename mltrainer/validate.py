"""What a user types, checked once: dates, ticker lists, numbers, dashboard URL values.

The CLI (as argparse ``type=`` functions, see :mod:`mltrainer.cli.common`) and the
dashboard (query parameters, see ``ui/lab.py`` and ``ui/context.py``) both call these
pure functions, so a value refused in one place is refused, with the same words, in the
other. Every refusal is a :class:`~mltrainer.errors.ParameterError` whose message names
the option, quotes what was given and says what is allowed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import numpy as np

from mltrainer.errors import ParameterError

T = TypeVar("T")

# A date as the package's functions take it: "YYYY-MM-DD", a date, a datetime or a
# pd.Timestamp (both dates), or a numpy datetime64; each is read with pd.Timestamp.
DateLike = str | dt.date | np.datetime64

# pandas' nanosecond timestamps span 1677-2262; market data of interest is well inside
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2100, 12, 31)
MAX_TICKERS = 1000  # the S&P 500's whole history has about 800 names
MAX_TICKER_TEXT = 20_000
# letters, digits and the separators exchanges use (BRK.B, BF-B, ^GSPC, EURUSD=X)
_TICKER = re.compile(r"[A-Z0-9^][A-Z0-9.\-^=]{0,14}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _shown(text) -> str:
    """The offending value quoted, cut short: an error line stays one readable line."""
    text = repr(text)
    return text if len(text) <= 60 else text[:57] + "...'"


def parse_date(text: str | dt.date, name: str = "date") -> dt.date:
    """A calendar date written ``YYYY-MM-DD`` between 1900 and 2100.

    Raises ParameterError for another format (``notadate``, ``2020/01/02``), a day that
    does not exist (``2020-13-45``, ``2016-02-30``) or a year out of range (``99999``).
    """
    if isinstance(text, dt.datetime):
        text = text.date()
    if isinstance(text, dt.date):
        day = text
    else:
        raw = str(text).strip()
        if not _ISO_DATE.fullmatch(raw):
            raise ParameterError(
                f"{name} must be a date written YYYY-MM-DD, e.g. 2015-01-02 (got {_shown(text)})"
            )
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise ParameterError(f"{name} {raw} is not a calendar date ({exc})") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ParameterError(f"{name} must be between {FIRST_DATE} and {LAST_DATE} (got {day})")
    return day


def check_date_range(
    start: dt.date | str | None,
    end: dt.date | str | None,
    names: tuple[str, str] = ("start", "end"),
) -> None:
    """ParameterError if both dates are given and ``start`` is after ``end``."""
    if start is None or end is None:
        return
    lo, hi = parse_date(start, names[0]), parse_date(end, names[1])
    if lo > hi:
        raise ParameterError(
            f"{names[0]} {lo} is after {names[1]} {hi}; give a start on or before the end"
        )


def parse_tickers(text: str, name: str = "tickers", max_n: int = MAX_TICKERS) -> list[str]:
    """Comma-separated tickers, upper-cased, duplicates dropped, order kept.

    Raises ParameterError for a list with no ticker in it (``",,,"``), more than
    ``max_n`` tickers, or a ticker with characters no exchange uses.
    """
    raw = str(text)
    if len(raw) > MAX_TICKER_TEXT:
        raise ParameterError(
            f"{name} is {len(raw):,} characters long; at most {max_n} tickers are accepted"
        )
    tickers = list(dict.fromkeys(t.strip().upper() for t in raw.split(",") if t.strip()))
    if not tickers:
        raise ParameterError(
            f"{name} has no ticker in it (got {_shown(text)}); give "
            "comma-separated symbols such as AAPL,MSFT"
        )
    bad = [t for t in tickers if not _TICKER.fullmatch(t)]
    if bad:
        raise ParameterError(
            f"{name}: {_shown(bad[0])} is not a ticker symbol (letters, "
            "digits and . - ^ =, at most 15 characters)"
        )
    if len(tickers) > max_n:
        raise ParameterError(f"{name} has {len(tickers)} tickers; at most {max_n} are accepted")
    return tickers


def _bound(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'above' if low_open else 'at least'} {low:g}"
    if high is not None:
        return f"{'below' if high_open else 'at most'} {high:g}"
    return ""


def parse_float(
    text: str | float,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite number within the given bounds (``low_open``: ``low`` itself excluded).

    NaN, infinities and overflowing literals (``1e400``) are always refused: no option
    of this package means anything at infinity.
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be a number "
            f"{_bound(low, high, low_open, high_open)} (got {_shown(text)})".replace("  ", " ")
        ) from None
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ParameterError(
            f"{name} must be a finite number "
            f"{_bound(low, high, low_open, high_open)} (got {_shown(text)})".replace("  ", " ")
        )
    return value


def parse_int(text: str | int, name: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number within ``[low, high]``."""
    raw = str(text).strip()
    if re.fullmatch(r"[+-]?\d{19,}", raw):  # a whole number, past what a count can be
        raise ParameterError(
            f"{name} must be a whole number {_bound(low, high, False, False)} of at most 18 "
            f"digits (got {_shown(text)})".replace("  ", " ")
        )
    if not re.fullmatch(r"[+-]?\d{1,18}", raw):
        raise ParameterError(
            f"{name} must be a whole number {_bound(low, high, False, False)}"
            f" (got {_shown(text)})".replace("  ", " ")
        )
    value = int(raw)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(
            f"{name} must be a whole number {_bound(low, high, False, False)}"
            f" (got {value})".replace("  ", " ")
        )
    return value


def parse_floats(
    text: str, name: str, low: float | None = None, high: float | None = None
) -> list[float]:
    """Comma-separated finite numbers (``--weights 0.5,0.3,0.2``); at least one."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ParameterError(f"{name} has no number in it (got {_shown(text)})")
    if not all(parts):
        raise ParameterError(
            f"{name} has an empty item (got {_shown(text)}); give comma-separated numbers"
        )
    return [parse_float(p, name, low, high) for p in parts]


def parse_weights(text: str, tickers: list[str], name: str = "weights") -> dict[str, float]:
    """One finite, nonzero weight per ticker, in order.

    A zero weight is refused rather than kept: a ticker listed but not held would count
    as a position in every figure that counts positions, and drive the correlation and
    beta estimates of a portfolio that does not hold it.
    """
    values = parse_floats(text, name)
    if len(values) != len(tickers):
        raise ParameterError(
            f"{name} has {len(values)} number(s) for {len(tickers)} "
            f"ticker(s) ({', '.join(tickers)}); give one weight per ticker"
        )
    zero = [t for t, v in zip(tickers, values, strict=True) if v == 0]
    if zero:
        raise ParameterError(
            f"{name}: {', '.join(zero)} ha{'s' if len(zero) == 1 else 've'} "
            "weight 0; leave such tickers out of --tickers instead"
        )
    return dict(zip(tickers, values, strict=True))


def choice(text: str, name: str, allowed: Iterable[str]) -> str:
    """``text`` if it is one of ``allowed``, else ParameterError listing them."""
    allowed = list(allowed)
    if text not in allowed:
        raise ParameterError(
            f"{name} must be one of {', '.join(map(str, allowed))} (got {_shown(text)})"
        )
    return text


def from_query(
    params: Mapping[str, str], name: str, parse: Callable[[str], T], default: T
) -> tuple[T, str | None]:
    """A dashboard URL value parsed with ``parse``, or ``default`` and a message.

    Returns ``(value, None)`` when the parameter is absent or valid, and
    ``(default, message)`` when it is malformed; the message names the parameter, says
    why and that the default is used, ready for ``st.warning``.
    """
    raw = params.get(name)
    if raw is None:
        return default, None
    try:
        return parse(raw), None
    except ParameterError as exc:
        return default, (
            f"The link's '{name}' value was ignored: {exc}. Using the default instead."
        )
