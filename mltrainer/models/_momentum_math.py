"""The momentum family's maths: pure, vectorised functions of (dates x tickers) arrays.

Each is the formula of one model of :mod:`mltrainer.models.momentum`, taking that
model's parameters by name; :func:`weighted_signal` combines an ensemble's members and
:class:`MomentumInputs` holds the arrays they share. Prices are the adjusted close;
every value at date t uses rows up to t only, and a ticker without a full window (not
yet listed, a missing bar) is NaN there, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import as_array
from mltrainer.numerics.threads import single_thread


def simple_momentum(
    prices: np.ndarray,
    window: int,
    threshold: float,
    mode: str = "step",
    returns: np.ndarray | None = None,
) -> np.ndarray:
    """Signal from the trailing return ``r = P[t] / P[t-window] - 1``.

    ``mode="step"``: +1 if r > threshold, -1 if r < -threshold, else 0.
    ``mode="linear"``: ``clip(r / threshold, -1, 1)`` (a ramp through the dead band;
    the sign of r when threshold is 0). ``returns``: r, when the caller already has it.
    """
    r = rl.trailing_return(prices, window) if returns is None else returns
    if mode == "step" or threshold == 0:
        return rl.signed_step(r, threshold)
    return np.clip(r / threshold, -1.0, 1.0)


def dual_momentum(
    prices: np.ndarray,
    window: int,
    abs_threshold: float,
    rel_threshold: float,
    benchmark: str = "median",
    combine: str = "both",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute and relative momentum and their combination.

    Returns ``(signal, absolute, relative)``: absolute = step(r, abs_threshold),
    relative = step(r - b, rel_threshold) with b the cross-sectional median (or mean) of
    r over the tickers that have r that day (NaN when fewer than two do),
    ``combine="both"``: the common sign when both agree, else 0; ``"average"``:
    ``(absolute + relative) / 2``.
    """
    r = rl.trailing_return(prices, window)
    count = np.isfinite(r).sum(axis=1, keepdims=True)
    bench = rl.row_nanmedian(r) if benchmark == "median" else rl.row_nanmean(r)
    bench = np.where(count >= 2, bench, np.nan)
    absolute = rl.signed_step(r, abs_threshold)
    relative = rl.signed_step(r - bench, rel_threshold)
    if combine == "both":
        signal = np.where(absolute == relative, absolute, 0.0)
    else:
        signal = 0.5 * (absolute + relative)
    signal[np.isnan(absolute) | np.isnan(relative)] = np.nan
    return signal, absolute, relative


