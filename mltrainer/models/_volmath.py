"""Volatility maths on (dates x tickers) arrays: estimators, HAR, clustering, regimes.

Pure functions used by :mod:`mltrainer.models.volatility`. Rows are trading dates
(oldest first), columns tickers; every value at row t uses rows up to t only.
Variances are daily and in decimal units unless stated; :func:`annualise` turns
them into annualised volatilities (``sqrt(252 * variance)``).

Walk-forward fits (HAR) use a calendar refit schedule
(:func:`mltrainer.numerics.schedule.calendar_refit_rows`): the estimate applied from
refit row r on uses samples whose *target* date is strictly before r, so adding later
data never changes an earlier output.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mltrainer.numerics import rolling as rl
from mltrainer.numerics.autocorrelation import rolling_acfs
from mltrainer.numerics.units import SQRT_TRADING_DAYS, TRADING_DAYS

RANGE_ESTIMATORS = ("parkinson", "garman_klass", "rogers_satchell", "yang_zhang")

# --------------------------------------------------------------------- basics


def annualise(variance: np.ndarray) -> np.ndarray:
    """Annualised volatility ``sqrt(252 * v)`` of a daily variance (NaN where v < 0)."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(TRADING_DAYS * np.where(variance >= 0, variance, np.nan))


def log_returns(adj_close: np.ndarray) -> np.ndarray:
    """``ln(P_t / P_{t-1})`` (NaN at the first row, around gaps and for P <= 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        logp = np.log(np.where(adj_close > 0, adj_close, np.nan))
    return logp - rl.lag(logp, 1)


def rolling_volatility(returns: np.ndarray, window: int) -> np.ndarray:
    """Annualised sample standard deviation (ddof 1) of the last ``window`` returns."""
    return rl.rolling_std(returns, window) * SQRT_TRADING_DAYS


# --------------------------------------------------------------- classification

QUANTILE_STEP = 5  # the past distribution is read from every 5th day's value


def expanding_quantiles(
    values: np.ndarray, quantiles: tuple[float, ...], min_periods: int, step: int = QUANTILE_STEP
) -> list[np.ndarray]:
    """Past-only quantiles of each column, from every ``step``-th row up to t.

    Row t gets the quantiles (linear interpolation, numpy/pandas default) of the
    values at rows ``0, step, 2 step, ... <= t``; NaN until ``min_periods / step``
    such values are finite. A rolling volatility changes slowly (consecutive 21-day
    windows share 20 days), so one value a week describes its history as well as all
    of them, and the expanding quantiles cost a fifth (pandas' expanding quantile is
    a skip list per column, the slowest step of the family otherwise).
    """
    n_rows = values.shape[0]
    sampled = pd.DataFrame(values[::step], copy=False)
    window = sampled.expanding(min_periods=max(2, math.ceil(min_periods / step)))
    return [np.repeat(window.quantile(q).to_numpy(), step, axis=0)[:n_rows] for q in quantiles]


def band_classes(
    values: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class against two boundaries, a confidence in [0, 1] and a band score.

    Class 0 if ``v <= low``, 2 if ``v > high``, else 1. With ``mid = (low + high) / 2``
    and ``half = (high - low) / 2``: ``score = (v - mid) / half`` (below -1: low class,
    above 1: high, like a z-score with threshold 1) and ``confidence = min(|v - low|,
    |v - high|) / half`` capped at 1 (0 on a boundary, 1 in the middle of the band or
    at least half a band inside an outer class). NaN where v or a boundary is
    undefined or the band is empty.
    """
    half = 0.5 * (high - low)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (values - 0.5 * (high + low)) / half
        conf = np.minimum(np.minimum(np.abs(values - low), np.abs(values - high)) / half, 1.0)
        cls = np.where(values <= low, 0.0, np.where(values > high, 2.0, 1.0))
        undefined = np.isnan(values) | ~(half > 0)
    for a in (cls, conf, score):
        a[undefined] = np.nan
    return cls, conf, score


