"""What every regime model shares, and the regime maths per price series.

:class:`RegimeModel` is the base of the models in :mod:`mltrainer.models.regime`: its
:meth:`~RegimeModel._compute` is :func:`regime_output`, which runs the model's
:meth:`~RegimeModel.regimes` on every column of a MarketData and builds the
``ModelOutput`` (labels, ``prob_j`` frames, extras, summary tables). Each ``*_regimes``
function takes the valid prices of one column (a Series, oldest first) and a model's
parameters (by the model's names for them) and returns a :class:`ColumnRegimes` on those
dates; the classes are thin declarations around these functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.measures import regimes as lr
from mltrainer.models import _regime_bocpd as bocpd_math
from mltrainer.models import _regime_math as rm
from mltrainer.models.base import REGIME, Model, ModelOutput
from mltrainer.numerics import parallel
from mltrainer.numerics.engine import map_tickers
from mltrainer.numerics.frames import as_frame
from mltrainer.numerics.parallel import N_JOBS, current_execution, execution
from mltrainer.numerics.units import SQRT_TRADING_DAYS


@dataclass
class ColumnRegimes:
    """What a regime model computed for one price series (rows = its valid dates)."""

    labels: np.ndarray
    probs: np.ndarray | None = None  # (n, k); None = one-hot of the labels
    extras: dict = field(default_factory=dict)  # name -> (n,) array
    tables: dict = field(default_factory=dict)  # name -> DataFrame
    transition: np.ndarray | None = None  # own law (with durations); None: from labels
    warnings: list = field(default_factory=list)  # messages for the user (failed fits)


DEFAULT_NAMES = {
    2: ("calm", "stressed"),
    3: ("calm", "normal", "stressed"),
    4: ("calm", "normal", "elevated", "stressed"),
}


class RegimeModel(Model):
    """Shared machinery of the regime models (not registered).

    Subclasses implement :meth:`regimes` (one price series in, :class:`ColumnRegimes`
    out), :meth:`min_history` and, if they do not have one regime per entry of
    ``names`` (three without names), :meth:`regime_count`. :meth:`_compute` runs
    :meth:`regimes` on every column (:func:`regime_output`).
    """

    family = "regime"
    output_kind = REGIME
    names: tuple | None = None
    costly_columns = False  # seconds of fits per column: the columns run on both cores

    def regime_count(self) -> int:
        """Number of regimes ``k`` (labels ``0 .. k-1``)."""
        return len(self.names) if self.names else 3

    def regime_names(self) -> tuple:
        """One name per regime, calmest first."""
        k = self.regime_count()
        return self.names or DEFAULT_NAMES.get(k, tuple(f"regime {i}" for i in range(k)))

    def regimes(self, prices: pd.Series) -> ColumnRegimes:  # pragma: no cover - abstract
        """The regimes of one series of valid prices (oldest first), on its dates."""
        raise NotImplementedError

    def _compute(self, data: MarketData) -> ModelOutput:
        return regime_output(self, data)


def valid_prices(prices: pd.Series) -> pd.Series:
    """The positive, non-missing prices of one column (others are left unlabelled)."""
    return prices[prices > 0]


def regime_output(model: RegimeModel, data: MarketData) -> ModelOutput:
    """Run ``model.regimes`` on every column and assemble the :class:`ModelOutput`.

    Columns are independent series (usually one index): each has its own start date and
    refit schedule. A column shorter than ``model.min_history()`` still runs (its values
    are NaN where undefined) so that its extras do not depend on how much later data
    there is; a DataError says so when every column is that short.
    """
    series = {col: valid_prices(data.adj_close[col]) for col in data.adj_close.columns}
    bars = model.min_history()
    short = [f"{col} ({len(p)})" for col, p in series.items() if len(p) < bars]
    if len(short) == len(series):
        raise DataError(
            f"{type(model).__name__} needs at least {bars} valid prices per column; "
            f"none has enough: {', '.join(short[:5])}"
        )
    todo = [col for col, p in series.items() if len(p) >= 2]
    settings = current_execution()
    # seconds of maximum-likelihood fits per column (Markov switching): both cores, or
    # the caller's choice; milliseconds elsewhere, less than starting a worker
    jobs = (settings.n_jobs or N_JOBS) if model.costly_columns else 1
    run = map_tickers if model.costly_columns else parallel.map_tickers  # (a cluster too)
    with execution(n_jobs=jobs, progress=settings.progress, scheduler=settings.scheduler):
        found = run(model.regimes, [(series[col],) for col in todo])
    return _assemble(
        model, data, {col: (series[col], res) for col, res in zip(todo, found, strict=True)}
    )


def _assemble(model: RegimeModel, data: MarketData, results: dict) -> ModelOutput:
    """Labels, ``prob_j`` and extras on the data's grid; per-column tables stacked."""
    k, names = model.regime_count(), model.regime_names()
    shape = (len(data.dates), data.adj_close.shape[1])
    labels, probs = np.full(shape, np.nan), np.full((k, *shape), np.nan)
    extras: dict[str, np.ndarray] = {}
    tables: dict[str, dict] = {"transition_matrix": {}, "regime_stats": {}}
    for c, col in enumerate(data.adj_close.columns):
        if col not in results:
            continue
        prices, res = results[col]
        rows = data.dates.get_indexer(prices.index)
        labels[rows, c] = res.labels
        probs[:, rows, c] = (res.probs if res.probs is not None else rm.one_hot(res.labels, k)).T
        for key, values in res.extras.items():
            extras.setdefault(key, np.full(shape, np.nan))[rows, c] = values
        for key, table in _column_tables(res, prices, k, names).items():
            tables.setdefault(key, {})[col] = table
    out_extras = {f"prob_{j}": as_frame(probs[j], data) for j in range(k)}
    out_extras.update({key: as_frame(v, data) for key, v in extras.items()})
    out_tables = {key: pd.concat(parts, names=["column"]) for key, parts in tables.items() if parts}
    messages = tuple(m for _, res in results.values() for m in res.warnings)
    return ModelOutput(as_frame(labels, data), out_extras, out_tables, messages)


