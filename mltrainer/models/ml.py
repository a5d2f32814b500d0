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

All randomness is seeded from ``random_state`` and the refit number.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _features as feat
from mltrainer.models._ml_walkforward import (
    MIN_SAMPLES,
    oos_scores,
    refit_rows,
    training_span,
    walk_forward_predict,
)

# public: ``with refit_progress(callback):`` reports every refit of every ML model inside
# the block (the CLI's walk-forward progress bar); the schedule behind it stays private
from mltrainer.models._ml_walkforward import refit_progress as refit_progress
from mltrainer.models.base import SIGNAL, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam

# --------------------------------------------------------------------- shared specs
_SCHEDULE = {
    "refit_every": IntParam(21, 252, default=63, step=21,
                            help="Trading days between refits (walk-forward)"),
    "min_train": IntParam(252, 2520, default=504, step=21,
                          help="Trading days of data before the first refit"),
    "train_window": IntParam(0, 5040, default=0, step=21,
                             help="Rolling training window in days; 0 = expanding"),
    "random_state": IntParam(0, 1_000_000, default=0, help="Seed of every random choice"),
}
_HORIZON = IntParam(1, 21, default=5,
                    help="Label horizon, days: the target is the next h-day log return "
                         "(or its sign); training labels end before each refit")
_TASK = ChoiceParam(("direction", "return"), default="direction",
                    help="direction: classify the sign of the next return; "
                         "return: regress the return itself")
_VALIDATION = FloatParam(0.1, 0.5, default=0.2, step=0.05,
                         help="Share of each training window's last dates held out "
                              "for validation")
_CLIP = 5.0  # standardised features beyond 5 deviations are clipped (outlier days)


def _cap(default: int) -> IntParam:
    return IntParam(1000, 500_000, default=default, step=1000,
                    help="Cap on pooled (date, ticker) training samples per refit "
                         "(a seeded random subset above it)")


def _scale(x: np.ndarray, *others: np.ndarray):
    scaler = StandardScaler().fit(x)
    out = [np.clip(scaler.transform(a), -_CLIP, _CLIP) for a in (x, *others)]
    return out


def _time_split(t: np.ndarray, fraction: float, horizon: int):
    """Head and tail masks of a time-ordered training set, purged by the label horizon."""
    dates = np.unique(t)
    n_val = max(1, int(round(len(dates) * fraction)))
    tail_start = dates[-n_val]
    return t <= tail_start - 1 - horizon, t >= tail_start


def _auc(up: np.ndarray, score: np.ndarray) -> float:
    if up.all() or not up.any() or np.ptp(score) == 0:
        return 0.5
    return float(roc_auc_score(up, score))


# ----------------------------------------------------------------- fit functions
def fit_linear(x, y, t, x_pred, seed, p):
    """Logistic regression on the sign (``2p - 1``) or ridge regression on the return
    (``tanh(forecast / std(y))``), on standardised features."""
    xs, xps = _scale(x, x_pred)
    if p["task"] == "direction":
        up = y > 0
        if up.all() or not up.any():
            return None
        clf = LogisticRegression(C=p["C"], max_iter=1000).fit(xs, up)
        return 2.0 * clf.predict_proba(xps)[:, 1] - 1.0, {"up_share": float(up.mean())}
    reg = Ridge(alpha=1.0 / p["C"]).fit(xs, y)
    scale = float(np.std(y)) or 1.0
    return np.tanh(reg.predict(xps) / scale), {"target_std": scale}


def _members(p: dict, seed: int) -> dict:
    svm = (LinearSVC(C=0.05, random_state=seed, max_iter=5000) if p["svm"] == "linear"
           else SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed))
    return {
        "random_forest": RandomForestClassifier(
            n_estimators=p["n_estimators"], max_depth=p["max_depth"], min_samples_leaf=20,
            max_features="sqrt", max_samples=0.5, random_state=seed, n_jobs=1),
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=p["n_estimators"], max_depth=p["max_depth"], learning_rate=0.05,
            early_stopping=False, random_state=seed),
        "svm": svm,
        "neural_network": MLPClassifier(
            hidden_layer_sizes=(p["hidden_units"],), alpha=1e-3, max_iter=200,
            early_stopping=True, n_iter_no_change=5, random_state=seed),
    }


