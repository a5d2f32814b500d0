"""The volume family: signals in [-1, 1] that read price moves together with volume.

Prices are the adjusted close (and, for the typical price, high and low scaled onto
it as ``MarketData.adjusted()`` does: :func:`~mltrainer.numerics.frames.adjusted_ohlc`). Volume is
made split-consistent with :func:`~mltrainer.numerics.rolling.causal_split_volume`,
which divides by the splits up to t instead of multiplying by later ones: a ratio of
volumes is the same either way, but a cumulative level (OBV) at t then does not change
when later bars (and their splits) arrive. Every model needs volume
(``requires = ("volume",)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.errors import ParameterError
from mltrainer.models._signal_output import signal_output
from mltrainer.models._volume_clusters import walk_forward_clusters
from mltrainer.models.base import SIGNAL, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import adjusted_ohlc, as_array

# --------------------------------------------------------------------------- maths


def signed_volume(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """``sign(C_t - C_{t-1}) V_t``: each bar's OBV step (NaN where either bar is missing)."""
    step = rl.diff(close)
    np.sign(step, out=step)
    step *= volume
    return step


def on_balance_volume(
    close: np.ndarray, volume: np.ndarray, steps: np.ndarray | None = None
) -> np.ndarray:
    """Granville's OBV per column, with TA-Lib's start (first bar contributes +V).

    ``OBV_t = OBV_{t-1} + sign(C_t - C_{t-1}) V_t``; NaN where close or volume is NaN.
    After a missing bar the first bar back contributes 0 (its change is undefined).
    ``steps``: :func:`signed_volume`, when the caller already has it.
    """
    step = signed_volume(close, volume) if steps is None else steps.copy()
    finite = np.isfinite(close) & np.isfinite(volume)
    # the first finite row of each column starts the sum at +V, as TA-Lib does
    cols = np.flatnonzero(finite.any(axis=0))
    rows = finite[:, cols].argmax(axis=0)
    step[rows, cols] = volume[rows, cols]
    step[~np.isfinite(step)] = 0.0
    obv = rl.cumsum_rows(step)
    obv[~finite] = np.nan
    return obv


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` in place in ``num``, NaN where ``den`` is not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        num /= den
    num[~(den > 0)] = np.nan
    return num


def rolling_vwap(
    price: np.ndarray, volume: np.ndarray, window: int, volume_sum: np.ndarray | None = None
) -> np.ndarray:
    """``sum(P_i V_i) / sum(V_i)`` over the ``window`` bars ending at t (NaN if sum V = 0).

    ``volume_sum``: the rolling volume sum, when the caller already has it.
    """
    vv = rl.rolling_sum(volume, window) if volume_sum is None else volume_sum
    return _divide(rl.rolling_sum(price * volume, window), vv)


def obv_trend(
    close: np.ndarray,
    volume: np.ndarray,
    window: int,
    volume_sum: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """``(OBV_t - OBV_{t-n}) / sum(V over the n bars)``: net up-volume share in [-1, 1].

    ``volume_sum``, ``steps``: the rolling volume sum and :func:`signed_volume`, when
    the caller already has them.
    """
    signed = signed_volume(close, volume) if steps is None else steps
    total = rl.rolling_sum(volume, window) if volume_sum is None else volume_sum
    return _divide(rl.rolling_sum(signed, window), total)


def volume_weighted_signal(
    close: np.ndarray,
    typical: np.ndarray,
    volume: np.ndarray,
    window: int,
    obv_window: int,
    anchor: str,
    price_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Price versus its volume-weighted average, plus the OBV trend.

    ``p_t = tanh((C_t / A_t - 1) / sigma_t)`` with A the rolling VWAP of the typical
    price (or the VWMA of the close) and sigma_t the standard deviation of daily returns
    over the same window; ``o_t`` = :func:`obv_trend`. signal = ``w p + (1 - w) o``.
    Returns ``(signal, vwap, vwma, obv)``.
    """
    steps = signed_volume(close, volume)
    vsum = rl.rolling_sum(volume, window)
    vwap = rolling_vwap(typical, volume, window, vsum)
    vwma = vwap if typical is close else rolling_vwap(close, volume, window, vsum)
    ref = vwap if anchor == "vwap" else vwma
    sigma = rl.rolling_std(rl.daily_returns(close), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        price_part = close / ref
    price_part -= 1.0
    np.tanh(_divide(price_part, sigma), out=price_part)
    obv_part = obv_trend(close, volume, obv_window, vsum if obv_window == window else None, steps)
    signal = price_weight * price_part
    signal += (1.0 - price_weight) * obv_part
    return signal, vwap, vwma, on_balance_volume(close, volume, steps)


def _log_volume(volume: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(volume > 0, np.log(volume), np.nan)


def volume_price_relationship(
    close: np.ndarray, volume: np.ndarray, corr_window: int, trend_window: int, pair: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return/volume correlation and price/volume trend agreement.

    c_t = rolling correlation over ``corr_window`` of ``r_t`` (``pair="returns"``) or
    ``|r_t|`` (``"abs_returns"``, then multiplied by the price direction) with
    ``dlnV_t = ln V_t - ln V_{t-1}``. Price direction d_p = sign of the ``trend_window``
    return; volume direction d_v = sign of ``ln(mean V over the last n) - ln(mean V over
    the n before)``. The trend part is ``d_p d_v``: a move on rising volume is confirmed
    (+1 up, -1 down); a move on falling volume is a divergence read against the move
    (rising price on shrinking volume -1, falling price on shrinking volume +1).
    signal = ``(c + d_p d_v) / 2``. Returns ``(signal, correlation, divergence)`` with
    divergence +1 bullish / -1 bearish / 0 none.
    """
    r = rl.daily_returns(close)
    dlv = rl.diff(_log_volume(volume))
    x = r if pair == "returns" else np.abs(r)
    corr = rl.rolling_corr(x, dlv, corr_window)  # both hover around 0: no centring
    d_price = np.sign(rl.trailing_return(close, trend_window))
    mean_v = rl.rolling_mean(volume, trend_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_vol = np.sign(np.log(mean_v / rl.lag(mean_v, trend_window)))
    corr_part = corr if pair == "returns" else corr * d_price
    signal = 0.5 * (corr_part + d_price * d_vol)
    divergence = np.where(d_vol < 0, -d_price, 0.0)
    divergence[np.isnan(d_price) | np.isnan(d_vol)] = np.nan
    return signal, corr, divergence


def volume_momentum(
    close: np.ndarray,
    volume: np.ndarray,
    short_window: int,
    long_window: int,
    price_window: int,
    sensitivity: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``sign(r_price) * tanh(ln(mean V_short / mean V_long) / sensitivity)``.

    Rising volume reinforces the direction of the ``price_window`` return, falling
    volume leans against it. Returns ``(signal, volume_ratio)``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        long_mean = rl.rolling_mean(volume, long_window)
        ratio = np.where(long_mean > 0, rl.rolling_mean(volume, short_window) / long_mean, np.nan)
        strength = np.tanh(np.log(ratio) / sensitivity)
    direction = np.sign(rl.trailing_return(close, price_window))
    return direction * strength, ratio


def volume_divergence(
    close: np.ndarray, volume: np.ndarray, lookback: int, indicator: str, hold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price extremes that volume does not confirm, labelled on the day they happen.

    Bullish (+1): ``C_t`` below the lowest close of the previous ``lookback`` bars while
    the indicator is not at a new low (OBV above its previous ``lookback``-bar low, or,
    for ``indicator="volume"``, V_t below its previous ``lookback``-bar mean: the selling
    is drying up). Bearish (-1): a new closing high without a new OBV high (or on
    below-average volume). The signal is the latest label of the last ``hold`` bars
    (0 if none). Returns ``(signal, labels, obv)``; windows end at t.
    """
    obv = on_balance_volume(close, volume)
    low, high = rl.rolling_min_max(close, lookback)
    # row t is compared with the window ending at t-1: views one row apart, no copies
    now, before = slice(1, None), slice(None, -1)
    if indicator == "obv":
        obv_low, obv_high = rl.rolling_min_max(obv, lookback)
        weak_low = obv[now] > obv_low[before]
        weak_high = obv[now] < obv_high[before]
        ind_ok = np.isfinite(obv_low[before])
    else:
        prev_mean = rl.rolling_mean(volume, lookback)[before]
        weak_low = weak_high = volume[now] < prev_mean
        ind_ok = np.isfinite(prev_mean) & np.isfinite(volume[now])
    labels = np.full_like(close, np.nan)
    bullish = (close[now] < low[before]) & weak_low
    bearish = (close[now] > high[before]) & weak_high
    labels[now] = bullish
    labels[now] -= bearish  # a close cannot be both below the low and above the high
    defined = np.zeros(close.shape, dtype=bool)
    defined[now] = np.isfinite(low[before]) & np.isfinite(close[now]) & ind_ok
    labels[~defined] = np.nan
    # latest event within the last ``hold`` bars, carried forward (a short-lived signal)
    events = pd.DataFrame(np.where(labels != 0, labels, np.nan))
    signal = events.ffill(limit=hold - 1).to_numpy() if hold > 1 else events.to_numpy()
    signal = np.where(np.isnan(signal), 0.0, signal)
    signal[~defined] = np.nan
    return signal, labels, obv


# ----------------------------------------------------------- clustering (walk-forward)


def cluster_features(
    close: np.ndarray, volume: np.ndarray, zscore_window: int, relvol_window: int
) -> list[np.ndarray]:
    """Per (date, ticker): volume z-score, log relative volume, daily return.

    z = (ln V_t - mean ln V) / sd ln V over ``zscore_window`` bars ending at t;
    relvol = ln(V_t / mean V over ``relvol_window`` bars ending at t); r_t = daily return.
    Three (dates x tickers) arrays, NaN where undefined.
    """
    lv = _log_volume(volume)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, sd = rl.rolling_mean_std(lv, zscore_window)
        z = _divide(lv - mean, sd)
        relvol = volume / rl.rolling_mean(volume, relvol_window)
        relvol[~(relvol > 0)] = np.nan
        np.log(relvol, out=relvol)
    return [z, relvol, rl.daily_returns(close)]


# ------------------------------------------------------------------------ classes


def _close_volume(data: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """The adjusted close and the split-consistent volume."""
    return as_array(data.adj_close), rl.causal_split_volume(data.volume, data.splits)


class _VolumeModel(Model):
    family = "volume"
    output_kind = SIGNAL
    requires = ("volume",)


class VolumeWeightedModel(_VolumeModel):
    """Price against its rolling VWAP, and the on-balance-volume trend.

    Parameters
    ----------
    anchor : {"vwap", "vwma"}
        Reference average: VWAP of the typical price (H+L+C)/3, or the volume-weighted
        moving average of the close.

    Notes
    -----
    ``VWAP_t = sum TP_i V_i / sum V_i`` over the window, ``TP = (H + L + C) / 3`` on the
    adjusted scale (close alone where the source has no high/low);
    ``OBV_t = OBV_{t-1} + sign(dC_t) V_t``; see :func:`volume_weighted_signal`.
    Extras: ``vwap``, ``vwma``, ``obv`` (in split-consistent shares of the first date).

    References
    ----------
    Granville, J. (1963). Granville's New Key to Stock Market Profits. Berkowitz, S.,
    Logue, D., Noser, E. (1988). The total cost of transactions on the NYSE. Journal of
    Finance 43(1), 97-112 (VWAP as the benchmark price).
    """

    description = "Price vs rolling VWAP plus on-balance-volume trend"
    param_specs = {
        "window": IntParam(5, 252, default=20, help="VWAP window, trading days"),
        "obv_window": IntParam(5, 252, default=20, help="OBV trend window, trading days"),
        "anchor": ChoiceParam(
            ("vwap", "vwma"),
            default="vwap",
            help="vwap: typical-price VWAP; vwma: volume-weighted MA of close",
        ),
        "price_weight": FloatParam(
            0.0,
            1.0,
            default=0.5,
            step=0.05,
            help="Weight of price vs anchor (OBV trend gets the rest)",
        ),
    }

    def min_history(self) -> int:
        return max(self.window, self.obv_window) + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        close, vol = _close_volume(data)
        typical = close  # where the source has no high/low
        if data.has_ohlc:
            high, low, close = adjusted_ohlc(data)
            typical = (high + low + close) / 3.0
        signal, vwap, vwma, obv = volume_weighted_signal(close, typical, vol, **self.get_params())
        return signal_output(data, signal, {"vwap": vwap, "vwma": vwma, "obv": obv})


class VolumePriceRelationshipModel(_VolumeModel):
    """Correlation of returns with volume changes, and price/volume trend agreement.

    Parameters
    ----------
    trend_window : int
        Horizon of the price trend and of the volume trend (mean volume of the last n
        bars against the n before).
    pair : {"returns", "abs_returns"}
        Correlate volume changes with signed returns (directional) or with absolute
        returns (activity), the latter signed by the price trend.

    Notes
    -----
    See :func:`volume_price_relationship`. Extras: ``correlation``, ``divergence``
    (+1 price falling on shrinking volume, -1 price rising on shrinking volume).

    References
    ----------
    Karpoff, J. (1987). The relation between price changes and trading volume: a
    survey. Journal of Financial and Quantitative Analysis 22(1), 109-126.
    Granville, J. (1963). Granville's New Key to Stock Market Profits.
    """

    description = "Return/volume correlation and price-volume divergence"
    param_specs = {
        "corr_window": IntParam(10, 252, default=20, help="Correlation window, trading days"),
        "trend_window": IntParam(5, 126, default=20, help="Price and volume trend horizon"),
        "pair": ChoiceParam(
            ("returns", "abs_returns"),
            default="returns",
            help="Correlate volume changes with returns or |returns|",
        ),
    }

    def min_history(self) -> int:
        return max(self.corr_window + 1, 2 * self.trend_window)

    def _compute(self, data: MarketData) -> ModelOutput:
        signal, corr, div = volume_price_relationship(*_close_volume(data), **self.get_params())
        return signal_output(data, signal, {"correlation": corr, "divergence": div})


class VolumeMomentumModel(_VolumeModel):
    """Short/long volume ratio, signed by the price direction.

    Notes
    -----
    ``s_t = sign(P_t / P_{t-h} - 1) tanh(ln(mean_a V / mean_b V) / k)``.
    Extras: ``volume_ratio``.

    References
    ----------
    Lee, C., Swaminathan, B. (2000). Price momentum and trading volume. Journal of
    Finance 55(5), 2017-2069.
    """

    description = "Volume momentum (short/long volume ratio) signed by price direction"
    param_specs = {
        "short_window": IntParam(2, 63, default=5, help="Short volume average, days"),
        "long_window": IntParam(10, 252, default=50, help="Long volume average, days"),
        "price_window": IntParam(2, 126, default=10, help="Price direction horizon, days"),
        "sensitivity": FloatParam(
            0.05, 2.0, default=0.25, step=0.05, help="Log volume ratio giving a 0.76 signal"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("short_window", "long_window", hint="; e.g. 5 and 50")

    def min_history(self) -> int:
        return max(self.long_window, self.price_window + 1)

    def _compute(self, data: MarketData) -> ModelOutput:
        signal, ratio = volume_momentum(*_close_volume(data), **self.get_params())
        return signal_output(data, signal, {"volume_ratio": ratio})


class VolumeDivergenceModel(_VolumeModel):
    """Bullish / bearish divergences between price extremes and volume.

    Parameters
    ----------
    lookback : int
        Bars before t that define the previous high / low (and the volume average).
    indicator : {"obv", "volume"}
        What must confirm a new price extreme: OBV making its own new extreme, or
        volume at or above its average.

    Notes
    -----
    See :func:`volume_divergence`. Labels are set on the detection day t from bars up
    to t only. Extras: ``divergence`` (+1 bullish, -1 bearish, 0 none, NaN
    undefined), ``obv``.

    References
    ----------
    Granville, J. (1963). Granville's New Key to Stock Market Profits. Murphy, J. (1999).
    Technical Analysis of the Financial Markets, ch. 7 (volume confirmation).
    """

    description = "Price highs/lows not confirmed by OBV or volume"
    param_specs = {
        "lookback": IntParam(5, 252, default=20, help="Window of the previous extremes, days"),
        "indicator": ChoiceParam(
            ("obv", "volume"), default="obv", help="Confirmation by OBV extremes or by volume level"
        ),
        "hold": IntParam(1, 63, default=5, help="Days a divergence signal persists"),
    }

    def min_history(self) -> int:
        return self.lookback + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        signal, labels, obv = volume_divergence(*_close_volume(data), **self.get_params())
        return signal_output(data, signal, {"divergence": labels, "obv": obv})


class VolumeClusteringModel(_VolumeModel):
    """Walk-forward k-means on volume features; signal from each cluster's past edge.

    Parameters
    ----------
    random_state : int
        Seed of the sampling and of k-means.

    Notes
    -----
    See :func:`~mltrainer.models._volume_clusters.walk_forward_clusters`. Why the
    t-statistic of the excess next-day return and not the sign of the mean: daily equity
    returns drift up, so the raw mean of almost every cluster is positive and its sign
    carries no information; the excess over the pooled mean isolates what the volume
    state adds, and dividing by its standard error shrinks clusters with few or noisy
    members toward 0. Extras:
    ``cluster`` (0 = lowest relative volume). ``tables["refits"]``: each refit's
    centroids and statistics (walk-forward, each from its own training window).

    References
    ----------
    Lloyd, S. (1982). Least squares quantization in PCM. IEEE Trans. Inf. Theory 28(2).
    Gervais, S., Kaniel, R., Mingelgrin, D. (2001). The high-volume return premium.
    Journal of Finance 56(3), 877-919.
    """

    description = "Walk-forward k-means volume regimes, signal from past next-day returns"
    param_specs = {
        "n_clusters": IntParam(2, 8, default=4, help="Number of clusters"),
        "refit_every": IntParam(
            21, 1260, default=252, step=21, help="Trading days between refits (252 = yearly)"
        ),
        "min_train": IntParam(
            126, 2520, default=504, step=21, help="Days of history before the first refit"
        ),
        "train_window": IntParam(
            252, 5040, default=1260, step=21, help="Trailing days each refit learns from"
        ),
        "zscore_window": IntParam(20, 252, default=60, help="Volume z-score window, days"),
        "relvol_window": IntParam(5, 126, default=20, help="Relative volume window, days"),
        "sample_size": IntParam(
            1000, 50000, default=5000, step=1000, help="Pooled rows per k-means fit (seeded sample)"
        ),
        "t_scale": FloatParam(
            0.5, 10.0, default=2.0, step=0.5, help="t-statistic giving a 0.76 signal"
        ),
        "random_state": IntParam(0, 1_000_000, default=0, help="Seed"),
    }

    def _check_params(self) -> None:
        if self.min_train <= self.zscore_window + 1:
            raise ParameterError(
                f"min_train ({self.min_train}) must exceed zscore_window "
                f"({self.zscore_window}) so the first refit has features to learn from"
            )

    def min_history(self) -> int:
        return self.min_train + 1

    def _compute(self, data: MarketData) -> ModelOutput:
        close, vol = _close_volume(data)
        params = self.get_params()
        windows = params.pop("zscore_window"), params.pop("relvol_window")
        feats = cluster_features(close, vol, *windows)
        # r_{t+1} is only read for training rows at least two bars before a refit
        next_ret = np.full_like(close, np.nan)
        next_ret[:-1] = rl.daily_returns(close)[1:]
        signal, labels, rows = walk_forward_clusters(feats, next_ret, **params)
        table = pd.DataFrame(rows)
        if len(table):
            table.insert(0, "refit_date", data.dates[table.pop("refit_row").to_numpy()])
        return signal_output(data, signal, {"cluster": labels}, {"refits": table})


MODELS = (
    VolumeWeightedModel,
    VolumePriceRelationshipModel,
    VolumeMomentumModel,
    VolumeDivergenceModel,
    VolumeClusteringModel,
)
