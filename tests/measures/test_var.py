"""VaR/ES by method and the VaR backtests, against hand computation on real returns
(AAPL 2019 from the real daily files) and against arch / numerical integration."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from mltrainer.errors import DataError, ParameterError
from mltrainer.measures import backtest_var as bt
from mltrainer.measures import var as V


@pytest.fixture(scope="module")
def aapl_2019(basket) -> pd.Series:
    return basket.returns()["AAPL"].loc["2019"].dropna()


@pytest.fixture(scope="module")
def port(basket) -> pd.Series:
    """Equal-weight daily returns of the real basket, 2005-2012 (includes 2008)."""
    return basket.returns().loc["2005":"2012"].mean(axis=1)


# ------------------------------------------------------------------- single figures
def test_historical_var_es_step_by_step(aapl_2019):
    r = aapl_2019.to_numpy()
    assert r.size == 252
    for level in (0.99, 0.95):
        x = sorted(r)
        h = (len(x) - 1) * (1 - level)  # 2.51 at 99 %
        lo = math.floor(h)
        q = x[lo] + (h - lo) * (x[lo + 1] - x[lo])
        tail = [v for v in x if v <= q]
        assert V.historical_var(aapl_2019, level) == pytest.approx(-q, rel=1e-12)
        assert V.historical_es(aapl_2019, level) == pytest.approx(-sum(tail) / len(tail), rel=1e-12)
        assert -q == pytest.approx(-np.quantile(r, 1 - level), rel=1e-12)
    # at 99 % the tail holds the 3 worst days of 2019 (floor(2.51) + 1)
    three = sorted(r)[:3]
    assert V.historical_es(aapl_2019, 0.99) == pytest.approx(-np.mean(three), rel=1e-12)
    # several levels at once give the same numbers
    both = V.historical_var(aapl_2019, [0.95, 0.99])
    assert both == pytest.approx(
        [V.historical_var(aapl_2019, 0.95), V.historical_var(aapl_2019, 0.99)]
    )


def test_normal_var_es_formula(aapl_2019):
    r = list(aapl_2019)
    mu, sd = statistics.mean(r), statistics.stdev(r)
    nd = statistics.NormalDist()
    for level in (0.99, 0.975):
        z = nd.inv_cdf(1 - level)
        assert V.normal_var(aapl_2019, level) == pytest.approx(-(mu + sd * z), rel=1e-10)
        es = -(mu - sd * nd.pdf(z) / (1 - level))
        assert V.normal_es(aapl_2019, level) == pytest.approx(es, rel=1e-10)


def test_student_t_dof_from_kurtosis_and_es_by_integration(aapl_2019):
    r = aapl_2019.to_numpy()
    g2 = stats.kurtosis(r, fisher=True, bias=True)
    nu = 4 + 6 / g2
    assert V.kurtosis_dof(g2) == pytest.approx(nu)
    mu, sd = r.mean(), r.std(ddof=1)
    s = sd * math.sqrt((nu - 2) / nu)
    level = 0.99
    expected_var = -(mu + s * stats.t.ppf(0.01, nu))
    assert V.student_t_var(r, level) == pytest.approx(expected_var, rel=1e-10)
    # ES = mean of the VaR over the tail, integrated numerically
    tail_mean = integrate.quad(lambda u: mu + s * stats.t.ppf(u, nu), 0, 0.01, limit=200)[0]
    assert V.student_t_es(r, level) == pytest.approx(-tail_mean / 0.01, rel=1e-6)
    # an explicit dof is used as given
    assert V.student_t_var(r, level, dof=5) == pytest.approx(
        -(mu + sd * math.sqrt(3 / 5) * stats.t.ppf(0.01, 5)), rel=1e-10
    )
    # no excess kurtosis -> the (near) normal answer
    assert V.kurtosis_dof(-0.5) == V.MAX_DOF


def test_cornish_fisher_var_formula_and_es_by_integration(aapl_2019):
    r = aapl_2019.to_numpy()
    S = stats.skew(r, bias=True)
    K = stats.kurtosis(r, fisher=True, bias=True)
    mu, sd = r.mean(), r.std(ddof=1)

    def zcf(u):
        z = stats.norm.ppf(u)
        return z + (z * z - 1) * S / 6 + (z**3 - 3 * z) * K / 24 - (2 * z**3 - 5 * z) * S * S / 36

    for level in (0.99, 0.95):
        p = 1 - level
        assert V.cornish_fisher_var(r, level) == pytest.approx(-(mu + sd * zcf(p)), rel=1e-10)
        tail = integrate.quad(lambda u: mu + sd * zcf(u), 0, p, limit=200)[0] / p
        assert V.cornish_fisher_es(r, level) == pytest.approx(-tail, rel=1e-6)


def test_fhs_ewma_against_plain_loop(aapl_2019):
    r = aapl_2019.to_numpy()
    lam = 0.94
    s2 = [float(np.mean(r * r))]
    for x in r:
        s2.append(lam * s2[-1] + (1 - lam) * x * x)
    sig = np.sqrt(s2)
    z = r / sig[:-1]
    expected = -np.quantile(z, 0.01) * sig[-1]
    v, e = V.var_es(r, 0.99, "fhs_ewma", lam=lam)
    assert v == pytest.approx(expected, rel=1e-10)
    zs = np.sort(z)
    assert e == pytest.approx(-zs[zs <= np.quantile(z, 0.01)].mean() * sig[-1], rel=1e-10)


def test_garch_filter_matches_arch(basket):
    from arch import arch_model

    r = 100 * basket.returns()["AAPL"].loc["2012":"2016"].dropna().to_numpy()
    backcast = float(np.mean(r[:75] ** 2))
    res = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(
        disp="off", backcast=backcast
    )
    mu, omega, alpha, beta = res.params.to_numpy()
    s2 = V.garch_variance(r - mu, omega, alpha, beta, backcast)
    np.testing.assert_allclose(s2[:-1], res.conditional_volatility**2, rtol=1e-10)
    next_var = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert s2[-1] == pytest.approx(next_var, rel=1e-10)


def test_fit_garch_rescales_arch_estimates(aapl_2019, basket):
    r = basket.returns()["AAPL"].loc["2015":"2019"].dropna().to_numpy()
    from arch import arch_model

    ref = arch_model(100 * r, rescale=False).fit(disp="off").params.to_numpy()
    got = V.fit_garch(r)
    np.testing.assert_allclose(got, ref / [100, 1e4, 1, 1], rtol=1e-6)


def test_value_at_risk_dispatch_and_ordering(port, basket):
    calm = basket.returns().loc["2013":"2017"].mean(axis=1)  # excess kurtosis 2.1
    for m in V.METHODS:
        sample = calm if m == "cornish_fisher" else port
        v95, v99 = V.value_at_risk(sample, [0.95, 0.99], m)
        e95, e99 = V.expected_shortfall(sample, [0.95, 0.99], m)
        assert 0 < v95 < v99 and v95 < e95 and v99 < e99, m


def test_cornish_fisher_outside_its_domain_gives_no_figure(port):
    """With 2008 in the sample (excess kurtosis 9.1) the expansion is no quantile
    function: it falls between the tail and the median, its 99 % 'quantile' is -4.1
    sd against an empirical -2.8 and its 90 % one -0.6 against -1.0 (on a window with
    2020 the 90 % VaR was a gain). Such a sample gets NaN, not a false figure."""
    assert V.cornish_fisher_quantile(-0.5, 0.36, 9.06) > V.cornish_fisher_quantile(0.0, 0.36, 9.06)
    assert np.isnan(V.value_at_risk(port, [0.9, 0.95, 0.99], "cornish_fisher")).all()
    assert np.isnan(V.expected_shortfall(port, 0.99, "cornish_fisher"))
    # with no skew the expansion is monotone exactly while the excess kurtosis is in [0, 8)
    z = stats.norm.ppf(0.01)
    assert V.cornish_fisher_valid(z, 0.0, [0.0, 4.0, 7.9, 8.1, 12.0]).tolist() == [
        True,
        True,
        True,
        False,
        False,
    ]


# ------------------------------------------------------------------------- rolling
@pytest.mark.parametrize(
    "method", ["historical", "normal", "student_t", "cornish_fisher", "fhs_ewma"]
)
def test_rolling_equals_single_figure_on_each_window(port, method):
    w = 250
    roll = V.rolling_var_es(port, w, 0.99, method)
    r = port.dropna()
    assert roll.index.equals(port.index)
    assert roll["var"].iloc[: w - 1].isna().all()  # 249 incomplete windows
    assert roll["var"].iloc[w - 1 :].notna().all()
    for i in (w - 1, 600, len(r) - 1):
        date = r.index[i]
        if method == "fhs_ewma":
            # the rolling EWMA runs from the start of the series, seeded on the first window
            continue
        v, e = V.var_es(r.iloc[i - w + 1 : i + 1], 0.99, method)
        assert roll.loc[date, "var"] == pytest.approx(v, rel=1e-10)
        assert roll.loc[date, "es"] == pytest.approx(e, rel=1e-10)


def test_rolling_fhs_ewma_against_plain_loop(port):
    r = port.dropna().to_numpy()
    w, lam = 250, 0.94
    s2 = [float(np.mean(r[:w] ** 2))]
    for x in r:
        s2.append(lam * s2[-1] + (1 - lam) * x * x)
    sig = np.sqrt(s2)
    z = r / sig[:-1]
    roll = V.rolling_var(port.dropna(), w, 0.99, "fhs_ewma").to_numpy()
    for i in (w - 1, 1000, len(r) - 1):
        zw = z[i - w + 1 : i + 1]
        assert roll[i] == pytest.approx(-np.quantile(zw, 0.01) * sig[i + 1], rel=1e-10)


def test_rolling_garch_first_window_equals_single_fit_and_is_causal(port):
    r = port.dropna()
    w = 250
    full = V.rolling_var_es(r, w, 0.99, "fhs_garch", refit_every=252)
    v, e = V.var_es(r.iloc[:w], 0.99, "fhs_garch")
    assert full["var"].iloc[w - 1] == pytest.approx(v, rel=1e-8)
    assert full["es"].iloc[w - 1] == pytest.approx(e, rel=1e-8)
    cut = w + 252 + 30  # after the second fit
    part = V.rolling_var_es(r.iloc[:cut], w, 0.99, "fhs_garch", refit_every=252)
    pd.testing.assert_frame_equal(part, full.iloc[:cut])


@pytest.mark.parametrize("method", V.METHODS[:5])
def test_rolling_is_causal(port, method):
    full = V.rolling_var_es(port, 120, [0.95, 0.99], method)
    for cut in (300, 900):
        part = V.rolling_var_es(port.iloc[:cut], 120, [0.95, 0.99], method)
        pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_rolling_several_levels_and_frames(basket):
    rets = basket.returns().loc["2008":"2011", ["AAPL", "TSLA", "XOM"]]
    multi = V.rolling_var_es(rets["AAPL"], 100, [0.95, 0.99], "normal")
    one = V.rolling_var_es(rets["AAPL"], 100, 0.99, "normal")
    pd.testing.assert_series_equal(multi[("var", 0.99)], one["var"], check_names=False)
    pd.testing.assert_series_equal(multi[("es", 0.99)], one["es"], check_names=False)
    frame = V.rolling_var(rets, 100, 0.99, "historical")
    assert list(frame.columns) == ["AAPL", "TSLA", "XOM"]
    pd.testing.assert_series_equal(
        frame["XOM"], V.rolling_var(rets["XOM"], 100, 0.99), check_names=False
    )
    # TSLA lists in mid-2010: NaN until 100 returns exist, then values
    tsla = frame["TSLA"]
    first = rets["TSLA"].first_valid_index()
    assert tsla.loc[:first].isna().all()
    assert tsla.dropna().index[0] == rets["TSLA"].dropna().index[99]


def test_short_history_gives_nan_not_error(aapl_2019):
    out = V.rolling_var_es(aapl_2019.iloc[:50], 250, 0.99, "fhs_garch")
    assert out.isna().all().all() and len(out) == 50


# --------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors(aapl_2019):
    with pytest.raises(ParameterError, match="between 0 and 1"):
        V.historical_var(aapl_2019, 1.0)
    with pytest.raises(ParameterError, match="between 0 and 1"):
        V.rolling_var(aapl_2019, 100, 99)
    with pytest.raises(ParameterError, match="method must be one of"):
        V.value_at_risk(aapl_2019, 0.99, "monte_carlo")
    with pytest.raises(DataError, match="at least 10"):
        V.historical_var(aapl_2019.iloc[:5])
    with pytest.raises(DataError, match="at least 100"):
        V.value_at_risk(aapl_2019.iloc[:60], 0.99, "fhs_garch")
    with pytest.raises(DataError, match="one series"):
        V.historical_var(pd.concat([aapl_2019, aapl_2019], axis=1))
    with pytest.raises(ParameterError, match="window"):
        V.rolling_var(aapl_2019, 3)
    with pytest.raises(ParameterError, match="dof"):
        V.student_t_var(aapl_2019, 0.99, dof=2)


# ------------------------------------------------------------------------ backtests
# 250 days, 7 exceptions, two of them in consecutive pairs (10-11 and 150-151)
HITS_AT = [10, 11, 50, 100, 150, 151, 200]


@pytest.fixture()
def hits() -> np.ndarray:
    h = np.zeros(250)
    h[HITS_AT] = 1
    return h


def test_kupiec_against_formula(hits):
    n, x, p = 250, 7, 0.01
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - x / n) + x * math.log(x / n)
    )
    out = bt.kupiec_pof(hits, 0.99)
    assert out["exceptions"] == 7 and out["n"] == 250
    assert out["lr"] == pytest.approx(lr, rel=1e-12)
    assert out["lr"] == pytest.approx(5.49699, abs=1e-5)
    assert out["p_value"] == pytest.approx(math.erfc(math.sqrt(lr / 2)), rel=1e-10)
    # zero exceptions: LR = -2 n ln(1 - p)
    assert bt.kupiec_pof(np.zeros(250))["lr"] == pytest.approx(-2 * 250 * math.log(0.99))


def test_christoffersen_against_hand_counts(hits):
    out = bt.christoffersen(hits, 0.99)
    # transitions counted by hand from HITS_AT: 0->1 before each isolated run start (10,
    # 50, 100, 150, 200), 1->1 inside the two pairs, 1->0 after each run end
    n00, n01, n10, n11 = 237, 5, 5, 2
    assert (out["n00"], out["n01"], out["n10"], out["n11"]) == (n00, n01, n10, n11)
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / 249
    lr_ind = -2 * ((n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)) + 2 * (
        n00 * math.log(1 - pi0)
        + n01 * math.log(pi0)
        + n10 * math.log(1 - pi1)
        + n11 * math.log(pi1)
    )
    assert out["lr_ind"] == pytest.approx(lr_ind, rel=1e-12)
    assert out["lr_cc"] == pytest.approx(lr_ind + bt.kupiec_pof(hits)["lr"], rel=1e-12)
    assert out["p_value_cc"] == pytest.approx(math.exp(-out["lr_cc"] / 2), rel=1e-10)
    # spread-out exceptions are more independent than clustered ones
    spread = np.zeros(250)
    spread[[10, 45, 80, 115, 150, 185, 220]] = 1
    assert bt.christoffersen(spread)["lr_ind"] < out["lr_ind"]


def test_basel_zones():
    zones = [bt.traffic_light_zone(x, 250, 0.99) for x in range(15)]
    assert zones == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 5
    h = np.zeros(300)
    h[-250:][[1, 20, 40, 60, 80, 100, 120]] = 1
    h[:10] = 1  # older than the 250-day window: ignored
    out = bt.traffic_light(h)
    assert (out["n"], out["exceptions"], out["zone"], out["plus_factor"]) == (
        250,
        7,
        "yellow",
        0.65,
    )


def test_var_exceptions_alignment():
    idx = pd.date_range("2020-01-01", periods=5, freq="B")
    r = pd.Series([0.0, -0.03, -0.01, -0.05, 0.02], index=idx)
    var = pd.Series([0.02, 0.02, 0.04, np.nan, 0.01], index=idx)
    e = bt.var_exceptions(r, var)
    # day 1: loss 3% > the 2% forecast made on day 0 -> exception recorded on day 1;
    # day 3: loss 5% > 4%; day 4 has no forecast (day 3's is NaN); day 0 has none either
    assert np.isnan(e.iloc[0]) and np.isnan(e.iloc[4])
    assert list(e.iloc[1:4]) == [1.0, 0.0, 1.0]


def test_backtest_of_real_rolling_var(port):
    var = V.rolling_var(port, 250, 0.99, "normal")
    e = bt.var_exceptions(port, var).dropna()
    tables = bt.backtest_tables(e, 0.99)
    assert tables["kupiec"].loc[0, "exceptions"] == int(e.sum())
    # normal VaR through 2008 is too low: the exception rate is above 1 %
    assert tables["kupiec"].loc[0, "rate"] > 0.01
