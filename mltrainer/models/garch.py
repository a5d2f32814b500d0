"""GARCH volatility forecasts with ``arch``: refitted on a calendar schedule, filtered between.

For each ticker and each refit date r, an ``arch`` model (ConstantMean or ZeroMean
mean, GARCH(p, o, q) variance, Normal or Student's t errors) is estimated on the
returns strictly before r (expanding or rolling window) by :func:`fit_garch`: arch's
likelihood maximised from several starts, the best polished by Newton steps. With
those parameters fixed, the conditional variance recursion is run forward over the
refit window and on through the dates up to the next refit, giving at each date t the
one-step-ahead variance ``sigma^2_{t+1|t}`` from returns up to t. This is what ``arch``'s
``res.conditional_volatility`` and ``res.forecast(horizon=1)`` give on the same data;
:func:`mltrainer.numerics.variance.garch_variance` is the recursion and
``tests/models/test_volatility.py`` checks it against ``arch``.

``arch`` is univariate, so tickers are processed one by one (:func:`garch_ticker`), in
parallel (:func:`mltrainer.models._volbase.fit_per_ticker`); :func:`garch_fit_warnings`
turns failed or loose fits into messages for the user. :class:`GARCHVolatilityModel`,
the registered model, is the thin class over these functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.linalg import block_diag

from mltrainer.data.market_data import MarketData
from mltrainer.models import _volbase as vb
from mltrainer.models._volmath import annualise
from mltrainer.models.base import ModelOutput
from mltrainer.models.params import ChoiceParam, IntParam
from mltrainer.numerics.parallel import reported
from mltrainer.numerics.schedule import CALENDAR_FREQUENCIES
from mltrainer.numerics.variance import garch_backcast, garch_variance

if TYPE_CHECKING:  # pragma: no cover
    from arch.univariate.base import ARCHModel


@dataclass(frozen=True)
class GarchSpec:
    """What to estimate: mean, GARCH orders, error distribution and the fit window."""

    mean: str = "constant"  # "constant" (ConstantMean) or "zero" (ZeroMean)
    p: int = 1  # ARCH lags (alpha)
    o: int = 0  # asymmetric (GJR) lags (gamma)
    q: int = 1  # GARCH lags (beta)
    dist: str = "normal"  # "normal" or "studentst"
    window_type: str = "rolling"  # "rolling" or "expanding"
    window: int = 1000  # returns in a rolling window
    min_obs: int = 500  # returns needed before the first fit


def build_model(y: np.ndarray, spec: GarchSpec) -> ARCHModel:
    """The ``arch`` model for returns ``y`` (in percent), composed from its pieces."""
    from arch.univariate import GARCH, ConstantMean, Normal, StudentsT, ZeroMean

    mean_cls = ConstantMean if spec.mean == "constant" else ZeroMean
    dist = Normal() if spec.dist == "normal" else StudentsT()
    return mean_cls(
        y, volatility=GARCH(p=spec.p, o=spec.o, q=spec.q), distribution=dist, rescale=False
    )


class _Likelihood:
    """arch's log-likelihood of one window as a plain function of the parameter vector.

    Composed from the model's public pieces exactly as ``ARCHModel.fit`` composes them:
    the backcast and variance bounds from residuals about the starting mean (the sample
    mean, or zero), the volatility's ``compute_variance``, the distribution's
    ``loglikelihood``, and the bounds and linear constraints ``a x >= b`` of the
    volatility and the distribution (the constant and zero means add none).
    """

    def __init__(self, model, y: np.ndarray, spec: GarchSpec):
        vol, dist = model.volatility, model.distribution
        self.y, self.vol, self.dist = y, vol, dist
        self.n_mean = 1 if spec.mean == "constant" else 0
        self.n_vol = vol.num_params
        start_resid = y - y.mean() if self.n_mean else y
        self.backcast = vol.backcast(start_resid)
        self.var_bounds = vol.variance_bounds(start_resid)
        self.sigma2 = np.empty_like(y)
        sv_vol = np.asarray(vol.starting_values(start_resid), dtype="float64")
        std = start_resid / np.sqrt(self.variance(sv_vol, start_resid))
        self.sv_dist = np.asarray(dist.starting_values(std), dtype="float64")
        mean_start = [float(y.mean())] * self.n_mean  # ConstantMean's: the sample mean
        self.arch_start = np.concatenate([mean_start, sv_vol, self.sv_dist])
        mean_bounds = [(-np.inf, np.inf)] * self.n_mean
        bounds = mean_bounds + list(vol.bounds(start_resid)) + list(dist.bounds(std))
        self.lower = np.array([b[0] for b in bounds], dtype="float64")
        self.upper = np.array([b[1] for b in bounds], dtype="float64")
        widths = (self.n_mean, self.n_vol, dist.num_params)
        blocks = [(np.zeros((0, self.n_mean)), np.zeros(0)), vol.constraints(), dist.constraints()]
        # each piece's constraints on its own parameters: a block-diagonal whole
        self.a = block_diag(
            *(
                np.asarray(a, dtype="float64").reshape(np.size(b), w)
                for (a, b), w in zip(blocks, widths, strict=True)
            )
        )
        self.b = np.concatenate([np.asarray(b, dtype="float64").ravel() for _, b in blocks])
        # how close to a bound a parameter counts as on it (none for an infinite bound)
        self.margin_lo = np.where(np.isfinite(self.lower), 1e-6 * (1 + np.abs(self.lower)), 0)
        self.margin_hi = np.where(np.isfinite(self.upper), 1e-6 * (1 + np.abs(self.upper)), 0)

    def variance(self, vp: np.ndarray, resid: np.ndarray) -> np.ndarray:
        return self.vol.compute_variance(vp, resid, self.sigma2, self.backcast, self.var_bounds)

    def nll(self, x: np.ndarray) -> float:
        """Negative log-likelihood (arch's ``_loglikelihood``, through public pieces)."""
        resid = self.y - x[0] if self.n_mean else self.y
        vp = x[self.n_mean : self.n_mean + self.n_vol]
        sigma2 = self.variance(vp, resid)
        value = -float(self.dist.loglikelihood(x[self.n_mean + self.n_vol :], resid, sigma2))
        return value if np.isfinite(value) else np.inf

    def feasible(self, x: np.ndarray) -> bool:
        return bool(
            np.all(x >= self.lower) and np.all(x <= self.upper) and np.all(self.a @ x - self.b >= 0)
        )

    def slsqp(self, x0: np.ndarray) -> tuple[np.ndarray, bool]:
        """arch's optimiser (SLSQP with its bounds, constraints and default tolerance)
        from ``x0``; the point and whether SLSQP reported success."""
        cons = [{"type": "ineq", "fun": lambda x: self.a @ x - self.b, "jac": lambda x: self.a}]
        res = optimize.minimize(
            self.nll,
            x0,
            method="SLSQP",
            constraints=cons,
            bounds=list(zip(self.lower, self.upper, strict=True)),
            options={"maxiter": 200},
        )
        return np.clip(res.x, self.lower, self.upper), bool(res.success)

    def polish(self, x: np.ndarray, max_iter: int = 12) -> tuple[np.ndarray, bool]:
        """Newton steps on the free parameters until the step is at rounding level.

        SLSQP stops where its finite-difference gradient and ``ftol`` let it (parameters
        good to ~1e-6, and where exactly depends on the data's last digits); the zero of
        a central-difference gradient on a fixed relative step is a smooth function of
        the data. Parameters within 1e-6 of a bound are set on it and stay there;
        constraints that SLSQP left active (persistence at 1, say) are kept as equalities.
        Returns the point and whether the iteration converged.
        """
        on_lo = x - self.lower <= self.margin_lo
        on_hi = self.upper - x <= self.margin_hi
        x = np.where(on_lo, self.lower, np.where(on_hi, self.upper, x))  # exactly on them
        free = np.flatnonzero(~on_lo & ~on_hi)
        # constraints on their boundary (persistence 1, say) that involve a moving
        # parameter are held as equalities (``alpha >= 0`` with alpha at 0 is not one)
        active = (self.a @ x - self.b < 1e-6) & np.any(self.a[:, free] != 0, axis=1)
        a_act = self.a[np.ix_(active, free)]
        k, m = free.size, a_act.shape[0]
        if k == 0 or m >= k:
            return x, False
        # SLSQP may stop a hair outside a constraint (persistence 1 + 8e-9): move onto
        # the held constraints first (least-norm correction of the free parameters), so
        # that the steps below are compared from a feasible point; otherwise the first
        # step, which restores feasibility, costs likelihood, is refused, and the
        # infeasible point (whose likelihood is better than any feasible one) is kept
        if m:
            onto = x.copy()
            onto[free] += (
                a_act.T
                @ np.linalg.lstsq(a_act @ a_act.T, self.b[active] - self.a[active] @ x, rcond=None)[
                    0
                ]
            )
            if not self.feasible_but(onto, active):
                return x, False
            x = onto
        hess = self._hessian(x, free)
        # the optimum needs curvature only along the held constraints (the reduced
        # Hessian): across them the likelihood may bend either way (alpha + gamma = 0)
        null = _null_space(a_act) if m else np.eye(k)
        if not np.all(np.isfinite(hess)) or not np.all(
            np.linalg.eigvalsh(null.T @ hess @ null) > 0
        ):
            return x, False
        # the Hessian at the SLSQP point serves every step (a chord method): the fixed
        # point is set by the gradient alone, and it converges fast from this close
        kkt = np.block([[hess, a_act.T], [a_act, np.zeros((m, m))]])
        f0 = self.nll(x)
        grad = self._gradient(x, free)
        for _ in range(max_iter):
            rhs = np.concatenate([-grad, self.b[active] - self.a[active] @ x])
            try:
                step = np.linalg.solve(kkt, rhs)[:k]
            except np.linalg.LinAlgError:
                return x, False
            for _ in range(6):  # halve a step that leaves the region or does not help
                xn = x.copy()
                xn[free] += step
                fn = self.nll(xn) if self.feasible_but(xn, active) else np.inf
                if fn <= f0 + 1e-10 * abs(f0):
                    break
                step = step / 2
            else:
                return x, False
            x, f0 = xn, fn
            if np.all(np.abs(step) <= 1e-9 * (1 + np.abs(x[free]))):
                return x, True
            grad = self._gradient(x, free)
        return x, False

    def feasible_but(self, x: np.ndarray, held: np.ndarray) -> bool:
        """Within the bounds and every constraint, those in ``held`` up to rounding."""
        slack = self.a @ x - self.b
        return bool(
            np.all(x >= self.lower)
            and np.all(x <= self.upper)
            and np.all(np.where(held, slack >= -1e-12, slack >= 0))
        )

    @staticmethod
    def _steps(x: np.ndarray, free: np.ndarray, rel: float) -> np.ndarray:
        # small relative steps: near persistence 1 the likelihood is far from quadratic
        # (1e-4 steps put the gradient's zero visibly off the optimum)...
        # and not below 1e-6 absolute: the likelihood's rounding (~1e-11) over a smaller
        # step is gradient noise
        return rel * np.maximum(np.abs(x[free]), 0.1)

    def _gradient(self, x: np.ndarray, free: np.ndarray) -> np.ndarray:
        h = self._steps(x, free, 1e-5)
        out = np.empty(free.size)
        for i, (j, hi) in enumerate(zip(free, h, strict=True)):
            up, down = x.copy(), x.copy()
            up[j] += hi
            down[j] -= hi
            out[i] = (self.nll(up) - self.nll(down)) / (2 * hi)
        return out

    def _hessian(self, x: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Central-difference Hessian of the NLL over ``free``."""
        h = self._steps(x, free, 1e-5)
        k = free.size
        f0 = self.nll(x)

        def at(*moves):
            z = x.copy()
            for i, d in moves:
                z[free[i]] += d
            return self.nll(z)

        plus = np.array([at((i, h[i])) for i in range(k)])
        minus = np.array([at((i, -h[i])) for i in range(k)])
        hess = np.diag((plus - 2 * f0 + minus) / h**2)
        for i in range(k):
            for j in range(i + 1, k):
                hess[i, j] = hess[j, i] = (
                    at((i, h[i]), (j, h[j]))
                    - at((i, h[i]), (j, -h[j]))
                    - at((i, -h[i]), (j, h[j]))
                    + at((i, -h[i]), (j, -h[j]))
                ) / (4 * h[i] * h[j])
        return hess

    def other_starts(self, spec: GarchSpec) -> list[np.ndarray]:
        """Deterministic starts beside arch's (whose grid favours ``beta`` near 0.9):
        persistent and fast-decaying variance (``sum alpha + sum gamma / 2 + sum beta``
        of 0.98 and 0.85), each with the sample variance as the unconditional one."""
        var = (
            float(np.mean((self.y - self.y.mean()) ** 2))
            if self.n_mean
            else float(np.mean(self.y**2))
        )
        mean = [float(self.y.mean())] * self.n_mean
        starts = []
        for persistence, a, g in ((0.98, 0.04, 0.04), (0.85, 0.15, 0.10)):
            g = g if spec.o else 0.0
            a = a if spec.p else 0.0
            b = persistence - a - g / 2 if spec.q else 0.0
            omega = var * (1 - (a + g / 2 + b))
            vp = (
                [omega]
                + [a / max(spec.p, 1)] * spec.p
                + [g / max(spec.o, 1)] * spec.o
                + [b / max(spec.q, 1)] * spec.q
            )
            x = np.clip(np.array(mean + vp + list(self.sv_dist)), self.lower, self.upper)
            if self.feasible(x):
                starts.append(x)
        return starts


def _null_space(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``{z : a z = 0}`` (a has full row rank here)."""
    _, _, vt = np.linalg.svd(a)
    return vt[a.shape[0] :].T


def fit_garch(
    y: np.ndarray, spec: GarchSpec, warm: np.ndarray | None = None
) -> tuple[pd.Series, float, bool]:
    """Maximum-likelihood GARCH parameters of ``y`` from several starts, polished.

    Candidates: SLSQP on arch's likelihood, bounds and constraints (what
    ``ARCHModel.fit`` runs) from arch's starting values, from
    :meth:`_Likelihood.other_starts` and from ``warm`` (the previous refit's parameters,
    when given and feasible). Each SLSQP point is polished by Newton steps
    (:meth:`_Likelihood.polish`, which first moves it onto the constraints it sits on)
    and the best polished log-likelihood wins: the result is as likely as arch's default
    fit (same optimiser from the same start, then only improved; arch's point may lie
    ~1e-8 outside ``persistence <= 1``, ours not) and moves smoothly with the data, which
    a single SLSQP run does not (its stopping point moved forecasts by up to 0.05 of
    annualised volatility for a 1e-12 change in returns, 4e-6 for GJR-t on its bound).

    Returns
    -------
    params : Series by arch's parameter names
    loglik : float
    converged : bool (the winning SLSQP run or the Newton polish reported success)

    Raises
    ------
    FloatingPointError
        When no candidate has a finite likelihood (e.g. constant returns).
    """
    model = build_model(y, spec)
    names = (
        list(model.parameter_names())
        + list(model.volatility.parameter_names())
        + list(model.distribution.parameter_names())
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        lik = _Likelihood(model, y, spec)
        others = lik.other_starts(spec)
        if warm is not None and lik.feasible(warm):
            others.append(np.asarray(warm, dtype="float64"))
        # SLSQP from arch's start and from the most likely of the others (each SLSQP run
        # costs ~100 likelihoods; screening the others costs one each)
        starts = [lik.arch_start]
        if others:
            starts.append(min(others, key=lik.nll))
        best, best_nll, converged = None, np.inf, False
        for x0 in starts:
            x, ok = lik.slsqp(x0)
            # each candidate is polished before they are compared: an SLSQP stop a hair
            # outside a constraint (persistence 1 + 1e-8) looks more likely than the
            # feasible optimum and would win by an amount set by the data's last digits
            polished = False
            if np.isfinite(lik.nll(x)):
                x, polished = lik.polish(x)
            value = lik.nll(x)
            # clearly better only, so that near-ties keep the earlier (arch's) start
            if best is None or value < best_nll - 1e-9 * abs(best_nll):
                best, best_nll, converged = x, value, ok or polished
        if not np.isfinite(best_nll):
            raise FloatingPointError("no finite likelihood (constant returns?)")
    return pd.Series(best, index=names), -lik.nll(best), converged


def garch_ticker(
    y: np.ndarray, obs_before: np.ndarray, spec: GarchSpec
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Walk-forward GARCH for one ticker's returns (percent, no NaN, in date order).

    Parameters
    ----------
    y : returns of the ticker's valid dates, oldest first
    obs_before : for each refit date, how many of those returns fall strictly before it

    Returns
    -------
    forecast : one-step-ahead variance (percent^2) made at each observation
    persistence : ``sum alpha + sum beta + sum gamma / 2`` of the parameters in force
    rows : one dict per refit: ``refit`` (index into the schedule), the fitted
        parameters by arch's names, ``loglik``, ``nobs``, ``converged``

    Each fit is :func:`fit_garch`, warm-started also from the previous refit's
    parameters (estimated on earlier data only, so causality holds).
    """
    n = y.shape[0]
    forecast = np.full(n, np.nan)
    persistence = np.full(n, np.nan)
    rows: list[dict] = []
    n_mean = 1 if spec.mean == "constant" else 0
    n_vol = 1 + spec.p + spec.o + spec.q
    warm = None
    for k, nb in reported(obs_before):  # a lone ticker's refits show as progress
        ne = obs_before[k + 1] if k + 1 < len(obs_before) else n
        if nb < spec.min_obs or ne <= nb:
            continue  # not enough history yet, or nothing left to forecast
        ws = 0 if spec.window_type == "expanding" else max(0, nb - spec.window)
        fit_y = y[ws:nb]
        row: dict = {"refit": k, "nobs": nb - ws}
        try:
            params, loglik, converged = fit_garch(fit_y, spec, warm)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            row.update(converged=False, error=str(exc)[:200])
            rows.append(row)
            continue
        values = params.to_numpy(dtype="float64")
        warm = values
        row.update(dict(zip(params.index, values, strict=True)))
        row.update(loglik=loglik, converged=converged)
        rows.append(row)
        mu = values[0] if n_mean else 0.0
        # arch starts the recursion from residuals about the sample mean (its starting
        # value for mu), not about the fitted mu
        start_resid = fit_y - fit_y.mean() if n_mean else fit_y
        vp = values[n_mean : n_mean + n_vol]
        sigma2 = garch_variance(
            vp, y[ws:ne] - mu, garch_backcast(start_resid), spec.p, spec.o, spec.q
        )
        seg = sigma2[nb - ws + 1 : ne - ws + 1]
        forecast[nb:ne] = np.where(seg > 0, seg, np.nan)
        persistence[nb:ne] = (
            vp[1 : 1 + spec.p].sum()
            + vp[1 + spec.p + spec.o :].sum()
            + 0.5 * vp[1 + spec.p : 1 + spec.p + spec.o].sum()
        )
    return forecast, persistence, rows


def garch_fit_warnings(records: list[dict]) -> tuple[str, ...]:
    """One message per ticker with refits that failed (NaN) or did not converge.

    ``records``: the rows of :func:`garch_ticker` with ``ticker`` and ``refit_date``.
    """
    failed: dict[str, list] = {}
    loose: dict[str, list] = {}
    for row in records:
        if "error" in row:
            failed.setdefault(row["ticker"], []).append(row)
        elif not row.get("converged", True):
            loose.setdefault(row["ticker"], []).append(row)

    def dates(rows: list[dict]) -> str:
        days = [f"{r['refit_date']:%Y-%m-%d}" for r in rows]
        return ", ".join(days[:5]) + (f" and {len(days) - 5} more" if len(days) > 5 else "")

    out = [
        f"GARCH fit failed for {t} at the refit(s) of {dates(rows)} (forecasts left "
        f"NaN until the next refit): {rows[0]['error']}"
        for t, rows in failed.items()
    ]
    out += [
        f"GARCH fit did not converge for {t} at the refit(s) of {dates(rows)}: the "
        "forecasts use the best parameters found, see the params table"
        for t, rows in loose.items()
    ]
    return tuple(out)


class GARCHVolatilityModel(vb.VolatilityModel):
    """GARCH(p, o, q) one-step volatility forecast with ``arch``, walk-forward.

    Parameters
    ----------
    mean : {"constant", "zero"}
        arch's ``ConstantMean`` or ``ZeroMean``.
    refit : {"yearly", "quarterly", "monthly"}
        Refit on the first trading day of each calendar period.

    Notes
    -----
    Returns are ``100 ln(P_t/P_{t-1})``. At each refit date r the model is estimated
    on returns strictly before r; from r to the next refit the variance recursion
    ``sigma^2_{t+1} = omega + sum alpha_i e^2_{t+1-i} + sum gamma_j e^2_{t+1-j}
    1[e<0] + sum beta_k sigma^2_{t+1-k}`` is filtered forward with those parameters
    fixed (started at the fit window as arch does), and the output at t is
    ``sqrt(252 sigma^2_{t+1|t}) / 100``. Tickers run in parallel (joblib);
    ``with execution(progress=callback): model.run(data)`` reports ``(done, total)``
    tickers. Extras: ``persistence`` (``sum alpha + sum beta + sum gamma / 2`` in force).
    Tables: ``params`` indexed (ticker, refit_date) with arch's parameter names,
    ``loglik``, ``nobs``, ``converged``.

    References
    ----------
    Bollerslev, T. (1986). Generalized autoregressive conditional heteroskedasticity.
    Journal of Econometrics 31(3), 307-327. Glosten, L., Jagannathan, R., Runkle, D.
    (1993). Journal of Finance 48(5), 1779-1801. Sheppard, K. arch (Python package).
    """

    description = "GARCH(p,o,q) with arch, refitted on a schedule, one-step forecast filtered"
    param_specs = {
        "mean": ChoiceParam(
            ("constant", "zero"), default="constant", help="Mean model: constant or zero"
        ),
        "p": IntParam(1, 3, default=1, help="ARCH order (lags of squared residuals)"),
        "o": IntParam(0, 2, default=0, help="Asymmetric (GJR) order; 0 = symmetric GARCH"),
        "q": IntParam(0, 3, default=1, help="GARCH order (lags of the variance)"),
        "dist": ChoiceParam(
            ("normal", "studentst"),
            default="normal",
            help="Error distribution: normal or Student's t",
        ),
        "refit": ChoiceParam(CALENDAR_FREQUENCIES, default="yearly", help=vb.REFIT_HELP),
        "window_type": ChoiceParam(
            ("rolling", "expanding"),
            default="rolling",
            help="Fit on the last `window` returns, or on all",
        ),
        "window": IntParam(
            250, 5000, default=1000, step=50, help="Returns in the rolling estimation window"
        ),
        "min_obs": IntParam(
            250, 2520, default=500, step=50, help="Returns needed before the first fit"
        ),
    }

    def _check_params(self) -> None:
        if self.window_type == "rolling":
            self._require_order(
                "min_obs", "window", strict=False, hint=" with a rolling window_type"
            )

    def min_history(self) -> int:
        return self.min_obs + 2

    def spec(self) -> GarchSpec:
        """What each per-ticker fit estimates (every parameter but ``refit``)."""
        return vb.spec_of(self, GarchSpec)

    def _compute(self, data: MarketData) -> ModelOutput:
        r = 100.0 * vb.log_returns(data)
        (var, persistence), records, params = vb.fit_per_ticker(
            garch_ticker, r, self.spec(), data, self.refit
        )
        return vb.output(
            data,
            annualise(var) / 100.0,
            {"params": params},
            garch_fit_warnings(records),
            persistence=persistence,
        )
