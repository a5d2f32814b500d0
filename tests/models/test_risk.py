"""Risk-family models against hand computation on the real basket (2006-2012)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.allocation import min_variance_weights
from mltrainer.measures.backtest_var import kupiec_pof
from mltrainer.measures.covariance import covariance
from mltrainer.measures.exposure import drawdown_protection
from mltrainer.models import risk, sizing
from mltrainer.models.risk import (
    DynamicRiskAdjustmentModel,
    MaximumDrawdownProtectionModel,
    PortfolioRiskModel,
    RiskParityModel,
    VaRModel,
    VolatilityTargetingModel,
)

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA", "KO"]


@pytest.fixture(scope="module")
def data(basket):
    return basket.select(tickers=TICKERS, start="2006-01-01", end="2012-12-31")


@pytest.fixture(scope="module")
def eq_returns(data) -> pd.Series:
    """Equal-weight portfolio of whatever trades each day, by hand."""
    r = data.adj_close / data.adj_close.shift(1) - 1
    return r.mean(axis=1)


def test_registry_keys():
    keys = {cls.key() for cls in risk.MODELS}
    assert {"risk/VaRModel", "risk/RiskParityModel", "risk/VolatilityTargetingModel"} <= keys
    assert isinstance(risk.MODELS, tuple)


# --------------------------------------------------------------------------- VaR
def test_var_model_historical_and_exceptions_by_hand(data, eq_returns):
    out = VaRModel(method="historical", level=0.99, window=250).run(data)
    assert list(out.primary.columns) == ["var", "es"]
    assert out.primary.index.equals(data.dates)
    r = eq_returns.to_numpy()
    for i in (251, 800, len(r) - 1):
        win = r[i - 249 : i + 1]
        assert out.primary["var"].iloc[i] == pytest.approx(-np.quantile(win, 0.01), rel=1e-12)
    assert out.primary["var"].iloc[:250].isna().all()  # row 0 has no return
    # exception on day t: the loss of t above the VaR made on t-1 (recorded on t only)
    var = out.primary["var"].to_numpy()
    hand = [
        float(-r[t] > var[t - 1]) if np.isfinite(var[t - 1]) else np.nan for t in range(1, len(r))
    ]
    got = out.extras["exceptions"]["exception"].to_numpy()[1:]
    np.testing.assert_array_equal(got, np.array(hand))
    n_hits = int(np.nansum(hand))
    assert 0 < n_hits < 60
    kup = out.tables["kupiec"].iloc[0]
    assert kup["exceptions"] == n_hits
    assert kup["lr"] == pytest.approx(kupiec_pof(np.array(hand)[~np.isnan(hand)])["lr"])
    assert out.tables["traffic_light"].iloc[0]["n"] == 250
    assert set(out.tables) == {"kupiec", "christoffersen", "traffic_light"}


def test_var_model_normal_and_inverse_vol_weighting(data):
    out = VaRModel(method="normal", window=100, weighting="inverse_volatility").run(data)
    ret = data.returns()
    vol = ret.rolling(63).std()
    t = data.dates.get_loc(pd.Timestamp("2011-06-01"))
    # portfolio return on day s uses 1/vol known on day s-1
    port = []
    for s in range(t - 99, t + 1):
        inv = 1 / vol.iloc[s - 1]
        inv = inv[ret.iloc[s].notna() & inv.notna()]
        port.append(float((inv / inv.sum() * ret.iloc[s][inv.index]).sum()))
    port = np.array(port)
    z = -2.3263478740408408  # Phi^-1(0.01)
    expected = -(port.mean() + port.std(ddof=1) * z)
    assert out.primary["var"].iloc[t] == pytest.approx(expected, rel=1e-9)


def test_var_model_every_method_runs_and_orders(data):
    for method in ("student_t", "cornish_fisher", "fhs_ewma", "fhs_garch"):
        p = VaRModel(method=method, window=250).run(data).primary.dropna()
        assert len(p) > 1000 and (p["es"] >= p["var"]).all() and (p["var"] > 0).all()


def test_var_model_single_ticker_and_short_history(data):
    one = data.select(tickers=["KO"])
    out = VaRModel(window=100).run(one)
    r = one.returns()["KO"].to_numpy()
    assert out.primary["var"].iloc[-1] == pytest.approx(-np.quantile(r[-100:], 0.01))
    with pytest.raises(DataError, match="at least 251"):
        VaRModel(window=250).run(data.select(end="2006-06-30"))


# ------------------------------------------------------------------- optimisers
def test_portfolio_risk_min_variance_at_a_rebalance(data):
    model = PortfolioRiskModel(objective="min_variance", window=252, rebalance=21)
    out = model.run(data)
    w = out.primary
    ret = data.returns()
    t = 252 + 21 * 30  # a rebalance row
    win = ret.iloc[t - 251 : t + 1].dropna(axis=1)
    expected = min_variance_weights(covariance(win, "ledoit_wolf"))
    np.testing.assert_allclose(w.iloc[t][expected.index], expected, atol=1e-10)
    pd.testing.assert_series_equal(w.iloc[t + 20], w.iloc[t], check_names=False)
    assert w.iloc[:252].isna().all().all()
    assert (w.sum(axis=1, min_count=1).dropna() - 1).abs().max() < 1e-9
    assert w["TSLA"].loc[:"2010-12-31"].isna().all()  # not a full window before 2011
    table = out.tables["risk_contributions"]
    assert table["share"].sum() == pytest.approx(1.0)


def test_portfolio_risk_max_sharpe_respects_max_weight(data):
    w = PortfolioRiskModel(objective="max_sharpe", max_weight=0.3).run(data).primary
    assert w.max().max() <= 0.3 + 1e-8 and w.min().min() >= -1e-12
    assert (w.sum(axis=1, min_count=1).dropna() - 1).abs().max() < 1e-8


def test_risk_parity_models_equal_contributions_and_shared_code(data):
    out = RiskParityModel(window=252, rebalance=63).run(data)
    rc = out.extras["risk_contributions"].dropna(how="all")
    n = rc.notna().sum(axis=1)
    np.testing.assert_allclose(rc.max(axis=1), 1 / n, atol=1e-8)
    np.testing.assert_allclose(rc.min(axis=1), 1 / n, atol=1e-8)
    loose = sizing.RiskParityModel(window=252, rebalance=63, max_weight=1.0, gross_cap=1.0).run(
        data
    )
    pd.testing.assert_frame_equal(loose.primary, out.primary)


# ---------------------------------------------------------------------- overlays
def test_dynamic_risk_adjustment_by_hand(data, eq_returns):
    model = DynamicRiskAdjustmentModel(
        measure="vol_zscore",
        window=21,
        lookback=252,
        sensitivity=0.5,
        min_exposure=0.2,
        max_exposure=1.2,
    )
    out = model.run(data)
    vol = eq_returns.rolling(21).std()
    t = data.dates.get_loc(pd.Timestamp("2008-10-15"))
    hist = vol.iloc[t - 251 : t + 1]
    z = (vol.iloc[t] - hist.mean()) / hist.std()
    assert out.extras["score"]["score"].iloc[t] == pytest.approx(z, rel=1e-9)
    exp = min(1.2, max(0.2, 1 - 0.5 * z))
    assert exp == 0.2  # October 2008: volatility far above its past year
    n = data.adj_close.iloc[t].notna().sum()
    np.testing.assert_allclose(out.primary.iloc[t].dropna(), exp / n)
    e = out.extras["exposure"]["exposure"].dropna()
    assert e.min() >= 0.2 and e.max() <= 1.2
    var = DynamicRiskAdjustmentModel(measure="var_ratio").run(data).extras["exposure"]
    assert var["exposure"].dropna().between(0.25, 1.0).all()
    with pytest.raises(ParameterError, match="min_exposure"):
        DynamicRiskAdjustmentModel(min_exposure=0.9, max_exposure=0.6).fit(data)


def test_drawdown_protection_hand_path():
    eq = np.array([1.0, 1.05, 0.94, 0.90, 0.93, 0.95, 0.96])
    # exit when 0.94 / 1.05 - 1 = -10.5 %; trough 0.90; 0.95 / 0.90 - 1 = 5.6 % re-enters
    exp, dd = drawdown_protection(eq, 0.10, 0.05, 63, 0.0)
    assert exp.tolist() == [1, 1, 0, 0, 0, 1, 1]
    assert dd[2] == pytest.approx(0.94 / 1.05 - 1)
    # or after two days out whatever the recovery; a partial exposure while out
    exp, _ = drawdown_protection(eq, 0.10, 0.50, 2, 0.3)
    assert exp.tolist() == [1, 1, 0.3, 0.3, 1, 1, 1]


def test_max_drawdown_protection_on_2008(data, eq_returns):
    out = MaximumDrawdownProtectionModel(threshold=0.15, recovery=0.10, max_days_out=126).run(data)
    exposure = out.extras["exposure"]["exposure"]
    equity = (1 + eq_returns.fillna(0)).cumprod()
    exit_day = exposure.index[exposure.to_numpy() == 0][0]
    # the first exit is the first close 15 % below the running peak
    dd = equity / equity.cummax() - 1
    assert exit_day == dd.index[dd <= -0.15][0]
    # re-entry: the first day 10 % above the trough since the exit, or 126 days out
    after = equity.loc[exit_day:]
    out_days = exposure.loc[exit_day:]
    back = out_days.index[out_days.to_numpy() == 1][0]
    trough = after.loc[:back].cummin()
    rule = after.loc[:back] / trough - 1 >= 0.10
    days = np.arange(len(after.loc[:back]))
    first = after.loc[:back].index[rule.to_numpy() | (days >= 126)][0]
    assert back == first
    n = data.adj_close.loc[exit_day].notna().sum()
    assert (out.primary.loc[exit_day].dropna() == 0).all()
    np.testing.assert_allclose(out.primary.loc[back].dropna(), 1 / n)


def test_volatility_targeting_against_plain_ewma(data, eq_returns):
    out = VolatilityTargetingModel(
        target_vol=0.10, estimator="ewma", window=21, lam=0.94, max_leverage=1.5
    ).run(data)
    r = eq_returns.to_numpy()
    s2, vols = np.nan, []
    for x in r:
        if np.isfinite(x):
            s2 = x * x if np.isnan(s2) else 0.94 * s2 + 0.06 * x * x
        vols.append(math.sqrt(s2 * 252) if np.isfinite(s2) else np.nan)
    for t in (30, 700, 1500):
        lev = min(1.5, 0.10 / vols[t])
        assert out.extras["leverage"]["leverage"].iloc[t] == pytest.approx(lev, rel=1e-9)
        assert out.primary.iloc[t].sum() == pytest.approx(lev, rel=1e-9)
    assert out.primary.iloc[:20].isna().all().all()  # EWMA burn-in
    assert out.extras["leverage"]["leverage"].max() <= 1.5


def test_weight_models_give_one_ticker_full_weight(data):
    one = data.select(tickers=["XOM"])
    w = RiskParityModel(window=100, rebalance=21).run(one).primary["XOM"].dropna()
    assert (w == 1.0).all() and len(w) > 1000
