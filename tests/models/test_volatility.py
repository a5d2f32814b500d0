"""The volatility family against references on real S&P 500 bars.

References are independent of the model code: ``arch`` called directly (GARCH fits,
conditional volatility, one-step forecasts), statsmodels (OLS for HAR and the linear
forecaster, ARIMA, the sample ACF), scikit-learn (the seeded random forest), pandas
rolling/expanding statistics, plain Python loops with the ``math`` module (range
estimators, EWMA) and numbers worked out by hand (losses, class rules, the
minimum-duration filter).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from arch.univariate import GARCH, ConstantMean, Normal, StudentsT, ZeroMean
from statsmodels.tsa.stattools import acf
from threadpoolctl import threadpool_limits

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _volmath as vm
from mltrainer.models.garch import GarchSpec, garch_fit_warnings, garch_ticker
from mltrainer.models.volatility import (
    GARCHVolatilityModel,
    RealizedVolatilityModel,
    SimpleVolatilityModel,
    VolatilityClusteringModel,
    VolatilityForecastingModel,
    VolatilityRegimeDetectionModel,
)
from mltrainer.numerics.parallel import execution, step_unit
from mltrainer.numerics.schedule import calendar_refit_rows
from mltrainer.numerics.variance import garch_backcast, garch_variance, mse_loss, qlike_loss

FAST_MODELS = (
    SimpleVolatilityModel,
    RealizedVolatilityModel,
    VolatilityClusteringModel,
    VolatilityRegimeDetectionModel,
)


@pytest.fixture(scope="module")
def recent(basket):
    """Five real tickers, 2008-2014 (TSLA lists in June 2010)."""
    return basket.select(
        tickers=["AAPL", "MSFT", "JPM", "XOM", "TSLA"], start="2008-01-01", end="2014-12-31"
    )


def _log_ret(data: MarketData, ticker: str) -> pd.Series:
    return np.log(data.adj_close[ticker]).diff()


def _pos(data: MarketData, date: str) -> int:
    return data.dates.get_loc(pd.Timestamp(date))


# --------------------------------------------------------------------- schedule


def test_refit_rows_are_first_trading_days_of_each_period(recent):
    dates = recent.dates
    yearly = dates[calendar_refit_rows(dates, "yearly")]
    assert [str(d.date()) for d in yearly] == [
        "2009-01-02",
        "2010-01-04",
        "2011-01-03",
        "2012-01-03",
        "2013-01-02",
        "2014-01-02",
    ]
    quarterly = dates[calendar_refit_rows(dates, "quarterly")]
    assert str(quarterly[0].date()) == "2008-04-01" and len(quarterly) == 27
    monthly = dates[calendar_refit_rows(dates, "monthly")]
    assert len(monthly) == 83 and all(d.day <= 4 for d in monthly)
    with pytest.raises(ValueError, match="weekly"):
        calendar_refit_rows(dates, "weekly")


# ------------------------------------------------------------- range estimators


def _python_range(o, h, lo, c, prev_c, n):
    """Plain loop over bars, math module only: daily P, GK, RS and windowed YZ."""
    park, gk, rs, yz = [], [], [], []
    for i in range(len(c)):
        hl = math.log(h[i] / lo[i])
        co = math.log(c[i] / o[i])
        park.append(hl * hl / (4 * math.log(2)))
        gk.append(0.5 * hl * hl - (2 * math.log(2) - 1) * co * co)
        rs.append(
            math.log(h[i] / c[i]) * math.log(h[i] / o[i])
            + math.log(lo[i] / c[i]) * math.log(lo[i] / o[i])
        )
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    for end in range(n, len(c) + 1):
        ov = [math.log(o[i] / prev_c[i]) for i in range(end - n, end)]
        oc = [math.log(c[i] / o[i]) for i in range(end - n, end)]
        mo, mc = sum(ov) / n, sum(oc) / n
        var_o = sum((x - mo) ** 2 for x in ov) / (n - 1)
        var_c = sum((x - mc) ** 2 for x in oc) / (n - 1)
        yz.append(var_o + k * var_c + (1 - k) * sum(rs[end - n : end]) / n)
    return park, gk, rs, yz


def test_range_estimators_equal_a_python_loop_on_aapl_bars_across_a_split(basket):
    # 30 AAPL bars around the 7:1 split of 2014-06-09, on adjusted OHLC
    data = basket.select(tickers=["AAPL"], start="2014-05-21", end="2014-07-02")
    assert len(data.dates) == 30 and data.splits["AAPL"].max() == pytest.approx(7.0, rel=1e-5)
    adj = data.adjusted()
    o, h, lo, c = (getattr(adj, f)["AAPL"].tolist() for f in ("open", "high", "low", "close"))
    n = 10
    park, gk, rs, yz = _python_range(o[1:], h[1:], lo[1:], c[1:], c[:-1], n)
    terms = vm.range_terms(*(getattr(adj, f).to_numpy() for f in ("open", "high", "low", "close")))
    for name, ref in (("parkinson", park), ("garman_klass", gk), ("rogers_satchell", rs)):
        daily, windowed = vm.range_variance(terms, name, n)
        np.testing.assert_allclose(daily[1:, 0], ref, rtol=1e-12, atol=0)
        ref_mean = [sum(ref[i - n : i]) / n for i in range(n, len(ref) + 1)]
        np.testing.assert_allclose(windowed[n:, 0], ref_mean, rtol=1e-12, atol=0)
    _, windowed = vm.range_variance(terms, "yang_zhang", n)
    np.testing.assert_allclose(windowed[n:, 0], yz, rtol=1e-12, atol=0)
    assert np.isnan(windowed[:n, 0]).all()  # the first bar has no overnight return
    # the split is not a crash: the same estimator on as-traded bars explodes
    raw = vm.range_terms(*(getattr(data, f).to_numpy() for f in ("open", "high", "low", "close")))
    assert np.nanmax(vm.annualise(windowed)) < 0.4
    assert np.nanmax(vm.annualise(vm.range_variance(raw, "yang_zhang", n)[1])) > 2.0


def test_realized_model_primary_is_har_on_the_chosen_estimator(recent):
    out = RealizedVolatilityModel(estimator="garman_klass", window=21).run(recent)
    adj = recent.adjusted()
    terms = vm.range_terms(*(getattr(adj, f).to_numpy() for f in ("open", "high", "low", "close")))
    daily, windowed = vm.range_variance(terms, "garman_klass", 21)
    np.testing.assert_allclose(
        out.extras["range_volatility"].to_numpy(), np.sqrt(252 * windowed), rtol=1e-12
    )
    # forecast at t = b . [1, RV_t, RV^(5)_t, RV^(22)_t] with the coefficients in force
    coefs = out.tables["har_coefficients"].xs("MSFT", level="ticker")
    date = pd.Timestamp("2013-05-15")
    b = coefs.loc[coefs.index[coefs.index <= date][-1]]
    rv = pd.Series(daily[:, 1], index=recent.dates)
    t = _pos(recent, "2013-05-15")
    x = [1.0, rv.iloc[t], rv.iloc[t - 4 : t + 1].mean(), rv.iloc[t - 21 : t + 1].mean()]
    h = float(np.dot(b[list(vm.HAR_TERMS)], x))
    assert out.primary["MSFT"].iloc[t] == pytest.approx(math.sqrt(252 * h), rel=1e-10)


@pytest.mark.parametrize("min_obs", [100, 500])
def test_realized_min_history_counts_the_har_samples(recent, min_obs):
    """min_history() was the range window + 1 (22 days) while the first HAR forecast needs
    min_obs samples: a live `models run --start` loaded 22 days of lead and left the
    forecast NaN for the first two years asked for. The first value now comes within one
    monthly refit of min_history() dates."""
    model = RealizedVolatilityModel(min_obs=min_obs)
    out = model.run(recent.select(tickers=["AAPL", "MSFT"]))
    first = int(out.primary.notna().any(axis=1).to_numpy().argmax()) + 1  # dates seen
    assert model.min_history() <= first <= model.min_history() + 23


@pytest.mark.parametrize("pooling", ["per_ticker", "pooled"])
def test_har_coefficients_equal_statsmodels_ols(recent, pooling):
    model = RealizedVolatilityModel(
        estimator="parkinson", refit="quarterly", pooling=pooling, min_obs=250
    )
    table = model.run(recent).tables["har_coefficients"]
    adj = recent.adjusted()
    rv = (np.log(adj.high / adj.low) ** 2) / (4 * math.log(2))  # Parkinson, pandas
    refit = pd.Timestamp("2012-04-02")
    frames = []
    for ticker in recent.tickers:
        s = rv[ticker]
        design = pd.DataFrame(
            {
                "const": 1.0,
                "daily": s,
                "weekly": s.rolling(5).mean(),
                "monthly": s.rolling(22).mean(),
                "y": s.shift(-1),
            }
        )
        # samples whose target (next trading day) is strictly before the refit date
        target_date = pd.Series(recent.dates, index=recent.dates).shift(-1)
        design = design[(target_date < refit).to_numpy()].dropna()
        design["ticker"] = ticker
        frames.append(design)
    cols = list(vm.HAR_TERMS)
    if pooling == "pooled":
        both = pd.concat(frames)
        ols = sm.OLS(both["y"], both[cols]).fit()
        np.testing.assert_allclose(
            table.loc[refit, cols].to_numpy(dtype=float), ols.params[cols].to_numpy(), rtol=1e-8
        )
        assert table.loc[refit, "n_obs"] == both.index.nunique()
    else:
        for design in frames:
            ticker = design["ticker"].iloc[0]
            ols = sm.OLS(design["y"], design[cols]).fit()
            got = table.loc[(refit, ticker), cols].to_numpy(dtype=float)
            np.testing.assert_allclose(got, ols.params[cols].to_numpy(), rtol=1e-8)
            assert table.loc[(refit, ticker), "n_obs"] == len(design)


# ------------------------------------------------------------------------ GARCH


def _arch(y, mean="constant", p=1, o=0, q=1, dist="normal"):
    mean_cls = ConstantMean if mean == "constant" else ZeroMean
    return mean_cls(
        y,
        volatility=GARCH(p=p, o=o, q=q),
        distribution=Normal() if dist == "normal" else StudentsT(),
        rescale=False,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mean": "zero", "o": 1, "dist": "studentst", "window_type": "expanding"},
    ],
)
def test_garch_matches_arch_called_directly(recent, kwargs):
    data = recent.select(tickers=["JPM"])
    model = GARCHVolatilityModel(min_obs=500, window=750, refit="yearly", **kwargs)
    out = model.run(data)
    spec = model.spec()
    y_all = (100 * _log_ret(data, "JPM")).dropna()
    refit, next_refit = pd.Timestamp("2012-01-03"), pd.Timestamp("2013-01-02")
    before = y_all[y_all.index < refit]
    window = before if spec.window_type == "expanding" else before.iloc[-750:]
    # the model fits with one BLAS thread: SLSQP's optimum moves in the 5th digit with
    # the thread count, so the reference runs the same way
    with threadpool_limits(limits=1, user_api="blas"):
        res = _arch(window.to_numpy(), spec.mean, spec.p, spec.o, spec.q, spec.dist).fit(disp="off")
    # 1. the parameters are arch's optimum on the same window: at least as likely as
    # arch's own fit, and equal to it up to where SLSQP stops (the model polishes it)
    row = out.tables["params"].loc[("JPM", refit)]
    got = row[list(res.params.index)]
    assert row["loglik"] >= res.loglikelihood - 1e-9 * abs(res.loglikelihood)
    np.testing.assert_allclose(got.to_numpy(dtype=float), res.params.to_numpy(), rtol=2e-3)

    # 2. our recursion reproduces arch's in-sample conditional volatility and forecast
    n_mean = 1 if spec.mean == "constant" else 0
    vp = res.params.to_numpy()[n_mean : n_mean + 1 + spec.p + spec.o + spec.q]
    mu = res.params.iloc[0] if n_mean else 0.0
    w = window.to_numpy()
    start = w - w.mean() if n_mean else w
    sig2 = garch_variance(vp, w - mu, garch_backcast(start), spec.p, spec.o, spec.q)
    np.testing.assert_allclose(np.sqrt(sig2[:-1]), res.conditional_volatility, rtol=1e-8)
    fc = res.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]
    assert sig2[-1] == pytest.approx(fc, rel=1e-8)
    # arch's forecast() restarts its recursion from residuals about the fitted mean
    # (fit() uses the sample mean); the difference dies out geometrically, so compare
    # from the 300th observation on
    full_fc = res.forecast(horizon=1, start=300, reindex=False).variance.to_numpy()[:, 0]
    np.testing.assert_allclose(sig2[301:], full_fc, rtol=1e-8)

    # 3. between refits the model filters forward with its parameters fixed: arch's
    # fix() on the window plus the following year gives the same variances, and its
    # one-step forecasts are the model's output (de-annualised)
    seg = y_all[(y_all.index >= refit) & (y_all.index < next_refit)]
    ext = pd.concat([window, seg])
    fixed = _arch(ext.to_numpy(), spec.mean, spec.p, spec.o, spec.q, spec.dist).fix(
        got.astype("float64")
    )
    fix_fc = fixed.forecast(horizon=1, start=len(window), reindex=False).variance
    ours = (out.primary["JPM"].loc[seg.index] * 100) ** 2 / 252
    np.testing.assert_allclose(ours.to_numpy(), fix_fc.to_numpy()[:, 0], rtol=1e-8)
    cond = np.asarray(fixed.conditional_volatility)[len(window) :]
    prev = (out.primary["JPM"].shift(1).loc[seg.index[1:]] * 100) ** 2 / 252
    np.testing.assert_allclose(prev.to_numpy(), cond[1:] ** 2, rtol=1e-8)


def test_garch_is_causal_between_and_across_refits(recent):
    data = recent.select(tickers=["XOM", "TSLA"])
    model = GARCHVolatilityModel(refit="yearly", min_obs=400, window=600)
    full = model.run(data)
    # mid-year (between refits), the last day before a refit, the refit day itself
    for cutoff in ("2012-08-15", "2012-12-31", "2013-01-02"):
        part = model.run(data.truncate(cutoff))
        n = len(part.primary)
        pd.testing.assert_frame_equal(full.primary.iloc[:n], part.primary, rtol=1e-12)
        pd.testing.assert_frame_equal(
            full.extras["persistence"].iloc[:n], part.extras["persistence"], rtol=1e-12
        )
    assert not np.isnan(part.primary["XOM"].iloc[-1])  # the refit day has a forecast


def test_garch_parallel_equals_sequential_and_reports_progress(recent):
    data = recent.select(tickers=["AAPL", "MSFT", "JPM", "XOM"], start="2010-01-01")
    model = GARCHVolatilityModel(min_obs=250, window=500)
    calls = []
    with execution(n_jobs=2, progress=lambda done, total: calls.append((done, total))):
        par = model.run(data)
    with execution(n_jobs=1):
        seq = model.run(data)
    pd.testing.assert_frame_equal(par.primary, seq.primary)
    pd.testing.assert_frame_equal(par.tables["params"], seq.tables["params"])
    assert calls == [(i, 4) for i in range(5)]


def test_garch_ticker_listing_mid_sample_and_params_table(recent):
    out = GARCHVolatilityModel(min_obs=500, window=1000).run(recent)
    first = recent.adj_close["TSLA"].first_valid_index()
    tsla = out.primary["TSLA"]
    assert tsla.loc[:first].isna().all()
    # TSLA's first fit needs 500 returns: mid-2010 + 500 days -> refit on 2013-01-02
    assert tsla.first_valid_index() == pd.Timestamp("2013-01-02")
    params = out.tables["params"]
    assert params.loc["TSLA"].index[0] == pd.Timestamp("2013-01-02")
    assert set(params.columns) >= {"mu", "omega", "alpha[1]", "beta[1]", "loglik", "converged"}
    assert (params["alpha[1]"] + params["beta[1]"] <= 1 + 1e-9).all()  # arch's constraint
    # annualised volatility of a large cap: between 5% and 200%
    values = out.primary.to_numpy()
    assert np.nanmin(values) > 0.05 and np.nanmax(values) < 2.0


def test_garch_constant_returns_give_nan_not_zero():
    # a stale price (every return 0) has no likelihood: the segment is NaN, the table says why
    forecast, persistence, rows = garch_ticker(
        np.zeros(800), np.array([600]), GarchSpec(min_obs=500, window=1000)
    )
    assert np.isnan(forecast).all() and np.isnan(persistence).all()
    assert rows[0]["converged"] is False and "likelihood" in rows[0]["error"]


def test_garch_failed_and_loose_fits_become_output_warnings():
    _, _, rows = garch_ticker(np.zeros(800), np.array([600]), GarchSpec(min_obs=500))
    day = pd.Timestamp("2008-01-02")
    records = [
        {"ticker": "KO", "refit_date": day, **rows[0]},
        {"ticker": "AAPL", "refit_date": day, "converged": False, "loglik": -1.0},
        {"ticker": "JPM", "refit_date": day, "converged": True, "loglik": -1.0},
    ]
    failed, loose = garch_fit_warnings(records)
    assert failed.startswith("GARCH fit failed for KO at the refit(s) of 2008-01-02")
    assert "likelihood" in failed and "NaN" in failed
    assert loose.startswith("GARCH fit did not converge for AAPL")


# ------------------------------------------------------------ simple / regimes


def test_simple_volatility_and_classes_against_pandas_and_numpy(recent):
    out = SimpleVolatilityModel(window=21, min_periods=252).run(recent)
    r = np.log(recent.adj_close).diff()
    ref = r.rolling(21).std() * math.sqrt(252)
    pd.testing.assert_frame_equal(out.primary, ref, rtol=1e-9, check_freq=False)
    # boundaries on one date by hand: numpy quantiles of every 5th day's value so far
    t = _pos(recent, "2011-08-31")  # a month after the US downgrade: high for all
    for ticker in recent.tickers:
        past = ref[ticker].iloc[: t + 1].iloc[::5].dropna().to_numpy()
        lo, hi = np.quantile(past, 0.33), np.quantile(past, 0.67)
        assert out.extras["low_boundary"][ticker].iloc[t] == pytest.approx(lo, rel=1e-12)
        assert out.extras["high_boundary"][ticker].iloc[t] == pytest.approx(hi, rel=1e-12)
        v = ref[ticker].iloc[t]
        assert out.extras["vol_class"][ticker].iloc[t] == (0 if v <= lo else 2 if v > hi else 1)
    assert (out.extras["vol_class"].iloc[t] == 2.0).all()
    # no class before 252 days of volatility (51 weekly values) are known
    assert out.extras["vol_class"]["JPM"].iloc[:250].isna().all()
    assert out.extras["vol_class"]["JPM"].iloc[300:].notna().all()
    # all three classes occur, and quiet 2013-2014 is mostly "low" for the long histories
    cls = out.extras["vol_class"]
    assert set(np.unique(cls.dropna())) == {0.0, 1.0, 2.0}
    assert (cls.loc["2013":"2014", ["AAPL", "MSFT", "JPM", "XOM"]] == 0).mean().mean() > 0.5


def test_band_classes_by_hand():
    v = np.array([[0.5], [1.0], [1.5], [2.0], [3.0], [3.2], [np.nan]])
    low, high = np.full_like(v, 1.0), np.full_like(v, 3.0)  # mid 2, half-width 1
    cls, conf, score = vm.band_classes(v, low, high)
    np.testing.assert_array_equal(cls[:, 0], [0, 0, 1, 1, 1, 2, np.nan])
    np.testing.assert_allclose(conf[:, 0], [0.5, 0.0, 0.5, 1.0, 0.0, 0.2, np.nan], atol=1e-12)
    np.testing.assert_allclose(score[:, 0], [-1.5, -1.0, -0.5, 0.0, 1.0, 1.2, np.nan])
    # an empty band (a stale price: constant volatility) has no class
    cls, conf, score = vm.band_classes(np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]))
    assert np.isnan(cls).all() and np.isnan(conf).all() and np.isnan(score).all()


def test_min_duration_filter_by_hand():
    raw = np.array(
        [[0, 2], [0, 2], [1, 2], [1, 0], [1, 0], [2, 0], [1, 0], [1, 1], [1, np.nan], [1, 1]],
        dtype=float,
    )
    out = vm.min_duration_filter(raw, 3)
    nan = np.nan
    np.testing.assert_array_equal(out[:, 0], [nan, nan, nan, nan, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(out[:, 1], [nan, nan, 2, 2, 2, 0, 0, 0, nan, 0])
    np.testing.assert_array_equal(vm.min_duration_filter(raw, 1), raw)


def test_regime_zscore_against_pandas(recent):
    model = VolatilityRegimeDetectionModel(
        vol_window=21, lookback=252, threshold=1.0, min_duration=5
    )
    out = model.run(recent)
    vol = np.log(recent.adj_close).diff().rolling(21).std() * math.sqrt(252)
    lv = np.log(vol)
    z = (lv - lv.rolling(252).mean()) / lv.rolling(252).std()
    pd.testing.assert_frame_equal(out.extras["score"], z, rtol=1e-7, atol=1e-9)
    raw = np.where(z > 1, 2.0, np.where(z < -1, 0.0, 1.0))
    raw[z.isna().to_numpy()] = np.nan
    np.testing.assert_array_equal(out.extras["raw_regime"].to_numpy(), raw)
    # August 2011 (US downgrade) is a high-volatility regime for the four long histories
    regime = out.extras["regime"]
    assert (regime.loc["2011-08-31", ["AAPL", "MSFT", "JPM", "XOM"]] == 2).all()
    # the regime is the raw label wherever that has held 5 days, and only changes there
    raw_f = out.extras["raw_regime"]
    held = (raw_f.rolling(5).min() == raw_f.rolling(5).max()) & raw_f.notna()
    assert (regime[held] == raw_f[held]).sum().sum() == held.sum().sum()
    changed = (regime != regime.shift()) & regime.notna() & regime.shift().notna()
    assert changed.sum().sum() > 20 and not (changed & ~held).any().any()
    q = VolatilityRegimeDetectionModel(
        method="quantile", lookback=252, low_quantile=0.2, high_quantile=0.8, min_duration=1
    ).run(recent)
    simple = SimpleVolatilityModel(
        window=21, low_quantile=0.2, high_quantile=0.8, min_periods=252
    ).run(recent)
    pd.testing.assert_frame_equal(q.extras["regime"], simple.extras["vol_class"])
    assert set(np.unique(q.extras["regime"].dropna())) == {0.0, 1.0, 2.0}


# ------------------------------------------------------------------ clustering


def test_ewma_forecast_equals_a_python_recursion(recent):
    out = VolatilityClusteringModel(ewma_lambda=0.94).run(recent)
    r = _log_ret(recent, "TSLA").dropna()
    num = den = 0.0
    ref = []
    for x in r:
        num = 0.94 * num + x * x
        den = 0.94 * den + 1.0
        ref.append(math.sqrt(252 * num / den))
    got = out.primary["TSLA"].loc[r.index]
    np.testing.assert_allclose(got.to_numpy()[19:], ref[19:], rtol=1e-12)
    assert got.iloc[:19].isna().all()


def test_rolling_acf_equals_statsmodels(recent):
    model = VolatilityClusteringModel(window=126, n_lags=3)
    out = model.run(recent)
    ar = _log_ret(recent, "MSFT").abs()
    for date in ("2009-03-09", "2012-06-29", "2014-12-31"):
        t = _pos(recent, date)
        ref = acf(ar.iloc[t - 125 : t + 1].to_numpy(), nlags=3, adjusted=False, fft=False)
        assert out.extras["acf1"]["MSFT"].iloc[t] == pytest.approx(ref[1], rel=1e-9)
        assert out.extras["persistence"]["MSFT"].iloc[t] == pytest.approx(ref[1:].mean(), rel=1e-9)
    # 2008-2009 is the textbook case of clustering; the quiet 2014 is not
    default = VolatilityClusteringModel().run(recent).extras
    four = ["AAPL", "MSFT", "JPM", "XOM"]
    assert (default["clustered"].loc["2009-06-30", four] == 1.0).all()
    assert (
        default["persistence"].loc["2009-06-30", four]
        > default["persistence"].loc["2014-06-30", four]
    ).all()


# ----------------------------------------------------------------- forecasting


def test_losses_by_hand():
    realised = np.array([1.0, 4.0, 0.0, 2.0])
    forecast = np.array([2.0, 2.0, 1.0, np.nan])
    assert mse_loss(realised, forecast) == pytest.approx((1 + 4 + 1) / 3)
    # (1/2 - ln(1/2) - 1) + (2 - ln 2 - 1) = 0.5, over the two pairs with realised > 0
    assert qlike_loss(realised, forecast) == pytest.approx(0.25)
    assert qlike_loss(np.array([3.0]), np.array([3.0])) == 0.0


def test_forecasting_linear_is_ols_and_errors_are_recomputed(recent):
    data = recent.select(tickers=["AAPL", "XOM"])
    out = VolatilityForecastingModel(method="linear", refit="yearly", window=500, min_obs=250).run(
        data
    )
    rv = (100 * _log_ret(data, "XOM")) ** 2
    refit = pd.Timestamp("2013-01-02")
    x = pd.DataFrame(
        {
            "const": 1.0,
            "daily": rv,
            "weekly": rv.rolling(5).mean(),
            "monthly": rv.rolling(22).mean(),
            "y": rv.shift(-1),
        }
    )
    x = x[(pd.Series(data.dates, index=data.dates).shift(-1) < refit).to_numpy()].dropna()
    x = x.iloc[-500:]
    ols = sm.OLS(x["y"], x[["const", "daily", "weekly", "monthly"]]).fit()
    fit = out.tables["fits"].loc[("XOM", refit)]
    np.testing.assert_allclose(
        fit[["const", "daily", "weekly", "monthly"]].to_numpy(float),
        ols.params.to_numpy(),
        rtol=1e-8,
    )
    # errors table: forecast at t (de-annualised) against rv at t+1
    h = (out.primary["XOM"] * 100) ** 2 / 252
    realised, made = rv.shift(-1).to_numpy(), h.to_numpy()
    ok = np.isfinite(realised) & np.isfinite(made)
    err = out.tables["errors"].loc["XOM"]
    assert err["n"] == ok.sum()
    assert err["mse"] == pytest.approx(np.mean((realised[ok] - made[ok]) ** 2), rel=1e-10)
    pos = ok & (realised > 0)
    ratio = realised[pos] / made[pos]
    assert err["qlike"] == pytest.approx(np.mean(ratio - np.log(ratio) - 1), rel=1e-10)
    assert {"AAPL", "XOM", "(all)"} == set(out.tables["errors"].index)


def test_forecasting_arima_and_forest_match_their_libraries_and_are_causal(recent):
    from sklearn.ensemble import RandomForestRegressor
    from statsmodels.tsa.arima.model import ARIMA

    data = recent.select(tickers=["JPM"], start="2010-01-01", end="2013-12-31")
    rv = (100 * _log_ret(data, "JPM")).dropna() ** 2
    refit, next_refit = pd.Timestamp("2013-01-02"), pd.Timestamp("2014-01-01")
    arima = VolatilityForecastingModel(
        method="arima", refit="yearly", window=500, min_obs=250, rv_window=5
    )
    out = arima.run(data)
    z = np.log(rv.rolling(5).mean()).dropna()
    train = z[z.index < refit].iloc[-500:]
    with threadpool_limits(limits=1, user_api="blas"):  # as the model fits
        res = ARIMA(train.to_numpy(), order=(1, 0, 1), trend="c").fit()
    fit = out.tables["fits"].loc[("JPM", refit)]
    np.testing.assert_allclose(fit[res.model.param_names].to_numpy(float), res.params, rtol=1e-6)
    # one-step prediction for the day after 2013-06-14 from data up to it, fixed params
    t = z.index.get_loc(pd.Timestamp("2013-06-14"))
    start = z.index.get_loc(train.index[0])
    filt = ARIMA(z.iloc[start : t + 1].to_numpy(), order=(1, 0, 1), trend="c").filter(res.params)
    h = np.exp(filt.forecast(1)[0]) * np.mean(np.exp(res.resid))
    assert out.primary.loc["2013-06-14", "JPM"] == pytest.approx(math.sqrt(252 * h) / 100, rel=1e-8)
    forest = VolatilityForecastingModel(
        method="random_forest",
        refit="yearly",
        window=500,
        min_obs=250,
        n_estimators=20,
        max_depth=4,
        random_state=7,
    )
    rf_out = forest.run(data)
    feats = pd.DataFrame({"d": rv, "w": rv.rolling(5).mean(), "m": rv.rolling(22).mean()})
    target = rv.shift(-1)
    keep = (pd.Series(rv.index, index=rv.index).shift(-1) < refit) & feats.notna().all(axis=1)
    x_train = feats[keep].iloc[-500:]
    ref = RandomForestRegressor(
        n_estimators=20, max_depth=4, min_samples_leaf=5, random_state=7, n_jobs=1
    )
    ref.fit(x_train.to_numpy(), target[x_train.index].to_numpy())
    seg = feats[(feats.index >= refit) & (feats.index < next_refit)]
    expect = np.sqrt(252 * ref.predict(seg.to_numpy())) / 100
    np.testing.assert_allclose(rf_out.primary["JPM"].loc[seg.index], expect, rtol=1e-12)
    # causal across the refit
    for model, full in ((arima, out), (forest, rf_out)):
        for cutoff in ("2012-12-31", "2013-01-02", "2013-06-14"):
            part = model.run(data.truncate(cutoff)).primary
            pd.testing.assert_frame_equal(full.primary.iloc[: len(part)], part, rtol=1e-10)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", FAST_MODELS + (GARCHVolatilityModel, VolatilityForecastingModel))
def test_too_little_history_is_a_clear_error(recent, cls):
    short = recent.select(end="2008-01-15")
    with pytest.raises(DataError, match="at least"):
        cls().run(short)


@pytest.mark.parametrize(
    "model",
    [cls() for cls in FAST_MODELS]
    + [
        RealizedVolatilityModel(pooling="pooled", estimator="rogers_satchell"),
        VolatilityRegimeDetectionModel(method="quantile"),
        VolatilityClusteringModel(measure="squared", n_lags=2),
    ],
    ids=lambda m: f"{type(m).__name__}-{sorted(m.get_params().items())[0][1]}",
)
def test_causality_across_a_refit(recent, model):
    full = model.run(recent)
    # the last day of a month/year and the first day of the next (a refit day)
    for cutoff in ("2012-12-31", "2013-01-02"):
        part = model.run(recent.truncate(cutoff))
        n = len(part.primary)
        pd.testing.assert_frame_equal(full.primary.iloc[:n], part.primary, rtol=1e-12)
        for name, frame in part.extras.items():
            pd.testing.assert_frame_equal(full.extras[name].iloc[:n], frame, rtol=1e-9, atol=1e-12)


def _with_empty_column(data: MarketData, ticker: str) -> MarketData:
    """The same data with one ticker's every field set to NaN."""

    def blank(frame):
        frame = frame.copy()
        frame[ticker] = np.nan
        return frame

    names = ("open", "high", "low", "close", "adj_close", "volume", "dividends", "splits")
    return replace(
        data,
        **{name: blank(getattr(data, name)) for name in names if getattr(data, name) is not None},
    )