def _member_signal(name: str, model, x: np.ndarray) -> np.ndarray:
    if name == "svm":
        return np.tanh(model.decision_function(x))
    return 2.0 * model.predict_proba(x)[:, 1] - 1.0


def fit_ensemble(x, y, t, x_pred, seed, p):
    """Random forest, gradient boosting, SVM and a neural network on the sign of the
    return, fitted on the head of the training window and combined with weights
    ``max(AUC - 0.5, 0)`` measured on its held-out tail (equal weights if none beats
    0.5)."""
    up = y > 0
    head, tail = _time_split(t, p["validation_fraction"], p["horizon"])
    if head.sum() < MIN_SAMPLES or tail.sum() < 20:
        return None
    if up[head].all() or not up[head].any():
        return None
    xs_head, xs_tail, xs_pred = _scale(x[head], x[tail], x_pred)
    rng = np.random.default_rng(seed)
    signals, info, weights = {}, {}, {}
    for name, model in _members(p, seed).items():
        xh, yh = xs_head, up[head]
        if name == "svm" and p["svm"] == "rbf" and len(yh) > p["svm_max_samples"]:
            pick = np.sort(rng.choice(len(yh), size=p["svm_max_samples"], replace=False))
            xh, yh = xh[pick], yh[pick]
            if yh.all() or not yh.any():
                continue
        model.fit(xh, yh)
        auc = _auc(up[tail], _member_signal(name, model, xs_tail))
        signals[name] = _member_signal(name, model, xs_pred)
        weights[name] = max(auc - 0.5, 0.0)
        info[f"auc_{name}"] = auc
    total = sum(weights.values())
    if total <= 0:
        weights = {k: 1.0 for k in signals}
        total = float(len(signals))
    combined = sum(weights[k] / total * signals[k] for k in signals)
    info.update({f"weight_{k}": weights[k] / total for k in signals})
    return np.clip(combined, -1.0, 1.0), info


def fit_deep(x, y, t, x_pred, seed, p):
    """A multilayer perceptron trained epoch by epoch with early stopping on the
    held-out (purged) tail of the training window; the best epoch's weights are kept."""
    head, tail = _time_split(t, p["validation_fraction"], p["horizon"])
    if head.sum() < MIN_SAMPLES or tail.sum() < 20:
        return None
    xs_head, xs_tail, xs_pred = _scale(x[head], x[tail], x_pred)
    layers = tuple(int(v) for v in p["hidden_layers"].split("-"))
    common = dict(hidden_layer_sizes=layers, alpha=p["alpha"],
                  learning_rate_init=p["learning_rate"],
                  batch_size=min(p["batch_size"], int(head.sum())), random_state=seed)
    classify = p["task"] == "direction"
    if classify:
        yh, yt = y[head] > 0, y[tail] > 0
        if yh.all() or not yh.any():
            return None
        net = MLPClassifier(**common)
        scale = 1.0
    else:
        scale = float(np.std(y[head])) or 1.0
        yh, yt = y[head] / scale, y[tail] / scale
        net = MLPRegressor(**common)
    best, best_state, best_epoch, waited = np.inf, None, 0, 0
    for epoch in range(p["max_epochs"]):
        if classify:
            net.partial_fit(xs_head, yh, classes=np.array([False, True]))
            prob = np.clip(net.predict_proba(xs_tail)[:, 1], 1e-7, 1 - 1e-7)
            loss = float(-np.mean(yt * np.log(prob) + (~yt) * np.log(1 - prob)))
        else:
            net.partial_fit(xs_head, yh)
            loss = float(np.mean((net.predict(xs_tail) - yt) ** 2))
        if loss < best - 1e-7:
            best, best_epoch, waited = loss, epoch + 1, 0
            best_state = (copy.deepcopy(net.coefs_), copy.deepcopy(net.intercepts_))
        else:
            waited += 1
            if waited >= p["patience"]:
                break
    net.coefs_, net.intercepts_ = best_state
    if classify:
        out = 2.0 * net.predict_proba(xs_pred)[:, 1] - 1.0
    else:
        out = np.tanh(net.predict(xs_pred))
    return out, {"best_epoch": best_epoch, "validation_loss": best}


