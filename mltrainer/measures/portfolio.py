"""Portfolio measures: returns and value of a weighted book, its risk, beta and drawdowns.

Pure functions on numpy arrays or pandas objects; where a function takes a covariance
as a DataFrame it returns a Series with the same labels, otherwise arrays. Nothing here
annualises (but :func:`portfolio_summary`): feed daily returns and get daily figures
(multiply a variance by 252, a volatility by sqrt(252)).

The covariance estimators are in :mod:`mltrainer.measures.covariance`, the optimal
weights in :mod:`mltrainer.measures.allocation`, exposure through time (volatility
targeting, position limits) in :mod:`mltrainer.measures.exposure`.

References
----------
Magdon-Ismail, M., Atiya, A. (2004). Maximum drawdown. *Risk* 17(10).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mltrainer import fmt
from mltrainer.errors import DataError
from mltrainer.measures.covariance import check_covariance, covariance, labelled, labels_of
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS


# --------------------------------------------------------------------------- returns
def check_weights(
    weights: ArrayLike, n_assets: int | None = None, *, total: float | None = 1.0, tol: float = 1e-6
) -> np.ndarray:
    """Validate a weight vector (finite, right length, summing to ``total``)."""
    w = np.asarray(weights, dtype="float64")
    if w.ndim != 1 or w.size == 0:
        raise DataError(f"weights must be a non-empty vector (got shape {w.shape})")
    if n_assets is not None and w.size != n_assets:
        raise DataError(f"weights have {w.size} entries for {n_assets} assets")
    if not np.isfinite(w).all():
        raise DataError("weights contain NaN or infinite values")
    if total is not None and abs(w.sum() - total) > tol:
        raise DataError(
            f"weights sum to {w.sum():.6g}; they must sum to {total:g} (fully invested); "
            "divide them by their sum if they are relative sizes"
        )
    return w


# What a book's figures are on a day a position has no return (portfolio_returns): the
# report's coverage note ends with it, and the dashboard finds that note by it
SCALED_UP = "those of the other positions, their weights scaled up"


def portfolio_returns(
    returns: pd.DataFrame, weights: Mapping[str, float] | ArrayLike | None = None
) -> pd.Series:
    """Daily returns of a portfolio rebalanced to fixed weights every day.

    ``weights`` None means equal weight over the assets that have a return that day.
    Given weights (dict/Series by ticker, or an array in column order) must sum to 1;
    on a day where some assets have no return, the others' weights are rescaled to 1.
    The first row (no return for any asset) is NaN.
    """
    r = returns.astype("float64")
    if weights is None:
        return r.mean(axis=1, skipna=True).rename("portfolio")
    if isinstance(weights, dict):
        weights = pd.Series(weights, dtype="float64")
    if isinstance(weights, pd.Series):
        missing = [t for t in weights.index if t not in r.columns]
        if missing:
            raise DataError(f"weights name tickers not in the returns: {missing[:5]}")
        w = weights.reindex(r.columns).fillna(0.0).to_numpy()
        check_weights(weights.to_numpy())
    else:
        w = check_weights(weights, r.shape[1])
    x = r.to_numpy()
    have = ~np.isnan(x)
    wsum = have @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(have, x, 0.0) @ w / wsum
    out[~have.any(axis=1)] = np.nan
    return pd.Series(out, index=r.index, name="portfolio")


def weighted_portfolio_returns(
    returns: pd.DataFrame, weighting: str = "equal", vol_window: int = 63
) -> pd.Series:
    """Daily returns of the input tickers combined with weights decided the day before.

    ``equal``: the mean return of the tickers that trade that day (daily rebalanced
    equal weight). ``inverse_volatility``: weights ``1/sigma_i`` normalised, from the
    sample volatility of the last ``vol_window`` returns up to t-1, applied to t.
    """
    if weighting == "equal":
        return portfolio_returns(returns)
    vol = returns.rolling(vol_window, min_periods=vol_window).std()
    inv = (1.0 / vol.where(vol > 0)).shift(1)
    inv = inv.where(returns.notna())
    w = inv.div(inv.sum(axis=1, min_count=1), axis=0)
    out = (w * returns).sum(axis=1, min_count=1)
    return out.rename("portfolio")


def equity_curve(returns: pd.Series | pd.DataFrame, start: float = 1.0) -> pd.Series | pd.DataFrame:
    """Compounded value of ``start`` invested (NaN returns count as flat days).

    A day that loses all the value or more (a return at or below -100%, which only a
    leveraged or short book can have) ends the path at 0: a book cannot lose more than
    it holds and go on compounding, and a negative value times the next day's growth
    would flip the sign of every later loss and gain.
    """
    return start * (1.0 + returns.fillna(0.0)).clip(lower=0.0).cumprod()


def wipeout_note(returns: pd.Series, gross: float) -> str | None:
    """None, or a sentence naming the day a book with daily ``returns`` (and ``gross``
    exposure) loses all its value, after which :func:`equity_curve` stays at 0."""
    gone = returns.index[returns.to_numpy() <= -1.0]
    if not len(gone):
        return None
    day = gone[0]
    return (
        f"the book loses all its value on {fmt.date(day)} (a one-day return of "
        f"{fmt.percent(float(returns.loc[day]), 0)} at {fmt.number(gross, 1)}x gross exposure)"
    )


# -------------------------------------------------------------------------- risk
def portfolio_summary(
    returns: pd.DataFrame, weights: pd.Series, window: int = 756, min_common: int = 30
) -> dict:
    """What a risk page shows about a portfolio, from daily returns (dates x tickers).

    Correlation over the days on which every ticker has a return; risk contributions
    (relative, Ledoit-Wolf covariance of the last ``window`` such days); annualised
    volatility from the same covariance; the portfolio's drawdown path and each
    position's worst drawdown.
    """
    w = pd.Series(weights, dtype="float64")
    common = returns[w.index].dropna()
    if len(common) < min_common:
        raise DataError(
            f"only {fmt.count(len(common), 'day')} on which every ticker has a return "
            f"({_span(returns.index)}); correlations and risk contributions need at least "
            f"{min_common}: widen the dates"
        )
    recent = common.iloc[-window:]
    cov = covariance(recent, "ledoit_wolf")
    aligned = w.reindex(cov.index)
    return {
        "corr": common.corr(),
        "contributions": risk_contributions(aligned, cov, relative=True),
        **drawdown_summary(returns, w),
        "volatility": portfolio_volatility(aligned, cov) * SQRT_TRADING_DAYS,
        "n_common": len(common),
        "common_span": (common.index[0], common.index[-1]),
        "volatility_span": (recent.index[0], recent.index[-1], len(recent)),
    }


def _span(dates: pd.Index) -> str:
    return fmt.date_range(dates[0], dates[-1]) if len(dates) else "no dates"


def drawdown_summary(
    returns: pd.DataFrame, weights: pd.Series, first: pd.Timestamp | None = None
) -> dict:
    """The portfolio's drawdown path (``drawdown``) and each position's worst drawdown
    (``stock_drawdowns``) over the returns given: no minimum length, unlike the
    correlations of :func:`portfolio_summary`.

    ``first``: the range's first day, the returns before it being history: the paths
    then start at 1 on the close before it, so a fall on that first day counts (held
    from 2020-02-21's close, AAPL was 4.8% down at the next close).
    """
    if first is not None:
        prior = returns.index[returns.index < pd.Timestamp(first)][-1:]
        returns = returns.loc[prior[0] if len(prior) else pd.Timestamp(first) :].copy()
        if len(prior):
            returns.iloc[0] = 0.0  # the value at the close before the range: the start
    port = portfolio_returns(returns, pd.Series(weights, dtype="float64"))
    return {
        "drawdown": drawdown_series(equity_curve(port.dropna())),
        "stock_drawdowns": drawdown_series(equity_curve(returns.fillna(0.0))).min(),
    }


def portfolio_volatility(weights: ArrayLike, cov: pd.DataFrame | np.ndarray) -> float:
    """``sqrt(w' S w)`` (same frequency as ``cov``)."""
    s = check_covariance(cov, allow_singular=True)
    w = check_weights(weights, s.shape[0], total=None)
    return float(np.sqrt(w @ s @ w))


def risk_contributions(
    weights: ArrayLike, cov: pd.DataFrame | np.ndarray, relative: bool = False
) -> pd.Series | np.ndarray:
    """Euler risk contributions ``RC_i = w_i (S w)_i / sqrt(w' S w)``.

    They sum to the portfolio volatility; with ``relative=True`` they are divided by it
    (summing to 1). Weights need not sum to one here (a levered book is allowed).
    """
    names = labels_of(cov)
    s = check_covariance(cov, allow_singular=True)
    w = check_weights(weights, s.shape[0], total=None)
    marginal = s @ w
    vol = np.sqrt(w @ marginal)
    if vol <= 0:
        raise DataError("the portfolio has zero volatility; risk contributions are undefined")
    rc = w * marginal / vol
    return labelled(rc / vol if relative else rc, names)


def contribution_table(
    weights: pd.DataFrame, returns: pd.DataFrame, window: int, cov_method: str
) -> pd.DataFrame:
    """Risk contributions of the last weights on the last window (annualised)."""
    last = weights.dropna(how="all")
    if last.empty:
        return pd.DataFrame(columns=["weight", "volatility", "contribution", "share"])
    w = last.iloc[-1].dropna()
    win = returns[w.index].iloc[-window:].dropna()
    if len(win) < 2:
        return pd.DataFrame(columns=["weight", "volatility", "contribution", "share"])
    cov = covariance(win, cov_method) * TRADING_DAYS
    rc = risk_contributions(w, cov)
    return pd.DataFrame(
        {
            "weight": w,
            "volatility": np.sqrt(np.diag(cov)),
            "contribution": rc,
            "share": rc / rc.sum(),
        }
    ).rename_axis("ticker")


# ---------------------------------------------------------------------- beta
def beta(returns: pd.Series | pd.DataFrame, index_returns: pd.Series) -> float | pd.Series:
    """OLS beta ``cov(r, m) / var(m)`` of each column (or a series) on the index returns,
    over the dates where both are present."""
    m = pd.Series(index_returns, dtype="float64")
    if isinstance(returns, pd.DataFrame):
        return returns.apply(lambda c: beta(c, m))
    r = pd.Series(returns, dtype="float64")
    both = pd.concat([r, m], axis=1, join="inner").dropna()
    if len(both) < 3:
        return np.nan
    c = np.cov(both.to_numpy(), rowvar=False)
    return float(c[0, 1] / c[1, 1]) if c[1, 1] > 0 else np.nan


def rolling_beta(returns: pd.DataFrame, index_returns: pd.Series, window: int) -> pd.DataFrame:
    """Rolling OLS beta of each column on the index over the last ``window`` rows
    (NaN until the window is full of paired data)."""
    m = index_returns.reindex(returns.index).astype("float64")
    cov = returns.rolling(window, min_periods=window).cov(m)
    var = m.rolling(window, min_periods=window).var()
    return cov.div(var.where(var > 0), axis=0)


# ------------------------------------------------------------------ drawdowns
def drawdown_series(
    equity: pd.Series | pd.DataFrame | np.ndarray,
) -> pd.Series | pd.DataFrame | np.ndarray:
    """Drawdown from the running peak, ``equity / cummax(equity) - 1`` (values <= 0).

    ``equity`` is a value path (Series, frame or array), not returns; see
    :func:`equity_curve`. NaNs stay NaN and do not reset the peak; a value of 0 (a book
    wiped out) is a drawdown of -100%.
    """
    pandas = isinstance(equity, (pd.Series, pd.DataFrame))
    e = equity.astype("float64") if pandas else np.asarray(equity, dtype="float64")
    if (np.asarray(e) < 0).any():
        raise DataError("equity must not be negative; pass a value path, not returns")
    if pandas:
        return e / e.cummax() - 1.0
    with np.errstate(invalid="ignore"):  # 0 / 0: a path that starts at 0 has no peak
        return e / np.fmax.accumulate(e, axis=0) - 1.0


def max_drawdown(equity: pd.Series | pd.DataFrame | np.ndarray) -> float | pd.Series:
    """Largest peak-to-trough loss as a positive fraction (0.35 = a 35 % drawdown).

    A Series per column for a frame.
    """
    dd = drawdown_series(equity)
    if isinstance(dd, pd.DataFrame):
        return -dd.min()
    if isinstance(dd, pd.Series):
        return float(-dd.min()) if dd.notna().any() else np.nan
    return float(-np.nanmin(dd)) if np.isfinite(dd).any() else np.nan
