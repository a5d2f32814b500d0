"""Signals to target weights: input checks, normalisation and limits, sizing, membership.

The conventions are the backtest engine's (:mod:`mltrainer.backtest.engine`, "Signals,
weights and limits"): a NaN signal is no position, a row is normalised to the gross limit
(or, given weights, capped at it), ``max_weight`` clips each weight and the excess stays
in cash; a sizing model sets the magnitude of each position, the signal its direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError


def _check_signal(signal: pd.DataFrame, prices: pd.DataFrame, what: str) -> None:
    if not isinstance(signal, pd.DataFrame):
        raise DataError(
            f"the {what} must be a DataFrame (dates x tickers), got {type(signal).__name__}"
        )
    if not isinstance(signal.index, pd.DatetimeIndex):
        raise DataError(f"the {what} frame needs a DatetimeIndex of trading dates")
    if signal.index.has_duplicates or not signal.index.is_monotonic_increasing:
        raise DataError(f"the {what} frame's dates must be sorted and unique")
    if signal.columns.has_duplicates:
        dup = signal.columns[signal.columns.duplicated()].unique()
        raise DataError(
            f"the {what} frame has duplicated ticker column(s): {', '.join(map(str, dup[:5]))}"
        )
    unknown = signal.columns.difference(prices.columns, sort=False)
    missing = signal.index.difference(prices.index, sort=False)
    if len(unknown):
        more = " ..." if len(unknown) > 5 else ""
        problem = (
            f"{len(unknown)} ticker(s) with no prices: {', '.join(map(str, unknown[:5]))}"
            f"{more}; the price data has {prices.shape[1]} tickers"
        )
    elif len(missing):
        examples = ", ".join(str(d.date()) for d in missing[:3])
        problem = (
            f"{len(missing)} date(s) that are not trading dates of the prices, e.g. "
            f"{examples}; the prices cover {prices.index[0].date()} to {prices.index[-1].date()}"
        )
    else:
        _check_values(signal, what)
        return
    raise DataError(f"the {what} frame has {problem}")


def _check_values(signal: pd.DataFrame, what: str) -> None:
    """Raise unless every cell is a finite number or missing: an inf cell became a zero
    position (the other tickers took the whole book), a text one a numpy traceback."""
    try:
        values = signal.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(f"the {what} frame must hold numbers (NaN for no position)") from None
    bad = np.isinf(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"the {what} frame holds {values[row, col]} for {signal.columns[col]} on "
            f"{signal.index[row].date()} ({int(bad.sum())} infinite cell(s)); it must be "
            "finite (NaN for no position)"
        )


def _check_limits(gross_limit: float, max_weight: float | None, costs: dict) -> None:
    if not (np.isfinite(gross_limit) and gross_limit > 0):
        raise ParameterError(
            f"gross_limit must be positive (got {gross_limit}); 1.0 means "
            "fully invested, 2.0 allows 2x gross leverage"
        )
    if max_weight is not None and not (np.isfinite(max_weight) and max_weight > 0):
        raise ParameterError(f"max_weight must be positive or None (got {max_weight})")
    for name, value in costs.items():
        arr = np.asarray(value, dtype="float64")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1000):
            raise ParameterError(f"{name} must be between 0 and 1000 basis points (got {value})")


def signal_to_weights(
    signal: pd.DataFrame,
    gross_limit: float = 1.0,
    max_weight: float | None = None,
    mode: str = "normalize",
    strict: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Target weights from a signal (or from given weights), within the limits.

    Parameters
    ----------
    signal : DataFrame
        Dates x tickers. NaN means "no position" (weight 0).
    gross_limit : float
        Largest gross exposure ``Σ_i |w_i|``.
    max_weight : float, optional
        Largest ``|w_i|``.
    mode : {"normalize", "weights"}
        ``normalize``: ``w = gross_limit x s / Σ_i |s_i|`` (rows with no signal stay in
        cash). ``weights``: the frame already holds weights; rows whose gross exposure
        exceeds the limit are scaled down to it (or raise when ``strict``).
    strict : bool
        Raise a DataError instead of scaling/clipping weights above the limits.

    Returns
    -------
    weights : DataFrame
    notes : list of str
        What was scaled or clipped, for the result's warnings.

    Notes
    -----
    ``max_weight`` clips each weight to ``[-max_weight, max_weight]`` after the
    normalisation, without renormalising: the clipped excess stays in cash.
    """
    values = signal.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    notes: list[str] = []
    _to_weights(values, gross_limit, max_weight, mode, strict, signal.index, signal.columns, notes)
    return pd.DataFrame(values, index=signal.index, columns=signal.columns), notes


