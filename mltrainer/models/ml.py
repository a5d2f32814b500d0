"""The machine-learning family: pooled cross-ticker models refitted walk-forward.

Every model here learns from the feature panel of :mod:`mltrainer.models._features`
(returns over several windows, volatility, RSI, volume z-score, distance from moving
averages, sector one-hot), pooled across tickers, and is refitted on a schedule from
samples whose labels end before the refit date (:mod:`mltrainer.models._ml_walkforward`):
the output at t never depends on data after t. The output is a signal in [-1, 1]
(``2 p - 1`` for a probability of an up move, ``tanh`` of a scaled return forecast, or a
position for the Q-learner). Each model reports its out-of-sample accuracy and AUC next
to the naive baselines (always long, sign of the last return) in
``tables["oos_scores"]``, and one row per refit in ``tables["refits"]``.

All randomness is seeded from ``random_state`` and the refit number. Refits run with
the workers and progress callback of :func:`mltrainer.numerics.parallel.execution`.

The learners are pure functions in :mod:`mltrainer.models._ml_learners`; the classes
declare their settings in ``param_specs`` only (the walk-forward settings every model
shares once, in ``_SCHEDULE``), and :class:`~mltrainer.models.base.Model` generates the
``__init__`` that stores them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import ParameterError
from mltrainer.models import _features as feat
from mltrainer.models._ml_learners import (
    ACTIONS,
    fit_deep,
    fit_ensemble,
    fit_linear,
    greedy_positions,
    market_state,
    q_learning,
)
from mltrainer.models._ml_walkforward import (
    MIN_SAMPLES,
    oos_scores,
    training_span,
    walk_forward_predict,
)
from mltrainer.models.base import SIGNAL, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import as_frame
from mltrainer.numerics.schedule import refit_rows, skipped_note, stops

# --------------------------------------------------------------------- shared specs
_SCHEDULE = {
    "refit_every": IntParam(
        21, 252, default=63, step=21, help="Trading days between refits (walk-forward)"
    ),
    "min_train": IntParam(
        252, 2520, default=504, step=21, help="Trading days of data before the first refit"
    ),
    "train_window": IntParam(
        0, 5040, default=0, step=21, help="Rolling training window in days; 0 = expanding"
    ),
    "random_state": IntParam(0, 1_000_000, default=0, help="Seed of every random choice"),
}
_HORIZON = IntParam(
    1,
    21,
    default=5,
    help="Label horizon, days: the target is the next h-day log return "
    "(or its sign); training labels end before each refit",
)
_TASK = ChoiceParam(
    ("direction", "return"),
    default="direction",
    help="direction: classify the sign of the next return; return: regress the return itself",
)
_VALIDATION = FloatParam(
    0.1,
    0.5,
    default=0.2,
    step=0.05,
    help="Share of each training window's last dates held out for validation",
)


def _cap(default: int) -> IntParam:
    return IntParam(
        1000,
        500_000,
        default=default,
        step=1000,
        help="Cap on pooled (date, ticker) training samples per refit "
        "(a seeded random subset above it)",
    )


# ------------------------------------------------------------------- base classes


class _WalkForwardMLModel(Model):
    """The schedule every ML model shares; subclasses add settings and ``_compute``."""

    family = "ml"
    output_kind = SIGNAL

    def _check_params(self) -> None:
        if 0 < self.train_window < 63:
            raise ParameterError(
                f"train_window must be 0 (expanding) or at least 63 days (got {self.train_window})"
            )

    def min_history(self) -> int:
        """``min_train`` dates, then the first refit's date."""
        return self.min_train + 1


class _PooledMLModel(_WalkForwardMLModel):
    """A model fitted by a fit function on the pooled feature panel at every refit."""

    _fit_function = None  # a module-level fit function (picklable for joblib workers)

    def _compute(self, data: MarketData) -> ModelOutput:
        features, _ = feat.feature_panel(data)
        forward = feat.forward_log_return(data, self.horizon)
        fit = type(self)._fit_function
        signal, log = walk_forward_predict(features, forward, fit, self.get_params(deep=False))
        return _signal_output(data, signal, log, forward, self.horizon)


def _signal_output(data, signal, log, forward, horizon, **tables) -> ModelOutput:
    """The signal frame, the out-of-sample scores and the refit table (then ``tables``)."""
    refits = pd.DataFrame(log)
    if len(refits):
        refits.insert(1, "date", data.dates[refits["row"].to_numpy()])
    scores = oos_scores(signal, forward, feat.trailing_log_return(data, horizon))
    return ModelOutput(
        as_frame(signal, data),
        tables={"oos_scores": scores, "refits": refits, **tables},
        warnings=skipped_note(refits, MIN_SAMPLES),
    )


