"""The ml family: features against pandas/TA-Lib, the label purge, no leakage, baselines."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _features as feat
from mltrainer.models._ml_learners import ACTIONS, fit_linear, market_state, q_learning
from mltrainer.models._ml_walkforward import walk_forward_predict
from mltrainer.models.ml import (
    BaseMLModel,
    DeepLearningModel,
    EnsembleMLModel,
    ReinforcementLearningModel,
)
from mltrainer.numerics.parallel import execution, step_unit
from mltrainer.numerics.rolling import causal_split_volume
from tests.models.fast_settings import fast_params

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA"]


@pytest.fixture(scope="module")
def data(basket):
    return basket.select(tickers=TICKERS, start="2008-01-01", end="2014-12-31")


def _frame(x, like):
    return pd.DataFrame(x, index=like.index, columns=like.columns)


def test_features_against_pandas_and_talib(talib, data):
    x, names = feat.feature_panel(data)
    px = data.adj_close
    logp = np.log(px)

    def col(name):
        return _frame(x[:, :, names.index(name)], px)

    pd.testing.assert_frame_equal(col("ret_21"), logp - logp.shift(21), rtol=1e-12)
    r21 = logp - logp.shift(21)
    pd.testing.assert_frame_equal(
        col("xs_ret_21"), r21.sub(r21.mean(axis=1), axis=0), rtol=1e-10, atol=1e-13
    )
    vol = logp.diff().rolling(63).std() * np.sqrt(252)
    pd.testing.assert_frame_equal(col("vol_63"), vol, rtol=1e-7, atol=1e-12)
    pd.testing.assert_frame_equal(
        col("ma_dist_50"), px / px.rolling(50).mean() - 1, rtol=1e-9, atol=1e-12
    )
    rsi = talib.RSI(px["AAPL"].to_numpy(), 14) / 100 - 0.5
    np.testing.assert_allclose(col("rsi_14")["AAPL"].to_numpy(), rsi, rtol=1e-9, atol=1e-12)
    logv = np.log(_frame(causal_split_volume(data.volume, data.splits), px))
    z = (logv - logv.rolling(63).mean()) / logv.rolling(63).std()
    pd.testing.assert_frame_equal(col("volume_z"), z, rtol=1e-6, atol=1e-9)
    # TSLA lists in 2010: no feature before its first price
    first = px["TSLA"].first_valid_index()
    assert np.isnan(x[px.index < first, TICKERS.index("TSLA"), :]).all()
    with_sectors = replace(
        data,
        sectors={
            "AAPL": "Information Technology",
            "MSFT": "Information Technology",
            "JPM": "Financials",
        },
    )
    x2, names2 = feat.feature_panel(with_sectors)
    it = x2[-1, :, names2.index("sector_Information Technology")]
    assert it.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert x2[-1, :, names2.index("sector_Financials")].tolist() == [0, 0, 1, 0, 0]


_SEEN: list = []


def _recording_fit(x, y, t, x_pred, seed, params):
    _SEEN.append((int(t.min()), int(t.max()), len(y)))
    return np.zeros(len(x_pred)), {}


@pytest.mark.parametrize("train_window", [0, 300])
def test_training_labels_end_before_each_refit(data, train_window):
    """The purge: refit at row R trains on dates t <= R - 1 - h only."""
    x, _ = feat.feature_panel(data)
    y = feat.forward_log_return(data, 5)
    _SEEN.clear()
    schedule = dict(
        horizon=5,
        refit_every=63,
        min_train=400,
        train_window=train_window,
        max_train_samples=10**6,
        random_state=0,
    )
    out, log = walk_forward_predict(x, y, _recording_fit, schedule)
    rows = [entry["row"] for entry in log if "skipped" not in entry]
    assert len(rows) == len(_SEEN) >= 20
    for row, (t_min, t_max, n) in zip(rows, _SEEN, strict=True):
        assert t_max == row - 1 - 5  # the last label ends the day before the refit
        if train_window:
            assert t_min >= row - 1 - 5 - train_window + 1
        usable = np.isfinite(x[: row - 5]).all(axis=2) & np.isfinite(y[: row - 5])
        if not train_window:
            assert n == usable.sum()
    assert np.isnan(out[:400]).all() and np.isfinite(out[400:]).any()


def test_shuffling_future_labels_leaves_past_predictions_unchanged(data):
    x, _ = feat.feature_panel(data)
    y = feat.forward_log_return(data, 5)
    params = dict(
        horizon=5,
        refit_every=126,
        min_train=504,
        train_window=0,
        max_train_samples=10**6,
        random_state=0,
        task="direction",
        C=1.0,
    )
    base, _ = walk_forward_predict(x, y, fit_linear, params)
    refit = 504 + 2 * 126
    shuffled = y.copy()
    rng = np.random.default_rng(7)
    shuffled[refit - 5 :] = shuffled[refit - 5 :][rng.permutation(len(y) - refit + 5)]
    other, _ = walk_forward_predict(x, shuffled, fit_linear, params)
    np.testing.assert_array_equal(base[: refit + 126], other[: refit + 126])
    assert not np.allclose(base[refit + 126 :], other[refit + 126 :], equal_nan=True)


def test_base_model_equals_sklearn_by_hand(data):
    model = BaseMLModel(refit_every=126, min_train=504, C=0.5)
    out = model.run(data)
    x, _ = feat.feature_panel(data)
    y = feat.forward_log_return(data, 5)
    row = 504 + 126  # the second refit: trains on t <= row - 6
    xt, yt = x[: row - 5].reshape(-1, x.shape[2]), y[: row - 5].reshape(-1)
    ok = np.isfinite(xt).all(axis=1) & np.isfinite(yt)
    scaler = StandardScaler().fit(xt[ok])
    clf = LogisticRegression(C=0.5, max_iter=1000).fit(
        np.clip(scaler.transform(xt[ok]), -5, 5), yt[ok] > 0
    )
    xp = x[row : row + 126].reshape(-1, x.shape[2])
    okp = np.isfinite(xp).all(axis=1)
    want = np.full(len(xp), np.nan)
    want[okp] = 2 * clf.predict_proba(np.clip(scaler.transform(xp[okp]), -5, 5))[:, 1] - 1
    got = out.primary.iloc[row : row + 126].to_numpy().reshape(-1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_oos_scores_and_baselines_by_hand(data):
    out = BaseMLModel(refit_every=126).run(data)
    table = out.tables["oos_scores"]
    sig = out.primary.to_numpy()
    logp = np.log(data.adj_close).to_numpy()
    fwd = np.full_like(logp, np.nan)
    fwd[:-5] = logp[5:] - logp[:-5]
    back = np.full_like(logp, np.nan)
    back[5:] = logp[5:] - logp[:-5]
    ok = np.isfinite(sig) & (sig != 0) & np.isfinite(fwd) & (fwd != 0) & np.isfinite(back)
    up = fwd[ok] > 0
    assert table.loc["model", "n"] == ok.sum() > 3000
    assert table.loc["model", "accuracy"] == pytest.approx(np.mean((sig[ok] > 0) == up))
    assert table.loc["always_long", "accuracy"] == pytest.approx(up.mean())
    assert table.loc["always_long", "auc"] == 0.5
    assert table.loc["last_sign", "accuracy"] == pytest.approx(np.mean((back[ok] > 0) == up))
    assert table.loc["model", "auc"] == pytest.approx(roc_auc_score(up, sig[ok]))


def test_ensemble_weights_follow_validation_auc(data):
    out = EnsembleMLModel(**fast_params(EnsembleMLModel)).run(data)
    refits = out.tables["refits"].dropna(subset=["weight_svm"])
    members = ["random_forest", "gradient_boosting", "svm", "neural_network"]
    assert len(refits) >= 3
    for _, r in refits.iterrows():
        edge = np.array([max(r[f"auc_{m}"] - 0.5, 0.0) for m in members])
        want = edge / edge.sum() if edge.sum() > 0 else np.full(4, 0.25)
        got = np.array([r[f"weight_{m}"] for m in members])
        np.testing.assert_allclose(got, want, rtol=1e-12)
    vals = out.primary.to_numpy()
    assert np.nanmin(vals) >= -1 and np.nanmax(vals) <= 1


def test_deep_model_stops_early_on_the_time_split(data):
    out = DeepLearningModel(
        hidden_layers="32", max_epochs=30, patience=3, refit_every=252, max_train_samples=3000
    ).run(data)
    refits = out.tables["refits"]
    assert refits["best_epoch"].between(1, 30).all()
    assert refits["validation_loss"].gt(0).all()
    assert out.tables["oos_scores"].loc["model", "n"] > 1000


def test_q_learning_one_step_by_hand():
    """epsilon = 1: the seeded draw picks the action; one TD update, by hand."""
    market = np.array([[0], [0]])
    rewards = np.array([[0.01], [np.nan]])
    q = q_learning(
        market,
        rewards,
        1,
        learning_rate=0.5,
        discount=0.9,
        epsilon=1.0,
        episodes=1,
        cost=0.001,
        rng=np.random.default_rng(5),
    )
    twin = np.random.default_rng(5)
    twin.random(1)
    a = int(twin.integers(0, 3, 1)[0])
    q0 = np.zeros((3, 3))
    q0[:, 1] = 1e-12
    reward = ACTIONS[a] * 0.01 - 0.001 * abs(ACTIONS[a])
    s, s_next = 1, a  # flat before; the next state holds the new position
    want = q0.copy()
    want[s, a] += 0.5 * (reward + 0.9 * q0[s_next].max() - q0[s, a])
    np.testing.assert_allclose(q, want, rtol=0, atol=1e-18)


def _q_learning_numpy(state, next_return, n_market, lr, discount, epsilon, episodes, cost, rng):
    """Reference: the Q-learning of the model written with NumPy array calls, date by
    date (how it was written before the compiled kernel), exploration drawn per episode
    as the model documents."""
    n_dates, n_tickers = state.shape
    q = np.zeros((n_market * 3, 3))
    q[:, 1] = 1e-12
    returns = np.nan_to_num(next_return)
    active_at = (state >= 0) & np.isfinite(next_return)
    for _ in range(episodes):
        uniform = rng.random((n_dates - 1, n_tickers))
        random_action = rng.integers(0, 3, (n_dates - 1, n_tickers))
        pos = np.ones(n_tickers, dtype=np.intp)
        for t in range(n_dates - 1):
            active = active_at[t]
            s = np.where(active, state[t] * 3 + pos, 0)
            action = np.where(uniform[t] < epsilon, random_action[t], q[s].argmax(axis=1))
            r = (action - 1) * returns[t] - cost * np.abs(action - pos)
            terminal = state[t + 1] < 0
            s_next = np.where(terminal, 0, state[t + 1] * 3 + action)
            target = r + discount * np.where(terminal, 0.0, q[s_next].max(axis=1))
            cell = s * 3 + action
            delta = target - q.flat[cell]
            sums = np.bincount(cell[active], delta[active], minlength=q.size)
            counts = np.bincount(cell[active], minlength=q.size)
            touched = counts > 0
            q.flat[touched] += lr * sums[touched] / counts[touched]
            pos = np.where(active, action, 1)
    return q


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 1.0])
def test_q_learning_matches_numpy_reference(basket, epsilon):
    """The compiled kernel against the NumPy reference on real market states: 20
    tickers 2005-2009 (NaN states where a ticker had no history yet), 3 bins."""
    panel = basket.select(start="2005-01-01", end="2009-12-31")
    panel = panel.select(tickers=list(panel.tickers[:20]))
    momentum = feat.trailing_log_return(panel, 21)
    vol = pd.DataFrame(momentum).rolling(21).std().to_numpy()
    forward = np.expm1(feat.forward_log_return(panel, 1))
    qs = [1 / 3, 2 / 3]
    both = np.isfinite(momentum) & np.isfinite(vol)
    edges = np.quantile(momentum[both], qs), np.quantile(vol[both], qs)
    state = market_state(momentum, vol, *edges, 3)
    assert (state < 0).any() and (state >= 0).sum() > 10_000
    kwargs = dict(learning_rate=0.1, discount=0.9, epsilon=epsilon, episodes=2, cost=5e-4)
    got = q_learning(state, forward, 9, rng=np.random.default_rng(3), **kwargs)
    want = _q_learning_numpy(
        state, forward, 9, 0.1, 0.9, epsilon, 2, 5e-4, np.random.default_rng(3)
    )
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    if epsilon > 0:  # with no exploration and ties towards flat it never leaves flat
        assert np.abs(got).max() > 1e-4


def test_reinforcement_model_positions_and_q_table(data):
    out = ReinforcementLearningModel(**fast_params(ReinforcementLearningModel)).run(data)
    vals = out.primary.to_numpy()
    assert set(np.unique(vals[np.isfinite(vals)])) <= {-1.0, 0.0, 1.0}
    assert out.tables["q_table"].shape == (27, 3)
    assert (out.tables["refits"]["n_train"] > 0).all()


@pytest.mark.parametrize("cls", [BaseMLModel, ReinforcementLearningModel])
def test_future_prices_change_no_prediction_up_to_t(data, cls):
    cut = pd.Timestamp("2012-09-28")
    later = data.dates > cut
    frames = {}
    for name in ("open", "high", "low", "close", "adj_close", "volume"):
        f = getattr(data, name).copy()
        f.loc[later] = f.loc[later].to_numpy()[::-1]  # the later prices, in reverse order
        frames[name] = f
    shocked = replace(data, **frames)
    base = cls(**fast_params(cls)).run(data).primary
    other = cls(**fast_params(cls)).run(shocked).primary
    pd.testing.assert_frame_equal(base.loc[:cut], other.loc[:cut])
    assert not base.loc[cut:].equals(other.loc[cut:])


def test_bad_input(data):
    with pytest.raises(DataError, match="at least 505 trading days"):
        BaseMLModel().run(data.select(end="2009-06-30"))
    with pytest.raises(ParameterError, match="train_window"):
        BaseMLModel(train_window=30).fit(data)
    one = BaseMLModel(refit_every=252).run(
        data.select(tickers=["KO"] if "KO" in data.tickers else ["XOM"])
    )
    assert np.isfinite(one.primary.to_numpy()).sum() > 500
    gone = data.adj_close.copy()
    gone["JPM"] = np.nan
    empty_col = replace(data, adj_close=gone)
    out = BaseMLModel(refit_every=252).run(empty_col).primary
    assert out["JPM"].isna().all() and out["AAPL"].notna().sum() > 500


def test_execution_progress_reports_every_refit(data):
    calls = []
    with execution(progress=lambda done, total: calls.append((done, total, step_unit()))):
        out = BaseMLModel(refit_every=252).run(data)
    n = len(out.tables["refits"])
    assert calls == [(i, n, "refits") for i in range(0, n + 1)]


def test_refits_in_workers_give_the_same_signal(data):
    model = BaseMLModel(refit_every=252, max_train_samples=5000)
    alone = model.run(data)
    with execution(n_jobs=2):
        workers = model.run(data)
    pd.testing.assert_frame_equal(alone.primary, workers.primary, check_exact=True)
    pd.testing.assert_frame_equal(alone.tables["refits"], workers.tables["refits"])


def test_refits_that_cannot_fit_are_said_not_left_as_a_silent_nan(basket):
    """On AAPL 2005-2006 a 252-day min_train leaves every refit short of the 200 pooled
    samples a fit needs: the signal is all NaN, which only tables['refits'] said. The
    output's warnings now say it; a run whose refits all fit says nothing."""
    aapl = basket.select(tickers=["AAPL"], start="2005-01-01", end="2006-12-29")
    out = BaseMLModel(min_train=252).run(aapl)
    assert out.primary.isna().all().all()
    assert out.tables["refits"]["skipped"].notna().all()
    n = len(out.tables["refits"])
    assert out.warnings == (
        f"{n} of {n} refits skipped (too few samples; a fit needs 200): the model gives no "
        "signal; widen the range or the training window",
    )
    fine = BaseMLModel().run(basket.select(tickers=["AAPL", "MSFT"], end="2008-12-31"))
    assert not any("refits" in w for w in fine.warnings)
