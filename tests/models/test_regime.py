"""Regime models against references: statsmodels, scikit-learn, a plain BOCPD twin, hand maths.

Data: the real S&P 500 index shipped in skfolio (1990-2022), restricted to 1999-2021,
and NBER recession dates from :mod:`mltrainer.data.nber`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from skfolio.datasets import load_sp500_index
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from mltrainer.data import nber
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.regimes import regime_stats, transition_matrix
from mltrainer.models import _regime_bocpd, _regime_markov
from mltrainer.models._regime_math import ensemble_regimes
from mltrainer.models.regime import (
    ENSEMBLE_MEMBERS,
    MODELS,
    ChangePointRegimeModel,
    ClusteringRegimeModel,
    EnsembleRegimeModel,
    GaussianMixtureRegimeModel,
    MarketConditionRegimeModel,
    PerformanceBasedRegimeModel,
    RegimeSwitchingModel,
    VolatilityRegimeModel,
)
from mltrainer.numerics.parallel import execution

SQRT_YEAR = np.sqrt(252)
GFC = nber.recession_containing("2008-09-15")  # Dec 2007 - Jun 2009
COVID = nber.recession_containing("2020-03-16")  # Mar 2020 - Apr 2020
# the acute phase: Lehman (September 2008) to the NBER trough; March 2020
GFC_ACUTE = (pd.Timestamp("2008-09-01"), GFC.end)
COVID_ACUTE = (COVID.start, pd.Timestamp("2020-03-31"))


@pytest.fixture(scope="module")
def index_prices() -> pd.DataFrame:
    return load_sp500_index().loc["1999":"2021"]


@pytest.fixture(scope="module")
def sp500(index_prices) -> MarketData:
    return MarketData.from_close(index_prices, source="bundled")


@pytest.fixture(scope="module")
def outputs(sp500):
    """Every regime model with its defaults on the index, 1999-2021 (about 5 s)."""
    return {cls: cls().run(sp500) for cls in MODELS}


def _log_returns(prices: pd.Series) -> np.ndarray:
    return np.log(prices).diff().to_numpy()[1:]


# ----------------------------------------------------------------- NBER constants
def test_nber_dates_follow_the_committee():
    assert [(r.peak, r.trough) for r in nber.RECESSIONS] == [
        ("1990-07", "1991-03"),
        ("2001-03", "2001-11"),
        ("2007-12", "2009-06"),
        ("2020-02", "2020-04"),
    ]
    assert GFC.start == pd.Timestamp("2008-01-01") and GFC.end == pd.Timestamp("2009-06-30")
    assert GFC.months == 18 and COVID.months == 2
    days = nber.recession_indicator(pd.DatetimeIndex(["2007-12-31", "2008-01-02", "2009-07-01"]))
    assert days.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="no NBER recession"):
        nber.recession_containing("2015-06-01")


# ------------------------------------------------------------- Markov switching
def _statsmodels_msm(y: np.ndarray) -> MarkovRegression:
    """statsmodels' own model: constant mean, two switching variances."""
    return MarkovRegression(
        y, k_regimes=2, trend="c", switching_trend=False, switching_variance=True
    )


