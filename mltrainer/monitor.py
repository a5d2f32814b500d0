"""Risk limits as alert rules: pure functions evaluated on the latest data, with history.

Each rule turns a date-indexed input into a frame over the same dates with columns
``value``, ``threshold`` and ``breached`` (vectorised, causal: row t uses data up to t
only), so the same computation gives both today's status (the last row) and the
history of past alerts (:func:`onsets`: the dates a breach started).

Rules
-----
- ``var_breach``: the day's loss exceeds the VaR forecast made the day before
  (:func:`mltrainer.measures.var.rolling_var_es`, the forecast at t-1 tested on t).
- ``drawdown``: the equity curve is more than ``max_drawdown`` below its running peak.
- ``volatility_spike``: annualised volatility over the last ``vol_short`` days is more
  than ``vol_ratio`` times that over the last ``vol_long`` days.
- ``regime_change``: a regime model's label changes and the new regime has held for
  ``regime_confirm`` days (daily labels flip back and forth; 1 reports every flip).
- ``stale_data``: more than ``stale_days`` business days have passed since the last bar
  (history: gaps between consecutive bars longer than that).

Event rules (VaR breach, regime change) are *active* when an event happened in the
last ``recent_days`` dates; state rules (drawdown, volatility spike, stale data) when
the last date is in breach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mltrainer import fmt
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.backtest_var import var_exceptions
from mltrainer.measures.var import METHODS, no_forecast_reason, rolling_var_es
from mltrainer.validate import DateLike

RULES = ("var_breach", "drawdown", "volatility_spike", "regime_change", "stale_data")
TITLES = {
    "var_breach": "VaR breach",
    "drawdown": "Drawdown limit",
    "volatility_spike": "Volatility spike",
    "regime_change": "Regime change",
    "stale_data": "Stale data",
}
SEVERITY = {
    "var_breach": "high",
    "drawdown": "high",
    "volatility_spike": "medium",
    "regime_change": "medium",
    "stale_data": "medium",
}


@dataclass(frozen=True)
class Limits:
    """The risk limits the rules test (defaults a risk desk would start from)."""

    var_level: float = 0.99
    var_window: int = 250
    var_method: str = "historical"
    max_drawdown: float = 0.10
    vol_short: int = 21
    vol_long: int = 252
    vol_ratio: float = 1.5
    stale_days: int = 3
    recent_days: int = 5
    regime_confirm: int = 5

    def check(self) -> None:
        """Raise ParameterError naming the first limit outside what is allowed."""
        rules = (
            (
                0.5 < self.var_level < 1,
                f"VaR level must be in (0.5, 1), e.g. 0.99 (got {self.var_level})",
            ),
            (self.var_window >= 50, f"VaR window must be at least 50 days (got {self.var_window})"),
            (
                self.var_method in METHODS,
                f"VaR method must be one of {', '.join(METHODS)} (got {self.var_method!r})",
            ),
            (
                0 < self.max_drawdown < 1,
                f"drawdown limit must be in (0, 1), e.g. 0.10 for 10% (got {self.max_drawdown})",
            ),
            (
                2 <= self.vol_short < self.vol_long,
                f"short volatility window must be at least 2 "
                f"and shorter than the long one (got {self.vol_short} and {self.vol_long})",
            ),
            (self.vol_ratio > 1, f"volatility spike ratio must be above 1 (got {self.vol_ratio})"),
            (
                self.stale_days >= 1,
                f"stale-data limit must be at least 1 business day (got {self.stale_days})",
            ),
            (
                self.recent_days >= 1,
                f"recent window must be at least 1 day (got {self.recent_days})",
            ),
            (
                self.regime_confirm >= 1,
                f"a regime change must be confirmed over at least 1 "
                f"day (got {self.regime_confirm})",
            ),
        )
        for ok, message in rules:
            if not ok:
                raise ParameterError(message)


@dataclass(frozen=True)
class Alert:
    """The status of one rule on the latest date."""

    rule: str
    title: str
    active: bool
    severity: str  # "high" / "medium" when active, "ok" otherwise
    date: pd.Timestamp | None  # the date of the value shown (last event for event rules)
    value: float
    threshold: float
    message: str

    def as_dict(self) -> dict:
        """The alert's fields by name (for a table or JSON)."""
        return asdict(self)


# -------------------------------------------------------------------------- rules
def _series(x, what: str) -> pd.Series:
    s = pd.Series(x, dtype="float64") if not isinstance(x, pd.Series) else x.astype("float64")
    if not isinstance(s.index, pd.DatetimeIndex):
        raise DataError(f"the {what} need a DatetimeIndex of trading dates")
    return s


