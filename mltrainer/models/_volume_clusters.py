"""Walk-forward k-means of the volume clustering model, refitted from past data only.

The features of every (date, ticker) are pooled over tickers; each refit learns from a
trailing window of rows that end two bars before it (so their next-day return is
known), and labels the rows up to the next refit. Steps: draw the training sample
(:func:`_draw`), fit the centroids (:func:`_fit_centres`), score each cluster by its
training rows' excess next-day return (:func:`_cluster_stats`), label the block
(:func:`_nearest`).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from mltrainer.numerics.schedule import refit_rows, stops
from mltrainer.numerics.threads import single_thread


def walk_forward_clusters(
    features: list[np.ndarray],
    next_return: np.ndarray,
    n_clusters: int,
    refit_every: int,
    min_train: int,
    train_window: int,
    sample_size: int,
    t_scale: float,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """k-means on pooled volume features, refitted on a schedule from past data only.

    Refit dates are rows ``R = min_train, min_train + refit_every, ...``. A refit at R
    uses rows p in ``[R - train_window, R - 2]`` (so the next-day return ``r_{p+1}`` is
    known before R) with all features finite, pooled over tickers. A seeded random
    sample of ``sample_size`` of them fits k-means on features standardised with that
    sample's mean and sd (clipped to +-5); the first fit uses k-means++ (3 starts), later
    ones start from the previous refit's centroids, which keeps clusters comparable
    from one refit to the next. Clusters are then ordered by their centroid's relative
    volume (label 0 = quietest), so labels mean the same across refits. Each cluster's
    signal is ``tanh(t_k / t_scale)``, ``t_k = (mean_k - mean) / (sd_k / sqrt(n_k))``:
    the excess next-day return of its training rows over all training rows, in
    standard errors (on a seeded sample of up to ``5 * sample_size`` rows, whose first
    ``sample_size`` rows are the k-means sample). Rows from R up to the next refit get
    the nearest centroid's label and signal; rows before the first refit stay NaN.

    Returns ``(signal, labels, table rows)``.
    """
    n, m = features[0].shape
    flat = [f.reshape(-1) for f in features]
    target = next_return.reshape(-1)
    usable = np.logical_and.reduce([np.isfinite(f) for f in flat])
    train_ok = usable & np.isfinite(target)
    signal = np.full(n * m, np.nan)
    labels = np.full(n * m, np.nan)
    rows: list[dict] = []
    previous = None  # last refit's centroids, original units, ordered
    refits = refit_rows(n, min_train, refit_every)
    # one thread: on a few thousand rows OpenMP/BLAS start-up costs more than it saves
    with single_thread():
        for k, (start, stop) in enumerate(zip(refits, stops(refits, n), strict=True)):
            lo = max(0, start - train_window)
            cand = np.flatnonzero(train_ok[lo * m : (start - 1) * m]) + lo * m
            if cand.size < max(20 * n_clusters, 100):
                continue  # too little history for this refit: its rows stay NaN
            rng = np.random.default_rng([random_state, k])
            fit_rows, stat_rows = _draw(cand, sample_size, rng)
            fit_x = np.column_stack([f[fit_rows] for f in flat])
            centres, mu, sd = _fit_centres(fit_x, previous, n_clusters, random_state)
            previous = centres * sd + mu
            stats = _cluster_stats(
                target[stat_rows], _nearest(flat, stat_rows, centres, mu, sd), n_clusters, t_scale
            )
            rows += [
                {
                    "refit_row": start,
                    "cluster": c,
                    "volume_z": previous[c, 0],
                    "log_rel_volume": previous[c, 1],
                    "return": previous[c, 2],
                    **row,
                }
                for c, row in enumerate(stats)
            ]
            # the block of rows this refit labels, until the next refit (a slice, no gather)
            block = slice(start * m, stop * m)
            lab = _nearest(flat, block, centres, mu, sd)
            ok = usable[block]
            labels[block] = np.where(ok, lab, np.nan)
            signal[block] = np.where(ok, np.array([r["signal"] for r in stats])[lab], np.nan)
    return signal.reshape(n, m), labels.reshape(n, m), rows


def _draw(
    cand: np.ndarray, sample_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One seeded draw of training rows: the k-means sample and the statistics sample.

    The draw's first ``sample_size`` rows (a uniform subset of a uniform subset) fit
    k-means; all of it (up to ``5 * sample_size`` rows) measures the clusters' next-day
    returns.
    """
    if cand.size > 5 * sample_size:
        drawn = rng.choice(cand, 5 * sample_size, replace=False)
    else:
        drawn = rng.permutation(cand)
    return np.sort(drawn[:sample_size]), np.sort(drawn)


def _standardised(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.clip((x - mu) / sd, -5.0, 5.0)


def _fit_centres(
    fit_x: np.ndarray, previous: np.ndarray | None, n_clusters: int, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means centroids on the standardised sample, ordered by relative volume.

    Returns ``(centres, mu, sd)``: centres in standardised units, and the sample's mean
    and sd that standardise. The first fit uses k-means++ (3 starts); later ones start
    from the ``previous`` refit's centroids (original units).
    """
    mu = fit_x.mean(axis=0)
    sd = fit_x.std(axis=0)
    sd[~(sd > 0)] = 1.0
    if previous is None:
        km = KMeans(n_clusters=n_clusters, n_init=3, random_state=random_state)
    else:
        init = _standardised(previous, mu, sd)
        km = KMeans(n_clusters=n_clusters, init=init, n_init=1, random_state=random_state)
    centres = km.fit(_standardised(fit_x, mu, sd)).cluster_centers_
    return centres[np.argsort(centres[:, 1], kind="stable")], mu, sd


def _nearest(
    flat: list[np.ndarray],
    idx: np.ndarray | slice,
    centres: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
) -> np.ndarray:
    """Labels of the rows ``idx`` (an index array or a slice) of the flat features.

    argmin ``|x - c|^2`` = argmax ``(x.c - |c|^2 / 2)``, feature by feature on 1-D
    columns (no (rows, k, features) temporaries).
    """
    half_sq = 0.5 * (centres**2).sum(axis=1)
    cols = [np.clip((f[idx] - mu[j]) / sd[j], -5.0, 5.0) for j, f in enumerate(flat)]
    best = np.full(cols[0].size, -np.inf)
    lab = np.zeros(cols[0].size, dtype=np.int64)
    for c, centre in enumerate(centres):
        score = cols[0] * centre[0]
        for j in range(1, len(cols)):
            score += cols[j] * centre[j]
        score -= half_sq[c]
        closer = score > best
        best[closer] = score[closer]
        lab[closer] = c
    return lab


def _cluster_stats(
    y: np.ndarray, labels: np.ndarray, n_clusters: int, t_scale: float
) -> list[dict]:
    """Per cluster: sample size, mean next-day return, its excess t-statistic, signal."""
    pooled = y.mean()
    out = []
    for c in range(n_clusters):
        yc = y[labels == c]
        t_stat = 0.0
        if yc.size >= 2 and yc.std(ddof=1) > 0:
            t_stat = (yc.mean() - pooled) / (yc.std(ddof=1) / np.sqrt(yc.size))
        out.append(
            {
                "n_sample": int(yc.size),
                "mean_next_return": float(yc.mean()) if yc.size else np.nan,
                "t_stat": float(t_stat),
                "signal": float(np.tanh(t_stat / t_scale)),
            }
        )
    return out
