"""Performance figures of a daily return series (pure functions).

Conventions follow empyrical/vectorbt (so they can be checked against them): the
annualisation factor is ``periods_per_year`` (252 trading days,
:data:`~mltrainer.numerics.units.TRADING_DAYS`), volatility uses the sample standard
deviation (ddof=1), the Sortino ratio divides the annualised mean excess return by the
downside deviation ``sqrt(mean(min(r - rf, 0)^2)) x sqrt(252)`` taken over all days,
CAGR compounds over ``n / 252`` years, beta is the population covariance with the
benchmark over its variance (on excess returns) and alpha is annualised by compounding
the mean daily excess of the CAPM line: ``(1 + mean(r - rf - β (b - rf)))^252 - 1``.
The information ratio is annualised: ``mean(r - b) / std(r - b) x sqrt(252)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.numerics.units import TRADING_DAYS

RiskFree = pd.Series | np.ndarray | float | None
"""Per-period risk-free returns aligned with the returns (a Series, an array or one number)."""


def drawdown(equity: pd.Series, initial_value: float | None = None) -> pd.Series:
    """``equity / running peak - 1`` (the initial value counts as the first peak)."""
    values = equity.to_numpy(dtype="float64")
    peak = np.maximum.accumulate(values)
    if initial_value is not None:
        peak = np.maximum(peak, initial_value)
    return pd.Series(values / peak - 1.0, index=equity.index, name="drawdown")


def max_drawdown_duration(equity: pd.Series, initial_value: float | None = None) -> dict:
    """Longest time under water: from a peak to the first date back at or above it.

    Returns calendar days and trading bars; an unrecovered drawdown runs to the last
    date. A drawdown from the initial value counts from the first date.
    """
    dd = drawdown(equity, initial_value).to_numpy()
    idx = equity.index
    best_days, best_bars, best_start, best_end = 0, 0, None, None
    under = dd < 0
    if under.any():
        # run boundaries of the underwater stretches
        edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for s, e in zip(starts, ends, strict=True):
            peak_pos = max(s - 1, 0)
            end_pos = min(e, len(idx) - 1)  # e is the recovery bar, or past the end
            days = (idx[end_pos] - idx[peak_pos]).days
            if days > best_days:
                best_days, best_bars = days, end_pos - peak_pos
                best_start, best_end = idx[peak_pos], idx[end_pos]
    return {
        "days": int(best_days),
        "bars": int(best_bars),
        "start": None if best_start is None else str(best_start.date()),
        "end": None if best_end is None else str(best_end.date()),
    }


def _excess(returns: np.ndarray, risk_free: RiskFree) -> np.ndarray:
    if risk_free is None:
        return returns
    rf = risk_free.to_numpy(dtype="float64") if isinstance(risk_free, pd.Series) else risk_free
    return returns - rf


def cagr(returns: np.ndarray, periods_per_year: int = TRADING_DAYS) -> float:
    """Compound annual growth rate: ``Π(1 + r)^(periods / n) - 1``."""
    if len(returns) == 0:
        return float("nan")
    growth = float(np.prod(1.0 + returns))
    if growth <= 0:
        return -1.0
    return growth ** (periods_per_year / len(returns)) - 1.0


def annual_volatility(returns: np.ndarray, periods_per_year: int = TRADING_DAYS) -> float:
    """``std(r) x sqrt(periods)`` (sample standard deviation; NaN below two returns)."""
    return (
        float(np.std(returns, ddof=1) * np.sqrt(periods_per_year))
        if len(returns) > 1
        else float("nan")
    )


def sharpe_ratio(
    returns: np.ndarray, risk_free: RiskFree = None, periods_per_year: int = TRADING_DAYS
) -> float:
    """``mean(r - rf) / std(r - rf) x sqrt(periods)`` (NaN for a constant series)."""
    ex = _excess(np.asarray(returns, dtype="float64"), risk_free)
    if len(ex) < 2:
        return float("nan")
    sd = np.std(ex, ddof=1)
    return float(np.mean(ex) / sd * np.sqrt(periods_per_year)) if sd > 0 else float("nan")


def sortino_ratio(
    returns: np.ndarray, risk_free: RiskFree = None, periods_per_year: int = TRADING_DAYS
) -> float:
    """``mean(r - rf) x periods / (sqrt(mean(min(r - rf, 0)^2)) x sqrt(periods))``.

    The downside deviation is taken over all days (empyrical's convention); NaN when
    no return is below the risk-free rate.
    """
    ex = _excess(np.asarray(returns, dtype="float64"), risk_free)
    if len(ex) < 2:
        return float("nan")
    downside = np.sqrt(np.mean(np.minimum(ex, 0.0) ** 2)) * np.sqrt(periods_per_year)
    return float(np.mean(ex) * periods_per_year / downside) if downside > 0 else float("nan")


def beta_alpha(
    returns: np.ndarray,
    benchmark: np.ndarray,
    risk_free: RiskFree = None,
    periods_per_year: int = TRADING_DAYS,
) -> tuple[float, float]:
    """CAPM beta and annualised alpha against benchmark returns (see module notes)."""
    r = _excess(np.asarray(returns, dtype="float64"), risk_free)
    b = _excess(np.asarray(benchmark, dtype="float64"), risk_free)
    if len(r) < 2:
        return float("nan"), float("nan")
    bc = b - b.mean()
    var = np.mean(bc**2)
    if var < 1e-30:
        return float("nan"), float("nan")
    beta = float(np.mean(bc * r) / var)
    alpha = float((np.mean(r - beta * b) + 1.0) ** periods_per_year - 1.0)
    return beta, alpha


def information_ratio(
    returns: np.ndarray, benchmark: np.ndarray, periods_per_year: int = TRADING_DAYS
) -> float:
    """``mean(r - b) / std(r - b) x sqrt(periods)`` (NaN for a constant difference)."""
    active = np.asarray(returns, dtype="float64") - np.asarray(benchmark, dtype="float64")
    if len(active) < 2:
        return float("nan")
    sd = np.std(active, ddof=1)
    return float(np.mean(active) / sd * np.sqrt(periods_per_year)) if sd > 0 else float("nan")


def performance_metrics(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    risk_free: pd.Series | float | None = None,
    positions: pd.DataFrame | None = None,
    turnover: pd.Series | None = None,
    periods_per_year: int = TRADING_DAYS,
    initial_value: float = 1.0,
) -> dict:
    """Headline figures of daily net returns (JSON-ready floats).

    Keys: ``cagr, annual_volatility, sharpe, sortino, calmar, max_drawdown,
    max_drawdown_duration_days`` (calendar days from the peak to the recovery, or to the
    last date), ``max_drawdown_duration_bars, hit_rate`` (share of days with a positive
    return among days with a non-zero return), ``total_return``; with positions
    ``avg_gross_exposure, avg_net_exposure``; with turnover ``annual_turnover`` (mean daily
    ``Σ|traded weight|`` x periods); with a benchmark ``beta, alpha, information_ratio,
    benchmark_cagr``.
    """
    r = returns.to_numpy(dtype="float64")
    equity = pd.Series(initial_value * np.cumprod(1.0 + r), index=returns.index)
    dd = drawdown(equity, initial_value)
    mdd = float(dd.min()) if len(dd) else float("nan")
    growth = cagr(r, periods_per_year)
    duration = max_drawdown_duration(equity, initial_value)
    nonzero = r != 0
    out = {
        "total_return": float(np.prod(1.0 + r) - 1.0) if len(r) else float("nan"),
        "cagr": growth,
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe": sharpe_ratio(r, risk_free, periods_per_year),
        "sortino": sortino_ratio(r, risk_free, periods_per_year),
        "max_drawdown": mdd,
        "calmar": growth / abs(mdd) if mdd < 0 else float("nan"),
        "max_drawdown_duration_days": duration["days"],
        "max_drawdown_duration_bars": duration["bars"],
        "hit_rate": float(np.mean(r[nonzero] > 0)) if nonzero.any() else float("nan"),
        "n_days": int(len(r)),
    }
    if positions is not None:
        w = positions.to_numpy(dtype="float64")
        out["avg_gross_exposure"] = float(np.abs(w).sum(axis=1).mean())
        out["avg_net_exposure"] = float(w.sum(axis=1).mean())
    if turnover is not None:
        out["annual_turnover"] = float(turnover.mean() * periods_per_year)
    if benchmark is not None:
        b = benchmark.reindex(returns.index).fillna(0.0).to_numpy(dtype="float64")
        beta, alpha = beta_alpha(r, b, risk_free, periods_per_year)
        out["beta"] = beta
        out["alpha"] = alpha
        out["information_ratio"] = information_ratio(r, b, periods_per_year)
        out["benchmark_cagr"] = cagr(b, periods_per_year)
    return out
