"""Stress scenarios against hand computation on real prices (tests/conftest.py's basket)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.risk_stress import scenarios as sc

COVID = next(s for s in sc.HISTORICAL_SCENARIOS if s.key == "covid_2020")
DOTCOM = next(s for s in sc.HISTORICAL_SCENARIOS if s.key == "dotcom")
GFC = next(s for s in sc.HISTORICAL_SCENARIOS if s.key == "gfc_2008")
SECTORS = {
    "AAPL": "Information Technology",
    "MSFT": "Information Technology",
    "JPM": "Financials",
    "XOM": "Energy",
    "TSLA": "Consumer Discretionary",
}


def _window_returns(data, tickers, start, end):
    """Daily adjusted-close returns strictly after ``start`` up to ``end`` (computed here)."""
    r = data.adj_close[tickers].pct_change(fill_method=None)
    return r.loc[(r.index > pd.Timestamp(start)) & (r.index <= pd.Timestamp(end))]


# ------------------------------------------------------------------- historical replay
def test_covid_replay_of_two_stocks_is_the_compounded_return(basket):
    w = pd.Series({"AAPL": 0.6, "MSFT": 0.4})
    res = sc.replay_window(basket, w, COVID, portfolio_value=1_000_000, sectors=SECTORS)
    r = _window_returns(basket, ["AAPL", "MSFT"], "2020-02-19", "2020-03-23")
    assert len(r) == res.params["n_days"] == 23
    growth = (1 + r).prod()
    expected = growth - 1
    np.testing.assert_allclose(res.positions["return"], expected, rtol=1e-12)
    np.testing.assert_allclose(res.positions["pnl"], 1_000_000 * w * expected, rtol=1e-12)
    assert res.portfolio_return == pytest.approx(float((w * expected).sum()), rel=1e-12)
    assert res.pnl == pytest.approx(1_000_000 * res.portfolio_return, rel=1e-12)
    assert -0.45 < res.portfolio_return < -0.15  # a real crash, not a sign error
    # buy and hold path and its maximum drawdown, by hand
    path = 1 + ((1 + r).cumprod() - 1) @ w
    path = pd.concat([pd.Series([1.0]), path.reset_index(drop=True)])
    mdd = float((1 - path / path.cummax()).max())
    assert res.max_drawdown == pytest.approx(mdd, rel=1e-12)
    # one sector holds both names: its P&L is their sum
    it = res.by_sector.loc["Information Technology"]
    assert it["pnl"] == pytest.approx(res.positions["pnl"].sum(), rel=1e-12)
    assert it["n_positions"] == 2 and it["n_missing"] == 0
    assert res.params["base_date"] == "2020-02-19" and res.params["end_date"] == "2020-03-23"


def test_replay_from_a_returns_frame_matches_market_data(basket):
    w = pd.Series({"AAPL": 0.5, "JPM": 0.25, "XOM": 0.25})
    a = sc.replay_window(basket, w, GFC)
    b = sc.replay_window(basket.returns(), w, GFC)
    np.testing.assert_allclose(a.positions["return"], b.positions["return"], rtol=1e-10)
    assert a.max_drawdown == pytest.approx(b.max_drawdown, rel=1e-10)


def test_holiday_start_replays_from_the_previous_close(basket):
    res = sc.replay_window(basket, pd.Series({"JPM": 1.0}), GFC)  # 2008-09-01 is Labor Day
    assert res.params["base_date"] == "2008-08-29"
    p = basket.adj_close["JPM"]
    expected = p.loc["2009-03-09"] / p.loc["2008-08-29"] - 1
    assert res.portfolio_return == pytest.approx(expected, rel=1e-12)


def test_position_not_yet_listed_is_missing_not_zero(basket):
    w = pd.Series({"AAPL": 0.4, "MSFT": 0.4, "TSLA": 0.2})  # TSLA lists 2010-06-29
    res = sc.replay_window(basket, w, DOTCOM, portfolio_value=100.0, sectors=SECTORS)
    tsla = res.positions.loc["TSLA"]
    assert np.isnan(tsla["return"]) and np.isnan(tsla["pnl"])
    assert "not listed until 2010-06-29" in tsla["status"]
    assert res.missing == ["TSLA"]
    assert any("TSLA" in m for m in res.warnings)
    assert np.isnan(res.by_sector.loc["Consumer Discretionary", "pnl"])
    # the portfolio figure proxies TSLA's 20% by the covered 80%
    covered = res.positions.loc[["AAPL", "MSFT"], "return"]
    assert res.portfolio_return == pytest.approx(float(covered.mean()), rel=1e-12)
    assert res.covered_weight == pytest.approx(0.8)


def test_window_outside_the_data_names_scenario_and_range(basket):
    late = basket.select(start="2010-01-01")
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.5})
    with pytest.raises(
        DataError, match=r"Dot-com bust.*outside the data.*2010-01-04 to 2021-04-21"
    ):
        sc.replay_window(late, w, DOTCOM)
    results, skipped = sc.replay_all(late, w)
    assert set(skipped) == {"dotcom", "gfc_2008", "lehman_week"}
    assert [r.key for r in results] == ["aug_2011", "aug_2015", "q4_2018", "covid_2020"]
    with pytest.raises(DataError, match="outside the data"):
        sc.replay_all(late, w, skip_outside=False)
    # half of 2008-09-01..2009-03-09 in the data is not "outside" it: say which end lacks
    _, skipped = sc.replay_all(basket.select(end="2008-12-31"), w)
    assert skipped["gfc_2008"] == (
        "scenario '2008 financial crisis' (2008-09-01..2009-03-09) ends after the data (a "
        "replay needs the whole window), which covers 1999-11-01 to 2008-12-31"
    )
    _, skipped = sc.replay_all(basket.select(start="2008-10-01"), w)
    assert "(2008-09-01..2009-03-09) starts before the data" in skipped["gfc_2008"]


def test_an_episode_before_every_position_was_listed_is_skipped_not_fatal(sp500_dir):
    """CARR and OTIS were listed in March 2020, after every episode's first close: the
    catalogue skips each episode (the dot-com bust is before the data) and says which
    position was not listed yet, instead of failing on the first; the 2008 replay alone
    raises NotCovered (a DataError) naming them."""
    from mltrainer.data.local import load_local

    # AAPL gives the panel its dates since 2006; the book holds only the two late listings
    late = load_local(sp500_dir, tickers=["AAPL", "CARR", "OTIS"], start="2006-01-01")
    w = pd.Series({"CARR": 0.5, "OTIS": 0.5})
    results, skipped = sc.replay_all(late, w)
    assert not results and set(skipped) == {s.key for s in sc.HISTORICAL_SCENARIOS}
    assert "outside the data" in skipped["dotcom"]
    assert skipped["covid_2020"] == (
        "scenario 'Feb-Mar 2020 (COVID-19)': no position has the data it needs "
        "(CARR not listed until 2020-03-19; OTIS not listed until 2020-03-19)"
    )
    with pytest.raises(DataError, match="2008 financial crisis.*CARR not listed"):
        sc.replay_window(late, w, sc.HISTORICAL_SCENARIOS[1])
    # a zero weight on the one listed ticker covers nothing (it gave NaN figures)
    with_zero = pd.Series({"AAPL": 0.0, "CARR": 0.5, "OTIS": 0.5})
    assert sc.replay_all(late, with_zero) == ([], skipped)


# ---------------------------------------------------------------------------- weights
@pytest.mark.parametrize(
    "weights, message",
    [
        ({"AAPL": 0.5, "MSFT": 0.6}, "weights sum to 1.1"),
        ({"AAPL": 0.5, "ZZZZ": 0.5}, "unknown ticker.*ZZZZ"),
        ({"AAPL": 0.5, "MSFT": np.nan}, "NaN weight for MSFT"),
        ({"AAPL": "half", "MSFT": 0.5}, "non-numeric weight for AAPL"),
        ({}, "no positions"),
    ],
)
def test_bad_weights_say_what_is_wrong(basket, weights, message):
    with pytest.raises(DataError, match=message):
        sc.replay_window(basket, pd.Series(weights, dtype="object"), COVID)


def test_weight_checks_accept_leverage_and_reject_duplicates(basket):
    w = sc.validate_weights(pd.Series({"aapl": 1.5, "MSFT": -0.5}), basket.tickers)
    assert list(w.index) == ["AAPL", "MSFT"]
    w = sc.validate_weights(pd.Series({"AAPL": 1.5}), basket.tickers, allow_leverage=True)
    assert w["AAPL"] == 1.5
    with pytest.raises(DataError, match="more than once"):
        sc.validate_weights(pd.Series([0.5, 0.5], index=["AAPL", "aapl"]), basket.tickers)


# ----------------------------------------------------------------------- market crash
def test_market_crash_is_weights_times_beta_times_shock(basket):
    tickers = ["AAPL", "JPM", "XOM", "KO"]
    w = pd.Series([0.4, 0.3, 0.2, 0.1], index=tickers)
    returns = basket.returns()
    market = returns.mean(axis=1)  # equal-weight proxy of the basket, built here
    res = sc.market_crash(basket, w, -0.25, market=market, window=252, portfolio_value=1e6)
    tail = returns.iloc[-252:]
    m = market.iloc[-252:].to_numpy()
    beta = pd.Series(
        {t: np.cov(tail[t].to_numpy(), m, ddof=1)[0, 1] / np.var(m, ddof=1) for t in tickers}
    )
    np.testing.assert_allclose(res.positions["beta"], beta, rtol=1e-9)
    np.testing.assert_allclose(res.positions["return"], -0.25 * beta, rtol=1e-9)
    assert res.portfolio_return == pytest.approx(float((w * beta).sum() * -0.25), rel=1e-9)
    assert res.pnl == pytest.approx(1e6 * res.portfolio_return, rel=1e-12)
    assert 0.3 < beta.min() and beta.max() < 2.0  # real large caps against their basket


def test_market_crash_default_proxy_and_its_limits(basket):
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.5})
    res = sc.market_crash(basket, w, -0.2)
    assert "equal-weight mean of 10 tickers" in res.params["market"]
    one = basket.select(tickers=["AAPL"])
    with pytest.raises(DataError, match="at least 2 tickers"):
        sc.market_crash(one, pd.Series({"AAPL": 1.0}), -0.2)
    with pytest.raises(ParameterError, match="shock"):
        sc.market_crash(basket, w, -3.0)


# ------------------------------------------------------------------ parametric shocks
def _hand_cov(basket, tickers, window=252):
    return basket.returns()[tickers].iloc[-window:].dropna().cov().to_numpy()


def test_volatility_spike_scales_the_parametric_var(basket):
    tickers = ["AAPL", "MSFT", "JNJ"]
    w = np.array([0.5, 0.3, 0.2])
    res = sc.volatility_spike(
        basket, pd.Series(w, index=tickers), 3.0, confidence=0.99, portfolio_value=1e6
    )
    cov = _hand_cov(basket, tickers)
    vol = np.sqrt(w @ cov @ w)
    var = norm.ppf(0.99) * vol
    assert res.params["base_var"] == pytest.approx(var, rel=1e-10)
    assert res.portfolio_return == pytest.approx(-3 * var, rel=1e-10)
    # Euler contributions: w_i (S w)_i / vol, summing to the stressed VaR
    contrib = 3 * norm.ppf(0.99) * w * (cov @ w) / vol
    np.testing.assert_allclose(-res.positions["pnl"], 1e6 * contrib, rtol=1e-10)
    assert res.positions["pnl"].sum() == pytest.approx(res.pnl, rel=1e-10)


def test_stressed_correlation_by_hand():
    c = np.array([[1.0, -0.5], [-0.5, 1.0]])
    np.testing.assert_allclose(sc.stressed_correlation(c, 0.5), [[1.0, 0.25], [0.25, 1.0]])
    np.testing.assert_allclose(sc.stressed_correlation(c, 1.0), np.ones((2, 2)))
    not_psd = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    with pytest.raises(DataError, match="positive semi-definite"):
        sc.stressed_correlation(not_psd, 0.1)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        sc.stressed_correlation(c, 1.5)


def test_correlation_breakdown_vol_formula_and_psd(basket):
    tickers = ["AAPL", "JPM", "XOM", "JNJ", "KO"]
    w = np.array([0.3, 0.2, 0.2, 0.15, 0.15])
    a = 0.6
    res = sc.correlation_breakdown(
        basket, pd.Series(w, index=tickers), a, confidence=0.99, portfolio_value=1.0
    )
    cov = _hand_cov(basket, tickers)
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    stressed = ((1 - a) * corr + a) * np.outer(sigma, sigma)
    vol = np.sqrt(w @ stressed @ w)
    # the closed form: (1 - a) w'Sw + a (sum w_i sigma_i)^2
    assert vol**2 == pytest.approx((1 - a) * w @ cov @ w + a * (w @ sigma) ** 2, rel=1e-12)
    assert res.params["stressed_vol_annual"] == pytest.approx(vol * np.sqrt(252), rel=1e-10)
    assert res.portfolio_return == pytest.approx(-norm.ppf(0.99) * vol, rel=1e-10)
    assert res.params["min_eigenvalue"] >= -1e-12
    assert np.linalg.eigvalsh((1 - a) * corr + a).min() >= -1e-12
    assert res.params["stressed_var"] > res.params["base_var"]  # real stocks: rho < 1
    assert res.params["mean_corr_after"] == pytest.approx(
        (1 - a) * res.params["mean_corr_before"] + a, rel=1e-12
    )


def test_correlation_breakdown_needs_two_assets(basket):
    with pytest.raises(DataError, match="at least two positions"):
        sc.correlation_breakdown(basket, pd.Series({"AAPL": 1.0}), 0.5)


def test_missing_history_in_the_covariance_window_is_reported(basket):
    early = basket.select(end="2010-09-30")  # TSLA has ~65 returns
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.3, "TSLA": 0.2})
    res = sc.volatility_spike(early, w, 2.0)
    assert np.isnan(res.positions.loc["TSLA", "return"])
    assert "returns in the last 252 days" in res.positions.loc["TSLA", "status"]
    assert res.covered_weight == pytest.approx(0.8)


# --------------------------------------------------------------------------- liquidity
def test_liquidity_haircut_formula_by_hand():
    haircut, days = sc.liquidity_haircut(
        1e6, 5e6, 0.02, participation=0.1, spread_bps=10, spread_multiplier=5, impact_coef=1.0
    )
    assert days == pytest.approx(2.0)  # 1e6 / (0.1 * 5e6)
    assert haircut == pytest.approx(10 * 5 / 2e4 + 0.02 * np.sqrt(0.1 * 2.0), rel=1e-12)
    small, _ = sc.liquidity_haircut(1e5, 5e6, 0.02)
    big, big_days = sc.liquidity_haircut(1e9, 5e6, 0.02)
    assert small < haircut < big and big_days == pytest.approx(2000.0)
    assert big == pytest.approx(0.0025 + 0.02 * np.sqrt(200.0), rel=1e-12)
    capped, _ = sc.liquidity_haircut(1e12, 5e6, 0.02)  # cannot lose more than the position
    assert capped == 1.0
    nan, nan_days = sc.liquidity_haircut(1e6, np.nan, 0.02)
    assert np.isnan(nan) and np.isnan(nan_days)
    with pytest.raises(ParameterError, match="participation"):
        sc.liquidity_haircut(1e6, 5e6, 0.02, participation=0.0)


def test_liquidity_crisis_on_real_volume(basket):
    w = pd.Series({"AAPL": 0.5, "KO": 0.5})
    value = 5e9  # large enough that the forced sale takes days
    res = sc.liquidity_crisis(basket, w, portfolio_value=value, spread_multiplier=4)
    adv = (basket.close[w.index] * basket.volume[w.index]).iloc[-20:].mean()
    sigma = basket.returns()[w.index].iloc[-60:].std()
    days = value * w / (0.1 * adv)
    haircut = 10 * 4 / 2e4 + sigma * np.sqrt(0.1 * days)
    np.testing.assert_allclose(res.positions["days_to_liquidate"], days, rtol=1e-12)
    np.testing.assert_allclose(res.positions["pnl"], -value * w * haircut, rtol=1e-12)
    assert (
        res.positions.loc["KO", "days_to_liquidate"]
        > res.positions.loc["AAPL", "days_to_liquidate"]
    )
    no_volume = MarketData.from_close(basket.adj_close, source="bundled")
    with pytest.raises(DataError, match="needs traded volume, which source .bundled."):
        sc.liquidity_crisis(no_volume, w)


def test_scenario_table_lists_every_result(basket):
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.5})
    results, _ = sc.replay_all(basket, w)
    results.append(sc.market_crash(basket, w, -0.1))
    table = sc.scenario_table(results)
    assert list(table.index) == [s.key for s in sc.HISTORICAL_SCENARIOS] + ["market_crash"]
    assert table.loc["market_crash", "kind"] == "hypothetical"
    assert table.loc["covid_2020", "window"] == "2020-02-19..2020-03-23"


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("call", "typo", "allowed"),
    [
        (sc.volatility_spike, "windw", "confidence, horizon, window, min_periods"),
        (sc.correlation_breakdown, "confidnce", "confidence, horizon, window, min_periods"),
        (sc.liquidity_crisis, "spread_multiplyer", "spread_bps, spread_multiplier"),
    ],
)
def test_a_mistyped_option_is_named_with_the_allowed_ones(basket, call, typo, allowed):
    with pytest.raises(TypeError, match=f"{call.__name__}.*{typo}.*{allowed}"):
        call(basket, {"AAPL": 0.5, "KO": 0.5}, **{typo: 1})


def test_settings_objects_hold_the_documented_defaults(basket):
    w = {"AAPL": 0.5, "KO": 0.5}
    assert (
        sc.volatility_spike(basket, w).params
        == sc.volatility_spike(
            basket, w, confidence=0.99, horizon=1, window=252, portfolio_value=1.0
        ).params
    )
    costs = sc.LiquidityCosts()
    assert (costs.participation, costs.spread_bps, costs.spread_multiplier) == (0.1, 10.0, 5.0)
    np.testing.assert_array_equal(
        sc.liquidity_haircut(1e6, 5e6, 0.02), costs.haircut(1e6, 5e6, 0.02)
    )


def test_positions_default_to_the_sectors_of_the_books_date(panel, shared_data_dir):
    """Without ``sectors``, a 2010 book's GOOGL took today's Communication Services."""
    from mltrainer.data.gics import with_sector_periods
    from mltrainer.data.membership import load_membership
    from mltrainer.risk_stress.historical import replay_all
    from mltrainer.risk_stress.liquidity import liquidity_crisis

    dated = with_sector_periods(panel, load_membership(shared_data_dir))
    data = dated.select(tickers=["GOOGL", "T", "XOM"], end="2010-12-31")
    weights = pd.Series(1 / 3, index=data.tickers)
    results, _ = replay_all(data, weights)
    results.append(liquidity_crisis(data, weights))
    for result in results:
        assert result.positions["sector"].to_dict() == {
            "GOOGL": "Information Technology",
            "T": "Telecommunication Services",
            "XOM": "Energy",
        }, result.name


def test_a_crash_cannot_take_a_price_below_zero(basket):
    """A 90% crash through 2021 betas: TSLA (beta 2.0) 'returned' -180% and a long-only,
    unlevered book of TSLA, AAPL and JPM lost more than its whole value. A price stops
    at 0: the position loses all of itself, and the scenario says which were capped."""
    w = pd.Series({"TSLA": 0.5, "AAPL": 0.25, "JPM": 0.25})
    data = basket.select(end="2021-04-20")
    market = data.returns().mean(axis=1)
    res = sc.market_crash(data, w, -0.9, market=market, portfolio_value=1e6)
    beta = res.positions["beta"]
    assert beta["TSLA"] * 0.9 > 1.0 and beta["JPM"] * 0.9 < 1.0  # the real betas
    ret = res.positions["return"]
    assert ret["TSLA"] == -1.0 and ret["JPM"] == pytest.approx(-0.9 * beta["JPM"], rel=1e-12)
    assert res.portfolio_return == pytest.approx(float((w * ret).sum()), rel=1e-12)
    assert res.portfolio_return >= -1.0
    capped = [t for t in w.index if beta[t] * 0.9 > 1.0]
    assert res.warnings == (
        f"Market crash -90%: {', '.join(capped)} beta times the shock is a fall beyond "
        "-100%; a price cannot go below 0, so the loss is capped at the position",
    )


def test_scenario_names_keep_the_decimals_of_their_shock(basket):
    """A 12.5% crash was named 'Market crash -12%' ('Market falls 12% in a day'), a push
    of 0.125 'Correlations +12% toward 1', and a 5% rally 'Market falls 5%'."""
    w = pd.Series({"AAPL": 0.5, "MSFT": 0.5})
    crash = sc.market_crash(basket, w, -0.125)
    assert crash.name == "Market crash -12.5%"
    assert crash.description.startswith("Market falls 12.5% in a day")
    rally = sc.market_crash(basket, w, 0.05)
    assert rally.name == "Market crash +5%" and rally.description.startswith("Market rises 5%")
    corr = sc.correlation_breakdown(basket, w, push=0.125)
    assert corr.name == "Correlations +12.5% toward 1"
    assert corr.description.startswith("Every correlation pushed 12.5% of the way to one")
    assert sc.market_crash(basket, w, -0.2).name == "Market crash -20%"


def test_a_replay_that_loses_more_than_the_book_has_a_100_percent_drawdown(basket):
    """1.5x AAPL against -0.3 MSFT and -0.2 XOM lost 100.4% through the dot-com bust: its
    path went below 0, its maximum drawdown was NaN and the report read 'max drawdown in
    the window .'. Losing everything is a 100% drawdown."""
    w = pd.Series({"AAPL": 1.5, "MSFT": -0.3, "XOM": -0.2})
    res = sc.replay_window(basket, w, DOTCOM)
    assert res.path.min() < 0 and res.portfolio_return < -1.0
    assert res.max_drawdown == 1.0
    positive = sc.replay_window(basket, pd.Series({"AAPL": 0.5, "XOM": 0.5}), DOTCOM)
    path = positive.path
    assert positive.max_drawdown == pytest.approx(float((1 - path / path.cummax()).max()))


def test_rolling_crash_losses_stop_at_the_whole_position(basket):
    """The rolling equal-weight crash loss used beta times the crash uncapped: in a 60%
    crash TSLA (beta about 2.4 on the basket in April 2021) lost 145% of its share."""
    from mltrainer.risk_stress.rolling import rolling_stress_losses

    data = basket.select(end="2021-04-20")
    losses, _ = rolling_stress_losses(
        data,
        crash_size=-0.6,
        vol_multiplier=3.0,
        correlation_push=0.5,
        spread_multiplier=5.0,
        portfolio_value=1e6,
        confidence=0.99,
        window=126,
    )
    r = data.returns().iloc[-126:]
    market = data.returns().mean(axis=1).loc[r.index]
    alive = [t for t in data.tickers if r[t].notna().all()]
    beta = np.array([np.cov(r[t], market)[0, 1] / market.var() for t in alive])
    assert (beta * 0.6 > 1).any()
    want = 1e6 * np.minimum(0.6 * beta, 1.0).mean()
    assert losses["crash_loss"].iloc[-1] == pytest.approx(want, rel=1e-9)