def cross_sectional_momentum(
    prices: np.ndarray, lookback: int, skip: int, mode: str = "rank", quantile: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of the ``lookback``-to-``skip`` return across tickers, mapped to [-1, 1].

    Returns ``(signal, momentum)`` with momentum ``P[t-skip] / P[t-lookback] - 1``,
    defined only where the ticker also has a price at t (it is listed that day).
    ``mode="rank"``: ``2 (rank - 1) / (n - 1) - 1`` over the n tickers with momentum
    that day (average rank for ties). ``mode="quantile"``: +1 for the top ``quantile``
    of that scale, -1 for the bottom, 0 between.
    """
    mom = rl.trailing_return(prices, lookback, skip)
    mom[~np.isfinite(prices)] = np.nan
    score = rl.cross_sectional_rank(mom)
    if mode == "rank":
        return score, mom
    u = (score + 1.0) / 2.0  # position in [0, 1]
    signal = np.where(u >= 1.0 - quantile, 1.0, np.where(u <= quantile, -1.0, 0.0))
    signal[np.isnan(score)] = np.nan
    return signal, mom


def risk_adjusted_momentum(
    prices: np.ndarray,
    window: int,
    vol_window: int,
    scale: float,
    drawdown_window: int,
    max_drawdown: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tanh(z / scale)`` with ``z = ln(P[t]/P[t-w]) / (sigma_d sqrt(w))``, guarded.

    sigma_d is the sample standard deviation of daily log returns over ``vol_window``
    bars ending at t, so z is the trailing move in units of its own noise (a t-statistic
    of the drift). The signal is set to 0 while the drawdown from the highest close of
    the last ``drawdown_window`` bars, ``1 - P[t] / max P``, exceeds ``max_drawdown``.
    Returns ``(signal, z, drawdown)``.
    """
    logp = np.log(prices)
    move = logp - rl.lag(logp, window)
    sigma = rl.rolling_std(rl.diff(logp), vol_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sigma > 0, move / (sigma * np.sqrt(window)), np.nan)
    drawdown = 1.0 - prices / rl.rolling_max(prices, drawdown_window)
    signal = np.tanh(z / scale)
    signal = np.where(drawdown > max_drawdown, 0.0, signal)
    signal[np.isnan(z) | np.isnan(drawdown)] = np.nan
    return signal, z, drawdown


def time_series_momentum(
    prices: np.ndarray,
    short_window: int,
    long_window: int,
    short_weight: float = 0.5,
    returns: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``w sign(r_short) + (1 - w) sign(r_long)`` of the two trailing returns.

    ``returns``: ``(r_short, r_long)``, when the caller already has them.
    """
    if returns is None:
        returns = (
            rl.trailing_return(prices, short_window),
            rl.trailing_return(prices, long_window),
        )
    rs, rlong = returns
    return short_weight * np.sign(rs) + (1.0 - short_weight) * np.sign(rlong)


def volume_confirmed_momentum(
    prices: np.ndarray,
    volume: np.ndarray,
    window: int,
    threshold: float,
    confirm_window: int,
    volume_window: int,
    volume_ratio: float,
    momentum: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simple step momentum kept only where recent volume is above normal.

    ``ratio = mean(V, confirm_window) / mean(V, volume_window)`` (both ending at t,
    split-consistent volume); signal = step momentum where ratio > ``volume_ratio``,
    0 where the move is not confirmed, NaN where either part is undefined.
    ``momentum``: the step momentum, when the caller already has it.
    Returns ``(signal, ratio)``.
    """
    mom = simple_momentum(prices, window, threshold, "step") if momentum is None else momentum
    with np.errstate(invalid="ignore", divide="ignore"):
        base = rl.rolling_mean(volume, volume_window)
        ratio = np.where(base > 0, rl.rolling_mean(volume, confirm_window) / base, np.nan)
    signal = np.where(ratio > volume_ratio, mom, 0.0)
    signal[np.isnan(mom) | np.isnan(ratio)] = np.nan
    return signal, ratio


TODAYS_SECTORS = (
    "sectors are today's for every date (no membership files to date them): a past "
    "ranking uses sectors that may not have existed then"
)


def sector_rotation_momentum(
    prices: np.ndarray,
    spans: list[tuple[int, np.ndarray]],
    sector_names: list,
    window: int,
    n_top: int,
    n_bottom: int,
    sector_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sector ranking plus within-sector relative strength.

    m_i = trailing ``window`` return. Sector momentum M_s = mean of m_i over members
    with data. Sectors are ranked each day (1 = strongest); the top ``n_top`` give +1,
    the bottom ``n_bottom`` -1 (each capped at half the sectors with data), others 0.
    The relative part is ``tanh((m_i - M_s) / sd_s)`` with sd_s the cross-sectional
    standard deviation of m within the sector (0 for a sector's only member with data,
    which sits exactly at its sector mean). signal =
    ``sector_weight * sector part + (1 - sector_weight) * relative part``.

    ``spans``: :meth:`MarketData.sector_codes` (the sectors of each date; -1 unknown, whose
    signal is NaN). Returns ``(signal, sector_momentum, sector_rank)``.
    """
    mom = rl.trailing_return(prices, window)
    rows = [row for row, _ in spans] + [len(mom)]
    blocks = [
        _rotation(mom[a:b], of, len(sector_names), n_top, n_bottom, sector_weight)
        for (a, of), b in zip(spans, rows[1:], strict=True)
    ]
    return tuple(np.concatenate(parts) for parts in zip(*blocks, strict=True))


def _rotation(
    mom: np.ndarray, sector_of: list, n_sec: int, n_top: int, n_bottom: int, sector_weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.asarray(sector_of, dtype=int)
    member = np.zeros((len(idx), n_sec))
    known = idx >= 0
    member[np.flatnonzero(known), idx[known]] = 1.0
    finite = np.isfinite(mom)
    m0 = np.where(finite, mom, 0.0)
    with single_thread():  # three thin (dates x tickers) @ (tickers x sectors) products
        count = finite.astype("float64") @ member
        total = m0 @ member
        total_sq = (m0 * m0) @ member
    with np.errstate(invalid="ignore", divide="ignore"):
        sec_mean = np.where(count > 0, total / count, np.nan)
        sec_sq = np.where(count > 0, total_sq / count, np.nan)
        sec_sd = np.sqrt(np.maximum(sec_sq - sec_mean**2, 0.0) * count / (count - 1.0))
    sec_sd = np.where(count >= 2, sec_sd, np.nan)
    # rank 1 = strongest sector; NaN sectors are left out
    rank = pd.DataFrame(sec_mean).rank(axis=1, ascending=False, method="first").to_numpy()
    n_valid = np.isfinite(sec_mean).sum(axis=1, keepdims=True)
    top = np.minimum(n_top, n_valid // 2)
    bottom = np.minimum(n_bottom, n_valid // 2)
    sec_sig = np.where(rank <= top, 1.0, np.where(rank > n_valid - bottom, -1.0, 0.0))
    sec_sig = np.where(np.isfinite(rank) & (n_valid >= 2), sec_sig, np.nan)

    signal = np.full_like(mom, np.nan)
    if known.any():
        cols = np.flatnonzero(known)
        s_idx = idx[known]
        # np.take, not fancy indexing: several times faster for column gathers
        own = mom if known.all() else np.take(mom, cols, axis=1)
        excess = own - np.take(sec_mean, s_idx, axis=1)
        sd = np.take(sec_sd, s_idx, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            # a lone member (or identical members) is exactly at its sector mean: 0
            rel = np.where(sd > 0, np.tanh(excess / sd), 0.0)
        rel[np.isnan(excess)] = np.nan
        part = sector_weight * np.take(sec_sig, s_idx, axis=1) + (1.0 - sector_weight) * rel
        if known.all():
            signal = part
        else:
            signal[:, cols] = part
    return signal, sec_mean, rank


# ------------------------------------------------------------------------ classes


def weighted_signal(members: Iterable[tuple[np.ndarray, float]], like: np.ndarray) -> np.ndarray:
    """``S = sum_k w_k s_k / sum_k w_k 1[s_k defined]`` per cell, clipped to [-1, 1].

    ``members``: (signal, weight) pairs, read one at a time (pass a generator to
    compute each member's signal only when it is added); the signals are only read
    (they may be shared). NaN where no member is defined; the weights are renormalised
    per cell, so the result stays in [-1, 1] while slower members are still warming up.
    ``like``: an array of the panel's shape and memory layout.
    """
    # accumulate in the panel's own layout: mixing layouts makes every pass strided
    num = np.zeros_like(like)
    den = np.zeros_like(like)
    ok = np.empty(num.shape, dtype=bool, order="F" if num.flags.f_contiguous else "C")
    for s, weight in members:
        np.isfinite(s, out=ok)
        # masked in-place accumulation: no full-size temporaries per member
        np.add(num, s if weight == 1.0 else np.multiply(s, weight), out=num, where=ok)
        np.add(den, weight, out=den, where=ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        num /= den
    num[~(den > 0)] = np.nan
    return np.clip(num, -1.0, 1.0, out=num)


class MomentumInputs:
    """Arrays the momentum models read, computed once per data and then shared.

    Every model builds one for its own run; the momentum ensemble builds one and hands
    it to all its members, so the adjusted close, a trailing return several
    members use (e.g. the 10-day one of Simple, TimeSeries and VolumeConfirmed) and the
    step momentum are computed once. The arrays are shared: read them, never write into
    them.
    """

    def __init__(self, data: MarketData):
        self.data = data
        self.prices = as_array(data.adj_close)
        self._memo: dict[tuple, np.ndarray] = {}

    def trailing_return(self, window: int, skip: int = 0) -> np.ndarray:
        """:func:`~mltrainer.numerics.rolling.trailing_return` of the adjusted close."""
        key = ("return", window, skip)
        if key not in self._memo:
            self._memo[key] = rl.trailing_return(self.prices, window, skip)
        return self._memo[key]

    def step_momentum(self, window: int, threshold: float) -> np.ndarray:
        """:func:`simple_momentum` in step mode."""
        key = ("step", window, threshold)
        if key not in self._memo:
            r = self.trailing_return(window)
            self._memo[key] = simple_momentum(self.prices, window, threshold, returns=r)
        return self._memo[key]