# ------------------------------------------------------------------- base class
class _WalkForwardMLModel(Model):
    family = "ml"
    output_kind = SIGNAL
    _fit_function = None  # a module-level fit function (picklable for joblib workers)

    def _fit_params(self) -> dict:
        return {name: getattr(self, name) for name in type(self).param_specs}

    def _check_params(self) -> None:
        if 0 < self.train_window < 63:
            raise ParameterError(f"train_window must be 0 (expanding) or at least 63 days "
                                 f"(got {self.train_window})")

    def _check_history(self, data: MarketData) -> None:
        if len(data.dates) <= self.min_train:
            raise DataError(
                f"{type(self).__name__} refits after min_train={self.min_train} days; the "
                f"data has {len(data.dates)}: use more history or a smaller min_train")

    def predict_output(self, data: MarketData) -> ModelOutput:
        self._check_history(data)
        features, _ = feat.feature_panel(data)
        forward = feat.forward_log_return(data, self.horizon)
        signal, log = walk_forward_predict(
            features, forward, type(self)._fit_function, horizon=self.horizon,
            refit_every=self.refit_every, min_train=self.min_train,
            train_window=self.train_window, max_train_samples=self.max_train_samples,
            seed=self.random_state, params=self._fit_params())
        trailing = feat.trailing_log_return(data, self.horizon)
        primary = pd.DataFrame(signal, index=data.dates, columns=data.adj_close.columns)
        return ModelOutput(primary, tables={
            "oos_scores": oos_scores(signal, forward, trailing),
            "refits": _refit_table(log, data.dates)})


def _refit_table(log: list, dates: pd.DatetimeIndex) -> pd.DataFrame:
    table = pd.DataFrame(log)
    if len(table):
        table.insert(1, "date", dates[table["row"].to_numpy()])
    return table


# ------------------------------------------------------------------------ models
class BaseMLModel(_WalkForwardMLModel):
    """Logistic regression on the direction, or ridge regression on the return.

    Parameters
    ----------
    task : {"direction", "return"}
        Classify ``1[r_{t,t+h} > 0]`` with a logistic regression (signal ``2p - 1``) or
        regress ``r_{t,t+h} = log(P_{t+h}/P_t)`` with a ridge regression (signal
        ``tanh(forecast / std(r))``).
    C : float
        Inverse regularisation: logistic ``C``, ridge ``alpha = 1/C``.
    horizon, refit_every, min_train, train_window, max_train_samples, random_state
        The walk-forward schedule (:mod:`mltrainer.models._ml_walkforward`).

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
        "C": FloatParam(0.001, 100.0, default=1.0, step=0.001,
                        help="Inverse regularisation strength (ridge alpha = 1/C)"),
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(200_000),
    }
    _fit_function = staticmethod(fit_linear)
    test_params = {"refit_every": 252, "max_train_samples": 5000}

    def __init__(self, task="direction", C=1.0, horizon=5, refit_every=63, min_train=504,
                 train_window=0, random_state=0, max_train_samples=200_000):
        self.task = task
        self.C = C
        self.horizon = horizon
        self.refit_every = refit_every
        self.min_train = min_train
        self.train_window = train_window
        self.random_state = random_state
        self.max_train_samples = max_train_samples


class EnsembleMLModel(_WalkForwardMLModel):
    """Random forest, gradient boosting, SVM and neural network, weighted by validation AUC.

    Parameters
    ----------
    n_estimators : int
        Trees of the random forest and boosting iterations.
    max_depth : int
        Depth of the trees of both.
    svm : {"linear", "rbf"}
        LinearSVC on all samples, or an RBF SVC on ``svm_max_samples`` of them.
    svm_max_samples : int
        Subsample size of the RBF SVC (its cost grows with the square of the samples).
    hidden_units : int
        Width of the neural network's hidden layer.
    validation_fraction : float
        Share of each training window's last dates held out to weight the members.
    horizon, refit_every, min_train, train_window, max_train_samples, random_state
        The walk-forward schedule.

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
        "n_estimators": IntParam(10, 500, default=100, step=10,
                                 help="Trees of the forest and boosting iterations"),
        "max_depth": IntParam(2, 16, default=6, help="Depth of the trees"),
        "svm": ChoiceParam(("linear", "rbf"), default="linear",
                           help="Linear SVM on all samples or RBF SVM on a subsample"),
        "svm_max_samples": IntParam(500, 20_000, default=3000, step=500,
                                    help="Samples for the RBF SVM"),
        "hidden_units": IntParam(4, 256, default=32, help="Neurons of the network's layer"),
        "validation_fraction": _VALIDATION,
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(12_000),
    }
    _fit_function = staticmethod(fit_ensemble)
    test_params = {"refit_every": 252, "n_estimators": 10, "max_depth": 3,
                   "hidden_units": 8, "max_train_samples": 2000}

    def __init__(self, n_estimators=100, max_depth=6, svm="linear", svm_max_samples=3000,
                 hidden_units=32, validation_fraction=0.2, horizon=5, refit_every=63,
                 min_train=504, train_window=0, random_state=0, max_train_samples=12_000):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.svm = svm
        self.svm_max_samples = svm_max_samples
        self.hidden_units = hidden_units
        self.validation_fraction = validation_fraction
        self.horizon = horizon
        self.refit_every = refit_every
        self.min_train = min_train
        self.train_window = train_window
        self.random_state = random_state
        self.max_train_samples = max_train_samples