def _frame(value, threshold, breached, index) -> pd.DataFrame:
    return pd.DataFrame(
        {"value": value, "threshold": threshold, "breached": np.asarray(breached, dtype=bool)},
        index=index,
    )


def var_breach_rule(
    returns: pd.Series, level: float = 0.99, window: int = 250, method: str = "historical"
) -> pd.DataFrame:
    """``value`` = the day's loss ``-r_t``, ``threshold`` = VaR forecast from data to t-1."""
    r = _series(returns, "returns")
    forecast = rolling_var_es(r, window, level, method)["var"]
    hits = var_exceptions(r, forecast)  # the same test as the VaR backtests
    return _frame(-r, forecast.shift(1), (hits == 1.0).to_numpy(), r.index)


def drawdown_rule(returns: pd.Series, max_drawdown: float = 0.10) -> pd.DataFrame:
    """``value`` = depth below the running peak of ``Π(1 + r)`` (a positive fraction);
    ``peak`` = the date of that peak (NaT while the peak is the starting value, the close
    before the first return): a depth says which high it is measured from."""
    r = _series(returns, "returns")
    # a day losing 100% or more ends the path at 0, as in equity_curve: a negative value
    # would flip the sign of every later day ("2,940.8% below its peak")
    equity = (1.0 + r.fillna(0.0)).clip(lower=0.0).cumprod().to_numpy()
    high = np.maximum(np.maximum.accumulate(equity), 1.0)
    depth = 1.0 - equity / high
    frame = _frame(depth, max_drawdown, depth > max_drawdown, r.index)
    last_high = np.maximum.accumulate(np.where(equity >= high, np.arange(len(r)), -1))
    frame["peak"] = pd.DatetimeIndex(r.index[np.maximum(last_high, 0)]).where(last_high >= 0)
    return frame


def until_wipeout(returns: pd.Series) -> tuple[pd.Series, pd.Timestamp | None]:
    """``returns`` up to and including the first day that loses all the value (a return
    at or below -100%, which only a leveraged or short book can have), and that day (None
    when there is none). A book wiped out holds nothing afterwards, so no limit can be
    breached or kept there; its alerts up to that day stand."""
    r = _series(returns, "returns")
    gone = np.flatnonzero(r.to_numpy() <= -1.0)
    if not len(gone):
        return r, None
    return r.iloc[: gone[0] + 1], r.index[gone[0]]


def volatility_spike_rule(
    returns: pd.Series, short: int = 21, long: int = 252, ratio: float = 1.5
) -> pd.DataFrame:
    """``value`` = ``vol_short / vol_long`` (trailing sample standard deviations)."""
    r = _series(returns, "returns")
    vs = r.rolling(short, min_periods=short).std()
    vl = r.rolling(long, min_periods=long).std()
    value = vs / vl.where(vl > 0)
    return _frame(value, ratio, (value > ratio).fillna(False).to_numpy(), r.index)


def regime_change_rule(labels: pd.Series, confirm: int = 1) -> pd.DataFrame:
    """``value`` = the confirmed regime, ``threshold`` = the one before; breached on the day
    a new regime is confirmed.

    A regime is confirmed once its label has held for ``confirm`` consecutive days (so the
    alert is dated on the confirmation day, from data up to then); ``confirm=1`` flags
    every change of label. Warm-up NaNs are skipped: the first regime is not a change.
    """
    if confirm < 1:
        raise ParameterError(f"confirm must be at least 1 day (got {confirm})")
    lab = _series(labels, "regime labels")
    run = lab.ne(lab.shift()).cumsum()
    held = lab.groupby(run).cumcount() + 1
    confirmed = lab.where(held >= confirm).ffill()
    before = confirmed.shift(1)
    changed = confirmed.notna() & before.notna() & (confirmed != before)
    return _frame(confirmed, before, changed.to_numpy(), lab.index)


def business_days_since(last_bar: DateLike, today: DateLike) -> int:
    """Business days (Mon-Fri) from ``last_bar`` up to ``today``, the stale-data rule's
    count: 0 on the bar's own day, 1 from the next day to the next business day (a
    Friday bar is 1 day old on Saturday and on Monday), and so on."""
    last, now = (np.datetime64(pd.Timestamp(d).date(), "D") for d in (last_bar, today))
    return int(np.busday_count(last, now)) if now > last else 0


