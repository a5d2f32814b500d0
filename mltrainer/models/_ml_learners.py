"""The learners the machine-learning models refit: pure functions of arrays.

The fit functions ``fit_linear``, ``fit_ensemble`` and ``fit_deep`` are the
``fit_predict(x, y, t, x_pred, seed, p)`` of
:func:`mltrainer.models._ml_walkforward.walk_forward_predict` (arguments and result
described there; ``p`` holds the model's parameters), module-level so that joblib
workers can unpickle them. The tabular Q-learning of the reinforcement-learning model
follows.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from mltrainer.models._ml_walkforward import MIN_SAMPLES, FitResult

_CLIP = 5.0  # standardised features beyond 5 deviations are clipped (outlier days)


def _scale(x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    scaler = StandardScaler().fit(x)
    return [np.clip(scaler.transform(a), -_CLIP, _CLIP) for a in (x, *others)]


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
def fit_linear(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, x_pred: np.ndarray, seed: int, p: dict
) -> FitResult:
    """Logistic regression on the sign or ridge regression on the return.

    The signal is ``2 prob - 1`` for the logistic probability of an up move, or
    ``tanh(forecast / std(y))`` for the ridge forecast; features are standardised.
    """
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
    svm = (
        LinearSVC(C=0.05, random_state=seed, max_iter=5000)
        if p["svm"] == "linear"
        else SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed)
    )
    return {
        "random_forest": RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            min_samples_leaf=20,
            max_features="sqrt",
            max_samples=0.5,
            random_state=seed,
            n_jobs=1,
        ),
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=p["n_estimators"],
            max_depth=p["max_depth"],
            learning_rate=0.05,
            early_stopping=False,
            random_state=seed,
        ),
        "svm": svm,
        "neural_network": MLPClassifier(
            hidden_layer_sizes=(p["hidden_units"],),
            alpha=1e-3,
            max_iter=200,
            early_stopping=True,
            n_iter_no_change=5,
            random_state=seed,
        ),
    }


def _member_signal(name: str, model, x: np.ndarray) -> np.ndarray:
    if name == "svm":
        return np.tanh(model.decision_function(x))
    return 2.0 * model.predict_proba(x)[:, 1] - 1.0


def fit_ensemble(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, x_pred: np.ndarray, seed: int, p: dict
) -> FitResult:
    """Random forest, gradient boosting, SVM and a neural network, weighted by AUC.

    The members classify the sign of the return, fitted on the head of the training
    window and combined with weights ``max(AUC - 0.5, 0)`` measured on its held-out tail
    (equal weights if none beats 0.5).
    """
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


def fit_deep(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, x_pred: np.ndarray, seed: int, p: dict
) -> FitResult:
    """A multilayer perceptron trained epoch by epoch, early-stopped on a time split.

    The stopping rule reads the loss on the held-out (purged) tail of the training
    window; the best epoch's weights are kept.
    """
    head, tail = _time_split(t, p["validation_fraction"], p["horizon"])
    if head.sum() < MIN_SAMPLES or tail.sum() < 20:
        return None
    xs_head, xs_tail, xs_pred = _scale(x[head], x[tail], x_pred)
    layers = tuple(int(v) for v in p["hidden_layers"].split("-"))
    common = dict(
        hidden_layer_sizes=layers,
        alpha=p["alpha"],
        learning_rate_init=p["learning_rate"],
        batch_size=min(p["batch_size"], int(head.sum())),
        random_state=seed,
    )
    classify = p["task"] == "direction"
    if classify:
        yh, yt = y[head] > 0, y[tail] > 0
        if yh.all() or not yh.any():
            return None
        net = MLPClassifier(**common)
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


# ------------------------------------------------------------- Q-learning maths
ACTIONS = np.array([-1, 0, 1])  # short, flat, long


def discretise(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index 0..len(edges) of each value (-1 where the value is NaN)."""
    out = np.searchsorted(edges, values, side="right")
    return np.where(np.isfinite(values), out, -1)