def test_markov_switching_matches_statsmodels(index_prices):
    """Walk-forward fits and filtered probabilities equal statsmodels called directly."""
    prices = index_prices["SP500"].loc["2005":"2010"]
    data = MarketData.from_close(prices.to_frame(), source="bundled")
    out = RegimeSwitchingModel(min_train=504, refit_every=504).run(data)
    y = _log_returns(prices) * 100.0
    n = len(y)

    # fit 1 on returns 0..503, fit 2 on 0..1007 warm-started from fit 1 (fit_params: the
    # best of statsmodels' default fit and the screened other starts)
    m1 = _statsmodels_msm(y[:504])
    p1 = _regime_markov.fit_params(m1, _regime_markov.start_params(m1, y[:504]))
    m2 = _statsmodels_msm(y[:1008])
    p2 = _regime_markov.fit_params(m2, _regime_markov.start_params(m2, y[:1008]), p1)
    for model, params in ((m1, p1), (m2, p2)):  # never below statsmodels' own fit
        default = model.fit(disp=False, return_params=True)
        assert model.loglike(params) >= model.loglike(default) - 1e-9
    fitted = out.tables["params"].loc["SP500"]
    assert list(fitted["refit_date"]) == [prices.index[505], prices.index[1009]]
    values = fitted[m1.param_names].to_numpy(float)
    np.testing.assert_allclose(values, np.vstack([p1, p2]), rtol=0, atol=1e-6)

    # filtered (never smoothed) probabilities with frozen params on the longer sample
    expected = np.full((n, 2), np.nan)
    for params, lo, hi in ((p1, 504, 1008), (p2, 1008, n)):
        model = _statsmodels_msm(y[:hi])
        filtered = model.filter(params).filtered_marginal_probabilities[lo:hi]
        order = np.argsort(params[[3, 4]])  # sigma2[0], sigma2[1]: calm first
        expected[lo:hi] = filtered[:, order]
    got = np.column_stack([out.extras[f"prob_{j}"]["SP500"].to_numpy()[1:] for j in (0, 1)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.isnan(got[:504]).all()
    # ... and they are not the smoothed ones (those would use the future)
    look_ahead = _statsmodels_msm(y[:1008])
    smoothed = look_ahead.smooth(p1).smoothed_marginal_probabilities[504:1008]
    assert np.abs(smoothed[:, np.argsort(p1[[3, 4]])] - expected[504:1008]).max() > 0.05

    # transition matrix and expected durations from the latest parameters
    order = np.argsort(p2[[3, 4]])
    sm = m2.regime_transition_matrix(p2)[..., 0].T[np.ix_(order, order)]
    table = out.tables["transition_matrix"].loc["SP500"].to_numpy()
    np.testing.assert_allclose(table, sm, atol=1e-12)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)
    durations = m2.filter(p2).expected_durations[order]
    np.testing.assert_allclose(
        out.tables["expected_durations"]["expected_duration_days"].to_numpy(), durations
    )


# --------------------------------------------------------------- general properties
def test_transition_matrix_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 2, np.nan, 2, 0])
    # pairs: 00 01 11 11 12 (2-nan, nan-2 skipped) 20
    expected = np.array([[1 / 2, 1 / 2, 0], [0, 2 / 3, 1 / 3], [1, 0, 0]])
    np.testing.assert_allclose(transition_matrix(labels, 3), expected)
    assert np.isnan(transition_matrix(np.array([0.0, 0.0]), 2)[1]).all()  # never visited


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_transition_rows_sum_to_one_and_labels_sorted_by_volatility(cls, outputs):
    out = outputs[cls]
    matrix = out.tables["transition_matrix"].loc["SP500"].to_numpy()
    assert ((matrix >= 0) & (matrix <= 1)).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
    vols = out.tables["regime_stats"].loc["SP500", "volatility"].to_numpy()
    assert np.all(np.diff(vols) > 0), f"regime volatilities not increasing: {vols}"
    labels = out.primary["SP500"].dropna()
    assert set(labels.unique()) == set(range(cls().regime_count()))


# The share of the acute crisis days in the stressed regime(s), 1999-2021 run:
#   model                       stressed     Sep08-Jun09   Mar 2020   all of 2017
#   VolatilityRegimeModel       {2}          1.00          1.00       0.00
#   ClusteringRegimeModel       {2}          0.59          0.91       0.00
#   GaussianMixtureRegimeModel  {2}          0.64          0.77       0.00
#   ChangePointRegimeModel      {2}          0.94          1.00       0.00
#   MarketConditionRegimeModel  {2, 3}       1.00          1.00       0.00
#   RegimeSwitchingModel        {1}          0.97          1.00       0.00
#   PerformanceBasedRegimeModel {2}          0.78          0.77       0.00
#   EnsembleRegimeModel         {2}          0.91          1.00       0.00
STRESSED = {MarketConditionRegimeModel: (2, 3)}


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_stressed_regimes_cover_the_crises(cls, outputs):
    labels = outputs[cls].primary["SP500"]
    k = cls().regime_count()
    stressed = labels.isin(STRESSED.get(cls, (k - 1,)))
    gfc = stressed.loc[GFC_ACUTE[0] : GFC_ACUTE[1]].mean()
    covid = stressed.loc[COVID_ACUTE[0] : COVID_ACUTE[1]].mean()
    calm = stressed.loc["2017"].mean()  # the calmest year of the sample
    assert gfc > 0.5, f"stressed on {gfc:.0%} of Sep 2008 - Jun 2009"
    assert covid > 0.5, f"stressed on {covid:.0%} of March 2020"
    assert calm < 0.1, f"stressed on {calm:.0%} of 2017"