class DeepLearningModel(_WalkForwardMLModel):
    """A multilayer perceptron on the engineered features, with early stopping.

    Parameters
    ----------
    task : {"direction", "return"}
        Classify the sign of the next h-day return or regress the return (scaled by its
        training standard deviation).
    hidden_layers : str
        Layer widths, e.g. ``"64-32"``.
    learning_rate, alpha, batch_size : float, float, int
        Adam step size, L2 penalty and minibatch size.
    max_epochs, patience : int
        Epochs at most; stop after ``patience`` epochs without a better validation loss.
    validation_fraction : float
        Share of each training window's last dates used for early stopping.
    horizon, refit_every, min_train, train_window, max_train_samples, random_state
        The walk-forward schedule.

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
        "hidden_layers": ChoiceParam(("32", "64-32", "128-64", "128-64-32"), default="64-32",
                                     help="Hidden layer widths"),
        "learning_rate": FloatParam(1e-4, 0.1, default=1e-3, step=1e-4,
                                    help="Adam learning rate"),
        "alpha": FloatParam(0.0, 0.1, default=1e-4, step=1e-5, help="L2 penalty"),
        "batch_size": IntParam(32, 4096, default=256, step=32, help="Minibatch size"),
        "max_epochs": IntParam(5, 500, default=100, step=5, help="Most training epochs"),
        "patience": IntParam(2, 50, default=10,
                             help="Epochs without a better validation loss before stopping"),
        "validation_fraction": _VALIDATION,
        "horizon": _HORIZON,
        **_SCHEDULE,
        "max_train_samples": _cap(50_000),
    }
    _fit_function = staticmethod(fit_deep)
    test_params = {"refit_every": 252, "hidden_layers": "32", "max_epochs": 10,
                   "max_train_samples": 3000}

    def __init__(self, task="direction", hidden_layers="64-32", learning_rate=1e-3,
                 alpha=1e-4, batch_size=256, max_epochs=100, patience=10,
                 validation_fraction=0.2, horizon=5, refit_every=63, min_train=504,
                 train_window=0, random_state=0, max_train_samples=50_000):
        self.task = task
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.horizon = horizon
        self.refit_every = refit_every
        self.min_train = min_train
        self.train_window = train_window
        self.random_state = random_state
        self.max_train_samples = max_train_samples


# ------------------------------------------------------------- Q-learning maths
ACTIONS = np.array([-1, 0, 1])  # short, flat, long


def discretise(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index 0..len(edges) of each value (-1 where the value is NaN)."""
    out = np.searchsorted(edges, values, side="right")
    return np.where(np.isfinite(values), out, -1)