class BaseMLModel(_PooledMLModel):
    """Logistic regression on the direction, or ridge regression on the return.

    Parameters
    ----------
    task : {"direction", "return"}
        Classify ``1[r_{t,t+h} > 0]`` with a logistic regression (signal ``2p - 1``) or
        regress ``r_{t,t+h} = log(P_{t+h}/P_t)`` with a ridge regression (signal
        ``tanh(forecast / std(r))``).
    C : float
        Inverse regularisation: logistic ``C``, ridge ``alpha = 1/C``.

    Notes
    -----
    Features are standardised on each training set and clipped to ±5 deviations. The
    model is one linear function of the features for all tickers (pooled).

    References
    ----------
    Hastie, Tibshirani, Friedman (2009). The Elements of Statistical Learning, ch. 3-4.
    López de Prado (2018). Advances in Financial Machine Learning, ch. 7 (purging).
    """

    description = "Pooled logistic (direction) or ridge (return) regression, refitted walk-forward"
    param_specs = {
        "task": _TASK,
        "C": FloatParam(
            0.001,
            100.0,
            default=1.0,
            step=0.001,
            help="Inverse regularisation strength (ridge alpha = 1/C)",
        ),
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(200_000),
    }
    _fit_function = staticmethod(fit_linear)


class EnsembleMLModel(_PooledMLModel):
    """Random forest, gradient boosting, SVM and neural network, weighted by validation AUC.

    Parameters
    ----------
    svm : {"linear", "rbf"}
        LinearSVC on all samples, or an RBF SVC on ``svm_max_samples`` of them.
    svm_max_samples : int
        Subsample size of the RBF SVC (its cost grows with the square of the samples).
    validation_fraction : float
        Share of each training window's last dates held out to weight the members.

    Notes
    -----
    The forest's trees each see a bootstrap sample of half the training samples
    (``max_samples=0.5``), which halves their cost and decorrelates them further.
    On each refit the members are fitted on the head of the training window, scored on
    its tail (after a purge gap of ``horizon`` days), and combined as
    ``s = Σ_m w_m s_m`` with ``w_m ∝ max(AUC_m - 0.5, 0)``; ``s_m = 2 p_m - 1`` (``tanh`` of
    the margin for the SVM). The weights and AUCs of every refit are in
    ``tables["refits"]``.

    References
    ----------
    Breiman (2001). Random forests. Machine Learning 45. Friedman (2001). Greedy function
    approximation: a gradient boosting machine. Annals of Statistics 29(5).
    """

    description = "Random forest, boosting, SVM and MLP votes weighted by out-of-sample AUC"
    param_specs = {
        "n_estimators": IntParam(
            10, 500, default=100, step=10, help="Trees of the forest and boosting iterations"
        ),
        "max_depth": IntParam(2, 16, default=6, help="Depth of the trees"),
        "svm": ChoiceParam(
            ("linear", "rbf"),
            default="linear",
            help="Linear SVM on all samples or RBF SVM on a subsample",
        ),
        "svm_max_samples": IntParam(
            500, 20_000, default=3000, step=500, help="Samples for the RBF SVM"
        ),
        "hidden_units": IntParam(4, 256, default=32, help="Neurons of the network's layer"),
        "validation_fraction": _VALIDATION,
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(12_000),
    }
    _fit_function = staticmethod(fit_ensemble)


class DeepLearningModel(_PooledMLModel):
    """A multilayer perceptron on the engineered features, with early stopping.

    Parameters
    ----------
    task : {"direction", "return"}
        Classify the sign of the next h-day return or regress the return (scaled by its
        training standard deviation).
    hidden_layers : str
        Layer widths, e.g. ``"64-32"``.
    max_epochs, patience : int
        Epochs at most; stop after ``patience`` epochs without a better validation loss.
    validation_fraction : float
        Share of each training window's last dates used for early stopping.

    Notes
    -----
    Each refit trains one epoch at a time on the head of the training window, measures
    the log loss (or squared error) on the tail after a purge gap of ``horizon`` days,
    and keeps the weights of the best epoch. Validation is by time, not a random split,
    so the stopping rule never sees the future of the samples it trains on.

    References
    ----------
    Goodfellow, Bengio, Courville (2016). Deep Learning, ch. 7.8 (early stopping).
    Gu, Kelly, Xiu (2020). Empirical asset pricing via machine learning. RFS 33(5).
    """

    description = "Multilayer perceptron on engineered features, early-stopped on a time split"
    param_specs = {
        "task": _TASK,
        "hidden_layers": ChoiceParam(
            ("32", "64-32", "128-64", "128-64-32"), default="64-32", help="Hidden layer widths"
        ),
        "learning_rate": FloatParam(1e-4, 0.1, default=1e-3, step=1e-4, help="Adam learning rate"),
        "alpha": FloatParam(0.0, 0.1, default=1e-4, step=1e-5, help="L2 penalty"),
        "batch_size": IntParam(32, 4096, default=256, step=32, help="Minibatch size"),
        "max_epochs": IntParam(5, 500, default=100, step=5, help="Most training epochs"),
        "patience": IntParam(
            2, 50, default=10, help="Epochs without a better validation loss before stopping"
        ),
        "validation_fraction": _VALIDATION,
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(50_000),
    }
    _fit_function = staticmethod(fit_deep)


