"""Covariance estimation and validation: the input of every portfolio optimiser.

Pure functions on numpy arrays or pandas objects. A covariance given as a DataFrame
keeps its labels through the optimisers (:mod:`mltrainer.measures.allocation`): weights
come back as a Series with the same labels, otherwise as arrays. Nothing here
annualises: daily returns give a daily covariance.

References
----------
Ledoit, O., Wolf, M. (2004). A well-conditioned estimator for large-dimensional
covariance matrices. *Journal of Multivariate Analysis* 88(2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.errors import DataError, ParameterError

COVARIANCES = ("ledoit_wolf", "sample", "ewma")
SINGULAR_RTOL = 1e-10  # smallest eigenvalue / largest below which a covariance is singular


def labels_of(obj: object) -> pd.Index | None:
    """The asset labels of a matrix (its columns) or a vector (its index); None for arrays."""
    if isinstance(obj, pd.DataFrame):
        return obj.columns
    if isinstance(obj, pd.Series):
        return obj.index
    return None


def labelled(values: np.ndarray, names: pd.Index | None) -> pd.Series | np.ndarray:
    """``values`` as a Series on ``names``, or unchanged when there are no labels."""
    return pd.Series(values, index=names) if names is not None else values


def check_covariance(cov: pd.DataFrame | np.ndarray, *, allow_singular: bool = False) -> np.ndarray:
    """Validate a covariance matrix and return it as a float array.

    Raises DataError when it is not square, not finite, not symmetric, has a negative
    eigenvalue (not positive semi-definite) or, unless ``allow_singular``, is singular;
    the message names perfectly correlated columns when that is the cause.
    """
    names = labels_of(cov)
    s = np.asarray(cov, dtype="float64")
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise DataError(f"covariance must be a non-empty square matrix (got shape {s.shape})")
    if not np.isfinite(s).all():
        raise DataError("covariance has NaN or infinite entries (an asset without enough data?)")
    scale = max(np.abs(s).max(), 1e-300)
    if not np.allclose(s, s.T, rtol=1e-8, atol=1e-12 * scale):
        raise DataError("covariance is not symmetric")
    eig = np.linalg.eigvalsh(s)
    if eig[-1] <= 0:
        raise DataError("covariance is zero: every asset has zero variance")
    if eig[0] < -1e-8 * eig[-1]:
        raise DataError(
            f"covariance is not positive semi-definite (smallest eigenvalue {eig[0]:.3g})"
        )
    if not allow_singular and eig[0] <= SINGULAR_RTOL * eig[-1]:
        raise DataError(_singular_message(s, names, int((eig > SINGULAR_RTOL * eig[-1]).sum())))
    return s


def _singular_message(s: np.ndarray, names: pd.Index | None, rank: int) -> str:
    n = s.shape[0]
    label = (lambda i: str(names[i])) if names is not None else (lambda i: f"#{i}")
    sd = np.sqrt(np.clip(np.diag(s), 0, None))
    zero = [label(i) for i in range(n) if sd[i] <= 1e-12 * sd.max()]
    if zero:
        cause = f"asset(s) {', '.join(zero[:5])} have zero variance"
    else:
        corr = s / np.outer(sd, sd)
        iu = np.argwhere(np.triu(np.abs(corr) > 1 - 1e-9, k=1))
        pairs = [f"{label(i)}/{label(j)}" for i, j in iu[:5]]
        cause = (
            f"columns {', '.join(pairs)} are perfectly correlated"
            if pairs
            else "some assets are linear combinations of others (fewer observations than assets?)"
        )
    return (
        f"covariance of {n} assets is singular (rank {rank}): {cause}; drop duplicates or "
        "use a shrunk estimate (covariance(..., method='ledoit_wolf'))"
    )


def covariance(
    returns: pd.DataFrame | np.ndarray, method: str = "ledoit_wolf", *, lam: float = 0.94
) -> pd.DataFrame:
    """Covariance of the columns of ``returns`` (rows with any NaN are rejected).

    ``method``: ``sample`` (ddof=1), ``ledoit_wolf`` (shrinkage to a scaled identity,
    always positive definite; scikit-learn's ``ledoit_wolf`` on demeaned returns) or
    ``ewma`` (RiskMetrics, weights ``(1-lam) lam^k``, ``k = 0`` the latest row, mean zero).
    """
    if not isinstance(returns, pd.DataFrame):
        returns = pd.DataFrame(np.asarray(returns, dtype="float64"))
    x = returns.to_numpy(dtype="float64")
    if np.isnan(x).any():
        bad = list(returns.columns[np.isnan(x).any(axis=0)][:5])
        raise DataError(
            f"returns for the covariance contain NaN (columns {bad}); select a "
            "window where every asset has data"
        )
    if x.shape[0] < 2:
        raise DataError(f"a covariance needs at least 2 observations (got {x.shape[0]})")
    if method == "sample":
        s = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    elif method == "ledoit_wolf":
        from sklearn.covariance import ledoit_wolf

        s = ledoit_wolf(x - x.mean(axis=0), assume_centered=True)[0]
    elif method == "ewma":
        if not 0 < lam < 1:
            raise ParameterError(f"lam must be in (0, 1), typically 0.94-0.97 (got {lam})")
        k = np.arange(x.shape[0])[::-1]
        wts = (1 - lam) * lam**k
        wts /= wts.sum()
        s = (x * wts[:, None]).T @ x
    else:
        raise ParameterError(
            f"covariance method must be 'sample', 'ledoit_wolf' or 'ewma' (got {method!r})"
        )
    return pd.DataFrame(s, index=returns.columns, columns=returns.columns)