def q_learning(market_state: np.ndarray, next_return: np.ndarray, n_market: int, *,
               learning_rate: float, discount: float, epsilon: float, episodes: int,
               cost: float, rng: np.random.Generator) -> np.ndarray:
    """Tabular Q-learning over the training window, all tickers stepping together.

    States are ``(market bin, position)`` with positions -1/0/+1; actions set the next
    position; the reward of action a in state (m, p) at t is
    ``a r_{t+1} - cost |a - p|``. Each date, the temporal-difference errors of the
    tickers visiting the same (state, action) are averaged into one update
    ``Q += learning_rate x mean(r + discount max Q(s') - Q(s, a))``. Exploration is
    epsilon-greedy from the seeded ``rng``; ties prefer the flat action.
    """
    n_dates, n_tickers = market_state.shape
    q = np.zeros((n_market * 3, 3))
    q[:, 1] = 1e-12  # break ties towards staying flat
    size = q.size
    for _ in range(episodes):
        pos = np.zeros(n_tickers, dtype=np.intp)  # index into ACTIONS (1 = flat)
        pos[:] = 1
        for t in range(n_dates - 1):
            m = market_state[t]
            active = (m >= 0) & np.isfinite(next_return[t])
            if not active.any():
                pos[:] = 1
                continue
            s = m * 3 + pos
            greedy = np.argmax(q[np.where(active, s, 0)], axis=1)
            explore = rng.random(n_tickers) < epsilon
            action = np.where(explore, rng.integers(0, 3, n_tickers), greedy)
            r = ACTIONS[action] * np.nan_to_num(next_return[t]) - cost * np.abs(
                ACTIONS[action] - ACTIONS[pos])
            m_next = market_state[t + 1]
            terminal = m_next < 0
            s_next = np.where(terminal, 0, m_next * 3 + action)
            target = r + discount * np.where(terminal, 0.0, q[s_next].max(axis=1))
            cell = np.where(active, s, 0) * 3 + action
            delta = target - q.flat[cell]
            sums = np.bincount(cell[active], delta[active], minlength=size)
            counts = np.bincount(cell[active], minlength=size)
            touched = counts > 0
            q.flat[touched] += learning_rate * sums[touched] / counts[touched]
            pos = np.where(active, action, 1)
    return q


