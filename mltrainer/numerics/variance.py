"""Variance recursions and the losses of variance forecasts.

- :func:`ewma_variance`: exponentially weighted (RiskMetrics) variance, the one
  implementation: the volatility models use it on a (dates x tickers) panel with gaps
  (:class:`~mltrainer.models.volatility.VolatilityClusteringModel`), the VaR measures on
  one clean series started from a seed (:func:`mltrainer.measures.var.ewma_variance`).
- :func:`garch_variance`: the GARCH(p, o, q) conditional variance given parameters
  (EWMA is GARCH(1, 1) with ``omega = 0``), started as ``arch`` starts it
  (:func:`garch_backcast`).
- :func:`mse_loss`, :func:`qlike_loss`: forecast against a realised variance proxy.
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


def garch_backcast(resid: np.ndarray) -> float:
    """arch's start-up value for the recursion: an EWMA (0.94) of the first 75 ``e^2``."""
    tau = min(75, resid.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / w.sum()
    return float(np.sum(resid[:tau] ** 2 * w))


def garch_variance(
    vol_params: np.ndarray, resid: np.ndarray, backcast: float, p: int, o: int, q: int
) -> np.ndarray:
    """Conditional variances ``sigma^2_0 .. sigma^2_n`` of a GARCH(p, o, q) given residuals.

    ``sigma^2_t = omega + sum_i alpha_i e^2_{t-i} + sum_j gamma_j e^2_{t-j} 1[e_{t-j} < 0]
    + sum_k beta_k sigma^2_{t-k}``, with the backcast standing in for ``e^2`` and
    ``sigma^2`` before the sample (and half of it for the asymmetric term), as in
    arch's ``garch_recursion``. The last of the n + 1 values is the one-step-ahead
    forecast made after the last residual. The beta part is an IIR filter, so the
    recursion runs in scipy's compiled ``lfilter`` rather than a Python loop. arch
    also clamps each variance into loose data-driven bounds (1e-6 to 1e6 times an
    EWMA variance) to keep its optimiser away from NaNs; fitted parameters never
    reach them, so they are not applied here.

    Parameters
    ----------
    vol_params : ``[omega, alpha_1..p, gamma_1..o, beta_1..q]``
    resid : residuals ``e_t = y_t - mu`` (n)
    backcast : value from :func:`garch_backcast`
    """
    n = resid.shape[0]
    omega = vol_params[0]
    alpha = vol_params[1 : 1 + p]
    gamma = vol_params[1 + p : 1 + p + o]
    beta = vol_params[1 + p + o : 1 + p + o + q]
    lags = max(p, o, 1)
    e2 = np.concatenate([np.full(lags, backcast), resid**2])
    neg = np.concatenate([np.full(lags, 0.5 * backcast), resid**2 * (resid < 0)])
    # drive_t (t = 0..n) = omega + sum alpha_i e2_{t-i} + sum gamma_j neg_{t-j}
    drive = np.full(n + 1, omega, dtype="float64")
    for i, a in enumerate(alpha, start=1):
        drive += a * e2[lags - i : lags - i + n + 1]
    for j, g in enumerate(gamma, start=1):
        drive += g * neg[lags - j : lags - j + n + 1]
    if q == 0:
        return drive
    a_coef = np.concatenate([[1.0], -np.asarray(beta, dtype="float64")])
    zi = signal.lfiltic([1.0], a_coef, y=np.full(q, backcast))
    return signal.lfilter([1.0], a_coef, drive, zi=zi)[0]


def mse_loss(realised: np.ndarray, forecast: np.ndarray) -> float:
    """Mean squared error ``mean((s2 - h)^2)`` over pairs where both are finite."""
    ok = np.isfinite(realised) & np.isfinite(forecast)
    return float(np.mean((realised[ok] - forecast[ok]) ** 2)) if ok.any() else float("nan")


def qlike_loss(realised: np.ndarray, forecast: np.ndarray) -> float:
    """Patton's (2011) QLIKE ``mean(s2/h - ln(s2/h) - 1)``, robust to a noisy proxy.

    Pairs need a positive forecast and a positive realised value (a zero squared
    return has no logarithm; such days are left out).
    """
    ok = np.isfinite(realised) & np.isfinite(forecast) & (realised > 0) & (forecast > 0)
    if not ok.any():
        return float("nan")
    ratio = realised[ok] / forecast[ok]
    return float(np.mean(ratio - np.log(ratio) - 1.0))
