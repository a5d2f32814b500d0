"""Pure maths shared by the regime models: labels, thresholds, walk-forward refits, summaries.

Conventions
-----------
A regime label is an integer ``0 .. k-1`` stored as float64 (NaN where undefined:
warm-up, missing prices). Labels are ordered by stress: ``0`` is the calmest regime and
``k-1`` the most stressed (highest volatility), so a label means the same thing in every
refit, every year and every model.

Every function is causal: the value at row t uses rows up to t only. Anything fitted is
refitted at scheduled rows ``r`` from rows strictly before ``r`` and applied to the rows
from ``r`` until the next refit (walk-forward). Schedules count rows from the first valid
observation of a series, so they do not move when later data arrive.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mltrainer.numerics.schedule import refit_rows, stops
from mltrainer.numerics.threads import single_thread
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS


# --------------------------------------------------------------------------- features
def rolling_volatility(log_returns: pd.Series, window: int) -> pd.Series:
    """Annualised trailing volatility ``std(r[t-window+1..t]) * sqrt(252)`` (ddof=1)."""
    return log_returns.rolling(window, min_periods=window).std() * SQRT_TRADING_DAYS


def regime_features(prices: pd.Series, window: int, trend_window: int) -> pd.DataFrame:
    """Return, volatility and trend features of one price series (trailing windows).

    Parameters
    ----------
    prices : Series
        Positive prices of one instrument, no missing values.
    window : int
        Window of the return and volatility features, trading days.
    trend_window : int
        Moving-average window of the trend feature, trading days.

    Returns
    -------
    DataFrame
        ``ret``: annualised mean log return over ``window`` (``252 * mean r``);
        ``vol``: log of the annualised volatility over ``window`` (log because volatility
        is right-skewed and clusters in logs); ``trend``: ``log(P_t / MA_trend(P)_t)``.
        NaN until every window is full.
    """
    r = np.log(prices).diff()
    ret = r.rolling(window, min_periods=window).mean() * TRADING_DAYS
    vol = np.log(rolling_volatility(r, window))
    trend = np.log(prices / prices.rolling(trend_window, min_periods=trend_window).mean())
    return pd.DataFrame({"ret": ret, "vol": vol, "trend": trend})


# ----------------------------------------------------------------------- thresholds
def expanding_quantile_labels(
    values: pd.Series, quantiles: tuple[float, ...], min_periods: int
) -> tuple[pd.Series, pd.DataFrame]:
    """Label each value by how many past-only quantile thresholds it exceeds.

    ``label_t = #{j : values_t > q_j(t)}`` where ``q_j(t)`` is the ``quantiles[j]``
    quantile (linear interpolation) of ``values`` up to and including t. With
    ``quantiles = (1/3, 2/3)`` this gives terciles of the history known at t.

    Returns
    -------
    labels : Series
        0 .. len(quantiles); NaN until ``min_periods`` values are known.
    thresholds : DataFrame
        One column per quantile (named ``q0.33`` ...), NaN during the warm-up.
    """
    expanding = values.expanding(min_periods=min_periods)
    thresholds = pd.DataFrame(
        {f"q{q:.2f}": expanding.quantile(q) for q in quantiles}, index=values.index
    )
    above = values.to_numpy()[:, None] > thresholds.to_numpy()
    labels = above.sum(axis=1).astype("float64")
    labels[thresholds.iloc[:, 0].isna().to_numpy() | values.isna().to_numpy()] = np.nan
    return pd.Series(labels, index=values.index), thresholds


def stress_rank(key: np.ndarray) -> np.ndarray:
    """``rank[old_label]`` = new label after sorting by ``key`` ascending (0 = calmest)."""
    order = np.argsort(np.asarray(key, dtype="float64"), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank


# ------------------------------------------------------------------------ walk-forward
def walk_forward(
    features: np.ndarray,
    min_train: int,
    refit_every: int,
    fit_apply: Callable[[np.ndarray, np.ndarray], np.ndarray],
    k: int,
    max_train: int = 0,
) -> np.ndarray:
    """Run ``fit_apply(train_rows, apply_rows) -> probabilities`` on a refit schedule.

    Parameters
    ----------
    features : ndarray, shape (n, f)
        Feature rows; rows with a NaN before the first complete row are the warm-up.
    min_train, refit_every : int
        Schedule: the first fit ``min_train`` rows after the first complete row, then
        every ``refit_every`` rows (:func:`mltrainer.numerics.schedule.refit_rows`).
    fit_apply : callable
        Fits on ``train`` (rows strictly before the refit row) and returns an
        ``(len(apply), k)`` array of regime probabilities (columns already sorted by
        stress) for the rows it is applied to.
    k : int
        Number of regimes.
    max_train : int
        0 for an expanding training window, else the most recent ``max_train`` rows.

    Returns
    -------
    ndarray, shape (n, k)
        Probabilities, NaN before the first refit.
    """
    n = len(features)
    out = np.full((n, k), np.nan)
    complete = np.isfinite(features).all(axis=1)
    if not complete.any():
        return out
    first = int(np.argmax(complete))
    rows = refit_rows(n, first + min_train, refit_every)
    with single_thread():
        for start, stop in zip(rows, stops(rows, n), strict=True):  # a few dozen fits, not days
            lo = first if max_train == 0 else max(first, start - max_train)
            train = features[lo:start]
            train = train[np.isfinite(train).all(axis=1)]
            block = features[start:stop]
            ok = np.isfinite(block).all(axis=1)
            if ok.any():
                out[start:stop][ok] = fit_apply(train, block[ok])
    return out


def standardise(train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Scale ``x`` with the column means and standard deviations of ``train``."""
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd


