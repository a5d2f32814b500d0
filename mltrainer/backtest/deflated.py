"""The deflated Sharpe ratio (Bailey & López de Prado 2014): a Sharpe ratio discounted
for the number of trials it was selected among.

With per-period Sharpe ratios, ``N`` trials whose Sharpe ratios have variance ``V``, and
the Euler-Mascheroni constant ``γ``::

    SR0 = sqrt(V) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))
    DSR = Φ( (SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR²) )

``kurt`` is the Pearson kurtosis (3 for a normal). With one trial there is no selection
to deflate for: ``SR0 = 0`` and the DSR is the probabilistic Sharpe ratio against 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mltrainer.errors import ParameterError

EULER_GAMMA = 0.5772156649015329


def per_period_sharpe(r: np.ndarray) -> float:
    """``mean(r) / std(r)`` (ddof=1) of the finite returns; NaN for a constant series."""
    r = r[np.isfinite(r)]
    sd = np.std(r, ddof=1) if len(r) > 1 else 0.0
    return float(np.mean(r) / sd) if sd > 0 else float("nan")


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """``Φ((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR²))`` (per period)."""
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if n_obs < 2 or not np.isfinite(sr) or denom <= 0:
        return float("nan")
    return float(stats.norm.cdf((sr - sr_benchmark) * np.sqrt(n_obs - 1) / np.sqrt(denom)))


def expected_max_sharpe(var_trials: float, n_trials: int) -> float:
    """``SR0``: the expected largest of ``n_trials`` Sharpe ratios under no skill."""
    if n_trials < 1:
        raise ParameterError(f"n_trials must be at least 1 (got {n_trials})")
    if n_trials == 1:
        return 0.0
    return float(
        np.sqrt(var_trials)
        * (
            (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
            + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e))
        )
    )


def deflated_sharpe_ratio(
    returns: np.ndarray | pd.Series, trial_sharpes: np.ndarray | None, n_trials: int | None = None
) -> dict:
    """The DSR of a return series selected among trials (all per period).

    Parameters
    ----------
    returns : array
        The selected strategy's per-period returns (T observations).
    trial_sharpes : array, optional
        Per-period Sharpe ratios of every trial (their sample variance, ddof=1, is V).
    n_trials : int, optional
        Number of trials (default: ``len(trial_sharpes)``, or 1).

    Returns
    -------
    dict with ``dsr`` (a probability), ``sharpe_per_period`` (not annualised, as ``sr0``),
    ``sr0, n_trials, var_trials, n_obs, skew, kurtosis``.
    """
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    trial = np.asarray(trial_sharpes, dtype="float64") if trial_sharpes is not None else np.empty(0)
    trial = trial[np.isfinite(trial)]
    n = int(n_trials if n_trials is not None else max(len(trial), 1))
    var = float(np.var(trial, ddof=1)) if len(trial) > 1 else 0.0
    sr = per_period_sharpe(r)
    skew = float(stats.skew(r, bias=True)) if len(r) > 2 else float("nan")
    kurt = float(stats.kurtosis(r, fisher=False, bias=True)) if len(r) > 3 else float("nan")
    sr0 = expected_max_sharpe(var, n)
    return {
        "dsr": probabilistic_sharpe_ratio(sr, sr0, len(r), skew, kurt),
        "sharpe_per_period": sr,  # a daily Sharpe beside an annualised one misleads
        "sr0": sr0,
        "n_trials": n,
        "var_trials": var,
        "n_obs": int(len(r)),
        "skew": skew,
        "kurtosis": kurt,
    }