@pytest.mark.parametrize("cls", FAST_MODELS + (VolatilityForecastingModel,))
def test_all_nan_column_single_ticker_and_mid_sample_listing(recent, cls):
    model = cls()
    full = model.run(recent)
    blanked = model.run(_with_empty_column(recent, "XOM"))
    assert blanked.primary["XOM"].isna().all()
    others = ["AAPL", "MSFT", "JPM", "TSLA"]
    pooled = getattr(model, "pooling", "per_ticker") == "pooled"
    if not pooled:
        pd.testing.assert_frame_equal(blanked.primary[others], full.primary[others])
        single = model.run(recent.select(tickers=["MSFT"]))
        pd.testing.assert_series_equal(single.primary["MSFT"], full.primary["MSFT"])
    first = recent.adj_close["TSLA"].first_valid_index()
    assert full.primary["TSLA"].loc[:first].isna().all()
    assert full.primary["TSLA"].loc["2014"].notna().all()


def test_garch_all_nan_column_and_single_ticker(recent):
    data = recent.select(tickers=["MSFT", "XOM"], start="2010-01-01")
    model = GARCHVolatilityModel(min_obs=250, window=500)
    full = model.run(data)
    blanked = model.run(_with_empty_column(data, "XOM"))
    assert blanked.primary["XOM"].isna().all()
    pd.testing.assert_series_equal(blanked.primary["MSFT"], full.primary["MSFT"])
    assert "XOM" not in blanked.tables["params"].index.get_level_values("ticker")


