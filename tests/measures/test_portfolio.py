"""Portfolio measures against closed forms, hand numbers and skfolio/scikit-learn, on the
real basket's returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures import allocation as A
from mltrainer.measures import covariance as C
from mltrainer.measures import exposure as E
from mltrainer.measures import portfolio as P


@pytest.fixture(scope="module")
def rets(basket) -> pd.DataFrame:
    """Real daily returns of the 10-ticker basket, 2015-2019 (no gaps)."""
    out = basket.returns().loc["2015":"2019"]
    assert not out.isna().any().any()
    return out


@pytest.fixture(scope="module")
def cov(rets) -> pd.DataFrame:
    return C.covariance(rets, "sample")


# -------------------------------------------------------------------- covariance
def test_covariance_estimators(rets):
    x = rets.to_numpy()
    np.testing.assert_allclose(C.covariance(rets, "sample"), np.cov(x, rowvar=False), rtol=1e-12)
    from sklearn.covariance import LedoitWolf

    np.testing.assert_allclose(
        C.covariance(rets, "ledoit_wolf"), LedoitWolf().fit(x).covariance_, rtol=1e-10
    )
    lam = 0.94
    ew = C.covariance(rets.iloc[-3:], "ewma", lam=lam).to_numpy()
    wts = np.array([lam**2, lam, 1.0]) * (1 - lam)
    wts /= wts.sum()
    last3 = x[-3:]
    hand = sum(wts[i] * np.outer(last3[i], last3[i]) for i in range(3))
    np.testing.assert_allclose(ew, hand, rtol=1e-12)


def test_portfolio_returns(rets):
    eq = P.portfolio_returns(rets)
    np.testing.assert_allclose(eq, rets.mean(axis=1))
    w = {"AAPL": 0.5, "MSFT": 0.3, "XOM": 0.2}
    got = P.portfolio_returns(rets, w)
    hand = 0.5 * rets["AAPL"] + 0.3 * rets["MSFT"] + 0.2 * rets["XOM"]
    np.testing.assert_allclose(got, hand, rtol=1e-12)
    with pytest.raises(DataError, match="sum to 0.9"):
        P.portfolio_returns(rets, {"AAPL": 0.5, "MSFT": 0.4})
    with pytest.raises(DataError, match="not in the returns"):
        P.portfolio_returns(rets, {"ZZZZ": 1.0})
    with pytest.raises(DataError, match="10 assets"):
        P.portfolio_returns(rets, [0.5, 0.5])


# ----------------------------------------------------------------- risk contributions
def test_risk_contributions_hand(cov):
    w = np.full(10, 0.1)
    s = cov.to_numpy()
    vol = np.sqrt(w @ s @ w)
    rc = P.risk_contributions(w, cov)
    assert rc.index.equals(cov.index)
    np.testing.assert_allclose(rc, w * (s @ w) / vol, rtol=1e-12)
    assert rc.sum() == pytest.approx(vol, rel=1e-12) == P.portfolio_volatility(w, cov)
    assert P.risk_contributions(w, cov, relative=True).sum() == pytest.approx(1.0)


def test_risk_parity_equal_contributions_on_real_covariance(cov):
    w = A.risk_parity_weights(cov)
    assert w.sum() == pytest.approx(1.0, abs=1e-12) and (w > 0).all()
    rc = P.risk_contributions(w, cov, relative=True)
    np.testing.assert_allclose(rc, 0.1, atol=1e-6)
    assert rc.max() - rc.min() < 1e-10
    # a risk budget: contributions proportional to it
    b = np.arange(1.0, 11.0)
    wb = A.risk_parity_weights(cov, budget=b)
    np.testing.assert_allclose(P.risk_contributions(wb, cov, relative=True), b / b.sum(), atol=1e-9)


def test_risk_parity_two_assets_closed_form(cov):
    # with two assets ERC is inverse volatility whatever the correlation
    sub = cov.loc[["AAPL", "XOM"], ["AAPL", "XOM"]]
    vol = np.sqrt(np.diag(sub))
    np.testing.assert_allclose(A.risk_parity_weights(sub), (1 / vol) / (1 / vol).sum(), rtol=1e-10)
    np.testing.assert_allclose(A.inverse_volatility_weights(vol), (1 / vol) / (1 / vol).sum())


def test_risk_parity_matches_skfolio(rets, cov):
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    ref = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE).fit(rets.to_numpy()).weights_
    np.testing.assert_allclose(A.risk_parity_weights(cov), ref, atol=2e-4)


# ----------------------------------------------------------------------- optimisers
def test_min_variance_unconstrained_closed_form(cov):
    s = cov.to_numpy()
    ones = np.ones(len(s))
    closed = np.linalg.solve(s, ones) / (ones @ np.linalg.solve(s, ones))
    got = A.min_variance_weights(cov, long_only=False, max_weight=1.0)
    assert np.abs(closed).max() < 1  # the bounds do not bind
    np.testing.assert_allclose(got, closed, atol=1e-6)


def test_min_variance_and_max_sharpe_long_only_vs_skfolio(rets, cov):
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    x = rets.to_numpy()
    s = cov.to_numpy()
    mu = rets.mean()
    mv = A.min_variance_weights(cov, max_weight=0.3)
    ref = (
        MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            max_weights=0.3,
            objective_function=ObjectiveFunction.MINIMIZE_RISK,
        )
        .fit(x)
        .weights_
    )
    assert mv.max() <= 0.3 + 1e-9 and mv.min() >= 0
    assert mv @ s @ mv <= ref @ s @ ref * (1 + 1e-6)
    np.testing.assert_allclose(mv, ref, atol=1e-3)

    ms = A.max_sharpe_weights(mu, cov, max_weight=0.3)
    ref = (
        MeanRisk(
            risk_measure=RiskMeasure.VARIANCE,
            max_weights=0.3,
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
        )
        .fit(x)
        .weights_
    )

    def sharpe(w):
        return (mu @ w) / np.sqrt(w @ s @ w)

    assert ms.max() <= 0.3 + 1e-9 and ms.min() >= 0 and ms.sum() == pytest.approx(1)
    assert sharpe(ms) >= sharpe(ref) * (1 - 1e-6)
    np.testing.assert_allclose(ms, ref, atol=1e-3)


def test_max_sharpe_long_short_closed_form(cov, rets):
    sub = ["JNJ", "KO", "WMT"]
    s = cov.loc[sub, sub].to_numpy()
    mu = rets[sub].mean().to_numpy()
    closed = np.linalg.solve(s, mu) / np.linalg.solve(s, mu).sum()
    assert np.abs(closed).max() < 1
    got = A.max_sharpe_weights(mu, s, long_only=False, max_weight=1.0)
    np.testing.assert_allclose(got, closed, atol=1e-6)
    with pytest.raises(DataError, match="risk-free"):
        A.max_sharpe_weights(-np.abs(mu), s)


def test_target_return_and_target_risk_are_one_frontier(cov, rets):
    mu = rets.mean()
    s = cov.to_numpy()
    ms = A.max_sharpe_weights(mu, cov, max_weight=0.4)
    target = float(mu @ ms) * 0.9
    wr = A.mean_variance_weights(mu, cov, target_return=target, max_weight=0.4)
    assert mu @ wr >= target - 1e-10 and wr.max() <= 0.4 + 1e-9
    vol = float(np.sqrt(wr @ s @ wr))
    wv = A.mean_variance_weights(mu, cov, target_risk=vol, max_weight=0.4)
    np.testing.assert_allclose(wv, wr, atol=1e-4)
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    ref = (
        MeanRisk(risk_measure=RiskMeasure.VARIANCE, min_return=target, max_weights=0.4)
        .fit(rets.to_numpy())
        .weights_
    )
    assert wr @ s @ wr <= ref @ s @ ref * (1 + 1e-6)
    with pytest.raises(DataError, match="highest return"):
        A.mean_variance_weights(mu, cov, target_return=1.0)
    with pytest.raises(DataError, match="minimum-variance"):
        A.mean_variance_weights(mu, cov, target_risk=1e-5)


# ---------------------------------------------------------------------- bad inputs
def test_singular_covariance_names_the_pair(rets):
    dup = rets[["AAPL", "MSFT", "XOM"]].assign(AAPL2=rets["AAPL"])
    cov = C.covariance(dup, "sample")
    for fn in (A.risk_parity_weights, A.min_variance_weights):
        with pytest.raises(DataError, match="AAPL/AAPL2 are perfectly correlated"):
            fn(cov)
    # shrinkage makes it usable
    w = A.risk_parity_weights(C.covariance(dup, "ledoit_wolf"))
    assert w["AAPL"] == pytest.approx(w["AAPL2"])


def test_one_asset_and_other_bad_inputs(cov):
    one = cov.loc[["AAPL"], ["AAPL"]]
    assert A.risk_parity_weights(one).tolist() == [1.0]
    assert A.min_variance_weights(one).tolist() == pytest.approx([1.0])
    assert A.correlation_weights(np.ones((1, 1))).tolist() == [1.0]
    with pytest.raises(DataError, match="square"):
        A.risk_parity_weights(np.ones((2, 3)))
    with pytest.raises(DataError, match="NaN"):
        A.risk_parity_weights(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(DataError, match="symmetric"):
        A.risk_parity_weights(np.array([[1.0, 0.5], [0.1, 1.0]]))
    with pytest.raises(DataError, match="positive semi-definite"):
        A.risk_parity_weights(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(DataError, match="too small"):
        A.min_variance_weights(cov, max_weight=0.05)
    with pytest.raises(DataError, match="positive"):
        A.risk_parity_weights(cov, budget=[1.0] * 9 + [-1.0])


# --------------------------------------------------------------- sizing helpers
def test_correlation_weights_hand():
    c = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, 0.0], [0.2, 0.0, 1.0]])
    raw = 1 / (1 + np.array([0.5, 0.4, 0.1]))
    np.testing.assert_allclose(A.correlation_weights(c), raw / raw.sum())


def test_target_leverage_portfolio_and_position():
    idx = pd.date_range("2020-01-01", periods=3, freq="B")
    prices = pd.DataFrame(1.0, index=idx, columns=["A", "B"])
    port_vol = pd.Series([0.10, 0.40, np.nan], index=idx)
    got = E.scaled_equal_weights(prices, E.target_leverage(port_vol, 0.2, 1.5))
    # scale min(1.5, 0.2/0.1)=1.5, then 0.2/0.4=0.5, then NaN
    np.testing.assert_allclose(got.to_numpy()[:2], [[0.75, 0.75], [0.25, 0.25]])
    assert got.iloc[2].isna().all()
    pos_vol = pd.DataFrame([[0.2, 0.4], [0.1, 0.0], [0.5, 0.25]], index=idx, columns=["A", "B"])
    got = E.scaled_equal_weights(prices, E.target_leverage(pos_vol, 0.2, 2.0))
    np.testing.assert_allclose(got.to_numpy(), [[0.5, 0.25], [1.0, np.nan], [0.2, 0.4]])
    with pytest.raises(ParameterError, match="target_vol must be positive"):
        E.target_leverage(port_vol, 0.0, 1.5)


def test_volatility_targeting_one_ticker_is_both_levels(basket):
    one = basket.select(tickers=["KO"], start="2010-01-01", end="2012-12-31")
    kw = {"estimator": "rolling", "window": 42}
    book = E.volatility_targeting(one.adj_close, one.returns(), 0.1, 1.2, **kw)
    each = E.volatility_targeting(one.adj_close, one.returns(), 0.1, 1.2, per_position=True, **kw)
    pd.testing.assert_frame_equal(book[0], each[0])
    t = 300
    vol = one.returns()["KO"].iloc[t - 41 : t + 1].std() * np.sqrt(252)
    assert book[0]["KO"].iloc[t] == pytest.approx(min(1.2, 0.1 / vol), rel=1e-12)


def test_apply_limits():
    w = pd.DataFrame([[0.6, -0.3, 0.3], [0.2, 0.2, 0.1], [np.nan, 0.9, 0.9], [0.5, 0.5, 0.4]])
    out = E.apply_limits(w, max_weight=0.5, gross_cap=1.0, long_only=True)
    # clip shorts and oversize positions, then scale a gross above 1 down (never up)
    np.testing.assert_allclose(
        out.to_numpy(),
        [[0.5, 0, 0.3], [0.2, 0.2, 0.1], [np.nan, 0.5, 0.5], [0.5 / 1.4, 0.5 / 1.4, 0.4 / 1.4]],
    )
    ls = E.apply_limits(w, max_weight=0.5, gross_cap=0.55, long_only=False)
    assert (ls.abs().sum(axis=1) <= 0.55 + 1e-12).all() and (ls.abs().fillna(0) <= 0.5).all().all()
    assert ls.iloc[0, 1] < 0


# ------------------------------------------------------------------ walk forward
def test_walk_forward_weights_causal_and_uses_only_the_window(basket):
    r = basket.returns().loc["2009":"2012", ["AAPL", "XOM", "TSLA", "KO"]]

    def inv_var(window: pd.DataFrame) -> pd.Series:
        v = window.var()
        return (1 / v) / (1 / v).sum()

    full = A.walk_forward_weights(r, 120, 21, inv_var)
    assert full.iloc[:120].isna().all().all()
    t = 120 + 21 * 5
    expected = inv_var(r.iloc[t - 119 : t + 1].dropna(axis=1))
    pd.testing.assert_series_equal(full.iloc[t].dropna(), expected, check_names=False)
    # held until the next rebalance
    pd.testing.assert_series_equal(full.iloc[t + 20], full.iloc[t], check_names=False)
    # TSLA lists mid-2010: excluded (NaN) until it has a full window
    full_window = r["TSLA"].dropna().index[119]
    assert full["TSLA"].loc[:full_window].iloc[:-1].isna().all()
    assert full["TSLA"].iloc[-1] > 0
    part = A.walk_forward_weights(r.iloc[:400], 120, 21, inv_var)
    pd.testing.assert_frame_equal(part, full.iloc[:400])


# -------------------------------------------------------------------- beta, drawdowns
def test_beta_and_rolling_beta(rets):
    m = rets.mean(axis=1)
    slope = np.polyfit(m, rets["AAPL"], 1)[0]
    assert P.beta(rets["AAPL"], m) == pytest.approx(slope, rel=1e-10)
    rb = P.rolling_beta(rets, m, 60)
    win = slice(100, 160)
    slope = np.polyfit(m.iloc[win], rets["XOM"].iloc[win], 1)[0]
    assert rb["XOM"].iloc[159] == pytest.approx(slope, rel=1e-8)
    assert rb.iloc[:59].isna().all().all()


def test_drawdowns_hand_and_real(basket):
    eq = pd.Series([1.0, 1.2, 0.9, 1.0, 1.3, 0.65])
    np.testing.assert_allclose(P.drawdown_series(eq), [0, 0, -0.25, -1 / 6, 0, -0.5])
    assert P.max_drawdown(eq) == pytest.approx(0.5)
    assert P.max_drawdown(eq.to_numpy()) == pytest.approx(0.5)
    # AAPL 2000-2003, with a plain loop
    px = basket.adj_close["AAPL"].loc["2000":"2003"]
    peak, worst = -np.inf, 0.0
    for v in px:
        peak = max(peak, v)
        worst = min(worst, v / peak - 1)
    assert P.max_drawdown(px) == pytest.approx(-worst, rel=1e-12)
    assert P.max_drawdown(P.equity_curve(px.pct_change())) == pytest.approx(-worst, rel=1e-9)
    with pytest.raises(DataError, match="value path"):
        P.drawdown_series(px.pct_change().dropna())


def test_drawdowns_of_a_range_start_at_the_close_before_it(basket):
    """From 2020-02-24 the positions' worst drawdowns started at that day's close, so
    AAPL's 4.75% fall on the first day (77.66 -> 73.97) was left out; with the range's
    first day given, every path starts at 1 on the close before it."""
    data = basket.select(tickers=["AAPL", "MSFT"], end="2020-03-23")
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.5})
    out = P.drawdown_summary(data.returns(), w, first=pd.Timestamp("2020-02-24"))
    px = data.adj_close.loc["2020-02-21":]  # the close before the range, then the range
    by_hand = (px / px.cummax() - 1).min()
    np.testing.assert_allclose(out["stock_drawdowns"], by_hand[out["stock_drawdowns"].index])
    assert out["drawdown"].index[0] == pd.Timestamp("2020-02-21") and out["drawdown"].iloc[0] == 0
    r = data.returns().loc["2020-02-24":]
    book = (1 + r.mean(axis=1)).cumprod()  # rebalanced daily to equal weights
    np.testing.assert_allclose(out["drawdown"].iloc[1:], book / book.cummax().clip(lower=1) - 1)
    # without ``first``: the returns given, from their first day (the old reading)
    late = P.drawdown_summary(data.returns().loc["2020-02-24":], w)
    assert late["stock_drawdowns"]["AAPL"] > by_hand["AAPL"]


def test_a_loss_of_all_the_value_ends_the_path_at_zero():
    """A leveraged book that loses 150% in a day is wiped out: its value stays 0 (it was
    -0.65 and then compounded with the sign of every later return flipped), and its
    drawdown is -100%, not an error."""
    r = pd.Series([0.1, -1.5, 0.2, -0.1])
    np.testing.assert_allclose(P.equity_curve(r), [1.1, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(P.equity_curve(pd.Series([0.1, -1.0, 0.5])), [1.1, 0.0, 0.0])
    np.testing.assert_allclose(P.drawdown_series(P.equity_curve(r)), [0, -1, -1, -1])
    assert P.max_drawdown(P.equity_curve(r)) == pytest.approx(1.0)
    with pytest.raises(DataError, match="must not be negative"):
        P.drawdown_series(pd.Series([1.0, -0.2]))


def test_portfolio_summary_against_sklearn_and_hand_numbers(basket):
    from sklearn.covariance import LedoitWolf

    from mltrainer.measures.portfolio import portfolio_summary

    rets = basket.select(
        tickers=["AAPL", "KO", "XOM"], start="2015-01-01", end="2019-12-31"
    ).returns()
    w = pd.Series({"AAPL": 0.5, "KO": 0.3, "XOM": 0.2})
    out = portfolio_summary(rets, w, window=500)
    common = rets.dropna()
    cov = LedoitWolf().fit(common.iloc[-500:].to_numpy()).covariance_
    wv = w.to_numpy()
    assert out["volatility"] == pytest.approx(np.sqrt(wv @ cov @ wv * 252), rel=1e-9)
    rc = wv * (cov @ wv) / (wv @ cov @ wv)
    np.testing.assert_allclose(out["contributions"].to_numpy(), rc, rtol=1e-9)
    assert out["n_common"] == len(common)
    port = (common * w).sum(axis=1)
    equity = (1 + port).cumprod()
    assert out["drawdown"].min() == pytest.approx((equity / equity.cummax() - 1).min(), abs=1e-9)
    with pytest.raises(DataError, match="at least 30") as info:
        portfolio_summary(rets.iloc[:20], w)
    first, last = rets.index[0].date(), rets.index[19].date()
    assert f"(from {first} to {last})" in str(info.value) and "widen the dates" in str(info.value)
