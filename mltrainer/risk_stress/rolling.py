"""Stress losses through time: the scenarios of an equal-weight book at every date.

The rolling counterpart of the one-date scenarios (:mod:`~mltrainer.risk_stress.shocks`,
:mod:`~mltrainer.risk_stress.liquidity`): row t uses data up to t only, for the book of
the tickers with a full trailing window at t. The model registry reaches
:func:`rolling_stress_losses` through
:class:`~mltrainer.models.stress.StressTestingModel`; like the rest of the package, this
module reads ``data``, ``measures`` and ``errors``, never ``models``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.measures.portfolio import rolling_beta
from mltrainer.risk_stress.scenarios import equal_weight_market, liquidity_haircut

ADV_WINDOW = 20  # days of dollar volume averaged into ADV$
PARTICIPATION = 0.10  # share of daily volume a forced seller takes
SPREAD_BPS = 10.0  # normal bid-ask spread assumed for S&P 500 stocks, basis points


def _alive_runs(alive: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(start, stop, columns) of each run of consecutive rows sharing one alive set."""
    change = np.ones(len(alive), dtype=bool)
    change[1:] = (alive[1:] != alive[:-1]).any(axis=1)
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], len(alive))
    return [(a, b, np.flatnonzero(alive[a])) for a, b in zip(starts, stops, strict=True)]


def equal_weight_book_vol(returns: np.ndarray, alive: np.ndarray, window: int) -> np.ndarray:
    """Daily volatility at each t of the equal-weight book over the tickers alive at t.

    ``sigma_p,t = std_{s in (t-window, t]}(mean_{i in A_t} r_i,s)`` (ddof=1), which is
    exactly ``sqrt(w_t' Sigma_t w_t)`` with ``Sigma_t`` the sample covariance of the
    window, because every alive ticker has a return on every day of its window.
    """
    out = np.full(len(returns), np.nan)
    # one pass per run of dates sharing an alive set (it changes only when a ticker gains
    # or loses a full window, a few hundred times on 22 years of the S&P 500)
    for a, b, cols in _alive_runs(alive):
        if cols.size == 0:
            continue
        lo = a - window + 1
        if lo < 0:
            continue
        book = returns[lo:b][:, cols].mean(axis=1)
        out[a:b] = sliding_window_view(book, window).std(axis=1, ddof=1)
    return out


def _liquidity_loss(
    data: MarketData,
    w: np.ndarray,
    sigma: np.ndarray,
    alive: np.ndarray,
    portfolio_value: float,
    spread_multiplier: float,
) -> np.ndarray:
    """Forced-sale cost of the book per date (NaN without volume or with a missing ADV$)."""
    if not data.has_volume:
        return np.full(len(w), np.nan)
    dollar = (data.close * data.volume).rolling(ADV_WINDOW, min_periods=ADV_WINDOW // 2)
    haircut, _ = liquidity_haircut(
        portfolio_value * w,
        dollar.mean().to_numpy(),
        sigma,
        participation=PARTICIPATION,
        spread_bps=SPREAD_BPS,
        spread_multiplier=spread_multiplier,
    )
    cost = np.where(alive, w * haircut, 0.0)
    unknown = (alive & ~np.isfinite(haircut)).any(axis=1) | ~alive.any(axis=1)
    return np.where(unknown, np.nan, portfolio_value * cost.sum(axis=1))


def rolling_stress_losses(
    data: MarketData,
    *,
    crash_size: float,
    vol_multiplier: float,
    correlation_push: float,
    spread_multiplier: float,
    portfolio_value: float,
    confidence: float,
    window: int,
    market: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-day scenario losses of an equal-weight book through time (causal).

    At each date t the book holds, in equal weights ``w_t = 1 / |A_t|``, the tickers
    ``A_t`` with a return on each of the last ``window`` days. With
    ``z = Phi^-1(confidence)``, ``V = portfolio_value`` and ``beta_i,t`` the OLS beta on
    the market over the same window:

    - ``crash_loss = -V * sum_i w_i max(crash_size * beta_i,t, -1)`` (a price stops at 0)
    - ``base_var = V z sigma_p,t`` (normal one-day VaR, zero mean)
    - ``vol_spike_loss = vol_multiplier * base_var``
    - ``correlation_loss = V z sqrt((1 - a) sigma_p,t^2 + a (sum_i w_i sigma_i,t)^2)``,
      the VaR with every correlation pushed a fraction ``a`` toward one
    - ``liquidity_loss = V sum_i w_i haircut_i,t``
      (:func:`mltrainer.risk_stress.scenarios.liquidity_haircut` with ADV$ over 20 days,
      10% participation, 10 bp spreads times ``spread_multiplier``); NaN when the data
      has no volume.

    The keyword arguments are the parameters of
    :class:`~mltrainer.models.stress.StressTestingModel` (see there).
    Losses are positive currency amounts. ``market`` (daily index returns) defaults
    to the equal-weight mean of every ticker; with one ticker the crash loss is NaN.

    Returns
    -------
    (losses, betas) : DataFrame of the five columns above, DataFrame of betas.
    """
    returns = data.returns()
    if market is None:
        try:
            market = equal_weight_market(returns)
        except DataError:
            market = pd.Series(np.nan, index=returns.index)
    betas = rolling_beta(returns, market, window)
    sigma = returns.rolling(window, min_periods=window).std().to_numpy()
    alive = np.isfinite(sigma)
    n_alive = alive.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(alive, 1.0 / n_alive[:, None], 0.0)
    none = n_alive == 0
    z = float(norm.ppf(confidence))
    vol_p = equal_weight_book_vol(returns.to_numpy(dtype="float64"), alive, window)
    mean_sigma = np.where(alive, sigma, 0.0).sum(axis=1) / np.where(none, np.nan, n_alive)
    b = betas.to_numpy()
    # each move floored at -100% (a price cannot fall below 0), as market_crash does
    moves = np.maximum(np.where(alive, np.nan_to_num(b), 0.0) * crash_size, -1.0)
    crash_p = (w * moves).sum(axis=1)
    crash_p[none | (alive & np.isnan(b)).any(axis=1)] = np.nan
    a = correlation_push
    losses = {
        "crash_loss": -portfolio_value * crash_p,
        "base_var": portfolio_value * z * vol_p,
        "vol_spike_loss": portfolio_value * z * vol_multiplier * vol_p,
        "correlation_loss": portfolio_value * z * np.sqrt((1 - a) * vol_p**2 + a * mean_sigma**2),
        "liquidity_loss": _liquidity_loss(
            data, w, sigma, alive, portfolio_value, spread_multiplier
        ),
    }
    frame = pd.DataFrame(losses, index=returns.index)
    frame.loc[none, :] = np.nan
    return frame, betas
