"""Alert rules against the measures they restate, hand-computed vectors and the real
S&P 500 index (whose crashes must trip the limits on the right days)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer import fmt
from mltrainer.data.bundled import load_index
from mltrainer.errors import ParameterError
from mltrainer.measures.backtest_var import var_exceptions
from mltrainer.measures.portfolio import drawdown_series, equity_curve
from mltrainer.measures.var import rolling_var_es
from mltrainer.monitor import (
    RULES,
    Limits,
    drawdown_rule,
    evaluate,
    onsets,
    regime_change_rule,
    rule_frames,
    stale_data_rule,
    var_breach_rule,
    volatility_spike_rule,
)


@pytest.fixture(scope="module")
def spx() -> pd.Series:
    """Daily returns of the real S&P 500 index, 2004-2012 (bundled with skfolio/arch)."""
    close = load_index("SP500").adj_close["SP500"].loc["2004":"2012"]
    return close.pct_change(fill_method=None).iloc[1:]


def test_var_breach_is_the_var_backtest_exception(spx):
    frame = var_breach_rule(spx, 0.99, 250, "historical")
    var = rolling_var_es(spx, 250, 0.99, "historical")["var"]
    want = var_exceptions(spx, var) == 1.0
    assert frame["breached"].tolist() == want.tolist()
    day = pd.Timestamp("2008-10-15")  # -9.0 %: far beyond the 99 % VaR of the day before
    prev = spx.index[spx.index.get_loc(day) - 1]
    assert frame.loc[day, "value"] == pytest.approx(-spx.loc[day])
    assert frame.loc[day, "threshold"] == pytest.approx(var.loc[prev])
    assert frame.loc[day, "breached"]


def test_a_day_without_a_var_forecast_is_said_not_read_as_calm():
    """Cornish-Fisher at 90 % on 1,000 days holding 2020 is outside its domain: it gave a
    90 % VaR of 0.03 % (a gain quantile) and an alert on a 0.68 % loss. There is no
    forecast now, no alert on those days, and the status says why."""
    close = load_index("SP500").adj_close["SP500"].loc["2004":"2021-04-21"]
    r = close.pct_change(fill_method=None).iloc[1:]
    limits = Limits(var_method="cornish_fisher", var_level=0.9, var_window=1000)
    frame = var_breach_rule(r, limits.var_level, limits.var_window, limits.var_method)
    assert np.isnan(frame["threshold"].iloc[-1]) and not frame["breached"].iloc[-5:].any()
    alerts, _ = evaluate(r, limits)
    var = next(a for a in alerts if a.rule == "var_breach")
    assert not var.active
    assert var.message.startswith(
        "no VaR forecast for 2021-04-21: the Cornish-Fisher expansion is no quantile function"
    )
    assert "5 days of the last 5 had none" in var.message
    # a method that forecasts every day keeps its usual message
    alerts, _ = evaluate(r, Limits(var_level=0.9, var_window=1000))
    assert not next(a for a in alerts if a.rule == "var_breach").message.startswith("no VaR")


def test_drawdown_rule_restates_drawdown_series(spx):
    frame = drawdown_rule(spx, 0.20)
    want = -drawdown_series(equity_curve(spx))
    np.testing.assert_allclose(frame["value"].to_numpy(), want.to_numpy(), atol=1e-12)
    first = onsets(frame).index[0]
    assert first.year == 2008  # the index first fell 20 % below its 2007 peak in 2008
    assert not frame.loc[:"2007-12-31", "breached"].any()


def test_volatility_spike_by_hand():
    r = pd.Series(
        [0.01, -0.01, 0.01, -0.01, 0.05, -0.05], index=pd.bdate_range("2021-03-01", periods=6)
    )
    frame = volatility_spike_rule(r, short=2, long=4, ratio=2.0)
    short = np.std([0.05, -0.05], ddof=1)
    long = np.std([0.01, -0.01, 0.05, -0.05], ddof=1)
    assert frame["value"].iloc[-1] == pytest.approx(short / long)
    assert frame["breached"].iloc[-1] == (short / long > 2.0)
    assert frame["value"].iloc[:3].isna().all() and not frame["breached"].iloc[:3].any()


def test_regime_change_skips_warm_up_and_flags_each_switch():
    labels = pd.Series(
        [np.nan, np.nan, 0, 0, 2, 2, 1], index=pd.bdate_range("2021-03-01", periods=7)
    )
    frame = regime_change_rule(labels)
    assert frame["breached"].tolist() == [False, False, False, False, True, False, True]
    assert frame["threshold"].iloc[4] == 0 and frame["value"].iloc[4] == 2


def test_stale_data_counts_business_days():
    dates = pd.to_datetime(["2021-04-15", "2021-04-16", "2021-04-19", "2021-04-26"])
    frame = stale_data_rule(dates, "2021-05-03", stale_days=3)
    # Fri -> Mon is one business day; Mon 19 -> Mon 26 five; Mon 26 -> Mon 3 five
    assert frame["value"].tolist() == [0, 1, 1, 5, 5]
    assert frame["breached"].tolist() == [False, False, False, True, True]
    assert frame.index[-1] == pd.Timestamp("2021-05-03")


def test_staleness_counts_from_the_data_s_last_bar_not_the_range_s():
    """A range to 2021-04-19 of data that runs to 2021-04-26: on 2021-05-03 the data is
    five business days old, not ten (the Home page and the Monitor said "last bar is
    4,549 business days old" for a 2009 range of data that ends in 2022)."""
    dates = pd.to_datetime(["2021-04-15", "2021-04-16", "2021-04-19"])
    frame = stale_data_rule(dates, "2021-05-03", stale_days=3, last_bar="2021-04-26")
    assert frame["value"].tolist() == [0, 1, 1, 5]
    assert stale_data_rule(dates, "2021-05-03", 3)["value"].iloc[-1] == 10  # the range's
    fresh = stale_data_rule(dates, "2021-04-27", stale_days=3, last_bar="2021-04-26")
    assert fresh["value"].iloc[-1] == 1 and not fresh["breached"].iloc[-1]
    same_day = stale_data_rule(dates, "2021-04-26", stale_days=3, last_bar="2021-04-26")
    assert same_day["value"].iloc[-1] == 0


def test_business_days_since_the_last_bar_is_one_count_for_every_page():
    """Home counted with pd.bdate_range and the Monitor with np.busday_count: at a weekend
    they differed by one on the same page (1,027 and 1,028). One function now."""
    from mltrainer.monitor import business_days_since

    friday = "2021-04-16"
    days = {d: business_days_since(friday, d) for d in pd.date_range("2021-04-15", periods=6)}
    assert list(days.values()) == [0, 0, 1, 1, 1, 2]  # Thu, Fri, Sat, Sun, Mon, Tue
    assert stale_data_rule(pd.to_datetime([friday]), "2021-04-17")["value"].iloc[-1] == 1


def test_onsets_are_the_first_day_of_each_breach():
    idx = pd.bdate_range("2021-03-01", periods=6)
    frame = pd.DataFrame(
        {"value": range(6), "threshold": 0.0, "breached": [False, True, True, False, True, True]},
        index=idx,
    )
    assert list(onsets(frame).index) == [idx[1], idx[4]]


def test_rules_are_causal(spx):
    cut = pd.Timestamp("2009-03-09")
    labels = pd.Series((spx.rolling(20).std() > 0.02).astype(float), index=spx.index)
    full = rule_frames(spx, Limits(), labels)
    part = rule_frames(spx.loc[:cut], Limits(), labels.loc[:cut])
    for rule, frame in part.items():
        pd.testing.assert_frame_equal(frame, full[rule].loc[:cut], check_freq=False)


def test_evaluate_on_the_lehman_crash(spx):
    returns = spx.loc[:"2008-10-15"]
    labels = pd.Series(np.where(returns.rolling(20).std() > 0.02, 1.0, 0.0), returns.index)
    alerts, history = evaluate(
        returns,
        Limits(max_drawdown=0.25),
        labels=labels,
        regime_names={0: "calm", 1: "stressed"},
        dates=returns.index,
        today="2008-10-16",
    )
    status = {a.rule: a for a in alerts}
    assert [a.rule for a in alerts] == list(RULES)
    assert status["var_breach"].active and status["var_breach"].severity == "high"
    assert status["var_breach"].date == pd.Timestamp("2008-10-15")
    assert status["drawdown"].active and status["drawdown"].value > 0.25
    assert status["volatility_spike"].active
    assert not status["stale_data"].active  # one business day old
    assert "exceeded the VaR forecast" in status["var_breach"].message
    assert history["date"].is_monotonic_decreasing
    assert set(history["rule"]) >= {"var_breach", "drawdown", "volatility_spike"}
    assert (history.loc[history["rule"] == "drawdown", "date"] >= "2008-01-01").all()


def test_evaluate_is_quiet_in_a_calm_year(spx):
    returns = spx.loc[:"2006-12-29"]
    alerts, _ = evaluate(returns, Limits(), dates=returns.index, today="2006-12-29")
    assert not any(a.active for a in alerts)
    assert {a.rule for a in alerts} == {"var_breach", "drawdown", "volatility_spike", "stale_data"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"var_level": 1.2}, "VaR level"),
        ({"var_window": 10}, "VaR window"),
        ({"var_method": "magic"}, "VaR method"),
        ({"max_drawdown": 0}, "drawdown limit"),
        ({"vol_short": 300}, "short volatility"),
        ({"vol_ratio": 0.9}, "ratio"),
        ({"stale_days": 0}, "stale"),
        ({"recent_days": 0}, "recent"),
        ({"regime_confirm": 0}, "confirmed"),
    ],
)
def test_limits_say_what_is_allowed(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Limits(**kwargs).check()


def test_regime_change_waits_for_confirmation():
    labels = pd.Series(
        [0, 0, 0, 2, 0, 2, 2, 2, 1, 1], index=pd.bdate_range("2021-03-01", periods=10), dtype=float
    )
    frame = regime_change_rule(labels, confirm=3)
    # 0 is confirmed on day 3 (the first regime: no alert); the one-day blip to 2 is
    # ignored; 2 is confirmed on its third day in a row
    assert np.isnan(frame["value"].iloc[1]) and frame["value"].iloc[2] == 0.0
    assert list(frame.index[frame["breached"]]) == [labels.index[7]]
    assert frame.loc[labels.index[7], ["threshold", "value"]].tolist() == [0.0, 2.0]
    assert frame["value"].iloc[-1] == 2.0  # 1 has held only two days
    with pytest.raises(ParameterError):
        regime_change_rule(labels, confirm=0)


def test_a_day_that_gained_is_not_called_a_negative_loss(spx):
    """The VaR card read "latest loss -0.72% within VaR 2.78%" after a day that gained
    0.72%: it says a gain, and a loss stays a loss."""
    calm = spx.loc[:"2006-12-29"]
    up = calm[calm > 0].index[-1]
    down = calm[(calm < 0) & (calm > -0.005)].index[-1]
    for day in (up, down):
        returns = calm.loc[:day]
        alerts, _ = evaluate(returns, Limits(), dates=returns.index, today=day)
        card = {a.rule: a for a in alerts}["var_breach"]
        move = fmt.percent(abs(float(returns.iloc[-1])), 2)
        assert not card.active and "-" not in card.message.split("VaR")[0]
        assert card.message.startswith(
            f"latest day a gain of {move}, VaR " if day == up else f"latest loss {move} within"
        )


def test_a_drawdown_names_the_peak_it_is_measured_from():
    """'14.0% below the peak' did not say which peak: with all the book's history before
    a range, it can be years before it. Each day carries its peak's date (NaT while the
    peak is the starting value) and the card names it."""
    days = pd.bdate_range("2021-03-01", periods=5)
    r = pd.Series([0.1, -0.2, 0.05, 0.3, -0.05], index=days)
    frame = drawdown_rule(r, 0.15)
    np.testing.assert_allclose(frame["value"], [0.0, 0.2, 1 - 0.924 / 1.1, 0.0, 0.05], atol=1e-12)
    assert list(frame["peak"]) == [days[0], days[0], days[0], days[3], days[3]]
    first_loss = drawdown_rule(pd.Series([-0.1, 0.05], index=days[:2]))
    assert first_loss["peak"].isna().all()

    def card(returns, limit):
        alerts, history = evaluate(returns, Limits(max_drawdown=limit))
        return {a.rule: a for a in alerts}["drawdown"].message, history

    message, history = card(r.iloc[:3], 0.15)
    assert message == "16.0% below its peak of 2021-03-01 on 2021-03-03, beyond the 15% limit"
    assert history.loc[history["rule"] == "drawdown", "message"].tolist() == [
        "20.0% below its peak of 2021-03-01 on 2021-03-02, beyond the 15% limit"
    ]
    assert card(r.iloc[:4], 0.15)[0] == "at its peak on 2021-03-04 (limit 15%)"
    assert card(r, 0.15)[0] == "5.0% below its peak of 2021-03-04 on 2021-03-05 (limit 15%)"
    assert card(r.iloc[:1] * -1, 0.15)[0] == (
        "10.0% below its starting value on 2021-03-01 (limit 15%)"
    )


def test_a_book_wiped_out_is_monitored_up_to_that_day(sp500_dir):
    """3x AAPL against -2x MSFT loses 152% on 2000-09-29 (AAPL -52%). evaluate went on
    past it: its drawdown read "2,940.8% below its peak" in 2021 (a negative value
    compounding) and 143 alerts of a book that no longer exists followed. Now the status
    is that day's, the drawdown 100%, and the alerts before it stand."""
    from mltrainer.data.local import load_local
    from mltrainer.measures.portfolio import portfolio_returns

    data = load_local(sp500_dir, tickers=["AAPL", "MSFT"])
    rets = portfolio_returns(data.returns(), pd.Series({"AAPL": 3.0, "MSFT": -2.0}))
    alerts, history = evaluate(rets, Limits(var_window=100))
    day = pd.Timestamp("2000-09-29")
    status = {a.rule: a for a in alerts}
    assert {a.date for a in alerts} == {day, None}  # volatility: no 252-day window yet
    dd = status["drawdown"]
    assert dd.active and dd.value == 1.0
    assert dd.message == (
        "all the value lost on 2000-09-29 (100.0% below its peak of 2000-04-25); "
        "not monitored after it"
    )
    assert status["var_breach"].active and status["var_breach"].value == pytest.approx(1.5235, 1e-4)
    assert history["date"].max() == day
    before = history[history["date"] < day]
    assert (before["rule"] == "drawdown").sum() == 9  # the limit broken before the wipe-out
    assert history.loc[history["date"] == pd.Timestamp("2000-03-23"), "reading"].tolist() == [
        "25.2%"
    ]


def test_no_var_forecast_yet_is_not_called_within_var(spx):
    """On the first days of a history the card read "latest loss 0.09% within VaR n/a":
    no forecast was made, so the loss is within nothing."""
    alerts, _ = evaluate(spx.iloc[:11])
    var = {a.rule: a for a in alerts}["var_breach"]
    assert not var.active and np.isnan(var.threshold)
    assert var.message == (
        "no VaR forecast yet on 2004-01-20: the history holds 11 returns, fewer than the "
        "VaR window needs"
    )


def test_a_wipe_out_after_a_repeated_date_still_cuts_there():
    """Returns whose wipe-out day is given twice (a careless concatenation): finding it
    by label gave a slice, not a row number, and the cut raised a TypeError."""
    from mltrainer.monitor import until_wipeout

    days = pd.to_datetime(["2020-03-02", "2020-03-03", "2020-03-03", "2020-03-04"])
    r = pd.Series([0.01, -1.5, 0.01, 0.02], index=days)
    cut, day = until_wipeout(r)
    assert day == pd.Timestamp("2020-03-03") and cut.tolist() == [0.01, -1.5]
