"""The technical family: chart-reading signals in [-1, 1] per (date, ticker).

Trend (moving averages and their slope), support/resistance breakouts, chart patterns
and classic oscillators. Every model reads split- and dividend-adjusted bars
(``MarketData.adjusted()``), so a split is not a crash, and every value at date t uses
bars up to t only: pivots, levels and patterns are reported on the bar that confirms
them, never on the bar of the extreme.

The maths is in pure functions (here, :mod:`mltrainer.numerics.indicators` and
:mod:`mltrainer.models._pivots`) whose arguments are named like the parameters; the
classes are thin declarative wrappers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import ParameterError
from mltrainer.models import _pivots as pv
from mltrainer.models._signal_output import signal_output
from mltrainer.models.base import SIGNAL, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import indicators as ind
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import adjusted_ohlc, as_array

# --------------------------------------------------------------------------- maths


def trend_analysis(
    close: np.ndarray,
    short_window: int,
    long_window: int,
    slope_window: int,
    slope_threshold: float,
    ma_type: str = "sma",
) -> dict[str, np.ndarray]:
    """Moving-average trend direction.

    ``MA_s``, ``MA_l``: simple (or TA-Lib-seeded exponential) averages of the close.
    ``slope_t = b_t / MA_l,t`` with ``b_t`` the least-squares slope of ``MA_l`` over the
    last ``slope_window`` bars: the long average's drift as a fraction per bar.
    Direction: +1 if ``slope > slope_threshold`` and ``MA_s > MA_l``; -1 if
    ``slope < -slope_threshold`` and ``MA_s < MA_l``; 0 otherwise (sideways, or the two
    tests disagree). NaN until both averages and the slope exist.
    """
    average = ind.sma if ma_type == "sma" else ind.ema
    s = average(close, short_window)
    m = average(close, long_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = ind.linear_regression_slope(m, slope_window) / m
        up = (slope > slope_threshold) & (s > m)
        down = (slope < -slope_threshold) & (s < m)
    direction = up.astype("float64") - down
    direction[np.isnan(slope) | np.isnan(s)] = np.nan
    return {"signal": direction, "sma_short": s, "sma_long": m, "slope": slope}


def support_resistance(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    order: int,
    n_pivots: int,
    tolerance: float,
    min_touches: int,
    hold: int,
) -> dict[str, np.ndarray]:
    """Breakouts through levels clustered from confirmed swing pivots.

    Levels at t come from the ``n_pivots`` latest pivots confirmed by t (highs and lows;
    see :func:`mltrainer.models._pivots.cluster_levels`), keeping clusters with at least
    ``min_touches`` pivots. Resistance R_t: the nearest level above the close; support
    S_t: the nearest below. A close above ``R_{t-1}`` is an upward breakout (+1), below
    ``S_{t-1}`` a downward one (-1); the signal fades linearly over ``hold`` bars.
    """
    ev = pv.pivot_events(high, low, order)
    levels, touches = pv.cluster_levels(ev, n_pivots, tolerance)
    idx = pv.last_event_index(close.shape, ev.ticker, ev.row)
    support, resistance, sup_n, res_n = pv.nearest_levels(close, idx, levels, touches, min_touches)
    with np.errstate(invalid="ignore"):
        up = close > rl.lag(resistance, 1)
        down = close < rl.lag(support, 1)
    direction = up.astype("float64") - down
    signal = pv.decaying_events(direction, np.ones_like(direction), hold)
    signal[np.isnan(close)] = np.nan
    return {
        "signal": signal,
        "support": support,
        "resistance": resistance,
        "support_touches": sup_n,
        "resistance_touches": res_n,
    }


def pattern_signal(
    close: np.ndarray,
    order: int,
    tolerance: float,
    min_height: float,
    full_height: float,
    max_wait: int,
    hold: int,
) -> tuple[dict[str, np.ndarray], pv.Patterns]:
    """Signal from double tops/bottoms and (inverse) head and shoulders on the close.

    Patterns come from close-price swing pivots (:func:`mltrainer.models._pivots.
    find_patterns`) and are dated on the neckline break. The signal is
    ``sign * strength`` of the latest pattern, fading linearly to 0 over ``hold`` bars
    (bearish patterns negative). Extras ``pattern`` (code on the confirmation bar, 0
    elsewhere; see ``PATTERN_NAMES``) and ``strength``.
    """
    ev = pv.pivot_events(close, close, order)
    pats = pv.find_patterns(close, ev, tolerance, min_height, full_height, max_wait)
    code = np.zeros_like(close)
    strength = np.zeros_like(close)
    # sorted by (ticker, row, strength): on a bar with two patterns the strongest is kept
    last = pv.last_of_groups(pats.ticker, pats.confirm_row)
    code[pats.confirm_row[last], pats.ticker[last]] = pats.code[last]
    strength[pats.confirm_row[last], pats.ticker[last]] = pats.strength[last]
    signal = pv.decaying_events(np.sign(code), strength, hold)
    missing = np.isnan(close)
    for arr in (signal, code, strength):
        arr[missing] = np.nan
    return {"signal": signal, "pattern": code, "strength": strength}, pats


def oscillator_scores(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    rsi_window: int,
    macd_fast: int,
    macd_slow: int,
    macd_signal: int,
    stoch_window: int,
    stoch_smooth: int,
    willr_window: int,
    macd_scale: float,
    mode: str,
) -> dict[str, np.ndarray]:
    """RSI, MACD, slow stochastic and Williams %R, each mapped to [-1, 1].

    ``mode="mean_reversion"`` reads the bounded oscillators contrarian:
    ``(50 - RSI) / 50``, ``(50 - %K) / 50``, ``(-50 - %R) / 50`` (oversold -> +1);
    ``"momentum"`` flips their signs. MACD is always read with the trend:
    ``tanh(hist / (macd_scale * ATR_14))`` (histogram in units of the average true range).
    """
    sign = 1.0 if mode == "mean_reversion" else -1.0
    r = ind.rsi(close, rsi_window)
    hist = ind.macd(close, macd_fast, macd_slow, macd_signal).hist
    atr = ind.atr(high, low, close, 14)
    k = ind.stochastic(high, low, close, stoch_window, stoch_smooth, stoch_smooth).k
    w = ind.williams_r(high, low, close, willr_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        macd_score = np.tanh(hist / (macd_scale * atr))
        macd_score[atr == 0] = 0.0
    return {
        "rsi": sign * (50.0 - r) / 50.0,
        "macd": macd_score,
        "stochastic": sign * (50.0 - k) / 50.0,
        "williams_r": sign * (-50.0 - w) / 50.0,
        "rsi_value": r,
        "macd_hist": hist,
        "stochastic_k": k,
        "williams_r_value": w,
    }


# ------------------------------------------------------------------------ classes


class _TechnicalModel(Model):
    family = "technical"
    output_kind = SIGNAL


class TrendAnalysisModel(_TechnicalModel):
    """Trend direction from a short and a long moving average and the long one's slope.

    Parameters
    ----------
    short_window, long_window : int
        Moving-average lengths in trading days (short < long).
    slope_threshold : float
        Minimum |slope| (fraction per bar) for a trend; below it the market is sideways.
    ma_type : {"sma", "ema"}
        Simple or exponential averages (TA-Lib seeding).

    Notes
    -----
    ``slope_t = b_t / MA_long,t`` with ``b_t`` the OLS slope of ``MA_long`` over the last
    ``slope_window`` bars; signal = +1 if ``slope > c`` and ``MA_short > MA_long``, -1 if
    ``slope < -c`` and ``MA_short < MA_long``, else 0. Extras: ``sma_short``,
    ``sma_long`` (the averages, whichever type) and ``slope``.

    References
    ----------
    Murphy, J. J. (1999). Technical Analysis of the Financial Markets, ch. 9. NYIF.
    """

    description = "Short/long moving averages and the long average's slope give up/down/sideways"
    param_specs = {
        "short_window": IntParam(5, 100, default=20, help="Short moving average, trading days"),
        "long_window": IntParam(20, 300, default=50, help="Long moving average, trading days"),
        "slope_window": IntParam(
            5, 100, default=20, help="Bars in the regression measuring the long MA's slope"
        ),
        "slope_threshold": FloatParam(
            0.0,
            0.01,
            default=0.0005,
            step=0.0001,
            help="Minimum slope, fraction per bar (0.0005 = 0.05%)",
        ),
        "ma_type": ChoiceParam(
            ("sma", "ema"), default="sma", help="Simple or exponential moving averages"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("short_window", "long_window")

    def min_history(self) -> int:
        return self.long_window + self.slope_window - 1

    def _compute(self, data: MarketData) -> ModelOutput:
        # the indicators work on column-major blocks: one copy here, not one per call
        out = trend_analysis(as_array(data.adj_close, column_major=True), **self.get_params())
        return signal_output(data, out.pop("signal"), out)


class SupportResistanceModel(_TechnicalModel):
    """Breakouts through support and resistance clustered from confirmed swing pivots.

    Parameters
    ----------
    order : int
        Bars on each side of a swing high/low; a pivot is known ``order`` bars after it.

    Notes
    -----
    Pivots use the adjusted high (swing highs) and low (swing lows) and are dated on
    their confirmation bar. Levels are cluster means; resistance is the nearest level
    above the close, support the nearest below. Signal: +1 when the close crosses above
    the previous bar's resistance, -1 below its support, fading over ``hold`` bars.
    Extras: ``support``, ``resistance``, ``support_touches``, ``resistance_touches``.

    References
    ----------
    Osler, C. L. (2000). Support for resistance: technical analysis and intraday
    exchange rates. FRBNY Economic Policy Review 6(2), 53-68.
    """

    description = "Breakouts through support/resistance levels clustered from swing pivots"
    requires = ("ohlc",)
    param_specs = {
        "order": IntParam(2, 30, default=5, help="Bars on each side of a swing high/low"),
        "n_pivots": IntParam(2, 30, default=10, help="Latest confirmed pivots used for levels"),
        "tolerance": FloatParam(
            0.001,
            0.1,
            default=0.015,
            step=0.001,
            help="Relative distance within which pivots merge (0.015 = 1.5%)",
        ),
        "min_touches": IntParam(1, 10, default=2, help="Pivots a level needs to count"),
        "hold": IntParam(1, 60, default=5, help="Bars a breakout signal lasts, fading"),
    }

    def _check_params(self) -> None:
        self._require_order("min_touches", "n_pivots", strict=False)

    def min_history(self) -> int:
        return 2 * self.order + 2

    def _compute(self, data: MarketData) -> ModelOutput:
        out = support_resistance(*adjusted_ohlc(data), **self.get_params())
        return signal_output(data, out.pop("signal"), out)


class PatternRecognitionModel(_TechnicalModel):
    """Double tops/bottoms and head-and-shoulders, dated on the neckline break.

    Parameters
    ----------
    order : int
        Bars on each side of a swing pivot (pivots on the adjusted close).
    max_wait : int
        Bars after the last pivot's confirmation within which the neckline must break.

    Notes
    -----
    See :func:`mltrainer.models._pivots.find_patterns`. Bearish patterns (double top,
    head and shoulders) give ``-strength``, bullish ones ``+strength``, from the break
    bar on, fading to 0 over ``hold`` bars. Extras: ``pattern`` (code on the
    confirmation bar: -1 double top, +1 double bottom, -2 head and shoulders, +2
    inverse), ``strength``. Table ``patterns``: every pattern found in the input.

    References
    ----------
    Bulkowski, T. N. (2005). Encyclopedia of Chart Patterns, 2nd ed. Wiley.
    Lo, A. W., Mamaysky, H., Wang, J. (2000). Foundations of technical analysis.
    Journal of Finance 55(4), 1705-1765.
    """

    description = "Double tops/bottoms and head-and-shoulders from confirmed pivots"
    param_specs = {
        "order": IntParam(2, 30, default=5, help="Bars on each side of a swing pivot"),
        "tolerance": FloatParam(
            0.005,
            0.1,
            default=0.03,
            step=0.005,
            help="Largest relative gap between the two peaks/shoulders",
        ),
        "min_height": FloatParam(
            0.005,
            0.5,
            default=0.03,
            step=0.005,
            help="Smallest pattern height relative to its peak",
        ),
        "full_height": FloatParam(
            0.02, 0.5, default=0.1, step=0.01, help="Pattern height that gives full strength"
        ),
        "max_wait": IntParam(
            1, 60, default=20, help="Bars after the last pivot for the neckline to break"
        ),
        "hold": IntParam(1, 60, default=10, help="Bars the signal lasts, fading"),
    }

    def min_history(self) -> int:
        return 2 * self.order + 2

    def _compute(self, data: MarketData) -> ModelOutput:
        out, pats = pattern_signal(as_array(data.adj_close), **self.get_params())
        dates, tickers = data.dates, data.adj_close.columns
        table = pd.DataFrame(
            {
                "ticker": tickers[pats.ticker],
                "pattern": [pv.PATTERN_NAMES[c] for c in pats.code],
                "code": pats.code,
                "first_extreme": dates[pats.first_row],
                "last_extreme": dates[pats.last_row],
                "confirmed": dates[pats.confirm_row],
                "neckline": pats.neckline,
                "strength": pats.strength,
            }
        )
        return signal_output(data, out.pop("signal"), out, {"patterns": table})


class OscillatorModel(_TechnicalModel):
    """RSI, MACD, stochastic and Williams %R combined into one score.

    Parameters
    ----------
    mode : {"mean_reversion", "momentum"}
        How RSI, stochastic and %R are read (overbought -> sell, or -> buy).
    rsi_weight, macd_weight, stoch_weight, willr_weight : float
        Weights of the four components (need not sum to 1; a zero drops one).

    Notes
    -----
    ``score = sum_i w_i s_i / sum_i w_i`` over the components with ``w_i > 0``
    (:func:`oscillator_scores` gives each ``s_i``); NaN until all of those exist.
    Indicators equal TA-Lib's RSI, MACD, STOCH, WILLR and ATR. Extras: the four scores
    (``rsi``, ``macd``, ``stochastic``, ``williams_r``) and the raw values
    (``rsi_value``, ``macd_hist``, ``stochastic_k``, ``williams_r_value``).

    References
    ----------
    Wilder (1978); Appel (2005); Lane (1984); Williams (1979): see
    :mod:`mltrainer.numerics.indicators`.
    """

    description = "RSI, MACD, stochastic and Williams %R mapped to [-1, 1] and weighted"
    requires = ("ohlc",)
    param_specs = {
        "rsi_window": IntParam(2, 100, default=14, help="RSI length, bars"),
        "macd_fast": IntParam(2, 50, default=12, help="MACD fast EMA, bars"),
        "macd_slow": IntParam(5, 100, default=26, help="MACD slow EMA, bars"),
        "macd_signal": IntParam(2, 50, default=9, help="MACD signal EMA, bars"),
        "stoch_window": IntParam(2, 50, default=14, help="Stochastic %K look-back, bars"),
        "stoch_smooth": IntParam(1, 10, default=3, help="SMA length smoothing %K and %D"),
        "willr_window": IntParam(2, 100, default=14, help="Williams %R look-back, bars"),
        "macd_scale": FloatParam(
            0.05, 5.0, default=0.5, step=0.05, help="MACD histogram, in ATRs, that maps to tanh(1)"
        ),
        "mode": ChoiceParam(
            ("mean_reversion", "momentum"),
            default="mean_reversion",
            help="mean_reversion: overbought is bearish; momentum: bullish",
        ),
        "rsi_weight": FloatParam(0.0, 1.0, default=1.0, step=0.05, help="Weight of RSI"),
        "macd_weight": FloatParam(0.0, 1.0, default=1.0, step=0.05, help="Weight of MACD"),
        "stoch_weight": FloatParam(
            0.0, 1.0, default=1.0, step=0.05, help="Weight of the stochastic"
        ),
        "willr_weight": FloatParam(0.0, 1.0, default=1.0, step=0.05, help="Weight of Williams %R"),
    }

    def _weights(self) -> dict[str, float]:
        return {
            "rsi": self.rsi_weight,
            "macd": self.macd_weight,
            "stochastic": self.stoch_weight,
            "williams_r": self.willr_weight,
        }

    def _check_params(self) -> None:
        self._require_order("macd_fast", "macd_slow")
        if sum(self._weights().values()) <= 0:
            raise ParameterError("at least one of the four weights must be positive")

    def min_history(self) -> int:
        return max(
            self.rsi_window + 1,
            self.macd_slow + self.macd_signal - 1,
            self.stoch_window + 2 * self.stoch_smooth - 2,
            self.willr_window,
            15,
        )

    def _compute(self, data: MarketData) -> ModelOutput:
        weights = {k: w for k, w in self._weights().items() if w > 0}
        params = {k: v for k, v in self.get_params().items() if not k.endswith("_weight")}
        # the five indicators work on column-major blocks: one copy here, not five
        out = oscillator_scores(*adjusted_ohlc(data, column_major=True), **params)
        score = sum(w * out[k] for k, w in weights.items()) / sum(weights.values())
        return signal_output(data, np.clip(score, -1.0, 1.0), out)


MODELS = (TrendAnalysisModel, SupportResistanceModel, PatternRecognitionModel, OscillatorModel)

__all__ = [
    "MODELS",
    "OscillatorModel",
    "PatternRecognitionModel",
    "SupportResistanceModel",
    "TrendAnalysisModel",
    "oscillator_scores",
    "pattern_signal",
    "support_resistance",
    "trend_analysis",
]
