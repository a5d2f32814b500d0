"""Rolling sample autocorrelations of (dates x tickers) panels, at several lags at once.

A value at row t uses rows t - window + 1 .. t only, and is NaN unless that whole
window is finite (the convention of :mod:`mltrainer.numerics.rolling`).
"""

from __future__ import annotations

import numpy as np

from mltrainer.numerics import rolling as rl


def _layout(x: np.ndarray) -> str:
    """numpy ``order`` of ``x``'s layout: "F" for pandas' column-major panels."""
    return "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """Cumulative sum down the rows with a zero row prepended: ``C[t + 1] = sum x[:t + 1]``.

    Rows are added in date order (:func:`mltrainer.numerics.rolling.cumsum_rows`), so a
    prefix of the data gives a prefix of the sums, which keeps everything built on them
    causal. The result keeps ``x``'s layout (a transposing copy would make every later
    step strided).
    """
    out = np.empty((x.shape[0] + 1,) + x.shape[1:], order=_layout(x))
    out[0] = 0.0
    out[1:] = x
    rl.cumsum_rows(out)  # the zero row adds nothing
    return out


def _window_sums(cum: np.ndarray, n: int) -> np.ndarray:
    """Sum of x over rows ``t - n + 1 .. t`` for every row t, from a :func:`_cumsum0` array.

    NaN for the rows before the first full window.
    """
    n_rows = cum.shape[0] - 1
    out = np.full((n_rows,) + cum.shape[1:], np.nan, order=_layout(cum))
    if n <= n_rows:
        np.subtract(cum[n:], cum[: n_rows + 1 - n], out=out[n - 1 :])
    return out


def rolling_acfs(x: np.ndarray, window: int, lags: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..``lags`` of x over the last ``window`` rows.

    The estimator of statsmodels' ``acf`` (``adjusted=False``): with m the window
    mean, ``rho_k = sum_s (x_s - m)(x_{s-k} - m) / sum_s (x_s - m)^2``, the numerator
    over the ``window - k`` pairs inside the window, expanded into window sums
    ``sum x_s x_{s-k} - m (head_k + tail_k) + (window - k) m^2`` taken from cumulative
    sums (one per lag for the cross products). Shape (lags, T, N); NaN unless the
    whole window is finite.
    """
    n = window
    n_rows = x.shape[0]
    valid = np.isfinite(x)
    x0 = np.where(valid, x, 0.0)
    c1 = _cumsum0(x0)
    s1 = _window_sums(c1, n)
    s2 = _window_sums(_cumsum0(x0 * x0), n)
    m = s1 / n
    den = s2 - n * m * m
    undefined = rl.bad_windows(valid, n) | ~(den > 1e-14 * s2)
    # each lag's (T, N) slice in x's layout
    out = (
        np.empty((lags,) + x.shape[::-1]).transpose(0, 2, 1)
        if _layout(x0) == "F"
        else np.empty((lags,) + x.shape)
    )
    out[:, : n - 1] = np.nan  # no full window yet
    if n_rows < n:
        return out
    # Only rows t >= n - 1 (full windows) are computed, in place in reused buffers:
    # whole-panel temporaries per lag cost more than the arithmetic.
    full = slice(n - 1, None)
    m_f, den_f, two_s1 = m[full], den[full], 2.0 * s1[full]
    cum = np.empty_like(c1)
    ends, tail = np.empty_like(m_f), np.empty_like(m_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(1, lags + 1):
            # cum[t + 1] = sum of x_s x_{s-k} for s <= t (0 before the data)
            cum[: k + 1] = 0.0
            np.multiply(x0[k:], x0[:-k], out=cum[k + 1 :])
            rl.cumsum_rows(cum)
            num = out[k - 1, full]
            np.subtract(cum[n:], cum[k : n_rows + 1 - n + k], out=num)  # the n - k pairs
            # head + tail = the window sum twice, less its first k and its last k values
            np.subtract(c1[n:], c1[n - k : n_rows + 1 - k], out=ends)
            np.subtract(c1[k : n_rows + 1 - n + k], c1[: n_rows + 1 - n], out=tail)
            ends += tail
            ends -= two_s1
            ends *= m_f  # -m (head + tail)
            num += ends
            np.multiply(n - k, m_f, out=tail)
            tail *= m_f
            num += tail  # (n - k) m^2
            num /= den_f
            np.copyto(num, np.nan, where=undefined[full])
    return out
