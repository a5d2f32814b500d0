"""Exponentially weighted (RiskMetrics) variance: the one implementation.

Used by the volatility models (:class:`~mltrainer.models.volatility.VolatilityClusteringModel`,
on a (dates x tickers) panel with gaps) and by the VaR measures
(:func:`mltrainer.measures.var.ewma_variance`, filtered historical simulation on one
clean series started from a seed).
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def ewma_variance(
    returns: np.ndarray, lam: float, *, seed: float | None = None, min_periods: int = 1
) -> np.ndarray:
    """EWMA of squared returns: at row t, the variance forecast for t+1 made at t.

    Parameters
    ----------
    returns : ndarray, shape (T,) or (T, N)
        Returns, oldest first, one series per column; NaN for a missing one.
    lam : float
        Decay ``lambda`` in (0, 1) (RiskMetrics: 0.94 for daily data).
    seed : float, optional
        The variance before the first return. None: no seed, weights normalised over
        the returns seen so far.
    min_periods : int
        Returns needed before a value is given (NaN before); for the normalised form.

    Returns
    -------
    ndarray, shaped like ``returns``.

    Notes
    -----
    Without a seed, ``s^2_t = sum_i lam^i r_{t-i}^2 / sum_i lam^i`` over the returns seen
    up to t (pandas ``ewm(alpha=1-lam, adjust=True)``): the recursion ``s^2_t = lam
    s^2_{t-1} + (1 - lam) r_t^2`` with finite-sample normalised weights, so that the
    first return is not overweighted and no seed is needed. A missing return adds no
    weight, and the older ones keep decaying across it.

    With a seed ``s``, the plain recursion started from ``s^2_{-1} = s`` (weight
    ``lam^{t+1}`` on the seed); returns should then be finite (a NaN is carried on).

    Both run as the linear filter ``1 / (1 - lam z^-1)`` (``scipy.signal.lfilter``) along
    each series, contiguous in pandas' column-major panels.

    References
    ----------
    J.P. Morgan/Reuters (1996). RiskMetrics Technical Document, 4th ed., section 5.2.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
    x = np.asarray(returns, dtype="float64")
    series = x.reshape(x.shape[0], -1).T  # (N, T): one series per row
    decay = [1.0, -lam]
    if seed is not None:
        start = np.full((series.shape[0], 1), lam * float(seed))
        out = signal.lfilter([1.0], decay, (1.0 - lam) * series * series, zi=start)[0]
    else:
        out = _normalised_ewma(series, decay, min_periods)
    return out.T.reshape(x.shape)


def _normalised_ewma(series: np.ndarray, decay: list[float], min_periods: int) -> np.ndarray:
    """``sum_i lam^i x_{t-i}^2 / sum_i lam^i`` along each row, over its non-NaN values.

    The weights ``sum_i lam^i`` of a row without gaps after its first value are one
    shared ramp, shifted to that value; only rows with gaps filter their own.
    """
    squares = series * series
    seen = ~np.isnan(squares)
    np.copyto(squares, 0.0, where=~seen)
    out = signal.lfilter([1.0], decay, squares)
    n_rows, n_dates = out.shape
    first = seen.argmax(axis=1) if n_dates else np.zeros(n_rows, dtype=int)
    gapless = seen.sum(axis=1) == n_dates - first
    ramp = signal.lfilter([1.0], decay, np.ones(n_dates))
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in np.flatnonzero(gapless):
            out[j, first[j] :] /= ramp[: n_dates - first[j]]
            out[j, : first[j] + max(min_periods, 1) - 1] = np.nan
        gaps = np.flatnonzero(~gapless)
        if gaps.size:
            weights = seen[gaps].astype("float64")
            out[gaps] /= signal.lfilter([1.0], decay, weights)
            out[gaps] = np.where(np.cumsum(weights, axis=1) < min_periods, np.nan, out[gaps])
    return out