def test_regime_stats_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 0, np.nan, 2])
    r = np.array([0.01, -0.02, 0.03, 0.00, -0.01, 0.02, 0.05, -0.04])
    out = regime_stats(labels, r, 3, ("a", "b", "c"))
    r0, r1 = np.array([0.01, -0.02, 0.02]), np.array([0.03, 0.00, -0.01])
    np.testing.assert_allclose(out["mean_return"], [r0.mean() * 252, r1.mean() * 252, -0.04 * 252])
    np.testing.assert_allclose(
        out["volatility"].iloc[:2], [r0.std(ddof=1) * SQRT_YEAR, r1.std(ddof=1) * SQRT_YEAR]
    )
    assert np.isnan(out["volatility"].iloc[2])  # one day: undefined
    assert out["avg_duration_days"].tolist() == [1.5, 3.0, 1.0]  # spells 00|0, 111, 2
    np.testing.assert_allclose(out["share_of_days"], [3 / 7, 3 / 7, 1 / 7])
    assert out["n_spells"].tolist() == [2, 1, 1] and out["name"].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("cls", [VolatilityRegimeModel, RegimeSwitchingModel])
def test_regime_stats_table_matches_labels(cls, outputs, index_prices):
    labels = outputs[cls].primary["SP500"]
    r = index_prices["SP500"].pct_change()
    frame = pd.DataFrame({"label": labels, "r": r}).dropna(subset=["label"])
    spell_id = (frame["label"] != frame["label"].shift()).cumsum()  # no NaN inside
    table = outputs[cls].tables["regime_stats"].loc["SP500"]
    for j, group in frame.groupby("label"):
        row = table.loc[int(j)]
        assert row["mean_return"] == pytest.approx(group["r"].mean() * 252, rel=1e-12)
        assert row["volatility"] == pytest.approx(group["r"].std() * SQRT_YEAR, rel=1e-12)
        assert row["avg_duration_days"] == pytest.approx(
            len(group) / spell_id[frame["label"] == j].nunique()
        )
        assert row["share_of_days"] == pytest.approx(len(group) / len(frame))


# ------------------------------------------------------------------- each model
def test_volatility_regimes_by_hand(outputs, index_prices):
    out = outputs[VolatilityRegimeModel]
    vol = np.log(index_prices["SP500"]).diff().rolling(21).std() * SQRT_YEAR
    np.testing.assert_allclose(out.extras["volatility"]["SP500"], vol, rtol=1e-10)
    for day in ("2000-11-01", "2008-10-10", "2017-06-30", "2020-03-16"):
        past = vol.loc[:day].dropna().to_numpy()  # expanding, inclusive of the day
        lo, hi = np.quantile(past, 0.33), np.quantile(past, 0.67)
        assert out.extras["calm_threshold"].loc[day, "SP500"] == pytest.approx(lo)
        assert out.extras["stress_threshold"].loc[day, "SP500"] == pytest.approx(hi)
        v = vol.loc[day]
        assert out.primary.loc[day, "SP500"] == (0 if v <= lo else 2 if v > hi else 1)


def test_market_condition_rules_by_hand(outputs, index_prices):
    p = index_prices["SP500"]
    out = outputs[MarketConditionRegimeModel]
    gap = p / p.rolling(200).mean() - 1
    dd = p / p.rolling(252, min_periods=1).max() - 1
    vol = np.log(p).diff().rolling(21).std() * SQRT_YEAR
    limit = vol.expanding(252).quantile(0.85)
    expected = pd.Series(0.0, index=p.index)
    expected[gap.abs() <= 0.02] = 1.0
    expected[(dd <= -0.20) | (gap < -0.02)] = 2.0
    expected[vol > limit] = 3.0
    expected[gap.isna() | limit.isna()] = np.nan
    pd.testing.assert_series_equal(out.primary["SP500"], expected, check_names=False)
    assert out.primary.loc["2009-03-09", "SP500"] >= 2  # the 2009 low: bear or volatile
    assert (out.primary.loc["2017", "SP500"] == 0).mean() > 0.9  # 2017: bull