def min_duration_filter(raw: np.ndarray, min_duration: int) -> np.ndarray:
    """Adopt a new label only after it has held for ``min_duration`` consecutive days.

    The state machine "switch to the raw label once it has persisted m days" equals,
    per column, the raw label at the latest row s <= t whose run length is >= m
    (forward-filled), so it is computed without a loop over days. The result is NaN
    where the raw label is NaN (the level is undefined that day) and before the
    first confirmed label.
    """
    raw = np.asarray(raw, dtype="float64")
    n_rows = raw.shape[0]
    if n_rows == 0 or min_duration <= 1:
        return raw.copy()
    rows = np.arange(n_rows)[:, None]
    same = np.vstack([np.zeros((1, raw.shape[1]), bool), raw[1:] == raw[:-1]])
    run_start = np.maximum.accumulate(np.where(same, 0, rows), axis=0)
    run_length = rows - run_start + 1
    ok = (run_length >= min_duration) & ~np.isnan(raw)
    # forward fill: the latest confirmed row at or before t (-1: none yet)
    last = np.maximum.accumulate(np.where(ok, rows, -1), axis=0)
    out = np.take_along_axis(raw, np.maximum(last, 0), axis=0)
    out[(last < 0) | np.isnan(raw)] = np.nan
    return out


def rolling_log_zscore(vol: np.ndarray, lookback: int) -> np.ndarray:
    """``(ln v_t - mean) / std`` with mean and std of ln v over the last ``lookback`` days."""
    with np.errstate(invalid="ignore", divide="ignore"):
        lv = np.log(np.where(vol > 0, vol, np.nan))
        mu, sd = rl.rolling_mean_std(lv, lookback)
        return np.where(sd > 0, (lv - mu) / sd, np.nan)


# ------------------------------------------------------------ range estimators


def range_terms(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray
) -> dict[str, np.ndarray]:
    """Log price ratios of each bar: ``hl = ln(H/L)``, ``co = ln(C/O)``, ``hc``, ``ho``,
    ``lc``, ``lo`` and the overnight ``oc = ln(O_t / C_{t-1})`` (NaN on the first row)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        lo_, lh, ll, lc_ = (np.log(np.where(x > 0, x, np.nan)) for x in (o, h, low, c))
    return {
        "hl": lh - ll,
        "co": lc_ - lo_,
        "hc": lh - lc_,
        "ho": lh - lo_,
        "lc": ll - lc_,
        "lo": ll - lo_,
        "oc": lo_ - rl.lag(lc_, 1),
    }


def parkinson_daily(t: dict) -> np.ndarray:
    """Parkinson (1980): ``ln(H/L)^2 / (4 ln 2)``."""
    return t["hl"] ** 2 / (4.0 * math.log(2.0))


def garman_klass_daily(t: dict) -> np.ndarray:
    """Garman and Klass (1980): ``0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2``."""
    return 0.5 * t["hl"] ** 2 - (2.0 * math.log(2.0) - 1.0) * t["co"] ** 2


def rogers_satchell_daily(t: dict) -> np.ndarray:
    """Rogers and Satchell (1991): ``ln(H/C) ln(H/O) + ln(L/C) ln(L/O)`` (drift-free)."""
    return t["hc"] * t["ho"] + t["lc"] * t["lo"]


def yang_zhang_k(window: int) -> float:
    """Yang and Zhang's weight ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``."""
    return 0.34 / (1.34 + (window + 1.0) / (window - 1.0))


