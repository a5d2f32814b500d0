"""Position-sizing models against closed forms and hand computation on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from mltrainer.measures import var as vr
from mltrainer.measures.allocation import min_variance_weights, risk_parity_weights
from mltrainer.measures.covariance import covariance
from mltrainer.measures.sizing import kelly_fraction, trade_statistics
from mltrainer.models import risk, sizing
from mltrainer.models.sizing import (
    CorrelationBasedSizingModel,
    DynamicPositionSizingModel,
    KellyCriterionModel,
    PortfolioOptimizationModel,
    RiskAdjustedSizingModel,
    RiskParityModel,
    VolatilityTargetingModel,
)
from tests.models.fast_settings import fast_params

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA", "KO"]


@pytest.fixture(scope="module")
def data(basket):
    return basket.select(tickers=TICKERS, start="2006-01-01", end="2012-12-31")


# -------------------------------------------------------------------------- Kelly
def test_kelly_fraction_closed_form_and_growth_optimum():
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.55, 2.0) == pytest.approx(0.55 - 0.45 / 2)
    assert kelly_fraction(0.4, 1.0) == pytest.approx(-0.2)
    assert np.isnan(kelly_fraction(0.5, 0.0))
    for p, b in ((0.6, 1.0), (0.45, 1.8), (0.53, 1.2)):
        growth = optimize.minimize_scalar(
            lambda f, p=p, b=b: -(p * math.log(1 + f * b) + (1 - p) * math.log(1 - f)),
            bounds=(0, 0.99),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert growth.x == pytest.approx(kelly_fraction(p, b), abs=1e-6)


def test_trade_statistics_hand_example():
    idx = pd.date_range("2020-01-01", periods=7, freq="B")
    sig = pd.DataFrame({"A": [1, 1, -1, 0, 1, 1, 1.0]}, index=idx)
    ret = pd.DataFrame({"A": [np.nan, 0.02, -0.01, 0.03, 0.05, -0.04, 0.01]}, index=idx)
    p, b = trade_statistics(sig, ret, window=6, min_trades=3)
    # trades on days 1..6: +0.02 (long), -0.01 (long), -0.03 (short), none, -0.04, +0.01
    wins, losses = [0.02, 0.01], [0.01, 0.03, 0.04]
    assert p["A"].iloc[6] == pytest.approx(2 / 5)
    assert b["A"].iloc[6] == pytest.approx(np.mean(wins) / np.mean(losses))
    assert p["A"].iloc[:6].isna().all()  # the window of 6 trades is not full before


def test_kelly_model_by_hand_and_limits(data):
    model = KellyCriterionModel(
        signal="momentum",
        lookback=63,
        kelly_window=252,
        fraction=0.5,
        max_weight=0.2,
        gross_cap=0.6,
        long_only=True,
    )
    out = model.run(data)
    w = out.primary
    px = data.adj_close["XOM"]
    sig = np.sign(px / px.shift(63) - 1)
    r = px.pct_change()
    t = data.dates.get_loc(pd.Timestamp("2010-03-01"))
    outcomes = [sig.iloc[s - 1] * r.iloc[s] for s in range(t - 251, t + 1)]
    wins = [o for o in outcomes if o > 0]
    losses = [-o for o in outcomes if o < 0]
    p = len(wins) / (len(wins) + len(losses))
    b = np.mean(wins) / np.mean(losses)
    assert out.extras["win_rate"]["XOM"].iloc[t] == pytest.approx(p)
    assert out.extras["payoff"]["XOM"].iloc[t] == pytest.approx(b)
    assert out.extras["kelly"]["XOM"].iloc[t] == pytest.approx(p - (1 - p) / b)
    raw = (
        out.extras["kelly"].iloc[t].clip(lower=0)
        * 0.5
        * np.sign(data.adj_close.iloc[t] / data.adj_close.iloc[t - 63] - 1)
    )
    raw = raw.clip(lower=0, upper=0.2)
    raw = raw * min(1.0, 0.6 / raw.sum())
    np.testing.assert_allclose(w.iloc[t].fillna(0), raw.fillna(0), atol=1e-12)
    assert (w.fillna(0) >= 0).all().all() and (w.fillna(0) <= 0.2 + 1e-12).all().all()
    assert w.abs().sum(axis=1).max() <= 0.6 + 1e-12
    short = KellyCriterionModel(signal="reversal", lookback=20, long_only=False).run(data)
    assert (short.primary < 0).any().any()


# --------------------------------------------------------------- vol targeting
def test_volatility_targeting_per_position_and_shared_with_risk(data):
    out = VolatilityTargetingModel(
        target_vol=0.2,
        estimator="rolling",
        window=42,
        max_leverage=3.0,
        max_weight=1.0,
        gross_cap=3.0,
    ).run(data)
    t = data.dates.get_loc(pd.Timestamp("2011-09-30"))
    r = data.returns().iloc[t - 41 : t + 1]
    vol = r.std() * math.sqrt(252)
    expected = np.minimum(3.0, 0.2 / vol) / 6
    np.testing.assert_allclose(out.primary.iloc[t], expected, rtol=1e-9)
    # one ticker: the per-position sizing is the portfolio-level targeting (one function)
    one = data.select(tickers=["KO"])
    kw = {"target_vol": 0.1, "estimator": "ewma", "window": 21, "lam": 0.94}
    a = VolatilityTargetingModel(max_leverage=1.0, max_weight=1.0, gross_cap=3.0, **kw)
    b = risk.VolatilityTargetingModel(max_leverage=1.0, **kw)
    pd.testing.assert_frame_equal(a.run(one).primary, b.run(one).primary)


def test_risk_parity_sizing_limits(data):
    out = RiskParityModel(window=252, rebalance=63, max_weight=0.2, gross_cap=0.9).run(data)
    w = out.primary.dropna(how="all")
    assert w.max().max() <= 0.2 + 1e-12 and w.sum(axis=1).max() <= 0.9 + 1e-12
    loose = RiskParityModel(window=252, rebalance=63, max_weight=1.0).run(data).primary
    t = 252 + 63 * 10
    win = data.returns().iloc[t - 251 : t + 1].dropna(axis=1)
    ref = risk_parity_weights(covariance(win, "ledoit_wolf"))
    np.testing.assert_allclose(loose.iloc[t][ref.index], ref, atol=1e-12)


# ---------------------------------------------------------------- dynamic sizing
def test_dynamic_position_sizing_by_hand(data):
    model = DynamicPositionSizingModel(
        mom_window=63,
        trend_window=100,
        vol_window=21,
        momentum_weight=0.7,
        target_vol=0.15,
        max_weight=1.0,
        gross_cap=3.0,
        long_only=False,
    )
    out = model.run(data)
    t = data.dates.get_loc(pd.Timestamp("2009-06-30"))
    px = data.adj_close["JPM"]
    lr = np.log(px).diff()
    sd = lr.iloc[t - 20 : t + 1].std()
    z = math.log(px.iloc[t] / px.iloc[t - 63]) / (sd * math.sqrt(63))
    trend = np.sign(px.iloc[t] - px.iloc[t - 99 : t + 1].mean())
    n = data.adj_close.iloc[t].notna().sum()
    expected = (0.7 * math.tanh(z) + 0.3 * trend) * 0.15 / (sd * math.sqrt(252)) / n
    assert out.primary["JPM"].iloc[t] == pytest.approx(expected, rel=1e-9)
    assert out.extras["momentum"]["JPM"].iloc[t] == pytest.approx(math.tanh(z), rel=1e-9)


# ------------------------------------------------------------ mean-variance sizing
def test_portfolio_optimization_target_risk_and_return(data):
    t = 252 + 21 * 40
    win = data.returns().iloc[t - 251 : t + 1].dropna(axis=1)
    cov = covariance(win, "ledoit_wolf").to_numpy()
    risk_w = (
        PortfolioOptimizationModel(objective="target_risk", target_risk=0.2, max_weight=0.5)
        .run(data)
        .primary
    )
    w = risk_w.iloc[t][win.columns].to_numpy()
    vol = math.sqrt(w @ cov @ w * 252)
    w_mv = min_variance_weights(cov, max_weight=0.5)
    mv_vol = math.sqrt(w_mv @ cov @ w_mv * 252)
    assert vol == pytest.approx(max(0.2, mv_vol), rel=1e-4)
    assert w.sum() == pytest.approx(1.0) and w.max() <= 0.5 + 1e-9
    ret_w = (
        PortfolioOptimizationModel(objective="target_return", target_return=0.05, max_weight=0.5)
        .run(data)
        .primary
    )
    w = ret_w.iloc[t][win.columns].to_numpy()
    best = np.sort(win.mean().to_numpy())[::-1]
    reach = 0.5 * best[0] + 0.5 * best[1]  # highest return with 50 % caps
    assert w @ win.mean().to_numpy() >= min(0.05 / 252, reach) - 1e-9


# --------------------------------------------------------------- VaR budget sizing
def test_risk_adjusted_sizing_equal_var_per_position(data):
    model = RiskAdjustedSizingModel(
        method="normal",
        level=0.99,
        window=250,
        var_budget=0.004,
        dd_threshold=0.8,
        max_weight=1.0,
        gross_cap=3.0,
    )
    out = model.run(data)
    t = data.dates.get_loc(pd.Timestamp("2012-05-01"))
    var = vr.rolling_var(data.returns(), 250, 0.99, "normal").iloc[t]
    w = out.primary.iloc[t]
    np.testing.assert_allclose((w * var).dropna(), 0.004, rtol=1e-12)
    # the drawdown guard halves positions more than 20 % below their 126-day high
    guarded = RiskAdjustedSizingModel(
        method="normal",
        var_budget=0.004,
        dd_threshold=0.2,
        dd_scale=0.5,
        max_weight=1.0,
        gross_cap=3.0,
    ).run(data)
    t = data.dates.get_loc(pd.Timestamp("2008-11-20"))
    px = data.adj_close.iloc[: t + 1]
    dd = px.iloc[-1] / px.iloc[-126:].max() - 1
    ratio = guarded.primary.iloc[t] / out.primary.iloc[t]
    np.testing.assert_allclose(ratio[dd <= -0.2].dropna(), 0.5)
    assert (dd.dropna() <= -0.2).sum() >= 3


# ---------------------------------------------------------- correlation sizing
def test_correlation_based_sizing_by_hand(data):
    out = CorrelationBasedSizingModel(
        window=126, rebalance=21, inverse_vol=False, max_weight=1.0
    ).run(data)
    t = 126 + 21 * 20
    win = data.returns().iloc[t - 125 : t + 1].dropna(axis=1)
    c = np.corrcoef(win.to_numpy(), rowvar=False)
    n = c.shape[0]
    raw = 1 / (1 + (c.sum(axis=1) - 1) / (n - 1))
    np.testing.assert_allclose(out.primary.iloc[t][win.columns], raw / raw.sum(), rtol=1e-10)
    # the most correlated name gets the least
    assert out.primary.iloc[t][win.columns].idxmin() == win.columns[np.argmin(raw)]


@pytest.mark.parametrize(
    "cls", [CorrelationBasedSizingModel, RiskParityModel, risk.PortfolioRiskModel]
)
def test_a_halted_price_gets_no_weight_and_leaves_the_book_sized(cls, data):
    """JPM's first real bar held over the whole range (a halted stock, forward-filled by
    the vendor): its correlations are NaN, which made every CorrelationBased rebalance
    fail (no weight for anyone, silently), and as a riskless asset it took 77% of the
    minimum-variance book. It is now left out (NaN) and the others are sized."""
    from dataclasses import replace

    held = {
        f: getattr(data, f).assign(JPM=getattr(data, f)["JPM"].iloc[0])
        for f in ("open", "high", "low", "close", "adj_close")
    }
    out = cls(**fast_params(cls)).run(replace(data, **held))
    assert out.primary["JPM"].isna().all()
    others = out.primary.drop(columns="JPM").dropna(how="all")
    assert len(others) > 1000 and (others.sum(axis=1) > 0.5).all()


# ----------------------------------------------------------------- every model
@pytest.mark.parametrize("cls", sizing.MODELS, ids=lambda c: c.__name__)
def test_every_sizing_model_respects_limits(cls, data):
    params = fast_params(cls)
    out = cls(**params, max_weight=0.15, gross_cap=0.5, long_only=True).run(data)
    w = out.primary.to_numpy(dtype="float64")
    finite = w[np.isfinite(w)]
    assert finite.size > 0
    assert finite.min() >= 0 and finite.max() <= 0.15 + 1e-12
    assert np.nansum(np.abs(w), axis=1).max() <= 0.5 + 1e-12
    # TSLA has no weight before its first price
    first = data.adj_close["TSLA"].first_valid_index()
    assert out.primary["TSLA"].loc[: first - pd.Timedelta(days=1)].isna().all()