def test_performance_regimes_by_hand(outputs, index_prices):
    r = index_prices["SP500"].pct_change()
    sharpe = r.rolling(126).mean() / r.rolling(126).std() * SQRT_YEAR
    out = outputs[PerformanceBasedRegimeModel]
    np.testing.assert_allclose(out.extras["rolling_sharpe"]["SP500"], sharpe, rtol=1e-9)
    labels = out.primary["SP500"]
    ok = sharpe.notna()
    assert (labels[ok & (sharpe >= 1.0)] == 0).all() and (labels[ok & (sharpe < 0)] == 2).all()
    assert (labels[ok & (sharpe >= 0) & (sharpe < 1.0)] == 1).all()


def _hand_features(p: pd.Series) -> np.ndarray:
    r = np.log(p).diff()
    return np.column_stack(
        [
            r.rolling(21).mean() * 252,
            np.log(r.rolling(21).std() * SQRT_YEAR),
            np.log(p / p.rolling(63).mean()),
        ]
    )


@pytest.mark.parametrize("cls", [ClusteringRegimeModel, GaussianMixtureRegimeModel])
def test_first_fit_matches_scikit_learn(cls, outputs, index_prices):
    """The first walk-forward block equals scikit-learn fitted on the 504 rows before it."""
    x = _hand_features(index_prices["SP500"])
    first = int(np.isfinite(x).all(axis=1).argmax())  # 62: the 63-day average is full
    start, stop = first + 504, first + 504 + 252
    train = x[first:start]
    mu, sd = train.mean(axis=0), train.std(axis=0)
    z_train, z_block = (train - mu) / sd, (x[start:stop] - mu) / sd
    if cls is ClusteringRegimeModel:
        km = KMeans(n_clusters=3, n_init=4, random_state=0).fit(z_train)
        rank = np.argsort(np.argsort(km.cluster_centers_[:, 1]))
        expected = rank[km.predict(z_block)]
    else:
        gm = GaussianMixture(
            3, covariance_type="full", random_state=0, reg_covar=1e-6, max_iter=200
        ).fit(z_train)
        order = np.argsort(gm.means_[:, 1])
        proba = gm.predict_proba(z_block)[:, order]
        got = np.column_stack([outputs[cls].extras[f"prob_{j}"]["SP500"] for j in range(3)])
        np.testing.assert_allclose(got[start:stop], proba, atol=1e-8)
        np.testing.assert_allclose(np.nansum(got[start:], axis=1), 1.0, atol=1e-9)
        expected = proba.argmax(axis=1)
    labels = outputs[cls].primary["SP500"].to_numpy()
    assert np.isnan(labels[:start]).all()  # nothing before the first fit
    np.testing.assert_array_equal(labels[start:stop], expected)


def _bocpd_twin(x, hazard, prior_window, alpha0=1.0, kappa0=1.0):
    """Adams & MacKay without pruning, written from the paper: full run-length matrix."""
    beta0 = alpha0 * np.var(x[:prior_window], ddof=1)
    xs = x[prior_window:]
    n = len(xs)
    logr = np.full((n + 1, n + 1), -np.inf)
    logr[0, 0] = 0.0
    mu, kappa, alpha, beta = [np.array([v]) for v in (0.0, kappa0, alpha0, beta0)]
    map_rl = []
    for t, xt in enumerate(xs):
        scale = np.sqrt(beta * (kappa + 1) / (alpha * kappa))
        pred = stats.t.logpdf(xt, df=2 * alpha, loc=mu, scale=scale)
        joint = logr[t, : t + 1] + pred
        logr[t + 1, 1 : t + 2] = joint + np.log(1 - hazard)
        logr[t + 1, 0] = np.logaddexp.reduce(joint) + np.log(hazard)
        logr[t + 1] -= np.logaddexp.reduce(logr[t + 1, : t + 2])
        beta = np.r_[beta0, beta + kappa * (xt - mu) ** 2 / (2 * (kappa + 1))]
        mu = np.r_[0.0, (kappa * mu + xt) / (kappa + 1)]
        kappa, alpha = np.r_[kappa0, kappa + 1], np.r_[alpha0, alpha + 0.5]
        map_rl.append(np.argmax(logr[t + 1, : t + 2]))
    return np.array(map_rl)