def range_variance(terms: dict, estimator: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily variance proxy and its ``window``-day estimate for one range estimator.

    Returns ``(daily, windowed)``. For Parkinson, Garman-Klass and Rogers-Satchell the
    windowed estimate is the mean of the daily values over the window. Yang-Zhang
    (2000) is a window estimator: ``s_o^2 + k s_c^2 + (1 - k) mean(RS)`` with ``s_o^2``,
    ``s_c^2`` the sample variances (ddof 1) of the overnight ``ln(O_t/C_{t-1})`` and
    open-to-close ``ln(C/O)`` returns; its daily proxy (used by HAR) is the zero-drift
    version ``o_t^2 + k c_t^2 + (1 - k) RS_t``.
    """
    if estimator == "parkinson":
        daily = parkinson_daily(terms)
    elif estimator == "garman_klass":
        daily = garman_klass_daily(terms)
    elif estimator == "rogers_satchell":
        daily = rogers_satchell_daily(terms)
    elif estimator == "yang_zhang":
        k = yang_zhang_k(window)
        oc, co = terms["oc"], terms["co"]
        rs = rogers_satchell_daily(terms)
        daily = oc * oc + k * co * co + (1.0 - k) * rs
        # one validity mask for all five window sums (a bar counts when all are finite);
        # log returns sit near zero, so plain sums of squares lose no precision
        bad = rl.bad_windows(np.isfinite(daily), window)
        ok = ~np.isnan(daily)

        def wsum(a: np.ndarray) -> np.ndarray:
            return rl.rolling_sum(np.where(ok, a, 0.0), window, bad)

        n = float(window)
        s_o, s_c = wsum(oc), wsum(co)
        var_o = (wsum(oc * oc) - s_o * s_o / n) / (n - 1.0)
        var_c = (wsum(co * co) - s_c * s_c / n) / (n - 1.0)
        return daily, var_o + k * var_c + (1.0 - k) * wsum(rs) / n
    else:
        raise ValueError(f"estimator must be one of {RANGE_ESTIMATORS} (got {estimator!r})")
    return daily, rl.rolling_mean(daily, window)


# ------------------------------------------------------------------------ HAR

HAR_TERMS = ("const", "daily", "weekly", "monthly")
_HAR_SCALE = 1e4  # fit in percent^2 so the normal equations are well scaled


def har_features(rv: np.ndarray) -> list[np.ndarray]:
    """HAR regressors at each row: ``[1, RV_t, mean(RV_{t-4..t}), mean(RV_{t-21..t})]``.

    A list of four (dates, tickers) arrays; NaN where a window is incomplete.
    """
    ones = np.where(np.isfinite(rv), 1.0, np.nan)
    return [ones, rv, rl.rolling_mean(rv, 5), rl.rolling_mean(rv, 22)]


def har_walk_forward(
    rv: np.ndarray, refits: np.ndarray, pooled: bool, min_obs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """HAR-RV (Corsi 2009) refitted by OLS on a schedule, forecasting ``RV_{t+1}`` at t.

    ``RV_{t+1} = b0 + b_d RV_t + b_w RV^{(5)}_t + b_m RV^{(22)}_t + e``. The fit applied
    from refit row ``r_k`` on uses every sample whose target row ``t + 1`` is < r_k
    (expanding window). Normal equations are accumulated per refit block and
    cumulated, so each refit costs one 4x4 solve (per ticker when not pooled); the
    regression runs on ``RV * 1e4`` (percent squared) to keep them well scaled.

    Parameters
    ----------
    rv : (T, N) daily variance proxy
    refits : increasing refit rows (a calendar schedule)
    pooled : one regression on all tickers' samples, else one per ticker
    min_obs : samples needed per ticker (per ticker), or dates with a sample (pooled)

    Returns
    -------
    forecast : (T, N) forecast of ``RV_{t+1}`` made at t (NaN before the first usable
        fit and where the forecast is not positive)
    coefs : (K, N or 1, 4) coefficients per refit, in rv units (NaN if not fitted)
    counts : (K, N or 1) samples (dates when pooled) behind each fit
    refits : the refit rows used (K)
    """
    n_rows, n_cols = rv.shape
    refits = np.asarray(refits, dtype=int)
    refits = refits[(refits > 1) & (refits < n_rows)]
    n_fit = len(refits)
    width = 1 if pooled else n_cols
    coefs = np.full((n_fit, width, 4), np.nan)
    cnt = np.zeros((n_fit, width), dtype=np.int64)
    forecast = np.full_like(rv, np.nan)  # in the panel's layout
    if n_fit == 0:
        return forecast, coefs, cnt, refits
    feats = har_features(rv)
    z, ok = _har_samples(rv, feats)
    # block b holds targets s in [r_{b-1}, r_b) (block 0 from s = 1); fit k uses blocks <= k
    starts = np.concatenate([[0], refits - 1])
    ends = np.append(starts[1:], z.shape[0])
    cross = np.empty((n_fit, width, 5, 5))
    running = np.zeros((width, 5, 5))
    spec = "rni,rnj->ij" if pooled else "rni,rnj->nij"
    for k, (lo, hi) in enumerate(zip(starts[:n_fit], ends[:n_fit], strict=True)):
        # each block's cross-product sums in one einsum: no (dates x tickers) temporaries
        running += np.einsum(spec, z[lo:hi], z[lo:hi], optimize=True).reshape(width, 5, 5)
        cross[k] = running
    xtx, xty = cross[..., :4, :4], cross[..., :4, 4]
    if pooled:
        dates_ok = ok.any(axis=1).astype(np.int64)
        cnt[:] = np.cumsum(np.add.reduceat(dates_ok, starts))[:n_fit, None]
    else:
        cnt[:] = np.rint(xtx[..., 0, 0]).astype(np.int64)  # sum of the 0/1 sample mask
    enough = cnt >= max(min_obs, 4)
    if enough.any():
        coefs[enough] = _solve_normal(xtx[enough], xty[enough])
    coefs[..., 0] /= _HAR_SCALE  # intercept back to rv units; slopes are unit-free

    # fit k applies on rows [r_k, r_{k+1})
    ends = np.append(refits[1:], n_rows)
    for k, (lo, hi) in enumerate(zip(refits, ends, strict=True)):
        b = coefs[k]  # (width, 4), broadcast over the rows of the block
        forecast[lo:hi] = (
            b[:, 0]
            + b[:, 1] * feats[1][lo:hi]
            + b[:, 2] * feats[2][lo:hi]
            + b[:, 3] * feats[3][lo:hi]
        )
    with np.errstate(invalid="ignore"):
        forecast[~(forecast > 0)] = np.nan
    return forecast, coefs, cnt, refits


def _har_samples(rv: np.ndarray, feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The HAR samples ``[1, d, w, m, y]`` (times 1e4) and which of them are complete.

    Sample s (target row s >= 1) takes its regressors from row s - 1 and its target
    from row s. Shape (samples, tickers, 5), zeros where a sample is incomplete, each
    ``z[..., i]`` laid out like the panel so that filling it is a contiguous copy.
    """
    ys = rv[1:] * _HAR_SCALE
    ok = np.isfinite(ys)
    for f in feats[1:]:
        ok &= np.isfinite(f[:-1])
    column_major = ys.flags.f_contiguous and not ys.flags.c_contiguous
    z = (
        np.zeros((5,) + ys.shape[::-1]).transpose(2, 1, 0)
        if column_major
        else np.zeros(ys.shape + (5,))
    )
    z[..., 0] = ok
    for i in (1, 2, 3):
        np.multiply(feats[i][:-1], _HAR_SCALE, out=z[..., i], where=ok)
    np.copyto(z[..., 4], ys, where=ok)
    return z, ok


def har_table(
    coefs: np.ndarray, counts: np.ndarray, refit_dates: pd.DatetimeIndex, tickers: list | None
) -> pd.DataFrame:
    """The fitted HAR coefficients and sample counts, one row per refit (and ticker).

    From :func:`har_walk_forward`'s ``coefs`` and ``counts`` on the dates of its
    refits; ``tickers`` None for a pooled fit (then indexed by refit date only). Refits
    without a fit are left out.
    """
    names = ["pooled"] if tickers is None else tickers
    idx = pd.MultiIndex.from_product([refit_dates, names], names=["refit_date", "ticker"])
    table = pd.DataFrame(coefs.reshape(-1, 4), index=idx, columns=list(HAR_TERMS))
    table["n_obs"] = counts.reshape(-1)
    table = table.dropna(subset=["const"])
    return table.droplevel("ticker") if tickers is None else table


def _solve_normal(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Batched ``solve(X'X, X'y)`` by Cholesky, vectorised over the batch.

    One LAPACK call per 4x4 system costs more than the arithmetic (there are
    refits x tickers of them), so the factorisation is written out on (batch,)
    arrays. A system that is not positive definite (a degenerate sample) gives NaN.
    """
    n = xtx.shape[-1]
    a = [[np.ascontiguousarray(xtx[:, i, j]) for j in range(n)] for i in range(n)]
    low: list[list] = [[None] * n for _ in range(n)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(n):
            d = a[j][j] - sum(low[j][k] ** 2 for k in range(j))
            low[j][j] = np.sqrt(np.where(d > 0, d, np.nan))
            for i in range(j + 1, n):
                dot = sum(low[i][k] * low[j][k] for k in range(j))
                low[i][j] = (a[i][j] - dot) / low[j][j]
        z = []
        for i in range(n):  # L z = X'y
            z.append((xty[:, i] - sum(low[i][k] * z[k] for k in range(i))) / low[i][i])
        beta = [None] * n
        for i in reversed(range(n)):  # L' beta = z
            tail = sum(low[k][i] * beta[k] for k in range(i + 1, n))
            beta[i] = (z[i] - tail) / low[i][i]
    return np.stack(beta, axis=-1)


# ----------------------------------------------------------------- clustering


def clustering_acfs(returns: np.ndarray, window: int, n_lags: int, measure: str) -> np.ndarray:
    """Rolling autocorrelations of |r| (or r^2) at lags 1..n_lags, shape (n_lags, T, N).

    Their mean is the persistence score: near 0 for independent returns, clearly
    positive when large moves follow large moves (volatility clustering).
    """
    x = np.abs(returns) if measure == "abs" else returns * returns
    return rolling_acfs(x, window, n_lags)
