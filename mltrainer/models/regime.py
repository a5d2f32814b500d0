"""The regime family: which market state each day is in, known on that day.

Every model here labels each (date, column) with an integer regime ``0 .. k-1`` ordered
by stress (``0`` = calmest, ``k-1`` = most stressed, i.e. highest volatility), so that
"regime 2" means the same thing in 2008 and in 2020 and across refits. Columns (an index
or a few tickers) are handled independently.

Output (kind ``regime``)
    primary : label per (date, column), float with NaN during warm-up.
    extras : ``prob_0 .. prob_{k-1}`` (probability of each regime; 0/1 for the hard
        classifiers), plus model-specific series (volatility, thresholds, stress ...).
    tables : ``transition_matrix`` (rows: column, from-regime; columns: to-regime),
        ``regime_stats`` (annualised mean return and volatility, average spell length in
        days, share of days, per regime), ``expected_durations`` where the model has a
        transition law, and model-specific tables (``change_points``, ``params``).

Causality: the label at t uses prices up to t only; anything fitted (k-means, mixtures,
Markov switching) is refitted on a schedule from data strictly before the dates it
labels. The summaries in ``tables`` use the whole input and say so.

Each class declares its parameters (``param_specs``: the ``__init__`` that
:class:`~mltrainer.models.base.Model` generates from them stores them unchanged, as
scikit-learn requires), the history it needs and its regimes around
one pure function of :mod:`mltrainer.models._regime_series` (where :class:`RegimeModel`
lives), called with the parameters by name.
"""

from __future__ import annotations

import pandas as pd

from mltrainer.errors import ParameterError
from mltrainer.models import _regime_series as series
from mltrainer.models._regime_series import ColumnRegimes, RegimeModel
from mltrainer.models.params import BoolParam, ChoiceParam, FloatParam, IntParam, validate_params