def test_bocpd_matches_a_plain_twin(index_prices):
    x = _log_returns(index_prices["SP500"].loc["2019-06":"2020-12"])
    cps = _regime_bocpd.bocpd(x, hazard_days=250, min_run=5, prior_window=63)
    np.testing.assert_array_equal(cps.map_run_length[63:], _bocpd_twin(x, 1 / 250, 63))
    assert np.isnan(cps.map_run_length[:63]).all()


def test_change_points_are_online(outputs, sp500):
    table = outputs[ChangePointRegimeModel].tables["change_points"].loc["SP500"]
    assert (table["delay_days"] > 0).all() and (table["delay_calendar_days"] > 0).all()
    assert (table["detection_date"] > table["change_date"]).all()
    dates = sp500.dates
    gap = dates.get_indexer(table["detection_date"]) - dates.get_indexer(table["change_date"])
    np.testing.assert_array_equal(gap, table["delay_days"])
    # the Lehman break and the 2020 crash are found within a few weeks
    lehman = table[(table["change_date"] >= "2008-09-01") & (table["change_date"] <= "2008-10-31")]
    covid = table[(table["change_date"] >= "2020-02-15") & (table["change_date"] <= "2020-03-15")]
    assert len(lehman) and lehman["delay_days"].max() <= 10
    assert len(covid) and covid["detection_date"].min() <= pd.Timestamp("2020-03-10")
    # a run stopped at 2020-03-05 knows only the changes detected by then
    part = ChangePointRegimeModel().run(sp500.truncate("2020-03-05"))
    known = table[table["detection_date"] <= "2020-03-05"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        part.tables["change_points"].loc["SP500"].reset_index(drop=True), known
    )


