"""Regime maths per price series, and the assembly of a regime model's output.

Each ``*_regimes`` function takes the valid prices of one column (a Series, oldest
first) and the model's parameters and returns a :class:`ColumnRegimes` on those dates;
:func:`regime_output` runs a model over every column of a MarketData and builds the
``ModelOutput`` (labels, ``prob_j`` frames, extras, summary tables). The classes in
:mod:`mltrainer.models.regime` are thin wrappers around these functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.models import _regime_bocpd as bocpd_math
from mltrainer.models import _regime_markov as markov_math
from mltrainer.models._regime_math import (
    SQRT_YEAR,
    argmax_labels,
    ensemble_regimes,
    expanding_quantile_labels,
    expected_durations,
    one_hot,
    regime_features,
    regime_stats,
    rolling_volatility,
    standardise,
    stress_rank,
    transition_matrix,
    walk_forward,
)
from mltrainer.models.base import ModelOutput, require_history


@dataclass
class ColumnRegimes:
    """What a regime model computed for one price series (rows = its valid dates)."""

    labels: np.ndarray
    probs: np.ndarray | None = None  # (n, k); None = one-hot of the labels
    extras: dict = field(default_factory=dict)  # name -> (n,) array
    tables: dict = field(default_factory=dict)  # name -> DataFrame
    transition: np.ndarray | None = None  # model-implied; None = counted from labels
    durations: np.ndarray | None = None
    warnings: list = field(default_factory=list)  # messages for the user (failed fits)


def valid_prices(prices: pd.Series) -> pd.Series:
    """The positive, non-missing prices of one column (others are left unlabelled)."""
    return prices[prices > 0]


def regime_output(model, data: MarketData) -> ModelOutput:
    """Run ``model.regimes`` on every column and assemble the :class:`ModelOutput`.

    ``model`` is a :class:`mltrainer.models.regime.RegimeModel` (``regimes``,
    ``min_bars``, ``regime_count``, ``regime_names``). Raises DataError when the data
    or every column is shorter than ``model.min_bars()``.
    """
    name = type(model).__name__
    bars = model.min_bars()
    require_history(name, data, bars)
    k, names = model.regime_count(), model.regime_names()
    dates, cols = data.dates, data.adj_close.columns
    labels = np.full((len(dates), len(cols)), np.nan)
    probs = np.full((k, len(dates), len(cols)), np.nan)
    extras: dict[str, np.ndarray] = {}
    tables: dict[str, dict] = {"transition_matrix": {}, "regime_stats": {}}
    messages: list[str] = []
    # Columns are independent series (usually one index): each has its own start date
    # and refit schedule, so they are handled one at a time. A column shorter than the
    # warm-up still runs (its values are NaN where undefined) so that its extras do not
    # depend on how much later data there is.
    series = {col: valid_prices(data.adj_close[col]) for col in cols}
    short = [f"{col} ({len(p)})" for col, p in series.items() if len(p) < bars]
    todo = [col for col, p in series.items() if len(p) >= 2]
    # seconds of maximum-likelihood fits per column (Markov switching): both cores
    jobs = 2 if getattr(model, "costly_columns", False) and len(todo) > 1 else 1
    from mltrainer.models.garch import map_tickers

    results = dict(zip(todo, map_tickers(model.regimes, [(series[c],) for c in todo],
                                         n_jobs=jobs), strict=True))
    for c, col in enumerate(cols):
        if col not in results:
            continue
        prices = series[col]
        rows = dates.get_indexer(prices.index)
        res = results[col]
        labels[rows, c] = res.labels
        p = res.probs if res.probs is not None else one_hot(res.labels, k)
        probs[:, rows, c] = p.T
        for key, values in res.extras.items():
            extras.setdefault(key, np.full((len(dates), len(cols)), np.nan))[rows, c] = values
        matrix = res.transition if res.transition is not None else transition_matrix(
            res.labels, k
        )
        tables["transition_matrix"][col] = pd.DataFrame(
            matrix, index=pd.Index(range(k), name="from_regime"),
            columns=pd.Index(range(k), name="to_regime"),
        )
        simple = prices.pct_change().to_numpy()
        tables["regime_stats"][col] = regime_stats(res.labels, simple, k, names)
        if res.durations is not None:
            tables.setdefault("expected_durations", {})[col] = pd.DataFrame(
                {"name": list(names), "expected_duration_days": res.durations},
                index=pd.Index(range(k), name="regime"),
            )
        for key, table in res.tables.items():
            tables.setdefault(key, {})[col] = table
        messages.extend(res.warnings)
    if len(short) == len(cols):
        raise DataError(
            f"{name} needs at least {bars} valid prices per column; "
            f"none has enough: {', '.join(short[:5])}"
        )

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=dates, columns=cols)

    out_extras = {f"prob_{j}": frame(probs[j]) for j in range(k)}
    out_extras.update({key: frame(v) for key, v in extras.items()})
    out_tables = {
        key: pd.concat(parts, names=["column"]) for key, parts in tables.items() if parts
    }
    return ModelOutput(primary=frame(labels), extras=out_extras, tables=out_tables,
                       warnings=tuple(messages))


def volatility_regimes(
    prices: pd.Series, window: int, min_history: int, calm_quantile: float,
    stress_quantile: float,
) -> ColumnRegimes:
    """Low / medium / high volatility from past-only quantiles (see VolatilityRegimeModel)."""
    vol = rolling_volatility(np.log(prices).diff(), window)
    labels, thresholds = expanding_quantile_labels(
        vol, (calm_quantile, stress_quantile), min_history
    )
    return ColumnRegimes(
        labels=labels.to_numpy(),
        extras={
            "volatility": vol.to_numpy(),
            "calm_threshold": thresholds.iloc[:, 0].to_numpy(),
            "stress_threshold": thresholds.iloc[:, 1].to_numpy(),
        },
    )


def kmeans_regimes(
    prices: pd.Series, n_regimes: int, window: int, trend_window: int, refit_every: int,
    min_train: int, random_state: int,
) -> ColumnRegimes:
    """Walk-forward k-means on standardised features (see ClusteringRegimeModel)."""
    feats = regime_features(prices, window, trend_window)

    def fit_apply(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        km = KMeans(n_clusters=n_regimes, n_init=4, random_state=random_state)
        km.fit(standardise(train, train))
        rank = stress_rank(km.cluster_centers_[:, 1])  # column 1 = log volatility
        return one_hot(rank[km.predict(standardise(train, rows))], n_regimes)

    probs = walk_forward(feats.to_numpy(), min_train, refit_every, fit_apply, n_regimes)
    return ColumnRegimes(labels=argmax_labels(probs), probs=probs)


def gmm_regimes(
    prices: pd.Series, n_regimes: int, window: int, trend_window: int, refit_every: int,
    min_train: int, random_state: int, covariance_type: str,
) -> ColumnRegimes:
    """Walk-forward Gaussian mixture on standardised features (see GaussianMixtureRegimeModel)."""
    feats = regime_features(prices, window, trend_window)

    def fit_apply(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        gm = GaussianMixture(
            n_components=n_regimes, covariance_type=covariance_type,
            random_state=random_state, reg_covar=1e-6, max_iter=200,
        )
        gm.fit(standardise(train, train))
        order = np.argsort(stress_rank(gm.means_[:, 1]))  # column 1 = log volatility
        return gm.predict_proba(standardise(train, rows))[:, order]

    probs = walk_forward(feats.to_numpy(), min_train, refit_every, fit_apply, n_regimes)
    return ColumnRegimes(labels=argmax_labels(probs), probs=probs)


def changepoint_regimes(
    prices: pd.Series, hazard_days: int, min_run: int, prior_window: int, min_segments: int
) -> ColumnRegimes:
    """Online change points and segment-volatility terciles (see ChangePointRegimeModel)."""
    r = np.log(prices).diff().to_numpy()[1:]  # row i = return into date i + 1
    cps = bocpd_math.bocpd(r, hazard_days, min_run, prior_window)
    labels, seg_vol = bocpd_math.segment_regimes(r, cps, prior_window, min_segments)
    dates = prices.index[1:]
    table = pd.DataFrame(
        {
            "change_date": dates[cps.starts],
            "detection_date": dates[cps.detected],
            "delay_days": cps.detected - cps.starts,
            "delay_calendar_days": (dates[cps.detected] - dates[cps.starts]).days,
        }
    )

    def pad(x: np.ndarray) -> np.ndarray:  # back onto the price dates (no return on day 0)
        return np.concatenate(([np.nan], x))

    return ColumnRegimes(
        labels=pad(labels),
        extras={"run_length": pad(cps.map_run_length), "segment_volatility": pad(seg_vol)},
        tables={"change_points": table},
    )


def market_condition_regimes(
    prices: pd.Series, ma_window: int, peak_window: int, bear_drawdown: float, band: float,
    vol_window: int, vol_quantile: float, min_history: int,
) -> ColumnRegimes:
    """Bull / sideways / bear / volatile (see MarketConditionRegimeModel)."""
    ma = prices.rolling(ma_window, min_periods=ma_window).mean()
    drawdown = prices / prices.rolling(peak_window, min_periods=1).max() - 1.0
    vol = rolling_volatility(np.log(prices).diff(), vol_window)
    vol_limit = vol.expanding(min_periods=min_history).quantile(vol_quantile)
    gap = (prices / ma - 1.0).to_numpy()
    dd, v, lim = drawdown.to_numpy(), vol.to_numpy(), vol_limit.to_numpy()
    labels = np.select(
        [v > lim, (dd <= -bear_drawdown) | (gap < -band), gap <= band],
        [3.0, 2.0, 1.0],
        default=0.0,
    )
    labels[np.isnan(gap) | np.isnan(v) | np.isnan(lim)] = np.nan
    return ColumnRegimes(
        labels=labels,
        extras={
            "trend_gap": gap, "drawdown": dd, "volatility": v, "volatility_limit": lim,
        },
    )


def markov_regimes(
    prices: pd.Series, k_regimes: int, switching_mean: bool, refit_every: int, min_train: int,
    max_train: int,
) -> ColumnRegimes:
    """Walk-forward Markov switching (see RegimeSwitchingModel)."""
    r = np.log(prices).diff().to_numpy()[1:]
    fits = markov_math.markov_walk_forward(
        r, k_regimes, switching_mean, min_train, refit_every, max_train
    )
    probs = np.vstack([np.full((1, k_regimes), np.nan), fits.probs])
    out = ColumnRegimes(labels=argmax_labels(probs), probs=probs)
    if fits.failures:
        dates = prices.index[1:]
        out.tables["fit_failures"] = pd.DataFrame(
            [{"from_date": dates[a], "to_date": dates[b - 1], "error": msg}
             for a, b, msg in fits.failures])
        for a, b, msg in fits.failures:
            text = (f"Markov switching fit failed for {prices.name} "
                    f"{dates[a].date()}..{dates[b - 1].date()} (left NaN): {msg}")
            out.warnings.append(text)
            warnings.warn(text, RuntimeWarning, stacklevel=2)
    if fits.refits:
        last = fits.refits[-1][1]
        out.transition = markov_math.transition_from_params(fits.last_model, last)
        out.durations = expected_durations(out.transition)
        out.tables["params"] = markov_math.params_table(fits, prices.index[1:])
    return out


def performance_regimes(
    prices: pd.Series, window: int, strong_sharpe: float, weak_sharpe: float
) -> ColumnRegimes:
    """Strong / neutral / weak from the rolling Sharpe ratio (see PerformanceBasedRegimeModel)."""
    r = prices.pct_change()
    roll = r.rolling(window, min_periods=window)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = (roll.mean() / roll.std() * SQRT_YEAR).to_numpy()
    labels = np.where(sharpe >= strong_sharpe, 0.0, np.where(sharpe < weak_sharpe, 2.0, 1.0))
    labels[np.isnan(sharpe)] = np.nan
    return ColumnRegimes(labels=labels, extras={"rolling_sharpe": sharpe})


def ensemble_member_regimes(
    prices: pd.Series, members: dict, window: int, horizon: int
) -> ColumnRegimes:
    """Run each member regime model on the series and combine them (see EnsembleRegimeModel).

    ``members`` maps a short name to a regime model (anything with ``regimes(prices)``
    and ``regime_count()``); the combination is
    :func:`mltrainer.models._regime_math.ensemble_regimes`.
    """
    results = {name: member.regimes(prices) for name, member in members.items()}
    labels = {name: res.labels for name, res in results.items()}
    counts = {name: member.regime_count() for name, member in members.items()}
    combined = ensemble_regimes(
        labels, counts, np.log(prices).diff().to_numpy(), window, horizon
    )
    extras = {key: v for key, v in combined.items() if key not in ("probs", "labels")}
    return ColumnRegimes(labels=combined["labels"], probs=combined["probs"], extras=extras,
                         warnings=[w for res in results.values() for w in res.warnings])
