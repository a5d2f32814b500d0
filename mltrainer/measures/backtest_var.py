"""Backtests of VaR forecasts: exceptions, Kupiec, Christoffersen, Basel traffic light.

An *exception* (violation, hit) on day t+1 is a realised loss above the VaR forecast
made at t: ``-r[t+1] > VaR[t]``. :func:`var_exceptions` aligns it on t+1, the day it
is known.

Tests, with ``n`` forecasts, ``x`` exceptions and tail probability ``p = 1 - level``:

Kupiec (1995) proportion of failures, chi-square(1) under H0 "the exception rate is p":
    ``LR_pof = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]``.
Christoffersen (1998) independence, chi-square(1), from the transition counts ``n_ij``
(day with state i followed by a day with state j, 1 = exception):
    ``pi_0 = n01/(n00+n01)``, ``pi_1 = n11/(n10+n11)``, ``pi = (n01+n11)/(n-1 pairs)``,
    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)]
    + 2 ln[(1-pi_0)^n00 pi_0^n01 (1-pi_1)^n10 pi_1^n11]``.
Conditional coverage: ``LR_cc = LR_pof + LR_ind``, chi-square(2).
``0 ln 0`` is taken as 0 throughout (``scipy.special.xlogy``).

Basel traffic light (Basel Committee 1996, "Supervisory framework for the use of
backtesting"): with the binomial(n, p) cumulative probability ``F(x)``, the zone is
green while ``F(x) < 95 %``, yellow while ``F(x) < 99.99 %``, red beyond; for 250 days
at 99 % that is 0-4 green, 5-9 yellow, 10+ red, with capital plus factors
0, 0.40, 0.50, 0.65, 0.75, 0.85 (5..9 exceptions) and 1.

References
----------
Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models.
*Journal of Derivatives* 3(2).
Christoffersen, P. (1998). Evaluating interval forecasts. *International Economic
Review* 39(4).
Basel Committee on Banking Supervision (1996). Supervisory framework for the use of
"backtesting" in conjunction with the internal models approach to market risk capital.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from mltrainer.errors import DataError, ParameterError

# Exception indicators: 0/1 or bool per day (a Series, an array or a list); NaNs dropped.
Exceptions = pd.Series | np.ndarray | Sequence[float]

# Basel plus factors for 250 observations at 99 % (exceptions -> addition to the multiplier 3)
BASEL_PLUS_FACTOR = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


def var_exceptions(returns: pd.Series, var: pd.Series) -> pd.Series:
    """Exceptions aligned on the day they happen: ``1.0`` where ``-r[t] > VaR[t-1]``.

    ``var`` is the forecast series as produced by the rolling functions (value at t is
    for t+1). NaN where there is no forecast for the day or no return.
    """
    r = returns.astype("float64")
    forecast = var.reindex(r.index).shift(1)
    out = (-r > forecast).astype("float64")
    return out.where(forecast.notna() & r.notna()).rename("exception")


def _hits(exceptions: Exceptions) -> np.ndarray:
    x = np.asarray(exceptions, dtype="float64")
    x = x[~np.isnan(x)]
    if x.ndim != 1 or x.size == 0:
        raise DataError("the exception series is empty (no VaR forecast met a return)")
    if not np.isin(x, (0.0, 1.0)).all():
        raise DataError("exceptions must be 0/1 (or booleans)")
    return x.astype(bool)


def _p(level: float) -> float:
    if not 0 < level < 1:
        raise ParameterError(f"level must be strictly between 0 and 1 (got {level})")
    return 1.0 - level


def _loglik(k0: int, k1: int, prob1: float) -> float:
    """``k0 ln(1-q) + k1 ln q`` with ``0 ln 0 = 0``."""
    return special.xlogy(k0, 1.0 - prob1) + special.xlogy(k1, prob1)


def kupiec_pof(exceptions: Exceptions, level: float = 0.99) -> dict:
    """Kupiec proportion-of-failures test.

    Parameters
    ----------
    exceptions : array-like of 0/1 or bool (NaNs dropped)
    level : float
        VaR confidence level.

    Returns
    -------
    dict with ``n``, ``exceptions``, ``expected`` (n p), ``rate``, ``lr`` and ``p_value``
    (chi-square with 1 degree of freedom).
    """
    hits = _hits(exceptions)
    p = _p(level)
    n, x = hits.size, int(hits.sum())
    lr = -2.0 * (_loglik(n - x, x, p) - _loglik(n - x, x, x / n))
    lr = max(float(lr), 0.0)
    return {
        "n": n,
        "exceptions": x,
        "expected": n * p,
        "rate": x / n,
        "lr": lr,
        "p_value": float(stats.chi2.sf(lr, 1)),
    }


def transition_counts(exceptions: Exceptions) -> dict:
    """Counts ``n00, n01, n10, n11`` of consecutive (yesterday, today) exception states."""
    hits = _hits(exceptions).astype(int)
    prev, cur = hits[:-1], hits[1:]
    return {f"n{i}{j}": int(((prev == i) & (cur == j)).sum()) for i in (0, 1) for j in (0, 1)}


def christoffersen(exceptions: Exceptions, level: float = 0.99) -> dict:
    """Christoffersen independence and conditional coverage tests.

    Returns
    -------
    dict with the transition counts, ``pi0``, ``pi1``, ``pi``, ``lr_ind`` and
    ``p_value_ind`` (chi-square 1), ``lr_cc`` and ``p_value_cc`` (chi-square 2).
    With no exception (or only exceptions) the independence statistic is 0.
    """
    c = transition_counts(exceptions)
    n00, n01, n10, n11 = c["n00"], c["n01"], c["n10"], c["n11"]
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pairs = n00 + n01 + n10 + n11
    pi = (n01 + n11) / pairs if pairs else 0.0
    restricted = _loglik(n00 + n10, n01 + n11, pi)
    unrestricted = _loglik(n00, n01, pi0) + _loglik(n10, n11, pi1)
    lr_ind = max(float(-2.0 * (restricted - unrestricted)), 0.0)
    pof = kupiec_pof(exceptions, level)
    lr_cc = pof["lr"] + lr_ind
    return {
        **c,
        "pi0": pi0,
        "pi1": pi1,
        "pi": pi,
        "lr_ind": lr_ind,
        "p_value_ind": float(stats.chi2.sf(lr_ind, 1)),
        "lr_pof": pof["lr"],
        "lr_cc": lr_cc,
        "p_value_cc": float(stats.chi2.sf(lr_cc, 2)),
    }


# the Basel Committee set its zones for 99 % VaR; at another level the same binomial
# cut-offs are applied, which a reader must be told
BASEL_LEVEL_NOTE = (
    "Basel defines its zones for 99 % VaR; at other levels the same binomial cut-offs "
    "(95 % and 99.99 % cumulative probability of the exceptions) are applied"
)


def traffic_light_zone(n_exceptions: int, n: int = 250, level: float = 0.99) -> str:
    """Basel zone ``green``/``yellow``/``red`` of ``n_exceptions`` in ``n`` days."""
    if n_exceptions < 0 or n < 1:
        raise DataError(f"need n >= 1 and a non-negative exception count (got {n_exceptions}, {n})")
    cdf = stats.binom.cdf(n_exceptions, n, _p(level))
    # a small tolerance keeps the published 250-day table exact at the 95 % boundary
    if cdf < 0.95 - 1e-12:
        return "green"
    if cdf < 0.9999 - 1e-12:
        return "yellow"
    return "red"


def traffic_light(exceptions: Exceptions, level: float = 0.99, window: int = 250) -> dict:
    """Basel traffic light over the last ``window`` forecasts (all if fewer).

    Returns a dict with ``n``, ``exceptions``, ``zone``, ``cumulative_probability`` (of
    that many or fewer exceptions) and, for 250 days at 99 %, the Basel ``plus_factor``.
    """
    hits = _hits(exceptions)[-window:]
    n, x = hits.size, int(hits.sum())
    zone = traffic_light_zone(x, n, level)
    out = {
        "n": n,
        "exceptions": x,
        "zone": zone,
        "cumulative_probability": float(stats.binom.cdf(x, n, _p(level))),
    }
    if n == 250 and abs(level - 0.99) < 1e-12:
        out["plus_factor"] = 0.0 if zone == "green" else BASEL_PLUS_FACTOR.get(x, 1.0)
    return out


def backtest_tables(exceptions: Exceptions, level: float = 0.99) -> dict[str, pd.DataFrame]:
    """The three backtests as one-row frames (what a model puts in its ``tables``)."""
    return {
        "kupiec": pd.DataFrame([kupiec_pof(exceptions, level)]),
        "christoffersen": pd.DataFrame([christoffersen(exceptions, level)]),
        "traffic_light": pd.DataFrame([traffic_light(exceptions, level)]),
    }