def q_learning(
    market_state: np.ndarray,
    next_return: np.ndarray,
    n_market: int,
    *,
    learning_rate: float,
    discount: float,
    epsilon: float,
    episodes: int,
    cost: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tabular Q-learning over the training window, all tickers stepping together.

    States are ``(market bin, position)`` with positions -1/0/+1; actions set the next
    position; the reward of action a in state (m, p) at t is
    ``a r_{t+1} - cost |a - p|``. Each date, the temporal-difference errors of the
    tickers visiting the same (state, action) are averaged into one update
    ``Q += learning_rate x mean(r + discount max Q(s') - Q(s, a))``. Exploration is
    epsilon-greedy; ties prefer the flat action. Each episode draws its exploration from
    the seeded ``rng`` up front: a (dates - 1, tickers) array of uniforms, then one of
    random actions.
    """
    n_dates, n_tickers = market_state.shape
    q = np.zeros((n_market * 3, 3))
    q[:, 1] = 1e-12  # break ties towards staying flat
    state = np.ascontiguousarray(market_state, dtype=np.int64)
    returns = np.ascontiguousarray(np.nan_to_num(next_return), dtype=np.float64)
    active = np.ascontiguousarray((market_state >= 0) & np.isfinite(next_return))
    steps, rates = _q_steps(), (learning_rate, discount, epsilon, cost)
    for _ in range(episodes):
        uniform = rng.random((n_dates - 1, n_tickers))
        random_action = rng.integers(0, 3, (n_dates - 1, n_tickers))
        steps(q, state, returns, active, uniform, random_action, *rates)
    return q


@functools.cache
def _q_steps():
    """The compiled episode of :func:`q_learning` (numba, compiled on first use: the
    Q-table depends on the previous date's update, so the dates are a sequential loop;
    in NumPy each date cost ~85 us of array calls, 93 s for 50 tickers 2000-2021)."""
    import numba

    @numba.njit(nogil=True)
    def episode(q, state, returns, active, uniform, random_action, lr, discount, epsilon, cost):
        n_dates, n_tickers = state.shape
        sums = np.zeros(q.size)
        counts = np.zeros(q.size, dtype=np.int64)
        cells = np.empty(n_tickers, dtype=np.int64)
        actions = np.empty(n_tickers, dtype=np.int64)
        flat = q.reshape(-1)
        pos = np.ones(n_tickers, dtype=np.int64)  # index into ACTIONS (1 = flat)
        for t in range(n_dates - 1):
            for i in range(n_tickers):
                if not active[t, i]:
                    cells[i] = -1
                    continue
                s = state[t, i] * 3 + pos[i]
                a = 0  # the greedy action: the first of the largest values
                for b in range(1, 3):
                    if q[s, b] > q[s, a]:
                        a = b
                if uniform[t, i] < epsilon:
                    a = random_action[t, i]
                # ACTIONS[a] == a - 1; the reward of moving from pos[i] to a
                r = (a - 1) * returns[t, i] - cost * abs(a - pos[i])
                target = r
                if state[t + 1, i] >= 0:
                    s_next = state[t + 1, i] * 3 + a
                    target += discount * max(q[s_next, 0], q[s_next, 1], q[s_next, 2])
                cells[i] = s * 3 + a
                actions[i] = a
                sums[s * 3 + a] += target - flat[s * 3 + a]
                counts[s * 3 + a] += 1
            for i in range(n_tickers):  # one averaged update per visited cell
                c = cells[i]
                if c >= 0 and counts[c] > 0:
                    flat[c] += lr * sums[c] / counts[c]
                    sums[c] = 0.0
                    counts[c] = 0
                pos[i] = actions[i] if c >= 0 else 1
        return q

    return episode


def market_state(
    momentum: np.ndarray, vol: np.ndarray, m_edges: np.ndarray, v_edges: np.ndarray, n_bins: int
) -> np.ndarray:
    """The state ``momentum bin x n_bins + volatility bin`` (-1 where either is NaN)."""
    mb, vb = discretise(momentum, m_edges), discretise(vol, v_edges)
    return np.where((mb >= 0) & (vb >= 0), mb * n_bins + vb, -1)


def greedy_positions(
    q: np.ndarray, market: np.ndarray, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The greedy policy of ``q`` over a block of dates, its position carried day to day.

    ``market``: (dates, tickers) states; ``pos``: the positions held before the block
    (indices into :data:`ACTIONS`). Returns the positions (-1, 0, 1; NaN where the state
    is unknown, which also resets the position to flat) and the positions held after.
    """
    out = np.full(market.shape, np.nan)
    for i, m in enumerate(market):
        ok = m >= 0
        pos = np.where(ok, np.argmax(q[np.where(ok, m * 3 + pos, 0)], axis=1), 1)
        out[i] = np.where(ok, ACTIONS[pos], np.nan)
    return out, pos