def test_close_only_data_names_the_missing_field(recent):
    close_only = MarketData.from_close(recent.adj_close, source="bundled")
    with pytest.raises(DataError, match="high/low"):
        RealizedVolatilityModel().run(close_only)
    # high/low present but no open: Parkinson works, Garman-Klass names 'open'
    no_open = replace(recent, open=recent.open * np.nan)
    assert RealizedVolatilityModel(estimator="parkinson").run(no_open).primary.notna().any().any()
    with pytest.raises(DataError, match="'open'"):
        RealizedVolatilityModel(estimator="garman_klass").run(no_open)
    # the close-only models run on it
    for cls in (SimpleVolatilityModel, VolatilityClusteringModel, VolatilityRegimeDetectionModel):
        assert cls().run(close_only).primary.notna().any().any()


def test_cross_parameter_rules():
    with pytest.raises(ParameterError, match="low_quantile"):
        SimpleVolatilityModel(low_quantile=0.5, high_quantile=0.5).fit(None)
    with pytest.raises(ParameterError, match="min_obs"):
        GARCHVolatilityModel(window=300, min_obs=500).fit(None)
    with pytest.raises(ParameterError, match="min_obs"):
        VolatilityForecastingModel(window=300, min_obs=400).fit(None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GARCHVolatilityModel(refit="yearly", min_obs=400, window=600),
        lambda: VolatilityForecastingModel(method="arima", refit="yearly"),
    ],
    ids=["garch", "arima"],
)
def test_a_lone_ticker_reports_each_refit(basket, make):
    """ARIMA at its largest settings ran minutes on one ticker behind a bar at '0 of 1';
    a lone ticker's refits now report, and tickers among several only as each ends."""
    one = basket.select(tickers=["KO"], start="2010-01-04", end="2014-12-31")
    calls = []

    def record(done, total):
        calls.append((done, total, step_unit()))

    with execution(progress=record):
        make().run(one)
    refits = len(calendar_refit_rows(one.dates, "yearly"))
    steps = [(k, refits, "refits") for k in range(refits + 1)]  # ends at n of n
    assert calls == [(0, 1, "tickers"), *steps]
    calls.clear()
    two = basket.select(tickers=["KO", "JNJ"], start="2010-01-04", end="2014-12-31")
    with execution(n_jobs=1, progress=record):
        make().run(two)
    assert calls == [(0, 2, "tickers"), (1, 2, "tickers"), (2, 2, "tickers")]
