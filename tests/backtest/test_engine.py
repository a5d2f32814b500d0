"""The backtest engine against a hand computation, a share-by-share ledger and vectorbt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.backtest.engine import run_backtest, signal_to_weights
from mltrainer.backtest.simulation import _simulate_loop, simulate
from mltrainer.errors import DataError

# Real AAPL and MSFT adjusted closes, 2020-03-02 .. 2020-03-06 (sp500_daily files),
# typed in so the hand computation below needs no data folder.
HAND_DATES = pd.DatetimeIndex(
    ["2020-03-02", "2020-03-03", "2020-03-04", "2020-03-05", "2020-03-06"]
)
HAND_PRICES = pd.DataFrame(
    {
        "AAPL": [74.128952, 71.774667, 75.103908, 72.667757, 71.702724],
        "MSFT": [171.051489, 162.854797, 168.834026, 164.597089, 159.944378],
    },
    index=HAND_DATES,
)
HAND_WEIGHTS = pd.DataFrame(
    {"AAPL": [0.5, 0.8, 0.3, 0.0, -0.4], "MSFT": [0.5, -0.2, 0.6, 0.0, 0.4]}, index=HAND_DATES
)


def ledger(prices: pd.DataFrame, weights: pd.DataFrame, fee: float, capital=1.0):
    """An independent twin: shares and cash, trading at each close to the target."""
    shares = np.zeros(prices.shape[1])
    cash = capital
    out = []
    for t in range(len(prices)):
        p = prices.iloc[t].to_numpy()
        value = cash + shares @ p
        target = weights.iloc[t].to_numpy() * value / p
        traded_value = np.abs(target - shares) @ p
        cash -= (target - shares) @ p + fee * traded_value
        shares = target
        out.append(cash + shares @ p)
    return np.array(out)


def test_hand_computation_two_tickers_five_days():
    res = run_backtest(
        HAND_WEIGHTS, HAND_PRICES, weighting="weights", commission_bps=10, slippage_bps=5
    )
    k = 0.0015
    # day 1: buy 0.5 + 0.5 of the capital, pay 15 bps of 1.0
    assert res.equity.iloc[0] == pytest.approx(1 - k, abs=1e-15)
    # day 2: positions drift with the real returns, cash is -k
    r_a = 71.774667 / 74.128952 - 1
    r_m = 162.854797 / 171.051489 - 1
    pre = 0.5 * (1 + r_a) + 0.5 * (1 + r_m) - k
    drift_a, drift_m = 0.5 * (1 + r_a) / pre, 0.5 * (1 + r_m) / pre
    traded = abs(0.8 - drift_a) + abs(-0.2 - drift_m)
    assert res.equity.iloc[1] == pytest.approx(pre * (1 - k * traded), abs=1e-15)
    assert res.trades.iloc[1].to_numpy() == pytest.approx([0.8 - drift_a, -0.2 - drift_m])
    assert res.turnover.iloc[1] == pytest.approx(traded)
    assert res.costs.iloc[1] == pytest.approx(k * traded)
    # day 4 goes flat, day 5 reopens: the whole path equals the share ledger
    np.testing.assert_allclose(
        res.equity.to_numpy(), ledger(HAND_PRICES, HAND_WEIGHTS, k), rtol=0, atol=1e-14
    )
    # net returns chain into the equity; gross returns ignore costs
    assert np.prod(1 + res.returns.to_numpy()) == pytest.approx(res.equity.iloc[-1], abs=1e-14)
    assert res.gross_returns.iloc[1] == pytest.approx(0.5 * r_a + 0.5 * r_m, abs=1e-15)
    assert res.metrics["total_costs"] == pytest.approx(
        float((res.costs * res.equity / (1 - res.costs)).sum()), rel=1e-12
    )


def test_weights_earn_the_next_bar_never_the_same_bar():
    # all in AAPL at the close of day 3 only
    w = pd.DataFrame(0.0, index=HAND_DATES, columns=HAND_PRICES.columns)
    w.iloc[2, 0] = 1.0
    res = run_backtest(w, HAND_PRICES, weighting="weights")
    r = HAND_PRICES["AAPL"].pct_change()
    assert res.returns.iloc[2] == 0.0  # the day the decision is made earns nothing
    assert res.returns.iloc[3] == pytest.approx(r.iloc[3], abs=1e-15)
    assert res.returns.iloc[4] == 0.0  # sold at the close of day 4


def test_signal_normalised_to_the_gross_limit_and_nan_is_no_position():
    sig = pd.DataFrame(
        {"AAPL": [1.0, np.nan, -0.5, 0.2, np.nan], "MSFT": [0.5, np.nan, 0.5, np.nan, np.nan]},
        index=HAND_DATES,
    )
    res = run_backtest(sig, HAND_PRICES, gross_limit=1.5)
    pos = res.positions
    assert pos.iloc[0].to_numpy() == pytest.approx([1.0, 0.5])  # 1.5 x (1, .5) / 1.5
    assert (pos.iloc[1] == 0).all() and (pos.iloc[4] == 0).all()  # NaN row: flat
    assert pos.iloc[2].to_numpy() == pytest.approx([-0.75, 0.75])
    assert pos.iloc[3].to_numpy() == pytest.approx([1.5, 0.0])  # NaN cell: weight 0


def test_a_book_long_beyond_its_equity_says_the_borrowing_is_free():
    """1.5x long on 2020-03-05 (a 150 % book) borrows half its equity: with no cash rate
    that costs nothing, which the run must say; with a rate it is charged, and a
    long/short book of 1.5 gross and 0 net borrows nothing."""
    sig = pd.DataFrame({"AAPL": [1.0, 1.0, 1.0, 1.0, 1.0], "MSFT": 0.5}, index=HAND_DATES)
    note = "the book holds up to 150% of its equity long net"
    res = run_backtest(sig, HAND_PRICES, gross_limit=1.5)
    assert any(w.startswith(note) and "financed at 0%" in w for w in res.warnings)
    res = run_backtest(sig, HAND_PRICES, gross_limit=1.5, cash_rate=2.0)
    assert not any(w.startswith(note) for w in res.warnings)
    hedged = pd.DataFrame({"AAPL": 1.0, "MSFT": -1.0}, index=HAND_DATES)
    res = run_backtest(hedged, HAND_PRICES, gross_limit=1.5)
    assert not any("long net" in w for w in res.warnings)


def test_a_backtest_that_never_holds_anything_says_so(basket):
    """An all-NaN or all-zero signal (a dual momentum on one ticker has no relative part)
    is a backtest of cash: its 0% figures carry a warning; one position lifts it."""
    cash = "took no position on any date"
    for fill in (np.nan, 0.0):
        res = run_backtest(HAND_WEIGHTS * fill, HAND_PRICES, weighting="weights")
        assert res.metrics["total_return"] == 0.0
        assert any(cash in w for w in res.warnings)
        assert any("covers 5 trading days, under a year" in w for w in res.warnings)
    one = run_backtest(HAND_WEIGHTS, HAND_PRICES, weighting="weights", start="2020-03-06")
    assert any("covers 1 trading day, under a year" in w for w in one.warnings)
    assert any("Sortino, Calmar, alpha, information ratio" in w for w in one.warnings)
    once = HAND_WEIGHTS * 0.0
    once.iloc[3, 0] = 0.1
    assert not any(cash in w for w in run_backtest(once, HAND_PRICES, weighting="weights").warnings)
    year = basket.select(start="2019-01-01", end="2019-12-31")  # 252 trading days
    held = pd.DataFrame(1.0, index=year.dates, columns=year.tickers)
    assert len(year.dates) == 252 and not run_backtest(held, year).warnings


def test_weights_above_limits_are_scaled_or_refused():
    w = HAND_WEIGHTS * 2  # gross 2.0 on day 1
    res = run_backtest(w, HAND_PRICES, weighting="weights", gross_limit=1.0)
    assert res.positions.abs().sum(axis=1).max() <= 1.0 + 1e-12
    assert res.positions.iloc[0].to_numpy() == pytest.approx([0.5, 0.5])
    assert any("scaled down" in m for m in res.warnings)
    with pytest.raises(DataError, match="gross exposure above the limit 1"):
        run_backtest(w, HAND_PRICES, weighting="weights", gross_limit=1.0, strict=True)
    res = run_backtest(HAND_WEIGHTS, HAND_PRICES, weighting="weights", max_weight=0.5)
    assert res.positions.iloc[1].to_numpy() == pytest.approx([0.5, -0.2])
    assert any("max_weight" in m for m in res.warnings)
    with pytest.raises(DataError, match="AAPL on 2020-03-03"):
        run_backtest(HAND_WEIGHTS, HAND_PRICES, weighting="weights", max_weight=0.5, strict=True)
    w2, notes = signal_to_weights(HAND_WEIGHTS, max_weight=0.55)
    assert w2.abs().max().max() <= 0.55 and notes


def test_misaligned_signal_and_empty_range_raise():
    bad = HAND_WEIGHTS.assign(NOPE=0.1)
    with pytest.raises(DataError, match="NOPE"):
        run_backtest(bad, HAND_PRICES)
    off = HAND_WEIGHTS.copy()
    off.index = off.index.where(off.index != "2020-03-04", pd.Timestamp("2020-03-07"))
    with pytest.raises(DataError, match="2020-03-07"):
        run_backtest(off.sort_index(), HAND_PRICES)
    # no end asked for: the message names none (it gave the signal's last day as "the end")
    with pytest.raises(DataError, match="no trading dates to backtest from 2021-01-01 on: the sig"):
        run_backtest(HAND_WEIGHTS, HAND_PRICES, start="2021-01-01")
    with pytest.raises(DataError, match="the signal covers no dates"):
        run_backtest(HAND_WEIGHTS.iloc[:0], HAND_PRICES)


def test_cash_rate_accrues_on_cash_only():
    flat = pd.DataFrame(0.0, index=HAND_DATES, columns=HAND_PRICES.columns)
    res = run_backtest(flat, HAND_PRICES, cash_rate=5.0)
    assert res.equity.iloc[-1] == pytest.approx((1 + 0.05 / 252) ** 4, abs=1e-15)
    rate = pd.Series([5.0, 2.0], index=pd.DatetimeIndex(["2019-12-31", "2020-03-04"]))
    half = pd.DataFrame(0.5, index=HAND_DATES, columns=["AAPL"])
    res = run_backtest(half, HAND_PRICES, weighting="weights", cash_rate=rate)
    # day 2: half in AAPL, half in cash at 5 %; day 4 onwards the rate is 2 %
    r_a = 71.774667 / 74.128952 - 1
    assert res.returns.iloc[1] == pytest.approx(0.5 * r_a + 0.5 * 0.05 / 252, abs=1e-15)
    assert res.gross_returns.iloc[3] == pytest.approx(
        0.5 * (72.667757 / 75.103908 - 1) + (1 - res.positions["AAPL"].iloc[2]) * 0.02 / 252,
        abs=1e-15,
    )
    with pytest.raises(DataError, match="cash rate"):
        run_backtest(half, HAND_PRICES, cash_rate=rate.loc["2020-03-04":])


def test_membership_zeroes_non_members():
    members = pd.DataFrame(
        {"AAPL": [True, True], "MSFT": [True, False]},
        index=pd.DatetimeIndex(["2020-01-02", "2020-03-04"]),
    )
    sig = pd.DataFrame(1.0, index=HAND_DATES, columns=HAND_PRICES.columns)
    res = run_backtest(sig, HAND_PRICES, members=members)
    assert res.positions["MSFT"].iloc[:2].to_numpy() == pytest.approx([0.5, 0.5])
    assert (res.positions["MSFT"].iloc[2:] == 0).all()
    assert (res.positions["AAPL"].iloc[2:] == 1).all()


@pytest.mark.parametrize("every", [1, 5])
@pytest.mark.parametrize("per_ticker_costs", [False, True])
def test_vectorised_solution_equals_the_daily_recursion(basket, every, per_ticker_costs):
    """The fixed-point solver vs the plain loop, with gaps, delistings and sparse rebalances."""
    data = basket.select(start="2009-01-01", end="2012-12-31")
    px = data.adj_close.copy()
    px.iloc[100:110, 1] = np.nan  # a gap in a held position: it must be carried
    close = px.to_numpy()
    n_t, n = close.shape
    from mltrainer.backtest.simulation import _growth_and_returns

    growth, rets = _growth_and_returns(close, np.isfinite(close))
    mom = (px / px.shift(60) - 1).to_numpy()
    traded = np.isfinite(close) & (np.arange(n_t) % every == 0)[:, None]
    weights = np.where(traded & np.isfinite(mom), np.sign(mom) / n * 1.8, 0.0)
    cost = np.linspace(5, 30, n) / 1e4 if per_ticker_costs else np.full(n, 12e-4)
    cash = np.full(n_t, 0.03 / 252)
    ref = _simulate_loop(weights.copy(), rets, traded, cost, cash)
    fast = simulate(weights.copy(), rets, traded, growth, cost, cash)
    np.testing.assert_allclose(np.cumprod(fast["g"]), np.cumprod(ref["g"]), rtol=1e-13)
    np.testing.assert_allclose(fast["cost"], ref["cost"], rtol=0, atol=5e-15)
    np.testing.assert_allclose(fast["positions"], ref["positions"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fast["trades"], ref["trades"], rtol=0, atol=1e-13)
    assert np.abs(fast["positions"][105, 1]) > 0  # the gap carried a real position


def test_a_position_held_for_eighteen_years_solves_exactly_and_quietly(basket):
    """AAPL bought in 2003 and held to 2021 (586x): the solver's sweeps passed through
    1e98 and overflowed on the way, and numpy's warning reached the CLI's stderr (the
    walk-forward's equal-weight baseline of one ticker). The solution is the daily
    recursion's, with no warning."""
    import warnings

    from mltrainer.backtest.simulation import _growth_and_returns

    close = basket.adj_close.loc["2003-01-02":, ["AAPL"]].to_numpy()
    growth, rets = _growth_and_returns(close, np.isfinite(close))
    traded = np.zeros(close.shape, dtype=bool)
    traded[0] = True
    weights = traded.astype(float)
    cost, cash = np.full(1, 5e-4), np.zeros(len(close))
    ref = _simulate_loop(weights.copy(), rets, traded, cost, cash)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = simulate(weights.copy(), rets, traded, growth, cost, cash)
    np.testing.assert_allclose(np.cumprod(fast["g"]), np.cumprod(ref["g"]), rtol=1e-12)
    # all of the book in AAPL from the first close, the 5 bps paid from cash
    assert np.prod(ref["g"]) == pytest.approx(close[-1, 0] / close[0, 0] - 5e-4, rel=1e-12)


def test_prices_after_t_change_nothing_up_to_t(basket):
    data = basket.select(start="2012-01-01", end="2014-12-31")
    cut = pd.Timestamp("2013-06-28")
    sig = np.sign(data.adj_close / data.adj_close.shift(20) - 1)
    base = run_backtest(sig, data, commission_bps=5, spread_bps=3)
    shocked_px = data.adj_close.copy()
    shocked_px.loc[shocked_px.index > cut] *= np.linspace(0.5, 2.0, shocked_px.shape[1])
    shocked_sig = np.sign(shocked_px / shocked_px.shift(20) - 1)
    other = run_backtest(shocked_sig, shocked_px, commission_bps=5, spread_bps=3)
    for a, b in [
        (base.equity, other.equity),
        (base.positions, other.positions),
        (base.trades, other.trades),
        (base.costs, other.costs),
    ]:
        pd.testing.assert_frame_equal(
            a.loc[:cut].to_frame() if a.ndim == 1 else a.loc[:cut],
            b.loc[:cut].to_frame() if b.ndim == 1 else b.loc[:cut],
        )
    assert not base.equity.loc[cut:].equals(other.equity.loc[cut:])


def test_a_sizing_model_sets_the_magnitudes(basket):
    from mltrainer.models.registry import MODELS

    data = basket.select(tickers=["AAPL", "KO", "XOM", "JPM"], start="2014-01-01", end="2016-12-31")
    signal = np.sign(data.adj_close / data.adj_close.shift(60) - 1)
    sizer = MODELS["sizing/VolatilityTargetingModel"]()
    sizes = sizer.run(data).primary
    res = run_backtest(signal, data, sizing=sizer)
    want = (signal * sizes.abs()).fillna(0.0)
    assert want.abs().sum(axis=1).max() <= 1.0  # within the gross limit: no rescaling
    pd.testing.assert_frame_equal(res.positions, want, check_names=False, atol=1e-15)
    assert (res.positions.abs().sum(axis=1) > 0.1).mean() > 0.8  # sizes are not all zero
    halves = run_backtest(signal, data, sizing=lambda s, d: s * 0.1)
    assert halves.positions.iloc[-1].abs().to_numpy() == pytest.approx([0.1] * 4)


@pytest.mark.parametrize("every", [1, 5])
def test_rescaled_rows_solve_like_a_fresh_simulation(basket, every):
    """Recursion.rescale updates only the rescaled rows (the gross-limit correction's
    re-run): the answer must equal a simulation from scratch of the rescaled targets,
    including a row scaled to zero, whose held positions then carry nothing."""
    from mltrainer.backtest.simulation import Recursion, _growth_and_returns, plan_simulation

    px = basket.select(start="2009-01-01", end="2011-12-31").adj_close.copy()
    px.iloc[100:140, :3] = np.nan  # gaps: held positions carried through them
    close = px.to_numpy()
    n_t, n = close.shape
    growth, rets = _growth_and_returns(close, np.isfinite(close))
    traded = np.isfinite(close) & (np.arange(n_t) % every == 0)[:, None]
    mom = (px / px.shift(40) - 1).to_numpy()
    weights = np.where(traded & np.isfinite(mom), np.sign(mom) / n * 1.5, 0.0)
    cost = np.linspace(5, 30, n) / 1e4
    cash = np.full(n_t, 0.02 / 252)
    plan = plan_simulation(traded, growth, rets)
    # the second row anchors the positions carried through the gaps: scaled to zero
    rows = np.array([95, 99, 250]) if every == 1 else np.array([90, 95, 250])
    factor = np.array([0.5, 0.0, 0.8])
    scaled = weights.copy()
    scaled[rows] *= factor[:, None]

    recursion = Recursion(weights.copy(), rets, traded, cost, cash, plan)
    recursion.solve()
    assert list(recursion.held_columns(110)) == [0, 1, 2]
    recursion.rescale(rows, factor)
    recursion.solve(recursion.g)
    assert len(recursion.held_columns(110)) == 0
    got = recursion.result()
    ref = simulate(scaled.copy(), rets, traded, growth, cost, cash)
    loop = _simulate_loop(scaled, rets, traded, cost, cash)
    for key in ("g", "cost", "positions", "trades", "port", "invested", "turnover"):
        # a warm and a cold start meet within the solver's tolerance, not to the last bit
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=1e-14, err_msg=key)
    np.testing.assert_allclose(got["positions"], loop["positions"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["cost"], loop["cost"], rtol=0, atol=5e-15)


def test_the_steps_compose_to_run_backtest(basket):
    from mltrainer.backtest.engine import (
        BacktestSettings,
        load_panel,
        prepare_weights,
        solve,
        summarise,
    )
    from mltrainer.errors import ParameterError

    data = basket.select(start="2015-01-01", end="2016-12-31")
    sig = np.sign(data.adj_close / data.adj_close.shift(20) - 1)
    kwargs = {
        "commission_bps": 5.0,
        "spread_bps": 2.0,
        "gross_limit": 1.5,
        "rebalance_every": 5,
        "cash_rate": 1.0,
        "start": "2015-03-02",
    }
    settings = BacktestSettings(**kwargs)
    panel = load_panel(sig, data, settings)
    targets, tradable, universe = prepare_weights(panel, settings)
    res = summarise(panel, settings, solve(panel, settings, targets, tradable), universe)
    ref = run_backtest(sig, data, **kwargs)
    pd.testing.assert_series_equal(res.equity, ref.equity)
    pd.testing.assert_frame_equal(res.positions, ref.positions)
    assert res.settings == ref.settings and res.metrics == ref.metrics
    with pytest.raises(ParameterError, match="rebalance_every"):
        BacktestSettings(rebalance_every=0).validate()
    with pytest.raises(ParameterError, match="weighting"):
        BacktestSettings(weighting="rank").validate()


def test_a_first_position_a_month_into_the_range_is_named(basket):
    """Dual momentum's 252-day window on data from 1999-11-01 gives no signal before
    November 2000: a 2000 backtest is ten months of cash, which its CAGR alone hides."""
    year = basket.select(start="2019-01-01", end="2019-12-31")
    late = pd.DataFrame(1.0, index=year.dates, columns=year.tickers)
    late.iloc[:30] = np.nan  # no view for the first 30 days
    res = run_backtest(late, year)
    first = year.dates[30].date()
    assert [w for w in res.warnings if "first position" in w] == [
        f"the model took its first position on {first}, 30 trading days into the range: "
        "the figures count those days as cash"
    ]
    late.iloc[20] = 1.0  # a position on day 20: within the first month
    assert not any("first position" in w for w in run_backtest(late, year).warnings)


@pytest.mark.parametrize(
    "bad, shown", [(0.0, "0"), (-5.0, "-5"), (np.inf, "inf"), (1e308, r"1e\+308")]
)
def test_a_corrupt_price_is_refused_not_compounded(basket, bad, shown):
    """One real AAPL close edited to 0, -5, inf or 1e308: the equity curve went NaN (0: a
    -100% day, then an infinite one), 1e306 (1e308) or the position silently lost its
    price; a DataError now names the cell."""
    from dataclasses import replace

    data = basket.select(tickers=["AAPL", "MSFT"], start="2012-01-01", end="2012-12-31")
    close = data.adj_close.copy()
    close.loc["2012-03-15", "AAPL"] = bad
    signal = pd.DataFrame(1.0, index=data.dates, columns=data.tickers)
    for prices in (replace(data, adj_close=close), close):
        with pytest.raises(DataError, match=f"close of AAPL on 2012-03-15 is {shown}; prices"):
            run_backtest(signal, prices)


def test_an_infinite_or_text_signal_is_refused(basket):
    """An inf signal for AAPL (the strongest long) was traded as no position while MSFT
    took the whole book; a text signal raised numpy's ValueError."""
    data = basket.select(tickers=["AAPL", "MSFT"], start="2012-01-01", end="2012-12-31")
    signal = pd.DataFrame(0.5, index=data.dates, columns=data.tickers)
    signal.loc["2012-03-15", "AAPL"] = np.inf
    for weighting in ("normalize", "weights"):
        with pytest.raises(DataError, match="holds inf for AAPL on 2012-03-15 .*must be finite"):
            run_backtest(signal, data, weighting=weighting)
    with pytest.raises(DataError, match="must hold numbers"):
        run_backtest(signal.astype(object).where(signal < 1, "long"), data)