def test_ensemble_by_hand():
    labels = {"a": np.array([0.0, 1, 2, 2, np.nan]), "b": np.array([0.0, 0, 1, 1, np.nan])}
    out = ensemble_regimes(labels, {"a": 3, "b": 2}, np.zeros(5), window=63, horizon=5)
    # no skill history yet: equal weights; common labels a: 0 1 2 2, b: 0 0 2 2
    np.testing.assert_allclose(out["probs"][:4], [[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(out["labels"][:4], [0, 0, 2, 2])  # a tie goes to calm
    np.testing.assert_allclose(out["agreement"][:4], [1, 0.5, 1, 1])
    np.testing.assert_allclose(out["stress"][:4], [0, 0.25, 1, 1])
    assert np.isnan(out["labels"][4]) and np.isnan(out["agreement"][4])


def test_ensemble_takes_member_instances(outputs, sp500):
    """Today's members passed as instances give today's ensemble; others are used as given."""
    default = EnsembleRegimeModel()
    assert default.members is None
    chosen = {name: ENSEMBLE_MEMBERS[name]() for name in default.member_models()}
    same = EnsembleRegimeModel(members=chosen).run(sp500)
    pd.testing.assert_frame_equal(same.primary, outputs[EnsembleRegimeModel].primary)
    custom = {"fast": VolatilityRegimeModel(window=10), "slow": VolatilityRegimeModel(window=63)}
    out = EnsembleRegimeModel(members=custom).run(sp500)
    assert {"weight_fast", "weight_slow"} <= set(out.extras)
    assert EnsembleRegimeModel(members=custom).min_history() == 10 + 252


def test_ensemble_members_are_checked(sp500):
    one = {"volatility": VolatilityRegimeModel()}
    with pytest.raises(ParameterError, match="at least two members"):
        EnsembleRegimeModel(members=one).run(sp500)
    with pytest.raises(ParameterError, match="members must be a dict"):
        EnsembleRegimeModel(members=[VolatilityRegimeModel()]).run(sp500)
    with pytest.raises(ParameterError, match=r"members\['b'\] must be a regime model"):
        EnsembleRegimeModel(members={**one, "b": "volatility"}).predict(sp500)
    bad = {**one, "b": VolatilityRegimeModel(window=1)}
    with pytest.raises(ParameterError, match="VolatilityRegimeModel: window"):
        EnsembleRegimeModel(members=bad).predict_output(sp500)


def test_ensemble_weights_follow_recent_skill(outputs, index_prices):
    out = outputs[EnsembleRegimeModel]
    members = EnsembleRegimeModel().member_models()
    weights = pd.DataFrame({m: out.extras[f"weight_{m}"]["SP500"] for m in members})
    ok = weights.notna().all(axis=1)
    np.testing.assert_allclose(weights[ok].sum(axis=1), 1.0, atol=1e-12)
    agreement = out.extras["agreement"]["SP500"].dropna()
    assert agreement.between(0, 1).all() and agreement.lt(1).any() and agreement.eq(1).any()
    # the weight on 2015-06-30 from the members' skill over the 252 days before, by hand
    p = index_prices["SP500"]
    rv = np.log(p).diff().rolling(21).std()
    day = p.index.get_loc(pd.Timestamp("2015-06-30"))
    skill = {}
    for name, member in members.items():
        s = pd.Series(member.regimes(p).labels, index=p.index) / (member.regime_count() - 1)
        pairs = pd.DataFrame({"s": s.shift(21), "rv": rv}).iloc[day - 251 : day + 1]
        skill[name] = max(np.corrcoef(pairs["s"], pairs["rv"])[0, 1], 0.0)
    total = sum(skill.values())
    for name in members:
        assert weights.iloc[day][name] == pytest.approx(skill[name] / total, rel=1e-9)


# ----------------------------------------------------------------------- causality
@pytest.mark.parametrize(
    "cls",
    [
        ClusteringRegimeModel,
        GaussianMixtureRegimeModel,
        ChangePointRegimeModel,
        RegimeSwitchingModel,
        EnsembleRegimeModel,
    ],
    ids=lambda c: c.__name__,
)
def test_fitted_models_are_causal_through_the_crisis(cls, outputs, sp500):
    """Output up to 2008-10-10 is the same with or without the data after it."""
    cutoff = "2008-10-10"
    part = cls().run(sp500.truncate(cutoff))
    full = outputs[cls]
    n = len(part.primary)
    pd.testing.assert_frame_equal(part.primary, full.primary.iloc[:n])
    for name, frame in part.extras.items():
        pd.testing.assert_frame_equal(frame, full.extras[name].iloc[:n], rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------- bad input
def test_min_history_is_what_the_run_needs(sp500):
    """min_history() is the history check: the renamed parameter no longer shadows it."""
    model = VolatilityRegimeModel(window=21, min_observations=100)
    assert model.min_history() == 121
    assert MarketConditionRegimeModel(min_observations=300).min_history() == 21 + 300
    model.run(sp500.select(end="1999-06-30"))  # 124 days
    with pytest.raises(DataError, match="at least 121 trading days"):
        model.check_data(sp500.select(end="1999-06-24"))  # 120 days


def test_columns_report_progress(index_prices):
    frame = index_prices.loc["2015":"2019"].assign(TWIN=index_prices["SP500"] * 2)
    data = MarketData.from_close(frame, source="bundled")
    calls = []
    with execution(progress=lambda done, total: calls.append((done, total))):
        out = VolatilityRegimeModel().run(data)
    assert calls == [(0, 2), (1, 2), (2, 2)]
    pd.testing.assert_series_equal(out.primary["SP500"], out.primary["TWIN"], check_names=False)


def test_too_little_history_is_a_clear_error(sp500):
    with pytest.raises(DataError, match="at least 273 trading days"):
        VolatilityRegimeModel().run(sp500.select(end="1999-06-30"))
    with pytest.raises(DataError, match="at least 506"):
        RegimeSwitchingModel().run(sp500.select(end="2000-06-30"))  # a single short series


def test_all_nan_columns(index_prices, sp500):
    frame = index_prices.loc["2015":"2019"].assign(EMPTY=np.nan)
    out = VolatilityRegimeModel().run(MarketData.from_close(frame, source="bundled"))
    assert out.primary["EMPTY"].isna().all() and out.extras["prob_0"]["EMPTY"].isna().all()
    alone = VolatilityRegimeModel().run(sp500.select(start="2015-01-01", end="2019-12-31"))
    pd.testing.assert_series_equal(out.primary["SP500"], alone.primary["SP500"])
    only_nan = MarketData.from_close(frame[["EMPTY"]], source="bundled")
    with pytest.raises(DataError, match="none has enough: EMPTY"):
        VolatilityRegimeModel().run(only_nan)


def test_missing_days_are_unlabelled_not_invented(index_prices):
    frame = index_prices.loc["2015":"2019"].copy()
    frame.iloc[[400, 900]] = np.nan
    out = MarketConditionRegimeModel().run(MarketData.from_close(frame, source="bundled"))
    assert out.primary["SP500"].iloc[[400, 900]].isna().all()
    assert out.primary["SP500"].iloc[[401, 901]].notna().all()


def test_cross_parameter_rules():
    with pytest.raises(ParameterError, match="calm_quantile"):
        VolatilityRegimeModel(calm_quantile=0.5, stress_quantile=0.5).fit(None)
    with pytest.raises(ParameterError, match="weak_sharpe"):
        PerformanceBasedRegimeModel(strong_sharpe=0.0, weak_sharpe=0.5).fit(None)
    with pytest.raises(ParameterError, match="max_train"):
        RegimeSwitchingModel(max_train=300).fit(None)
    with pytest.raises(ParameterError, match="at least two members"):
        EnsembleRegimeModel(use_volatility=False, use_changepoint=False, use_market=False).fit(None)


def test_a_lone_markov_series_reports_each_refit(index_prices, basket):
    """A 3-regime run took minutes behind a bar stuck at '0 of 1'; a lone series now
    reports each refit, and series among several report only as each one finishes."""
    from mltrainer.numerics.parallel import execution, step_unit

    prices = index_prices["SP500"].loc["2005":"2010"]
    data = MarketData.from_close(prices.to_frame(), source="bundled")
    calls = []

    def record(done, total):
        calls.append((done, total, step_unit()))

    with execution(progress=record):
        out = RegimeSwitchingModel(min_train=504, refit_every=252).run(data)
    refits = len(out.tables["params"])
    assert refits == 4  # returns 504, 756, 1008, 1260 of the 1,510
    steps = [(j, refits, "refits") for j in range(refits + 1)]  # ends at 4 of 4
    assert calls == [(0, 1, "tickers"), *steps]
    calls.clear()
    two = basket.select(tickers=["KO", "JNJ"], start="2005-01-03", end="2010-12-31")
    with execution(n_jobs=1, progress=record):
        RegimeSwitchingModel(min_train=504, refit_every=504).run(two)
    assert calls == [(0, 2, "tickers"), (1, 2, "tickers"), (2, 2, "tickers")]


def test_a_halted_price_is_a_failed_fit_not_a_crash(basket):
    """JPM's first real bar of 2008 held for three years (a halted stock): every log
    return is 0 and statsmodels raised RuntimeError 'Steady-state probabilities could not
    be constructed' out of the run. Now each refit fails like any degenerate window:
    labels left NaN, a warning per refit, and the other ticker unaffected."""
    from dataclasses import replace

    data = basket.select(tickers=["JPM", "KO"], start="2008-01-01", end="2010-12-31")
    held = {
        f: getattr(data, f).assign(JPM=getattr(data, f)["JPM"].iloc[0])
        for f in ("open", "high", "low", "close", "adj_close")
    }
    with execution(n_jobs=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the run's own notes, judged below
        out = RegimeSwitchingModel(refit_every=252).run(replace(data, **held))
    assert out.primary["JPM"].isna().all() and out.primary["KO"].notna().sum() > 200
    assert out.warnings and all("fit failed for JPM" in w for w in out.warnings)