class VolatilityRegimeModel(RegimeModel):
    """Low / medium / high volatility regimes from expanding quantiles of rolling volatility.

    Notes
    -----
    ``sigma_t = sqrt(252) std(r_{t-w+1..t})`` with log returns ``r``; with ``Q_q(t)`` the
    q-quantile of ``sigma_1..sigma_t`` (linear interpolation)::

        label_t = 0 if sigma_t <= Q_calm(t), 2 if sigma_t > Q_stress(t), else 1

    Extras: ``volatility``, ``calm_threshold``, ``stress_threshold``.

    References
    ----------
    A. Ang and G. Bekaert (2002), "International Asset Allocation with Regime Shifts",
    Review of Financial Studies 15(4) (volatility regimes in equity returns).
    """

    description = "Low/medium/high volatility from past-only quantiles of rolling volatility"
    names = ("low", "medium", "high")
    param_specs = {
        "window": IntParam(5, 252, default=21, help="Rolling volatility window, trading days"),
        "min_observations": IntParam(
            63, 2520, default=252, help="Volatility observations before quantiles are used"
        ),
        "calm_quantile": FloatParam(
            0.05, 0.5, default=0.33, help="Past-only quantile below which volatility is low"
        ),
        "stress_quantile": FloatParam(
            0.5, 0.95, default=0.67, help="Past-only quantile above which volatility is high"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("calm_quantile", "stress_quantile")

    def min_history(self) -> int:
        return self.window + self.min_observations

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.volatility_regimes(prices, **self.get_params())


class _FeatureRegimeModel(RegimeModel):
    """Walk-forward fits on return, volatility and trend features (k-means, mixtures)."""

    param_specs = {
        "n_regimes": IntParam(2, 6, default=3, help="Number of regimes"),
        "window": IntParam(5, 126, default=21, help="Window of the return/volatility features"),
        "trend_window": IntParam(21, 252, default=63, help="Moving-average window of the trend"),
        "refit_every": IntParam(21, 1260, default=252, help="Trading days between refits"),
        "min_train": IntParam(252, 2520, default=504, help="Feature rows before the first fit"),
        "random_state": IntParam(0, 10_000, default=0, help="Seed of the fit's initialisation"),
    }

    def regime_count(self) -> int:
        return self.n_regimes

    def min_history(self) -> int:
        return max(self.window, self.trend_window) + self.min_train + 1


class ClusteringRegimeModel(_FeatureRegimeModel):
    """k-means regimes on return, volatility and trend features, refitted walk-forward.

    Parameters
    ----------
    window, trend_window : int
        Feature windows (see :func:`regime_features`).
    refit_every, min_train : int
        Refit schedule: first fit after ``min_train`` feature rows, then every
        ``refit_every`` days, each on all feature rows strictly before the refit date.
    random_state : int
        Seed of k-means++ initialisation.

    Notes
    -----
    Features ``x_t = (252 mean r, log(sqrt(252) std r), log(P / MA))`` are standardised
    with the training rows' means and standard deviations; k-means minimises
    ``sum ||z_t - c_{s_t}||^2``. Clusters are relabelled by the volatility coordinate of
    their centroids (0 = calmest), so labels are comparable across refits.

    References
    ----------
    S. Lloyd (1982), "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2);
    scikit-learn ``KMeans``.
    """

    description = "k-means on return/volatility/trend features, refitted on past data"

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.kmeans_regimes(prices, **self.get_params())


class GaussianMixtureRegimeModel(_FeatureRegimeModel):
    """Gaussian-mixture regimes with probabilities, refitted walk-forward on past features.

    Notes
    -----
    The standardised features ``z_t`` are modelled as ``sum_j pi_j N(mu_j, Sigma_j)``
    (EM, scikit-learn ``GaussianMixture``); ``prob_j(t) = P(j | z_t)`` from the fit made
    strictly before t (``predict_proba``), label = most probable component. Components
    are ordered by the volatility coordinate of their means (0 = calmest).

    References
    ----------
    A. P. Dempster, N. M. Laird and D. B. Rubin (1977), "Maximum likelihood from
    incomplete data via the EM algorithm", JRSS B 39(1); scikit-learn ``GaussianMixture``.
    """

    description = "Gaussian mixture on return/volatility/trend features, refitted on past data"
    param_specs = {
        **_FeatureRegimeModel.param_specs,
        "covariance_type": ChoiceParam(
            ("full", "diag"), default="full", help="Covariance of each mixture component"
        ),
    }

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.gmm_regimes(prices, **self.get_params())


class ChangePointRegimeModel(RegimeModel):
    """Bayesian online change points; segments labelled by volatility tercile vs past segments.

    Parameters
    ----------
    hazard_days : int
        Prior expected segment length (constant hazard ``1 / hazard_days``).
    min_run : int
        Days a new segment must last before its change point is confirmed.
    prior_window : int
        First returns used only to scale the prior (no labels there).

    Notes
    -----
    Adams & MacKay's run-length recursion with a Normal-Gamma model of daily log returns
    (Student-t predictive), run forward once: at day t the detector has seen returns up to
    t only. A change at date c is *confirmed* at the first day t at which the most
    probable run length places a new segment start at c, after the current segment's
    start, with at least ``min_run`` days in it; ``tables["change_points"]`` lists change
    date, detection date and the delay (trading and calendar days, always positive).
    The label at t compares the volatility of the current segment (confirmed start .. t)
    with the length-weighted terciles of the completed segments' volatilities:
    ``0`` below the first, ``2`` above the second. Extras: ``run_length`` (most probable),
    ``segment_volatility`` (annualised).

    References
    ----------
    R. P. Adams and D. J. C. MacKay (2007), "Bayesian Online Changepoint Detection",
    arXiv:0710.3742.
    """

    description = "Bayesian online change points; segments ranked by volatility vs past ones"
    param_specs = {
        "hazard_days": IntParam(20, 2520, default=250, help="Expected segment length, days"),
        "min_run": IntParam(2, 63, default=5, help="Days in a new segment before confirming"),
        "prior_window": IntParam(21, 504, default=63, help="First returns that set the prior"),
        "min_segments": IntParam(2, 20, default=3, help="Past segments needed for terciles"),
    }

    def min_history(self) -> int:
        return self.prior_window + self.min_run + 2

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.changepoint_regimes(prices, **self.get_params())


class MarketConditionRegimeModel(RegimeModel):
    """Bull / sideways / bear / volatile from trend, drawdown and volatility rules.

    Parameters
    ----------
    peak_window : int
        Trailing window of the peak that drawdowns are measured from (252 = the 52-week
        high; set it to the sample length for an all-time running peak).
    bear_drawdown : float
        Fall from the peak that makes a bear market (0.20 = the "-20% rule").
    vol_window, vol_quantile, min_observations : int, float, int
        Volatility window and the past-only (expanding) quantile above which a day is
        "volatile", once ``min_observations`` volatility values are known.

    Notes
    -----
    Labels, ordered by stress, first matching rule wins:

    ==  ==========  ===================================================
    3   volatile    ``sigma_t > Q_q(sigma_1..t)``
    2   bear        ``P_t / max(P_{t-peak+1..t}) - 1 <= -bear_drawdown`` or
                    ``P_t < MA_t (1 - band)``
    1   sideways    ``|P_t / MA_t - 1| <= band``
    0   bull        ``P_t > MA_t (1 + band)``
    ==  ==========  ===================================================

    Extras: ``trend_gap`` (``P/MA - 1``), ``drawdown``, ``volatility``,
    ``volatility_limit``.

    References
    ----------
    J. M. Maheu, T. H. McCurdy and Y. Song (2012), "Components of Bull and Bear Markets",
    Journal of Business & Economic Statistics 30(3); A. Pagan and K. Sossounov (2003),
    "A simple framework for analysing bull and bear markets", J. Applied Econometrics 18.
    """

    description = "Bull/sideways/bear/volatile from moving average, drawdown and volatility"
    names = ("bull", "sideways", "bear", "volatile")
    param_specs = {
        "ma_window": IntParam(20, 400, default=200, help="Trend moving average, trading days"),
        "peak_window": IntParam(
            21, 10_000, default=252, help="Window of the peak drawdowns are measured from"
        ),
        "bear_drawdown": FloatParam(
            0.05, 0.6, default=0.20, help="Fall from the peak that marks a bear market"
        ),
        "band": FloatParam(
            0.0, 0.2, default=0.02, help="Half-width of the sideways band around the average"
        ),
        "vol_window": IntParam(5, 126, default=21, help="Volatility window, trading days"),
        "vol_quantile": FloatParam(
            0.5, 0.99, default=0.85, help="Past-only volatility quantile marking 'volatile'"
        ),
        "min_observations": IntParam(
            63, 2520, default=252, help="Volatility values before the quantile is used"
        ),
    }

    def min_history(self) -> int:
        return max(self.ma_window, self.vol_window + self.min_observations)

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.market_condition_regimes(prices, **self.get_params())


class RegimeSwitchingModel(RegimeModel):
    """Markov-switching variance model (Hamilton filter), refitted walk-forward, filtered only.

    Parameters
    ----------
    refit_every : int
        Trading days between maximum-likelihood refits. The default (two years) keeps a
        1999-2021 daily run near 3 s: each statsmodels fit costs ~0.1 ms per return
        (BFGS with complex-step gradients), so yearly refits double the time.

    Notes
    -----
    ``r_t = mu_{s_t} + sigma_{s_t} e_t`` (``r`` = daily log return in percent,
    ``e_t ~ N(0, 1)``), ``s_t`` a k-state Markov chain with ``P(s_t = j | s_{t-1} = i) =
    p_ij``, estimated by statsmodels ``MarkovRegression`` on returns strictly before each
    refit date. Between refits the parameters are frozen and the Hamilton filter runs
    forward: ``prob_j(t) = P(s_t = j | r_1..r_t)`` (filtered, never smoothed). Regimes are
    ordered by ``sigma^2`` (0 = calmest). ``tables["transition_matrix"]`` and
    ``["expected_durations"]`` (``1 / (1 - p_ii)``, days) come from the latest fit;
    ``tables["params"]`` lists every fit in statsmodels' parameter order.

    References
    ----------
    J. D. Hamilton (1989), Econometrica 57(2); statsmodels ``MarkovRegression``.
    """

    description = "Markov-switching variance (Hamilton filter), refitted on past data"
    param_specs = {
        "k_regimes": IntParam(2, 3, default=2, help="Number of variance regimes"),
        "switching_mean": BoolParam(False, help="Let the mean return switch with the regime"),
        "refit_every": IntParam(
            21, 2520, default=504, help="Trading days between maximum-likelihood refits"
        ),
        "min_train": IntParam(252, 2520, default=504, help="Returns before the first fit"),
        "max_train": IntParam(
            0, 10_000, default=0, help="Training window; 0 = all past returns (expanding)"
        ),
    }
    costly_columns = True

    def _check_params(self) -> None:
        if self.max_train and self.max_train < self.min_train:
            raise ParameterError(
                f"max_train ({self.max_train}) must be 0 (expanding) or at least "
                f"min_train ({self.min_train})"
            )

    def regime_count(self) -> int:
        return self.k_regimes

    def min_history(self) -> int:
        return self.min_train + 2

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.markov_regimes(prices, **self.get_params())


class PerformanceBasedRegimeModel(RegimeModel):
    """Strong / neutral / weak regimes from thresholds on the rolling Sharpe ratio.

    Parameters
    ----------
    strong_sharpe, weak_sharpe : float
        Annualised Sharpe at or above which the regime is strong (0), below which weak (2).

    Notes
    -----
    ``SR_t = sqrt(252) mean(R_{t-w+1..t}) / std(R_{t-w+1..t})`` with simple daily returns
    of the column itself (buy and hold; zero risk-free rate). Weak trailing risk-adjusted
    performance comes with high volatility in equity indices (the leverage effect), so the
    order strong < neutral < weak is also an order by stress. Extra: ``rolling_sharpe``.

    References
    ----------
    W. F. Sharpe (1994), "The Sharpe Ratio", Journal of Portfolio Management 21(1).
    """

    description = "Strong/neutral/weak regimes from thresholds on the rolling Sharpe ratio"
    names = ("strong", "neutral", "weak")
    param_specs = {
        "window": IntParam(21, 504, default=126, help="Rolling Sharpe window, trading days"),
        "strong_sharpe": FloatParam(
            -1.0, 5.0, default=1.0, help="Annualised Sharpe at or above which it is strong"
        ),
        "weak_sharpe": FloatParam(
            -5.0, 2.0, default=0.0, help="Annualised Sharpe below which it is weak"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("weak_sharpe", "strong_sharpe")

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.performance_regimes(prices, **self.get_params())


# The members an ensemble chooses from with its use_* flags, by short name.
ENSEMBLE_MEMBERS = {
    "volatility": VolatilityRegimeModel,
    "clustering": ClusteringRegimeModel,
    "mixture": GaussianMixtureRegimeModel,
    "changepoint": ChangePointRegimeModel,
    "market": MarketConditionRegimeModel,
    "switching": RegimeSwitchingModel,
    "performance": PerformanceBasedRegimeModel,
}


class EnsembleRegimeModel(RegimeModel):
    """Calm / normal / stressed from member regime models, weighted by their recent skill.

    Parameters
    ----------
    use_volatility, use_clustering, use_mixture, use_changepoint, use_market,
    use_switching, use_performance : bool
        Which members (each with its default parameters) take part when ``members`` is
        None; at least two.
    members : dict of {str: RegimeModel}, optional
        The members themselves, by short name, with whatever parameters they were built
        with; at least two. It replaces the ``use_*`` choice. None (the default): the
        members the ``use_*`` flags choose from :data:`ENSEMBLE_MEMBERS`.

    Notes
    -----
    Each member's label ``l_m`` (``n_m`` regimes, ordered by stress) is mapped to a
    common stress ``s_m = l_m / (n_m - 1)`` and common label ``round(2 s_m)``. A member's
    skill at t is the correlation, over the trailing ``window`` days, between its stress
    ``horizon`` days earlier and the realised volatility of the ``horizon`` days since
    (pairs fully known at t); weights are the positive skills, normalised (equal weights
    until some member has positive skill). ``prob_j`` is the weighted share of members
    voting j, the label the most probable. Extras: ``stress`` (weighted mean stress in
    [0, 1]), ``agreement`` (share of members whose common label equals the ensemble's),
    ``weight_<member>``. See :func:`mltrainer.models._regime_math.ensemble_regimes`.

    References
    ----------
    J. M. Bates and C. W. J. Granger (1969), "The Combination of Forecasts", Operational
    Research Quarterly 20(4) (performance-weighted combination).
    """

    description = "Members' stress labels combined, weighted by how well each foresaw volatility"
    param_specs = {
        "use_volatility": BoolParam(True, help="Include VolatilityRegimeModel"),
        "use_clustering": BoolParam(False, help="Include ClusteringRegimeModel"),
        "use_mixture": BoolParam(False, help="Include GaussianMixtureRegimeModel"),
        "use_changepoint": BoolParam(True, help="Include ChangePointRegimeModel"),
        "use_market": BoolParam(True, help="Include MarketConditionRegimeModel"),
        "use_switching": BoolParam(False, help="Include RegimeSwitchingModel (slow)"),
        "use_performance": BoolParam(True, help="Include PerformanceBasedRegimeModel"),
        "window": IntParam(63, 1260, default=252, help="Days over which skill is measured"),
        "horizon": IntParam(5, 63, default=21, help="Days of volatility a label should foresee"),
    }
    component_params = ("members",)

    def member_models(self) -> dict[str, RegimeModel]:
        """The members taking part, by short name: ``members``, else the ``use_*`` choice."""
        if self.members is not None:
            return dict(self.members)
        chosen = {name: getattr(self, f"use_{name}") is True for name in ENSEMBLE_MEMBERS}
        return {name: cls() for name, cls in ENSEMBLE_MEMBERS.items() if chosen[name]}

    def _check_params(self) -> None:
        if not isinstance(self.members, dict | None):
            raise ParameterError(
                "members must be a dict {short name: regime model}, or None for the use_* "
                f"choice (got {self.members!r})"
            )
        members = self.member_models()
        if len(members) < 2:
            raise ParameterError(
                f"an ensemble needs at least two members (got {list(members) or 'none'}); "
                "pass two or more in members, or switch on two or more of "
                + ", ".join("use_" + n for n in ENSEMBLE_MEMBERS)
            )
        for name, member in members.items():
            if not isinstance(member, RegimeModel):
                raise ParameterError(f"members[{name!r}] must be a regime model (got {member!r})")
            validate_params(member)

    def min_history(self) -> int:
        return min((m.min_history() for m in self.member_models().values()), default=2)

    def regimes(self, prices: pd.Series) -> ColumnRegimes:
        return series.ensemble_member_regimes(
            prices, self.member_models(), self.window, self.horizon
        )


MODELS: tuple = (
    VolatilityRegimeModel,
    ClusteringRegimeModel,
    GaussianMixtureRegimeModel,
    ChangePointRegimeModel,
    MarketConditionRegimeModel,
    RegimeSwitchingModel,
    PerformanceBasedRegimeModel,
    EnsembleRegimeModel,
)