def _column_tables(res: ColumnRegimes, prices: pd.Series, k: int, names: tuple) -> dict:
    """The summary tables of one column: transitions, statistics, the model's own."""
    matrix = res.transition if res.transition is not None else lr.transition_matrix(res.labels, k)
    regimes = pd.Index(range(k), name="regime")
    out = {
        "transition_matrix": pd.DataFrame(
            matrix, index=regimes.rename("from_regime"), columns=regimes.rename("to_regime")
        ),
        "regime_stats": lr.regime_stats(res.labels, prices.pct_change().to_numpy(), k, names),
    }
    if res.transition is not None:
        durations = lr.expected_durations(res.transition)
        out["expected_durations"] = pd.DataFrame(
            {"name": list(names), "expected_duration_days": durations}, index=regimes
        )
    return {**out, **res.tables}


def volatility_regimes(
    prices: pd.Series,
    window: int,
    min_observations: int,
    calm_quantile: float,
    stress_quantile: float,
) -> ColumnRegimes:
    """Low / medium / high volatility from past-only quantiles (see VolatilityRegimeModel)."""
    vol = rm.rolling_volatility(np.log(prices).diff(), window)
    labels, thresholds = rm.expanding_quantile_labels(
        vol, (calm_quantile, stress_quantile), min_observations
    )
    return ColumnRegimes(
        labels=labels.to_numpy(),
        extras={
            "volatility": vol.to_numpy(),
            "calm_threshold": thresholds.iloc[:, 0].to_numpy(),
            "stress_threshold": thresholds.iloc[:, 1].to_numpy(),
        },
    )


def feature_regimes(
    prices: pd.Series,
    fit_apply: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_regimes: int,
    window: int,
    trend_window: int,
    refit_every: int,
    min_train: int,
) -> ColumnRegimes:
    """Walk-forward ``fit_apply`` on the return/volatility/trend features of one series.

    The features are :func:`~mltrainer.models._regime_math.regime_features`; the refits
    and ``fit_apply`` (train rows, rows to label -> probabilities sorted by stress) are
    those of :func:`~mltrainer.models._regime_math.walk_forward`.
    """
    feats = rm.regime_features(prices, window, trend_window)
    probs = rm.walk_forward(feats.to_numpy(), min_train, refit_every, fit_apply, n_regimes)
    return ColumnRegimes(labels=rm.argmax_labels(probs), probs=probs)


