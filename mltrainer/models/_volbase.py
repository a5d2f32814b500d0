"""The volatility family's base class and the steps its models share.

Log returns of the adjusted close, output frames on the data's grid, the per-parameter
settings object of a per-ticker fit, and the walk-forward runner of the models that fit
one ticker at a time (GARCH, the forecasters): each ticker's finite values, in parallel
(:func:`mltrainer.numerics.engine.map_tickers`: jobs and progress come from
:func:`~mltrainer.numerics.parallel.execution`), refitted on a calendar schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.models._volmath import log_returns as _log_returns
from mltrainer.models.base import VOLATILITY, Model, ModelOutput
from mltrainer.numerics.engine import map_tickers
from mltrainer.numerics.frames import as_array, as_frame
from mltrainer.numerics.schedule import calendar_refit_rows

REFIT_HELP = "How often the model is re-estimated (from data strictly before the date)"


class VolatilityModel(Model):
    """Base of the volatility family: output kind ``volatility``, annualised."""

    family = "volatility"
    output_kind = VOLATILITY


def log_returns(data: MarketData) -> np.ndarray:
    """``ln(P_t / P_{t-1})`` of the adjusted close, (dates x tickers)."""
    return _log_returns(as_array(data.adj_close))


def output(
    data: MarketData,
    primary: np.ndarray,
    tables: dict | None = None,
    warnings: tuple[str, ...] = (),
    **extras: np.ndarray,
) -> ModelOutput:
    """The primary and the named extra (dates x tickers) arrays as frames on ``data``."""
    frames = {name: as_frame(values, data) for name, values in extras.items()}
    return ModelOutput(as_frame(primary, data), frames, tables or {}, warnings)


def spec_of(model: Model, spec_class: type) -> object:
    """A per-ticker fit's settings (a dataclass): the model's parameters of those names."""
    return spec_class(**{f.name: getattr(model, f.name) for f in fields(spec_class)})


def fit_per_ticker(
    fit: Callable, values: np.ndarray, spec: object, data: MarketData, refit: str
) -> tuple[list[np.ndarray], list[dict], pd.DataFrame]:
    """Walk-forward ``fit(series, obs_before, spec)`` on each ticker's finite values.

    Fits run on a ticker's own observations (date order), so a ticker that lists
    mid-sample or has a missing day is handled like any other (a gap is skipped);
    ``obs_before`` counts them before each refit row (the first trading day of each
    ``refit`` period). ``fit`` returns series aligned with those observations, then one
    dict per refit (``refit`` indexes the schedule).

    Returns the series placed back on the (dates x tickers) panel (NaN elsewhere), the
    refit records (``ticker``, ``refit_date`` first) and them as a table indexed by
    (ticker, refit_date).
    """
    refits = calendar_refit_rows(data.dates, refit)
    observed = [np.flatnonzero(np.isfinite(values[:, j])) for j in range(values.shape[1])]
    tasks = [(values[pos, j], np.searchsorted(pos, refits), spec) for j, pos in enumerate(observed)]
    results = map_tickers(fit, tasks)
    panels = [np.full(values.shape, np.nan) for _ in results[0][:-1]]
    records = []
    tickers, refit_dates = data.tickers, data.dates[refits]  # (tickers builds a list)
    for j, (pos, (*series, rows)) in enumerate(zip(observed, results, strict=True)):
        for panel, values_j in zip(panels, series, strict=True):
            panel[pos, j] = values_j
        for row in rows:
            head = {"ticker": tickers[j], "refit_date": refit_dates[row["refit"]]}
            records.append(head | {k: v for k, v in row.items() if k != "refit"})
    table = pd.DataFrame.from_records(records)
    return panels, records, table.set_index(["ticker", "refit_date"]) if len(table) else table
