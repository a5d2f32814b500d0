"""Portfolio construction: fixed weights for a list of tickers by a named method.

One entry point, :func:`portfolio_weights`, for the dashboard's portfolio builder and the
CLI (``report stress --weighting``). The method is one of :data:`WEIGHTINGS`; the inputs a
method needs (returns, market caps, a sizing model's weights) are passed in, so this
module stays pure (no data loading, no model runs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.allocation import risk_parity_weights
from mltrainer.measures.covariance import covariance

RISK_PARITY_LOOKBACK = 756  # three years of trading days of returns
RISK_PARITY_MIN_DAYS = 60  # fewer common days give an unstable covariance


def equal_weighting(tickers: Sequence[str]) -> pd.Series:
    """``1 / n`` for each of the ``n`` tickers."""
    n = len(tickers)
    return pd.Series([1.0 / n] * n, index=list(tickers), dtype="float64")


def market_cap_weighting(
    tickers: Sequence[str], market_caps: Mapping[str, float], source: str = "the market caps given"
) -> pd.Series:
    """``cap_i / sum_j cap_j``; a ticker without a (non-zero) cap is an error.

    ``source`` names where the caps come from, for the error message.
    """
    missing = [t for t in tickers if not market_caps.get(t)]
    if missing:
        raise DataError(
            f"no market cap for {', '.join(missing)} in {source}; "
            f"remove {'it' if len(missing) == 1 else 'them'} or use another weighting"
        )
    w = np.array([market_caps[t] for t in tickers], dtype="float64")
    return pd.Series(w / w.sum(), index=list(tickers))


def risk_parity_weighting(
    tickers: Sequence[str],
    returns: pd.DataFrame,
    *,
    lookback: int = RISK_PARITY_LOOKBACK,
    min_days: int = RISK_PARITY_MIN_DAYS,
) -> pd.Series:
    """Equal risk contributions under the Ledoit-Wolf covariance of recent returns.

    The covariance uses the days among the last ``lookback`` rows of ``returns`` on which
    every ticker has a return; fewer than ``min_days`` of them is an error.
    """
    rets = returns.reindex(columns=list(tickers)).iloc[-lookback:].dropna()
    if len(rets) < min_days:
        raise DataError(
            f"risk parity needs at least {min_days} days on which every ticker "
            f"has a return (got {len(rets)}); drop the ticker with the shortest "
            "history or widen the dates"
        )
    return risk_parity_weights(covariance(rets, "ledoit_wolf")).reindex(list(tickers))


def sizing_model_weighting(
    tickers: Sequence[str], sizing_weights: pd.DataFrame, name: str = "the sizing model"
) -> pd.Series:
    """A sizing model's weights on its last date, shorts dropped, rescaled to sum to one.

    ``sizing_weights`` is the model's (dates x tickers) output; ``name`` names the model
    in the error messages.
    """
    last = sizing_weights.dropna(how="all")
    if last.empty:
        raise DataError(f"{name} gave no weights in this date range; widen the dates")
    w = last.iloc[-1].fillna(0.0).clip(lower=0.0)
    if w.sum() <= 0:
        raise DataError(
            f"{name} holds nothing on {last.index[-1]:%Y-%m-%d}; pick "
            "another sizing model or weighting"
        )
    return (w / w.sum()).reindex(list(tickers))


# method name -> (builder, the keyword inputs it needs besides the tickers)
_BUILDERS: dict[str, tuple[Callable[..., pd.Series], tuple[str, ...]]] = {
    "equal": (equal_weighting, ()),
    "market_cap": (market_cap_weighting, ("market_caps",)),
    "risk_parity": (risk_parity_weighting, ("returns",)),
    "sizing_model": (sizing_model_weighting, ("sizing_weights",)),
}
WEIGHTINGS = tuple(_BUILDERS)


def portfolio_weights(method: str, tickers: Sequence[str], **inputs) -> pd.Series:
    """Weights of ``tickers`` (a Series in their order, summing to one) by ``method``.

    Parameters
    ----------
    method : str
        One of :data:`WEIGHTINGS`: ``equal``; ``market_cap`` (needs ``market_caps``, a
        ticker -> cap mapping; optional ``source``); ``risk_parity`` (needs ``returns``,
        a dates x tickers frame; optional ``lookback`` = 756 and ``min_days`` = 60);
        ``sizing_model`` (needs ``sizing_weights``, a sizing model's weights frame;
        optional ``name``).
    tickers : sequence of str
    **inputs
        The method's inputs, passed on to :func:`equal_weighting`,
        :func:`market_cap_weighting`, :func:`risk_parity_weighting` or
        :func:`sizing_model_weighting`.

    Raises
    ------
    ParameterError
        An unknown method, or a required input missing.
    DataError
        The inputs cannot give weights (see each builder).
    """
    if method not in _BUILDERS:
        raise ParameterError(f"unknown weighting {method!r}; choose one of {', '.join(WEIGHTINGS)}")
    if not tickers:
        raise ParameterError("portfolio weights need at least one ticker")
    builder, required = _BUILDERS[method]
    missing = [k for k in required if inputs.get(k) is None]
    if missing:
        raise ParameterError(f"the {method} weighting needs {' and '.join(missing)}")
    return builder(tickers, **inputs)