# ---------------------------------------------------------------------- labels/probs
def argmax_labels(probs: np.ndarray) -> np.ndarray:
    """Most probable regime per row (float, NaN where the row is all NaN)."""
    valid = np.isfinite(probs).all(axis=1)
    labels = np.full(len(probs), np.nan)
    if valid.any():
        labels[valid] = np.argmax(probs[valid], axis=1)
    return labels


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """Degenerate probabilities of a hard classifier: 1 for its label, NaN where undefined."""
    labels = np.asarray(labels, dtype="float64")
    out = (labels[:, None] == np.arange(k)[None, :]).astype("float64")
    out[np.isnan(labels)] = np.nan
    return out


# -------------------------------------------------------------------------- ensemble
def ensemble_regimes(
    labels: dict[str, np.ndarray],
    n_regimes: dict[str, int],
    log_returns: np.ndarray,
    window: int,
    horizon: int,
    k: int = 3,
) -> dict[str, np.ndarray]:
    """Combine member regime labels on a common stress scale, weighted by recent skill.

    Parameters
    ----------
    labels : dict of ndarray
        Each member's labels (0 .. n_m - 1, NaN where undefined), rows aligned.
    n_regimes : dict of int
        Each member's number of regimes ``n_m``.
    log_returns : ndarray
        Daily log returns of the series (row t = return into day t).
    window : int
        Trailing window (rows) over which each member's skill is measured.
    horizon : int
        Days of realised volatility a stress label should anticipate.
    k : int
        Regimes of the ensemble (3: calm, normal, stressed).

    Returns
    -------
    dict of ndarray
        ``probs`` (n, k), ``labels``, ``stress`` (weighted mean stress in [0, 1]),
        ``agreement`` (share of defined members whose common label equals the
        ensemble's) and ``weight_<member>`` (normalised weights).

    Notes
    -----
    Member m's stress is ``s_m = label_m / (n_m - 1)`` in [0, 1] and its common label
    ``c_m = round(s_m (k - 1))``. Its skill at t is the correlation, over the ``window``
    pairs ending at t, between ``s_m(tau - horizon)`` and the realised volatility of the
    ``horizon`` days after it, ``rv(tau) = std(r[tau-horizon+1 .. tau])``: every pair is
    fully known at t. Weights ``w_m = max(skill_m, 0)`` are normalised over the members
    defined at t (equal weights where no member has positive skill yet). The ensemble
    probability of regime j is ``sum_m w_m [c_m = j]`` and its label the most probable
    regime (ties go to the calmer one).
    """
    names = list(labels)
    stress = np.column_stack([labels[m] / (n_regimes[m] - 1) for m in names])
    defined = np.isfinite(stress)
    common = np.where(defined, np.round(np.nan_to_num(stress) * (k - 1)), -1)
    w = skill_weights(stress, log_returns, window, horizon)
    any_member = defined.any(axis=1)
    probs = np.column_stack([np.nansum(w * (common == j), axis=1) for j in range(k)])
    probs[~any_member] = np.nan
    out_labels = argmax_labels(probs)
    agree = (common == out_labels[:, None]) & defined
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = agree.sum(axis=1) / defined.sum(axis=1)
        mean_stress = np.nansum(w * np.nan_to_num(stress), axis=1)
    agreement[~any_member] = np.nan
    mean_stress[~any_member] = np.nan
    out = {"probs": probs, "labels": out_labels, "stress": mean_stress, "agreement": agreement}
    for i, m in enumerate(names):
        out[f"weight_{m}"] = w[:, i]
    return out


def skill_weights(
    stress: np.ndarray, log_returns: np.ndarray, window: int, horizon: int
) -> np.ndarray:
    """Members' weights from their recent skill at foreseeing volatility.

    ``stress`` is (n, members), NaN where a member is undefined; the skill and the
    weights are those of :func:`ensemble_regimes`. Rows sum to 1 over the members
    defined there (NaN where none is).
    """
    defined = np.isfinite(stress)
    rv = pd.Series(log_returns).rolling(horizon, min_periods=horizon).std()
    skill = np.column_stack(
        [
            pd.Series(member).shift(horizon).rolling(window, min_periods=window).corr(rv)
            for member in stress.T
        ]
    )
    w = np.where(defined, np.clip(np.nan_to_num(skill, nan=0.0), 0.0, None), 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total > 0, w, defined.astype("float64"))
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined.any(axis=1)[:, None], w / total, np.nan)
