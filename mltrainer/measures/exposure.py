"""Exposure through time: equal weights, volatility targeting, risk overlays, limits.

Functions of (dates x tickers) frames or date series: a value at date t uses rows up to
t only. Shared by the risk and sizing model families (one implementation of each idea):
:func:`volatility_targeting` serves ``risk/VolatilityTargetingModel`` (the whole
portfolio) and ``sizing/VolatilityTargetingModel`` (each position), and
:func:`apply_limits` ends every sizing model. The exposure rules of the risk family's
overlays are :func:`risk_exposure` (``risk/DynamicRiskAdjustmentModel``) and
:func:`drawdown_protection` (``risk/MaximumDrawdownProtectionModel``).

References
----------
Moreira, A., Muir, T. (2017). Volatility-managed portfolios. *Journal of Finance* 72(4).
Harvey, C. et al. (2018). The impact of volatility targeting. *Journal of Portfolio
Management* 45(1). Grossman, S., Zhou, Z. (1993). Optimal investment strategies for
controlling drawdowns. *Mathematical Finance* 3(3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.errors import ParameterError
from mltrainer.measures.portfolio import portfolio_returns
from mltrainer.measures.var import rolling_var
from mltrainer.numerics.units import TRADING_DAYS

Panel = pd.Series | pd.DataFrame


def equal_weights(prices: pd.DataFrame) -> pd.DataFrame:
    """``1 / N_t`` for each ticker with a price at t (N_t of them), NaN for the others."""
    have = prices.notna()
    n = have.sum(axis=1)
    w = have.astype("float64").div(n.where(n > 0), axis=0)
    return w.where(have)


def scaled_equal_weights(prices: pd.DataFrame, scale: Panel) -> pd.DataFrame:
    """``scale / N_t`` for each ticker with a price at t: :func:`equal_weights` times a
    Series (one exposure per date, the whole book) or a frame (one per position)."""
    base = equal_weights(prices)
    return base.mul(scale, axis=0) if isinstance(scale, pd.Series) else base * scale


def volatility_forecast(
    returns: Panel,
    method: str = "ewma",
    *,
    window: int = 21,
    lam: float = 0.94,
    periods_per_year: int = TRADING_DAYS,
) -> Panel:
    """Annualised volatility forecast for t+1 made at t, per column.

    ``rolling``: sample standard deviation (ddof=1) of the last ``window`` returns.
    ``ewma``: RiskMetrics ``s2_t = lam s2_{t-1} + (1 - lam) r_t^2`` (mean zero), started
    at each column's first return; the first ``window - 1`` values are NaN (burn-in).
    Both are multiplied by ``sqrt(periods_per_year)``.
    """
    if method == "rolling":
        vol = returns.rolling(window, min_periods=window).std(ddof=1)
    elif method == "ewma":
        if not 0 < lam < 1:
            raise ParameterError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
        vol = np.sqrt(
            (returns * returns).ewm(alpha=1 - lam, adjust=False, min_periods=window).mean()
        )
    else:
        raise ParameterError(f"volatility method must be 'ewma' or 'rolling' (got {method!r})")
    return vol * np.sqrt(periods_per_year)


def target_leverage(vol: Panel, target_vol: float, max_leverage: float) -> Panel:
    """``min(max_leverage, target_vol / vol)``: NaN where ``vol`` is NaN or not positive.

    ``vol`` and ``target_vol`` must be on the same (e.g. annualised) scale.
    """
    if not target_vol > 0:
        raise ParameterError(f"target_vol must be positive (got {target_vol})")
    if not max_leverage > 0:
        raise ParameterError(f"max_leverage must be positive (got {max_leverage})")
    return np.minimum(target_vol / vol.where(vol > 0), max_leverage)


def volatility_targeting(
    prices: pd.DataFrame,
    returns: pd.DataFrame,
    target_vol: float,
    max_leverage: float,
    *,
    estimator: str = "ewma",
    window: int = 21,
    lam: float = 0.94,
    per_position: bool = False,
) -> tuple[pd.DataFrame, Panel, Panel]:
    """Equal weights scaled to a target volatility: ``(weights, leverage, forecast)``.

    ``L_t = min(max_leverage, target_vol / sigma_hat_t)`` (:func:`target_leverage`) with
    ``sigma_hat_t`` the annualised forecast for t+1 made at t
    (:func:`volatility_forecast` by ``estimator``, ``window``, ``lam``), and weights
    ``L_t / N_t`` over the N_t tickers with a price at t (:func:`equal_weights`).

    ``per_position=False`` targets the daily-rebalanced equal-weight portfolio of the
    tickers: one ``L_t`` per date (Series), the same for every position.
    ``per_position=True`` forecasts each ticker's own volatility and scales each
    position by its own ``L_i,t`` (a frame): inverse-volatility sizing, each position
    running ``target_vol / N_t`` of standalone volatility. On one ticker the two agree.
    """
    series = returns if per_position else portfolio_returns(returns)
    vol = volatility_forecast(series, estimator, window=window, lam=lam)
    leverage = target_leverage(vol, target_vol, max_leverage)
    return scaled_equal_weights(prices, leverage), leverage, vol


def risk_exposure(
    port_returns: pd.Series,
    measure: str,
    window: int,
    lookback: int,
    sensitivity: float,
    min_exposure: float,
    max_exposure: float,
) -> tuple[pd.Series, pd.Series]:
    """Exposure from the current risk relative to its own past.

    ``vol_zscore``: ``z_t = (sigma_t - mean(sigma)) / std(sigma)`` over the last
    ``lookback`` days, with ``sigma_t`` the ``window``-day volatility; exposure
    ``1 - sensitivity z_t``. ``var_ratio``: ``q_t = median(VaR) / VaR_t`` with the
    ``window``-day 95 % historical VaR and its median over ``lookback`` days; exposure
    ``1 + sensitivity (q_t - 1)``. Both clipped to ``[min_exposure, max_exposure]``.
    Returns ``(exposure, score)``.
    """
    if measure == "vol_zscore":
        risk = port_returns.rolling(window, min_periods=window).std()
        mean = risk.rolling(lookback, min_periods=lookback).mean()
        sd = risk.rolling(lookback, min_periods=lookback).std()
        score = (risk - mean) / sd.where(sd > 0)
        raw = 1.0 - sensitivity * score
    else:
        risk = rolling_var(port_returns, window, 0.95, "historical")
        ref = risk.rolling(lookback, min_periods=lookback).median()
        score = ref / risk.where(risk > 0)
        raw = 1.0 + sensitivity * (score - 1.0)
    return raw.clip(min_exposure, max_exposure), score


def drawdown_protection(
    equity: np.ndarray, threshold: float, recovery: float, max_days_out: int, reduced: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exposure path of a drawdown stop with a re-entry rule.

    While invested, the drawdown is ``E_t / peak - 1`` with the peak of the equity since
    entry; at ``drawdown <= -threshold`` exposure drops to ``reduced`` at that close.
    While out, the trough ``T`` is the lowest equity since the exit; exposure returns to
    1 at the first close with ``E_t / T - 1 >= recovery`` or after ``max_days_out`` days
    out, and the peak restarts from that close. Returns ``(exposure, drawdown)``; NaN
    before the first finite equity value.

    A plain loop over dates: the state (in or out, peak, trough) is path dependent and
    the loop is O(dates), about a millisecond per 1,000 days.
    """
    n = equity.size
    exposure = np.full(n, np.nan)
    drawdown = np.full(n, np.nan)
    invested, peak, trough, days_out = True, np.nan, np.nan, 0
    for t in range(n):
        e = equity[t]
        if not np.isfinite(e):
            continue
        if invested:
            peak = e if not np.isfinite(peak) else max(peak, e)
            drawdown[t] = e / peak - 1.0
            if drawdown[t] <= -threshold:
                invested, trough, days_out = False, e, 0
        else:
            days_out += 1
            trough = min(trough, e)
            drawdown[t] = e / peak - 1.0
            if e / trough - 1.0 >= recovery or days_out >= max_days_out:
                invested, peak = True, e
        exposure[t] = 1.0 if invested else reduced
    return exposure, drawdown


def apply_limits(
    weights: pd.DataFrame,
    *,
    max_weight: float = 1.0,
    gross_cap: float = 1.0,
    long_only: bool = True,
) -> pd.DataFrame:
    """Enforce position limits on a (dates x tickers) weight frame.

    In order: negative weights set to 0 if ``long_only``; each ``|w|`` clipped to
    ``max_weight``; rows whose gross exposure ``sum |w|`` exceeds ``gross_cap`` scaled
    down to it (scaling down cannot break the other two limits). NaNs stay NaN.
    """
    if not max_weight > 0 or not gross_cap > 0:
        raise ParameterError(
            f"max_weight and gross_cap must be positive (got {max_weight}, {gross_cap})"
        )
    w = weights.astype("float64")
    if long_only:
        w = w.clip(lower=0.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    w = w.clip(lower=-max_weight, upper=max_weight)
    gross = w.abs().sum(axis=1)
    factor = np.minimum(1.0, gross_cap / gross.where(gross > 0))
    return w.mul(factor.fillna(1.0), axis=0)
