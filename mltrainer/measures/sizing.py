"""Position-sizing rules: the formulas of the sizing models, on (dates x tickers) frames.

A value at date t uses prices and returns up to t only. Kelly bets from a signal's past
trades (:func:`rule_signal`, :func:`trade_statistics`, :func:`kelly_weights`), sizes
from momentum, trend and volatility factors (:func:`momentum_trend_sizes`), VaR budgets
with a drawdown guard (:func:`var_budget_weights`, :func:`drawdown_guard`) and
correlation-aware sizes of one window (:func:`correlation_sizes`). The models in
:mod:`mltrainer.models.sizing` wrap them and then apply the position limits
(:func:`mltrainer.measures.exposure.apply_limits`).

References
----------
Kelly, J. L. (1956). A new interpretation of information rate. *Bell System Technical
Journal* 35(4). Moskowitz, T., Ooi, Y. H., Pedersen, L. H. (2012). Time series
momentum. *Journal of Financial Economics* 104(2). Jorion, P. (2007). *Value at Risk*,
3rd ed., ch. 7 (VaR budgeting).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mltrainer.errors import ParameterError
from mltrainer.measures.allocation import correlation_weights
from mltrainer.numerics.units import SQRT_TRADING_DAYS

SIGNAL_RULES = ("momentum", "trend", "reversal")


def rule_signal(prices: pd.DataFrame, rule: str, lookback: int) -> pd.DataFrame:
    """A built-in directional signal in {-1, 0, +1} from prices up to t.

    ``momentum``: ``sign(P_t / P_{t-L} - 1)``; ``reversal``: its opposite;
    ``trend``: ``sign(P_t - SMA_L(P)_t)``. NaN until L bars exist.
    """
    if rule == "trend":
        sma = prices.rolling(lookback, min_periods=lookback).mean()
        return np.sign(prices - sma)
    move = np.sign(prices / prices.shift(lookback) - 1.0)
    if rule == "momentum":
        return move
    if rule == "reversal":
        return -move
    raise ParameterError(f"signal must be one of {', '.join(SIGNAL_RULES)} (got {rule!r})")


def kelly_fraction(win_rate: ArrayLike, payoff: ArrayLike) -> np.ndarray | pd.DataFrame:
    """Kelly fraction ``f* = p - (1 - p) / b`` of a bet won with probability ``p`` paying
    ``b`` per unit lost.

    It maximises the expected log growth ``p ln(1 + f b) + (1 - p) ln(1 - f)``. NaN where
    ``b`` is not positive. Negative values mean the bet has a negative edge.
    """
    p = np.asarray(win_rate, dtype="float64")
    b = np.asarray(payoff, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(b > 0, p - (1.0 - p) / b, np.nan)
    if isinstance(win_rate, pd.DataFrame):
        return pd.DataFrame(out, index=win_rate.index, columns=win_rate.columns)
    return out


def trade_statistics(
    signal: pd.DataFrame, returns: pd.DataFrame, window: int, min_trades: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Win rate and payoff ratio of the daily trades of a signal over a trailing window.

    A trade on day t is holding ``sign(signal_{t-1})`` through day t's return:
    outcome ``o_t = signal_{t-1} r_t`` (no trade when the signal was 0). Over the last
    ``window`` days up to t: ``p = wins / (wins + losses)``, ``b = mean winning outcome
    / mean |losing outcome|``. NaN until the window is full or with fewer than
    ``min_trades`` trades (or no loss). Returns ``(p, b)``.
    """
    held = signal.shift(1)
    outcome = held * returns
    defined = held.notna() & returns.notna()
    win = (outcome > 0) & defined
    loss = (outcome < 0) & defined

    def total(x: pd.DataFrame) -> pd.DataFrame:
        # NaN where a day of the window is undefined, so the window must be complete
        return x.where(defined).rolling(window, min_periods=window).sum()

    n_win = total(win.astype("float64"))
    n_loss = total(loss.astype("float64"))
    sum_win = total(outcome.where(win, 0.0))
    sum_loss = total(-outcome.where(loss, 0.0))
    trades = n_win + n_loss
    ok = (trades >= min_trades) & (n_win > 0) & (n_loss > 0)
    p = (n_win / trades).where(ok)
    b = ((sum_win / n_win) / (sum_loss / n_loss)).where(ok)
    return p, b


def kelly_weights(
    signal: pd.DataFrame, p: pd.DataFrame, b: pd.DataFrame, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``w = sign(signal) max(0, fraction f*)``: bet the fractional Kelly size in the
    signal's direction, nothing when the edge is negative. Returns ``(w, f*)``."""
    f = kelly_fraction(p, b)
    size = (fraction * f).clip(lower=0.0)
    return np.sign(signal) * size, f


def momentum_trend_sizes(
    prices: pd.DataFrame,
    mom_window: int,
    trend_window: int,
    vol_window: int,
    momentum_weight: float,
    target_vol: float,
) -> tuple[pd.DataFrame, dict]:
    """Sizes from a momentum, a trend and a volatility factor.

    - momentum ``m = tanh(z)``, ``z = ln(P_t / P_{t-M}) / (sigma_d sqrt(M))`` (the move in
      units of its own noise), ``sigma_d`` the daily log-return std over ``vol_window``;
    - trend ``g = sign(P_t - SMA_T(P)_t)``;
    - volatility ``v = target_vol / (sigma_d sqrt(252))``.

    Size ``(a m + (1 - a) g) v / N_t`` with ``a = momentum_weight`` and N_t the number of
    tickers trading at t. Returns ``(size, factors)``.
    """
    logp = np.log(prices)
    ret = logp.diff()
    sigma = ret.rolling(vol_window, min_periods=vol_window).std()
    sigma = sigma.where(sigma > 0)
    z = (logp - logp.shift(mom_window)) / (sigma * np.sqrt(mom_window))
    mom = np.tanh(z)
    sma = prices.rolling(trend_window, min_periods=trend_window).mean()
    trend = np.sign(prices - sma)
    vol = target_vol / (sigma * SQRT_TRADING_DAYS)
    n = prices.notna().sum(axis=1)
    score = momentum_weight * mom + (1.0 - momentum_weight) * trend
    size = (score * vol).div(n.where(n > 0), axis=0)
    return size, {"momentum": mom, "trend": trend, "vol_scale": vol}


def var_budget_weights(var: pd.DataFrame, budget: float) -> pd.DataFrame:
    """``w_i = budget / VaR_i``: each position's own VaR (a fraction of the book) equals
    ``budget``. NaN where the VaR is missing or not positive."""
    return budget / var.where(var > 0)


def drawdown_guard(
    prices: pd.DataFrame, window: int, threshold: float, scale: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Multiplier ``scale`` where a ticker is more than ``threshold`` below its highest
    price of the last ``window`` days (1 otherwise). Returns ``(multiplier, drawdown)``."""
    peak = prices.rolling(window, min_periods=1).max()
    dd = prices / peak - 1.0
    mult = pd.DataFrame(
        np.where(dd <= -threshold, scale, 1.0), index=prices.index, columns=prices.columns
    ).where(dd.notna())
    return mult, dd


def correlation_sizes(returns: pd.DataFrame, inverse_vol: bool) -> pd.Series:
    """Weights of one window ``prop. to 1 / (1 + mean correlation with the others)``,
    times ``1 / sigma_i`` when ``inverse_vol``, normalised to sum to 1."""
    w = correlation_weights(returns.corr())
    if inverse_vol:
        sd = returns.std()
        w = w / sd.where(sd > 0)
    return w / w.sum()