def stale_data_rule(
    dates: pd.DatetimeIndex,
    today: DateLike,
    stale_days: int = 3,
    last_bar: DateLike | None = None,
) -> pd.DataFrame:
    """Business days since the previous bar at each bar, and since the last bar ``today``.

    Rows are the bar dates plus ``today`` (when later than the last bar); ``value`` is the
    number of business days (Mon-Fri) elapsed since the bar before. ``last_bar``: the
    data's last bar when ``dates`` stop before it (a range that ends earlier); ``today``'s
    value counts from it, since the data is as old as its last bar, not the range's.
    """
    idx = pd.DatetimeIndex(dates).normalize()
    if len(idx) == 0:
        raise DataError("the data has no dates, so its freshness cannot be judged")
    now = pd.Timestamp(today).normalize()
    points = idx.append(pd.DatetimeIndex([now])) if now > idx[-1] else idx
    day = points.values.astype("datetime64[D]")
    gaps = np.zeros(len(points))
    gaps[1:] = np.busday_count(day[:-1], day[1:])
    if last_bar is not None and now > idx[-1]:
        gaps[-1] = business_days_since(max(pd.Timestamp(last_bar).normalize(), idx[-1]), now)
    return _frame(gaps, float(stale_days), gaps > stale_days, points)


# ----------------------------------------------------------------------- history
def onsets(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows where a breach starts (breached today, not the day before)."""
    b = frame["breached"].to_numpy()
    start = b & ~np.concatenate([[False], b[:-1]])
    return frame.loc[start]


def _status(
    rule: str, frame: pd.DataFrame, recent_days: int, names: dict | None, method: str = ""
) -> Alert:
    event_rule = rule in ("var_breach", "regime_change")
    valid = frame.dropna(subset=["value"])
    if valid.empty:
        return Alert(
            rule,
            TITLES[rule],
            False,
            "ok",
            None,
            float("nan"),
            float("nan"),
            "not enough history to evaluate this rule yet",
        )
    if event_rule:
        recent = frame.iloc[-recent_days:]
        hits = recent[recent["breached"]]
        row = hits.iloc[-1] if len(hits) else valid.iloc[-1]
        date = hits.index[-1] if len(hits) else valid.index[-1]
        active = bool(len(hits))
    else:
        row, date = frame.iloc[-1], frame.index[-1]
        active = bool(row["breached"])
    value, threshold = float(row["value"]), float(row["threshold"])
    message = _message(rule, active, value, threshold, date, names, row.get("peak"))
    forecasts = frame["threshold"]
    if rule == "var_breach" and not active and np.isnan(threshold) and forecasts.notna().any():
        missed = int(forecasts.iloc[-recent_days:].isna().sum())
        message = (
            f"no VaR forecast for {fmt.date(date)}: {no_forecast_reason(method)}; "
            f"{fmt.count(missed, 'day')} of the last {fmt.integer(recent_days)} had none, so "
            "no breach could be seen on them"
        )
    elif rule == "var_breach" and not active and np.isnan(threshold):  # "within VaR n/a"
        message = (
            f"no VaR forecast yet on {fmt.date(date)}: the history holds "
            f"{fmt.count(len(valid), 'return')}, fewer than the VaR window needs"
        )
    return Alert(
        rule,
        TITLES[rule],
        active,
        SEVERITY[rule] if active else "ok",
        date,
        value,
        threshold,
        message,
    )


def _name(label: float, names: dict | None) -> str:
    if not np.isfinite(label):
        return "n/a"
    key = int(label)
    return f"{names[key]} ({key})" if names and key in names else f"regime {key}"


def _message(rule, active, value, threshold, date, names, peak=None) -> str:
    day = fmt.date(date)
    if rule == "var_breach":
        loss, var = fmt.percent(value, 2), fmt.percent(threshold, 2)
        if active:
            return f"loss of {loss} on {day} exceeded the VaR forecast of {var}"
        if value < 0:  # a day that gained: no loss to compare ("latest loss -0.72%")
            return f"latest day a gain of {fmt.percent(-value, 2)}, VaR {var} ({day})"
        return f"latest loss {loss} within VaR {var} ({day})"
    if rule == "drawdown":
        dd, limit = fmt.percent(value), fmt.percent(threshold, 0)
        if not active and value == 0:
            return f"at its peak on {day} (limit {limit})"
        high = f"its peak of {fmt.date(peak)}" if pd.notna(peak) else "its starting value"
        if value >= 1.0:
            return f"all the value lost on {day} ({dd} below {high}); not monitored after it"
        below = f"{dd} below {high} on {day}"
        return f"{below}, beyond the {limit} limit" if active else f"{below} (limit {limit})"
    if rule == "volatility_spike":
        ratio, limit = fmt.number(value), fmt.number(threshold)
        return (
            f"short-term volatility is {ratio}x the long-term level on {day} (limit {limit}x)"
            if active
            else f"short/long volatility ratio {ratio}x on {day} (limit {limit}x)"
        )
    if rule == "regime_change":
        return (
            f"regime changed from {_name(threshold, names)} to {_name(value, names)} on {day}"
            if active
            else f"regime {_name(value, names)} unchanged ({day})"
        )
    age, limit = fmt.integer(value), fmt.integer(threshold)
    return (
        f"last bar is {age} business days old on {day} (limit {limit}); refresh the data"
        if active
        else f"data is {age} business day(s) old on {day} (limit {limit})"
    )


def reading(rule: str, value: float, names: dict | None = None) -> str:
    """A rule's value in its own unit: a loss or drawdown in percent, a volatility ratio
    as ``1.85x``, a regime by name, data age in business days."""
    if rule in ("var_breach", "drawdown"):
        return fmt.percent(value, 2 if rule == "var_breach" else 1)
    if rule == "volatility_spike":
        return f"{fmt.number(value)}x"
    if rule == "regime_change":
        return _name(value, names)
    return f"{fmt.integer(value)} business days"


def rule_frames(
    returns: pd.Series,
    limits: Limits,
    labels: pd.Series | None = None,
    dates: pd.DatetimeIndex | None = None,
    today: DateLike | None = None,
    last_bar: DateLike | None = None,
) -> dict[str, pd.DataFrame]:
    """Every rule's (value, threshold, breached) frame; regime and staleness only when
    their inputs (``labels``; ``dates`` and ``today``, and ``last_bar``, see
    :func:`stale_data_rule`) are given. A book that loses all its value
    (:func:`until_wipeout`) has frames up to that day; the stale-data rule still judges
    the data's dates."""
    limits.check()
    returns, wiped = until_wipeout(returns)
    if wiped is not None and labels is not None:
        labels = labels.loc[:wiped]
    frames = {
        "var_breach": var_breach_rule(
            returns, limits.var_level, limits.var_window, limits.var_method
        ),
        "drawdown": drawdown_rule(returns, limits.max_drawdown),
        "volatility_spike": volatility_spike_rule(
            returns, limits.vol_short, limits.vol_long, limits.vol_ratio
        ),
    }
    if labels is not None:
        frames["regime_change"] = regime_change_rule(labels, limits.regime_confirm)
    if dates is not None and today is not None:
        frames["stale_data"] = stale_data_rule(dates, today, limits.stale_days, last_bar)
    return frames


def evaluate(
    returns: pd.Series,
    limits: Limits | None = None,
    *,
    labels: pd.Series | None = None,
    regime_names: dict | None = None,
    dates: pd.DatetimeIndex | None = None,
    today: DateLike | None = None,
    last_bar: DateLike | None = None,
) -> tuple[list[Alert], pd.DataFrame]:
    """Every rule's status on the latest date (a book that loses all its value: on that
    day, see :func:`rule_frames`), and the history of breach onsets.

    Parameters
    ----------
    returns : Series
        Daily portfolio (or index) returns, date-indexed.
    limits : Limits
    labels : Series, optional
        A regime model's labels (0 = calmest) for the regime-change rule.
    regime_names : dict, optional
        Label -> name (``{0: "calm", ...}``) used in the messages.
    dates, today, last_bar : optional
        The bar dates of the range, the current date and the data's last bar (when
        after the range), for the stale-data rule.

    Returns
    -------
    alerts : list of Alert, in :data:`RULES` order
    history : DataFrame with ``date, rule, title, severity, value, threshold, reading,
        against, message`` (``reading``/``against``: value and threshold, or for a regime
        change the new and the previous regime, as text in the rule's unit), newest first
    """
    limits = limits or Limits()
    frames = rule_frames(returns, limits, labels, dates, today, last_bar)
    alerts, rows = [], []
    for rule in RULES:
        if rule not in frames:
            continue
        frame = frames[rule]
        alerts.append(_status(rule, frame, limits.recent_days, regime_names, limits.var_method))
        events = (
            frame.loc[frame["breached"]]
            if rule in ("var_breach", "regime_change")
            else onsets(frame)
        )
        for date, ev in events.iterrows():  # events are rare: a few dozen per decade
            value, threshold = float(ev["value"]), float(ev["threshold"])
            rows.append(
                {
                    "date": date,
                    "rule": rule,
                    "title": TITLES[rule],
                    "severity": SEVERITY[rule],
                    "value": value,
                    "threshold": threshold,
                    "reading": reading(rule, value, regime_names),
                    "against": reading(rule, threshold, regime_names),
                    "message": _message(
                        rule, True, value, threshold, date, regime_names, ev.get("peak")
                    ),
                }
            )
    history = pd.DataFrame(
        rows,
        columns=[
            "date",
            "rule",
            "title",
            "severity",
            "value",
            "threshold",
            "reading",
            "against",
            "message",
        ],
    )
    history = history.sort_values("date", ascending=False, kind="stable").reset_index(drop=True)
    return alerts, history