class ReinforcementLearningModel(_WalkForwardMLModel):
    """Tabular Q-learning of short/flat/long from momentum, volatility and position.

    Parameters
    ----------
    momentum_window, vol_window : int
        Trailing return and trailing volatility windows that define the market state.
    n_bins : int
        Quantile bins of each (edges from the pooled training window), so
        ``n_bins² x 3`` states.
    learning_rate, discount, epsilon : float
        Q-learning step size, discount factor and exploration rate.
    episodes : int
        Passes over the training window per refit.
    cost_bps : float
        Trading cost charged in the reward per unit of position change.
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
        "learning_rate": FloatParam(0.01, 1.0, default=0.1, step=0.01,
                                    help="Q-learning step size alpha"),
        "discount": FloatParam(0.0, 0.99, default=0.9, step=0.01, help="Discount gamma"),
        "epsilon": FloatParam(0.0, 1.0, default=0.1, step=0.01,
                              help="Exploration rate while learning"),
        "episodes": IntParam(1, 50, default=5, help="Passes over the training window"),
        "cost_bps": FloatParam(0.0, 100.0, default=5.0, step=0.5,
                               help="Cost per unit of position change in the reward, bps"),
        **_SCHEDULE,
    }
    test_params = {"refit_every": 252, "episodes": 2}
    horizon = 1  # the reward is the next day's return (not a parameter)

    def __init__(self, momentum_window=21, vol_window=21, n_bins=3, learning_rate=0.1,
                 discount=0.9, epsilon=0.1, episodes=5, cost_bps=5.0, refit_every=63,
                 min_train=504, train_window=0, random_state=0):
        self.momentum_window = momentum_window
        self.vol_window = vol_window
        self.n_bins = n_bins
        self.learning_rate = learning_rate
        self.discount = discount
        self.epsilon = epsilon
        self.episodes = episodes
        self.cost_bps = cost_bps
        self.refit_every = refit_every
        self.min_train = min_train
        self.train_window = train_window
        self.random_state = random_state

    def predict_output(self, data: MarketData) -> ModelOutput:
        self._check_history(data)
        momentum = feat.trailing_log_return(data, self.momentum_window)
        daily = feat.trailing_log_return(data, 1)
        from mltrainer.numerics.rolling import rolling_std

        vol = rolling_std(daily, self.vol_window)
        nxt = feat.forward_log_return(data, 1)
        simple_next = np.expm1(nxt)
        n_dates, n_tickers = momentum.shape
        rows = refit_rows(n_dates, self.min_train, self.refit_every)
        ends = np.append(rows[1:], n_dates)
        signal = np.full((n_dates, n_tickers), np.nan)
        pos = np.ones(n_tickers, dtype=np.intp)
        log, q = [], None
        qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        for k, (row, end) in enumerate(zip(rows, ends, strict=True)):
            # rewards r_{t+1} must end by row - 1: training dates up to row - 2
            lo, hi = training_span(int(row), 1, self.train_window)
            if hi - lo < 20:
                log.append({"refit": k, "row": int(row), "n_train": 0,
                            "skipped": "too few samples"})
                continue
            mom_tr, vol_tr = momentum[lo:hi + 2], vol[lo:hi + 2]
            both = np.isfinite(mom_tr) & np.isfinite(vol_tr)
            if both.sum() < MIN_SAMPLES:
                log.append({"refit": k, "row": int(row), "n_train": int(both.sum()),
                            "skipped": "too few samples"})
                continue
            m_edges = np.quantile(mom_tr[both], qs)
            v_edges = np.quantile(vol_tr[both], qs)

            def state(mo, vo, m_edges=m_edges, v_edges=v_edges):
                mb, vb = discretise(mo, m_edges), discretise(vo, v_edges)
                return np.where((mb >= 0) & (vb >= 0), mb * self.n_bins + vb, -1)

            rewards = simple_next[lo:hi + 1].copy()
            market = state(mom_tr, vol_tr)
            q = q_learning(market, np.vstack([rewards, np.full((1, n_tickers), np.nan)]),
                           self.n_bins ** 2, learning_rate=self.learning_rate,
                           discount=self.discount, epsilon=self.epsilon,
                           episodes=self.episodes, cost=self.cost_bps / 1e4,
                           rng=np.random.default_rng([self.random_state, k]))
            log.append({"refit": k, "row": int(row), "n_train": int(both.sum())})
            # the greedy policy trades the next block, carrying its position day to day
            market_pred = state(momentum[row:end], vol[row:end])
            for i in range(end - row):
                m = market_pred[i]
                ok = m >= 0
                best = np.argmax(q[np.where(ok, m * 3 + pos, 0)], axis=1)
                pos = np.where(ok, best, 1)
                signal[row + i] = np.where(ok, ACTIONS[pos], np.nan)
        forward = feat.forward_log_return(data, 1)
        trailing = feat.trailing_log_return(data, 1)
        primary = pd.DataFrame(signal, index=data.dates, columns=data.adj_close.columns)
        tables = {"oos_scores": oos_scores(signal, forward, trailing),
                  "refits": _refit_table(log, data.dates)}
        if q is not None:
            names = [f"mom{m}_vol{v}_pos{p:+d}" for m in range(self.n_bins)
                     for v in range(self.n_bins) for p in ACTIONS]
            tables["q_table"] = pd.DataFrame(q, index=names, columns=["short", "flat", "long"])
        return ModelOutput(primary, tables=tables)


MODELS = (BaseMLModel, EnsembleMLModel, DeepLearningModel, ReinforcementLearningModel)