def kmeans_regimes(
    prices: pd.Series, n_regimes: int, random_state: int, **features: int
) -> ColumnRegimes:
    """Walk-forward k-means on standardised features (see ClusteringRegimeModel).

    ``features``: ``window``, ``trend_window``, ``refit_every``, ``min_train`` of
    :func:`feature_regimes`.
    """
    from sklearn.cluster import KMeans  # here: the stress report's regime needs no sklearn

    def fit_apply(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        km = KMeans(n_clusters=n_regimes, n_init=4, random_state=random_state)
        km.fit(rm.standardise(train, train))
        rank = rm.stress_rank(km.cluster_centers_[:, 1])  # column 1 = log volatility
        return rm.one_hot(rank[km.predict(rm.standardise(train, rows))], n_regimes)

    return feature_regimes(prices, fit_apply, n_regimes, **features)


def gmm_regimes(
    prices: pd.Series, n_regimes: int, random_state: int, covariance_type: str, **features: int
) -> ColumnRegimes:
    """Walk-forward Gaussian mixture on standardised features (see GaussianMixtureRegimeModel).

    ``features``: as for :func:`kmeans_regimes`.
    """
    from sklearn.mixture import GaussianMixture

    def fit_apply(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        gm = GaussianMixture(
            n_components=n_regimes,
            covariance_type=covariance_type,
            random_state=random_state,
            reg_covar=1e-6,
            max_iter=200,
        )
        gm.fit(rm.standardise(train, train))
        order = np.argsort(rm.stress_rank(gm.means_[:, 1]))  # column 1 = log volatility
        return gm.predict_proba(rm.standardise(train, rows))[:, order]

    return feature_regimes(prices, fit_apply, n_regimes, **features)


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
    prices: pd.Series,
    ma_window: int,
    peak_window: int,
    bear_drawdown: float,
    band: float,
    vol_window: int,
    vol_quantile: float,
    min_observations: int,
) -> ColumnRegimes:
    """Bull / sideways / bear / volatile (see MarketConditionRegimeModel)."""
    ma = prices.rolling(ma_window, min_periods=ma_window).mean()
    drawdown = prices / prices.rolling(peak_window, min_periods=1).max() - 1.0
    vol = rm.rolling_volatility(np.log(prices).diff(), vol_window)
    vol_limit = vol.expanding(min_periods=min_observations).quantile(vol_quantile)
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
            "trend_gap": gap,
            "drawdown": dd,
            "volatility": v,
            "volatility_limit": lim,
        },
    )


def markov_regimes(
    prices: pd.Series,
    k_regimes: int,
    switching_mean: bool,
    refit_every: int,
    min_train: int,
    max_train: int,
) -> ColumnRegimes:
    """Walk-forward Markov switching (see RegimeSwitchingModel)."""
    # lazy: statsmodels costs ~0.2 s to import, and most regime users never fit this model
    from mltrainer.models import _regime_markov as markov_math

    r = np.log(prices).diff().to_numpy()[1:]
    fits = markov_math.markov_walk_forward(
        r, k_regimes, switching_mean, min_train, refit_every, max_train
    )
    probs = np.vstack([np.full((1, k_regimes), np.nan), fits.probs])
    out = ColumnRegimes(labels=rm.argmax_labels(probs), probs=probs)
    if fits.failures:
        dates = prices.index[1:]
        out.tables["fit_failures"] = pd.DataFrame(
            [
                {"from_date": dates[a], "to_date": dates[b - 1], "error": msg}
                for a, b, msg in fits.failures
            ]
        )
        for a, b, msg in fits.failures:
            text = (
                f"Markov switching fit failed for {prices.name} "
                f"{dates[a].date()}..{dates[b - 1].date()} (left NaN): {msg}"
            )
            out.warnings.append(text)
            warnings.warn(text, RuntimeWarning, stacklevel=2)
    if fits.refits:
        last = fits.refits[-1][1]
        out.transition = markov_math.transition_from_params(fits.last_model, last)
        out.tables["params"] = markov_math.params_table(fits, prices.index[1:])
    return out


def performance_regimes(
    prices: pd.Series, window: int, strong_sharpe: float, weak_sharpe: float
) -> ColumnRegimes:
    """Strong / neutral / weak from the rolling Sharpe ratio (see PerformanceBasedRegimeModel)."""
    r = prices.pct_change()
    roll = r.rolling(window, min_periods=window)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = (roll.mean() / roll.std() * SQRT_TRADING_DAYS).to_numpy()
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
    combined = rm.ensemble_regimes(
        labels, counts, np.log(prices).diff().to_numpy(), window, horizon
    )
    extras = {key: v for key, v in combined.items() if key not in ("probs", "labels")}
    return ColumnRegimes(
        labels=combined["labels"],
        probs=combined["probs"],
        extras=extras,
        warnings=[w for res in results.values() for w in res.warnings],
    )