class ReinforcementLearningModel(_WalkForwardMLModel):
    """Tabular Q-learning of short/flat/long from momentum, volatility and position.

    Parameters
    ----------
    momentum_window, vol_window : int
        Trailing return and trailing volatility windows that define the market state.
    n_bins : int
        Quantile bins of each (edges from the pooled training window), so
        ``n_bins² x 3`` states.
    refit_every, min_train, train_window, random_state
        The walk-forward schedule (the reward looks one day ahead, so the horizon is 1).

    Notes
    -----
    ``Q(s, a) <- Q(s, a) + α (r + γ max_a' Q(s', a') - Q(s, a))`` with
    ``r = a r_{t+1} - c |a - p|`` (Watkins 1989). Each refit learns a fresh table from
    the training window only (rewards ending before the refit date); the greedy policy
    then trades the following dates, its position carried from day to day. The signal is
    the position (-1, 0, 1); ``tables["q_table"]`` holds the last refit's table.

    References
    ----------
    Watkins, C. J. C. H., Dayan, P. (1992). Q-learning. Machine Learning 8.
    Sutton, R. S., Barto, A. G. (2018). Reinforcement Learning: An Introduction, ch. 6.5.
    """

    description = "Tabular Q-learning of short/flat/long from momentum and volatility states"
    param_specs = {
        "momentum_window": IntParam(5, 252, default=21, help="Trailing return window, days"),
        "vol_window": IntParam(5, 252, default=21, help="Trailing volatility window, days"),
        "n_bins": IntParam(2, 10, default=3, help="Quantile bins of momentum and volatility"),
        "learning_rate": FloatParam(
            0.01, 1.0, default=0.1, step=0.01, help="Q-learning step size alpha"
        ),
        "discount": FloatParam(0.0, 0.99, default=0.9, step=0.01, help="Discount gamma"),
        "epsilon": FloatParam(
            0.0, 1.0, default=0.1, step=0.01, help="Exploration rate while learning"
        ),
        "episodes": IntParam(1, 50, default=5, help="Passes over the training window"),
        "cost_bps": FloatParam(
            0.0,
            100.0,
            default=5.0,
            step=0.5,
            help="Cost per unit of position change in the reward, bps",
        ),
        **_SCHEDULE,
    }

    def _compute(self, data: MarketData) -> ModelOutput:
        momentum = feat.trailing_log_return(data, self.momentum_window)
        vol = rl.rolling_std(feat.trailing_log_return(data, 1), self.vol_window)
        forward = feat.forward_log_return(data, 1)  # the reward looks one day ahead
        signal, log, q = self._walk_forward(momentum, vol, np.expm1(forward))
        if q is None:
            return _signal_output(data, signal, log, forward, 1)
        bins = range(self.n_bins)
        names = [f"mom{m}_vol{v}_pos{p:+d}" for m in bins for v in bins for p in ACTIONS]
        q_table = pd.DataFrame(q, index=names, columns=["short", "flat", "long"])
        return _signal_output(data, signal, log, forward, 1, q_table=q_table)

    def _walk_forward(self, momentum, vol, reward):
        """Signal, refit log and last Q-table: a fresh table per refit, then greedy trading."""
        n_dates, n_tickers = momentum.shape
        rows = refit_rows(n_dates, self.min_train, self.refit_every)
        signal = np.full((n_dates, n_tickers), np.nan)
        pos = np.ones(n_tickers, dtype=np.intp)
        log, q = [], None
        qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        for k, (row, end) in enumerate(zip(rows, stops(rows, n_dates), strict=True)):
            # rewards r_{t+1} must end by row - 1: training dates up to row - 2
            lo, hi = training_span(int(row), 1, self.train_window)
            mom_tr, vol_tr = momentum[lo : hi + 2], vol[lo : hi + 2]
            both = np.isfinite(mom_tr) & np.isfinite(vol_tr)
            n_train = int(both.sum()) if hi - lo >= 20 else 0
            entry = {"refit": k, "row": int(row), "n_train": n_train}
            if n_train < MIN_SAMPLES:
                log.append({**entry, "skipped": "too few samples"})
                continue
            edges = np.quantile(mom_tr[both], qs), np.quantile(vol_tr[both], qs)
            q = q_learning(
                market_state(mom_tr, vol_tr, *edges, self.n_bins),
                np.vstack([reward[lo : hi + 1], np.full((1, n_tickers), np.nan)]),
                self.n_bins**2,
                learning_rate=self.learning_rate,
                discount=self.discount,
                epsilon=self.epsilon,
                episodes=self.episodes,
                cost=self.cost_bps / 1e4,
                rng=np.random.default_rng([self.random_state, k]),
            )
            log.append(entry)
            market = market_state(momentum[row:end], vol[row:end], *edges, self.n_bins)
            signal[row:end], pos = greedy_positions(q, market, pos)
        return signal, log, q


MODELS = (BaseMLModel, EnsembleMLModel, DeepLearningModel, ReinforcementLearningModel)