def _to_weights(
    values: np.ndarray,
    gross_limit,
    max_weight,
    mode,
    strict,
    index,
    columns,
    notes: list,
    finite_only: bool = False,
) -> np.ndarray:
    """In place: NaN -> 0, then normalise or cap the rows (see :func:`signal_to_weights`).

    ``finite_only``: the caller guarantees there is no NaN or infinity left.
    """
    if not finite_only:
        np.putmask(values, ~np.isfinite(values), 0.0)
    gross = np.abs(values).sum(axis=1)
    if mode == "normalize":
        scale = np.divide(gross_limit, gross, out=np.zeros_like(gross), where=gross > 0)
        values *= scale[:, None]
    elif mode == "weights":
        over = gross > gross_limit * (1 + 1e-12)
        if over.any():
            first = int(over.argmax())
            text = (
                f"{int(over.sum())} date(s) have gross exposure above the limit "
                f"{gross_limit:g} (first {index[first].date()}: {gross[first]:.4g})"
            )
            if strict:
                raise DataError(text + "; lower the weights or raise gross_limit (--gross-limit)")
            values[over] *= (gross_limit / gross[over])[:, None]
            notes.append(text + "; those rows were scaled down to the limit")
    else:
        raise ParameterError(f"weighting must be 'normalize' or 'weights' (got {mode!r})")
    if max_weight is not None and values.size:
        top = np.abs(values).max(axis=1)
        if np.any(top > max_weight * (1 + 1e-12)):
            big = np.abs(values) > max_weight * (1 + 1e-12)
            r, c = np.argwhere(big)[0]
            text = (
                f"{int(big.sum())} weight(s) exceed max_weight {max_weight:g} (first "
                f"{columns[c]} on {index[r].date()}: {values[r, c]:.4g})"
            )
            if strict:
                raise DataError(text + "; lower the weights or raise max_weight (--max-weight)")
            np.clip(values, -max_weight, max_weight, out=values)
            notes.append(text + "; clipped to the limit, the excess stays in cash")
    return values


def _apply_sizing(sizing, signal: pd.DataFrame, data) -> pd.DataFrame:
    from mltrainer.models.base import WEIGHTS, Model

    if isinstance(sizing, Model):
        if sizing.output_kind != WEIGHTS:
            raise ParameterError(
                f"{type(sizing).__name__} outputs {sizing.output_kind}; a sizing model "
                "must output weights"
            )
        if not isinstance(data, MarketData):
            raise DataError("a sizing model needs MarketData, not a bare price frame")
        sizes = sizing.run(data).primary.reindex(index=signal.index, columns=signal.columns)
        out = signal * sizes.abs()
    elif callable(sizing):
        out = sizing(signal, data)
    else:
        raise ParameterError(
            "sizing must be a callable (signal, data) -> weights or a weights-model instance"
        )
    if not isinstance(out, pd.DataFrame):
        raise DataError(f"the sizing step returned {type(out).__name__}, not a DataFrame")
    _check_signal(out, data.adj_close if isinstance(data, MarketData) else data, "sizing output")
    return out


def _membership(members: pd.DataFrame, dates, tickers, warnings: list) -> np.ndarray:
    if not isinstance(members, pd.DataFrame) or not isinstance(members.index, pd.DatetimeIndex):
        raise DataError(
            "members must be a boolean DataFrame indexed by dates (dates x "
            "tickers, True where the ticker is an index member)"
        )
    if members.index.equals(dates) and members.columns.equals(tickers):
        return members.to_numpy(dtype=bool)  # already aligned (a point-in-time mask)
    absent = tickers.difference(members.columns, sort=False)
    if len(absent):
        warnings.append(
            f"{len(absent)} ticker(s) absent from the membership frame are "
            f"treated as non-members: {', '.join(map(str, absent[:5]))}"
        )
    frame = members.sort_index().astype("float64").reindex(columns=tickers)
    if len(frame.index) == 0 or frame.index[0] > dates[0]:
        warnings.append(
            "the membership frame starts after the backtest start; earlier "
            "dates count as non-members"
        )
    aligned = frame.reindex(frame.index.union(dates)).ffill().reindex(dates)
    return aligned.fillna(0.0).to_numpy() > 0.5
