"""Hypothetical one-day shocks: a market crash through betas, and two parametric VaR stresses.

:func:`market_crash` moves each position by its trailing beta times the index move.
:func:`volatility_spike` and :func:`correlation_breakdown` stress the sample covariance
of the trailing window (every volatility scaled, or every correlation pushed toward one)
and report the parametric VaR under it, split over positions by Euler contributions.
Both read their risk model from a :class:`ParametricSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from mltrainer import fmt
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.portfolio import (
    covariance,
    portfolio_returns,
    risk_contributions,
    rolling_beta,
)
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS
from mltrainer.risk_stress.base import (
    Book,
    ScenarioData,
    ScenarioResult,
    Weights,
    aggregate,
    from_options,
    returns_frame,
)


# ----------------------------------------------------------------- market crash
def equal_weight_market(returns: pd.DataFrame) -> pd.Series:
    """Equal-weight universe proxy: each day the mean return of the tickers trading."""
    if returns.shape[1] < 2:
        raise DataError(
            f"an equal-weight market proxy needs at least 2 tickers (the data has "
            f"{returns.shape[1]}); pass a market index return series instead"
        )
    return portfolio_returns(returns).rename("market")


def market_crash(
    data: ScenarioData,
    weights: Weights,
    shock: float = -0.20,
    *,
    market: pd.Series | None = None,
    window: int = TRADING_DAYS,
    portfolio_value: float = 1.0,
    sectors: Mapping[str, str] | None = None,
    allow_leverage: bool = False,
) -> ScenarioResult:
    """An index move propagated through each position's trailing beta.

    ``r_i = max(beta_i * shock, -1)`` (a price cannot fall below 0; the capped positions
    are named in the warnings) and ``r_p = sum_i w_i r_i``, with ``beta_i``
    the OLS beta on the market over the last ``window`` days of the data (every one of
    them must have a return, else the position is missing;
    :func:`mltrainer.measures.portfolio.rolling_beta`).

    Parameters
    ----------
    data : MarketData or DataFrame of daily returns
    weights : Series or dict
        Ticker -> weight.
    shock : float
        The market's return (``-0.20`` is a 20% fall).
    market : Series, optional
        Daily simple returns of the market index. Default: the equal-weight mean of
        every ticker in ``data`` (a universe proxy; pass a wide universe for a good one).
    window : int
        Days of the beta regression.
    portfolio_value, sectors, allow_leverage :
        P&L currency, extra sector labels, accept weights that do not sum to one.
    """
    rets = returns_frame(data)
    book = Book.of(data, weights, rets.columns, portfolio_value, sectors, allow_leverage)
    w = book.weights
    if not -1.0 <= shock <= 1.0:
        raise ParameterError(f"shock must be a return in [-1, 1] (got {shock}); -0.2 is a 20% fall")
    if market is None:
        proxy, source = equal_weight_market(rets), f"equal-weight mean of {rets.shape[1]} tickers"
    else:
        proxy, source = market.astype(float), str(market.name or "given index")
    tail = rets[w.index].iloc[-window:]
    betas = rolling_beta(tail, proxy, window).iloc[-1]
    status = pd.Series("ok", index=w.index, dtype="object")
    status[betas.isna()] = f"missing: too few returns in the {window}-day beta window"
    # a price cannot fall below 0: beta 2.0 in a 90% crash is -100%, not -180%
    moves = betas * shock
    floored = list(w.index[(moves < -1.0).to_numpy()])
    positions = pd.DataFrame({"beta": betas, "return": moves.clip(lower=-1.0), "status": status})
    size = fmt.level(abs(shock))  # 12.5%, not 12%
    name = f"Market crash {'-' if shock < 0 else '+'}{size}"
    params = {
        "shock": float(shock),
        "beta_window": int(window),
        "market": source,
        **_span("beta", tail),
    }
    return aggregate(
        book,
        positions,
        key="market_crash",
        name=name,
        kind="hypothetical",
        description=(
            f"Market {'falls' if shock < 0 else 'rises'} {size} in a day; each position moves "
            f"by its {window}-day beta"
        ),
        params=params,
        warnings=[
            f"{name}: {', '.join(floored)} beta times the shock is a fall "
            "beyond -100%; a price cannot go below 0, so the loss is capped at the position"
        ]
        if floored
        else [],
    )


def _span(prefix: str, tail: pd.DataFrame) -> dict[str, str]:
    """``{prefix}_start`` and ``{prefix}_end``: the first and last date of a window."""
    return {
        f"{prefix}_start": tail.index[0].date().isoformat(),
        f"{prefix}_end": tail.index[-1].date().isoformat(),
    }


# ------------------------------------------------------------ parametric shocks
@dataclass(frozen=True)
class ParametricSettings:
    """The risk model of the parametric scenarios, and the book's options.

    Attributes
    ----------
    confidence : float
        VaR confidence level, in (0.5, 1).
    horizon : int
        Days; the VaR scales with ``sqrt(horizon)``.
    window : int
        Trailing days of the sample covariance.
    min_periods : int, optional
        Returns a position needs in the window to be covered; default
        ``max(20, window // 2)``.
    portfolio_value : float
        P&L currency (default 1.0: fractions of the portfolio).
    sectors : dict, optional
        Ticker -> GICS sector (added to ``data.sectors``).
    allow_leverage : bool
        Accept weights that do not sum to one.
    """

    confidence: float = 0.99
    horizon: int = 1
    window: int = TRADING_DAYS
    min_periods: int | None = None
    portfolio_value: float = 1.0
    sectors: Mapping[str, str] | None = None
    allow_leverage: bool = False

    @property
    def required_returns(self) -> int:
        """``min_periods``, or its default ``max(20, window // 2)``."""
        return max(20, self.window // 2) if self.min_periods is None else self.min_periods

    def z_horizon(self) -> float:
        """``z_alpha sqrt(h)``; a ParameterError for a confidence or horizon out of range."""
        if not 0.5 < self.confidence < 1.0:
            raise ParameterError(
                f"confidence must be in (0.5, 1) (got {self.confidence}); e.g. 0.99"
            )
        if self.horizon < 1:
            raise ParameterError(f"horizon must be at least 1 day (got {self.horizon})")
        return float(norm.ppf(self.confidence) * np.sqrt(self.horizon))


@dataclass(frozen=True)
class _Trailing:
    """A parametric scenario's starting point: the book, ``z sqrt(h)`` and the sample
    covariance of the trailing window (positions with too few returns left out)."""

    settings: ParametricSettings
    book: Book
    zh: float
    cov: pd.DataFrame
    counts: pd.Series
    tail: pd.DataFrame

    def positions(self, cov: pd.DataFrame, z_scale: float) -> tuple[pd.DataFrame, float]:
        """Per-position returns under ``cov`` and the portfolio's daily volatility.

        A position's return is minus its Euler contribution ``z_scale w_i (Sigma w)_i /
        sigma_p`` over its weight, ``w`` being the covered positions' weights scaled to
        the whole gross exposure; ``sigma_p = sqrt(w' Sigma w)``.
        """
        w, s = self.book.weights, self.settings
        status = pd.Series("ok", index=w.index, dtype="object")
        for t in w.index[~w.index.isin(cov.index)]:
            status[t] = (
                f"missing: {int(self.counts[t])} returns in the last {s.window} days "
                f"(< {s.required_returns})"
            )
        wc = _covered_weights(w, cov.index)
        rc = np.asarray(risk_contributions(wc.to_numpy(), cov))  # sums to sqrt(w' S w)
        contrib = pd.Series(z_scale * rc, index=cov.index)
        positions = pd.DataFrame(
            {
                "daily_vol": pd.Series(np.sqrt(np.diag(cov)), cov.index).reindex(w.index),
                "return": -(contrib / wc).reindex(w.index),
                "status": status,
            }
        )
        return positions, float(rc.sum())

    def result(
        self,
        positions: pd.DataFrame,
        stress: dict,
        figures: dict,
        *,
        key: str,
        name: str,
        what: str,
    ) -> ScenarioResult:
        """The :class:`ScenarioResult`: ``stress`` (the scenario's own input) then the
        common settings, ``figures`` and the covariance window in ``params``."""
        s = self.settings
        params = {
            **stress,
            "confidence": float(s.confidence),
            "horizon_days": int(s.horizon),
            "window": int(s.window),
            **figures,
            **_span("cov", self.tail),
        }
        return aggregate(
            self.book,
            positions,
            key=key,
            name=name,
            kind="hypothetical",
            description=f"{what}; loss = {fmt.level(s.confidence)} {s.horizon}-day parametric VaR",
            params=params,
        )


def _var_figures(zh: float, base_vol: float, stressed_vol: float, stressed_var: float) -> dict:
    """The daily volatility before and after the stress, annualised, and the VaR before
    (``z sqrt(h) sigma``) and after."""
    return {
        "base_vol_annual": base_vol * SQRT_TRADING_DAYS,
        "stressed_vol_annual": stressed_vol * SQRT_TRADING_DAYS,
        "base_var": zh * base_vol,
        "stressed_var": stressed_var,
    }


def _covered_weights(w: pd.Series, covered: pd.Index) -> pd.Series:
    """The covered positions' weights scaled up to the whole gross exposure."""
    return w.reindex(covered) * np.abs(w).sum() / np.abs(w.reindex(covered)).sum()


def _book(data: ScenarioData, weights: Weights, s: ParametricSettings) -> tuple[Book, pd.DataFrame]:
    rets = returns_frame(data)
    return Book.of(
        data, weights, rets.columns, s.portfolio_value, s.sectors, s.allow_leverage
    ), rets


def _trailing(book: Book, rets: pd.DataFrame, s: ParametricSettings) -> _Trailing:
    """Check the confidence and horizon, then estimate the trailing covariance.

    The covariance is the sample covariance of the complete trailing rows of the
    positions with at least ``s.required_returns`` returns (empty when none has).
    """
    zh = s.z_horizon()
    window, need = s.window, s.required_returns
    tail = rets[book.weights.index].iloc[-window:]
    counts = tail.notna().sum()
    ok = counts >= need
    complete = tail.loc[:, ok].dropna()
    if ok.any() and len(complete) < need:
        raise DataError(
            f"only {len(complete)} days in the last {window} have a return for every "
            f"position; a covariance needs at least {need}"
        )
    if not ok.any():
        return _Trailing(s, book, zh, pd.DataFrame(), counts, tail)
    cov = covariance(complete, "sample")
    zero = np.diag(cov.to_numpy()) <= 0
    if zero.any():
        names = ", ".join(complete.columns[zero])
        raise DataError(f"{names}: constant price over the last {window} days (zero variance)")
    return _Trailing(s, book, zh, cov, counts, tail)


def volatility_spike(
    data: ScenarioData, weights: Weights, multiplier: float = 3.0, **options: Any
) -> ScenarioResult:
    """Every volatility multiplied by ``k``, correlations unchanged: scaled parametric VaR.

    ``VaR' = k * z_alpha * sqrt(h) * sqrt(w' Sigma w)``; the scenario P&L is ``-VaR'``,
    split over positions by Euler (component VaR) contributions
    ``k z sqrt(h) w_i (Sigma w)_i / sigma_p``, which sum to ``VaR'``.

    Parameters
    ----------
    data, weights :
        As in :func:`market_crash`.
    multiplier : float
        ``k``, positive (2-5 is typical).
    **options
        The fields of :class:`ParametricSettings` (``confidence=0.99, horizon=1,
        window=252, min_periods, portfolio_value=1.0, sectors, allow_leverage``).
    """
    s = from_options(ParametricSettings, options, "volatility_spike")
    if multiplier <= 0:
        raise ParameterError(f"multiplier must be positive (got {multiplier}); 2-5 is typical")
    book, rets = _book(data, weights, s)
    t = _trailing(book, rets, s)
    if t.cov.empty:
        raise DataError(f"volatility spike: no position has {s.window}-day history")
    positions, vol = t.positions(t.cov, t.zh * multiplier)
    return t.result(
        positions,
        {"multiplier": float(multiplier)},
        _var_figures(t.zh, vol, multiplier * vol, multiplier * t.zh * vol),
        key="volatility_spike",
        name=f"Volatility x{multiplier:g}",
        what=f"Every volatility multiplied by {multiplier:g}",
    )


def stressed_correlation(corr: np.ndarray | pd.DataFrame, push: float) -> np.ndarray:
    """Push a correlation matrix toward all-ones: ``C' = (1 - a) C + a 11'``.

    A convex combination of two PSD matrices with unit diagonal, so ``C'`` is a valid
    correlation matrix whenever ``C`` is; checked (smallest eigenvalue >= -1e-10).
    """
    return _stressed_correlation(corr, push)[0]


def _stressed_correlation(corr: np.ndarray | pd.DataFrame, push: float) -> tuple[np.ndarray, float]:
    if not 0.0 <= push <= 1.0:
        raise ParameterError(
            f"correlation push must be in [0, 1] (got {push}); 1 makes every correlation one"
        )
    c = np.asarray(corr, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise DataError(f"a correlation matrix must be square (got shape {c.shape})")
    if not np.allclose(c, c.T, atol=1e-12) or not np.allclose(np.diag(c), 1.0, atol=1e-10):
        raise DataError("a correlation matrix must be symmetric with a unit diagonal")
    out = (1.0 - push) * c + push * np.ones_like(c)
    low = float(np.linalg.eigvalsh(out).min())
    if low < -1e-10:
        raise DataError(
            f"stressed correlation matrix is not positive semi-definite (smallest "
            f"eigenvalue {low:.3g}); the input matrix must be PSD (estimate it from "
            "complete rows)"
        )
    return out, low


def correlation_breakdown(
    data: ScenarioData, weights: Weights, push: float = 0.5, **options: Any
) -> ScenarioResult:
    """Diversification fails: correlations pushed toward one, volatilities unchanged.

    ``Sigma' = D C' D`` with ``C' = (1 - a) C + a 11'`` (:func:`stressed_correlation`)
    and ``D = diag(sigma)``; ``sigma_p'^2 = w' Sigma' w = (1 - a) w' Sigma w +
    a (sum_i w_i sigma_i)^2``. The P&L is ``-z sqrt(h) sigma_p'``, split by Euler
    contributions under ``Sigma'``.

    Parameters
    ----------
    data, weights :
        As in :func:`market_crash`; at least two positions.
    push : float
        ``a``, in [0, 1].
    **options
        The fields of :class:`ParametricSettings` (``confidence=0.99, horizon=1,
        window=252, min_periods, portfolio_value=1.0, sectors, allow_leverage``).
    """
    s = from_options(ParametricSettings, options, "correlation_breakdown")
    book, rets = _book(data, weights, s)
    w = book.weights
    if len(w) < 2:
        raise DataError(
            f"correlation breakdown needs at least two positions (got {len(w)}: "
            f"{', '.join(w.index)}); one asset has no correlation to stress"
        )
    t = _trailing(book, rets, s)
    cov = t.cov
    if len(cov) < 2:
        raise DataError(
            f"correlation breakdown: fewer than two positions have {s.window}-day history"
        )
    sigma = np.sqrt(np.diag(cov.to_numpy()))
    corr = cov.to_numpy() / np.outer(sigma, sigma)
    np.fill_diagonal(corr, 1.0)
    stressed, low = _stressed_correlation(corr, push)
    cov_s = pd.DataFrame(stressed * np.outer(sigma, sigma), index=cov.index, columns=cov.index)
    positions, vol_s = t.positions(cov_s, t.zh)
    wc = _covered_weights(w, cov.index)
    vol0 = float(np.sqrt(wc.to_numpy() @ cov.to_numpy() @ wc.to_numpy()))
    off = ~np.eye(len(corr), dtype=bool)
    figures = {
        **_var_figures(t.zh, vol0, vol_s, t.zh * vol_s),
        "mean_corr_before": float(corr[off].mean()),
        "mean_corr_after": float(stressed[off].mean()),
        "min_eigenvalue": low,
    }
    return t.result(
        positions,
        {"push": float(push)},
        figures,
        key="correlation_breakdown",
        name=f"Correlations +{fmt.level(push)} toward 1",
        what=f"Every correlation pushed {fmt.level(push)} of the way to one",
    )
