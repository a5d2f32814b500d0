"""The feature panel and labels the machine-learning models learn from.

Every feature at date t is computed from data up to t only (trailing windows on the
adjusted close and split-adjusted volume), for all tickers at once, and is NaN where a
window is not full. Labels look ahead by construction and are only ever used for
training rows whose label ends before the refit date (see ``_ml_walkforward``).

Features (``F`` columns of a dates x tickers x F array):

- ``ret_w``: log return over ``w`` days, ``log(P_t / P_{t-w})``, w in 1, 5, 21, 63, 126, 252;
- ``xs_ret_w``: the same minus the cross-sectional mean that date (w in 21, 63);
- ``vol_w``: annualised standard deviation of daily log returns over w in 21, 63;
- ``rsi_14``: Wilder's RSI (:func:`mltrainer.numerics.indicators.rsi`), rescaled to
  ``RSI/100 - 0.5``;
- ``ma_dist_w``: ``P_t / SMA_w - 1`` for w in 20, 50, 200;
- ``volume_z``: z-score of log volume (split-consistent without look-ahead) against its
  trailing 63-day mean and deviation (only when the data has volume);
- ``sector_<name>``: one-hot GICS sector (only when the data carries sectors).
"""

from __future__ import annotations

import numpy as np

from mltrainer.data.market_data import MarketData
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.indicators import rsi
from mltrainer.numerics.units import SQRT_TRADING_DAYS

RETURN_WINDOWS = (1, 5, 21, 63, 126, 252)
XS_WINDOWS = (21, 63)
VOL_WINDOWS = (21, 63)
MA_WINDOWS = (20, 50, 200)
RSI_WINDOW = 14
VOLUME_WINDOW = 63


def _lagged(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if n < x.shape[0]:
        out[n:] = x[:-n]
    return out


def _log_prices(data: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """The adjusted close and its logarithm (NaN where missing), in row-major order."""
    prices = data.adj_close.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return prices, np.log(prices)


def feature_panel(data: MarketData) -> tuple[np.ndarray, list[str]]:
    """The (dates, tickers, features) array of the module notes and the feature names."""
    prices, logp = _log_prices(data)
    names, cols = [], []
    for w in RETURN_WINDOWS:
        names.append(f"ret_{w}")
        cols.append(logp - _lagged(logp, w))
    for w in XS_WINDOWS:
        r = cols[RETURN_WINDOWS.index(w)]
        with np.errstate(invalid="ignore"):
            count = np.isfinite(r).sum(axis=1, keepdims=True)
            mean = np.where(
                count > 0, np.nansum(r, axis=1, keepdims=True) / np.maximum(count, 1), np.nan
            )
        names.append(f"xs_ret_{w}")
        cols.append(r - mean)
    daily = cols[0]
    for w in VOL_WINDOWS:
        names.append(f"vol_{w}")
        cols.append(rl.rolling_std(daily, w) * SQRT_TRADING_DAYS)
    names.append(f"rsi_{RSI_WINDOW}")
    cols.append(np.asarray(rsi(prices, RSI_WINDOW), dtype="float64") / 100.0 - 0.5)
    for w in MA_WINDOWS:
        names.append(f"ma_dist_{w}")
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(prices / rl.rolling_mean(prices, w) - 1.0)
    if data.has_volume:
        # split-consistent without look-ahead (back-adjusting would scale by later splits)
        volume = rl.causal_split_volume(data.volume, data.splits)
        with np.errstate(invalid="ignore", divide="ignore"):
            logv = np.log(np.where(volume > 0, volume, np.nan))
        mean, sd = rl.rolling_mean_std(logv, VOLUME_WINDOW)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(sd > 0, (logv - mean) / sd, np.nan)
        names.append("volume_z")
        cols.append(z)
    if data.sectors:  # each date's sector where the data knows it (REITs: Financials to 2016)
        sectors, spans = data.sector_codes()
        code = np.empty(prices.shape, dtype=int)
        for row, of in spans:
            code[row:] = of
        for k, sector in enumerate(sectors):
            names.append(f"sector_{sector}")
            cols.append(np.where(np.isfinite(prices), code == k, np.nan))
    return np.stack(cols, axis=-1), names


def forward_log_return(data: MarketData, horizon: int) -> np.ndarray:
    """``log(P_{t+h} / P_t)`` per (date, ticker); NaN where t+h is past the data."""
    logp = _log_prices(data)[1]
    out = np.full_like(logp, np.nan)
    if horizon < logp.shape[0]:
        out[:-horizon] = logp[horizon:] - logp[:-horizon]
    return out


def trailing_log_return(data: MarketData, horizon: int) -> np.ndarray:
    """``log(P_t / P_{t-h})``: the "last sign" baseline's score, known at t."""
    logp = _log_prices(data)[1]
    return logp - _lagged(logp, horizon)
