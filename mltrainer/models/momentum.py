"""The momentum family: trend-following signals in [-1, 1] per (date, ticker).

Each model is a thin declarative class over a pure, vectorised function of wide
(dates x tickers) arrays (:mod:`mltrainer.models._momentum_math`, named like the
model's parameters). All prices are the adjusted close unless stated; every value at
date t uses bars up to t only. A ticker that has not started trading (or has a missing
bar inside a window) is NaN there, never a silent zero.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from mltrainer import fmt
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models import _momentum_math as mm
from mltrainer.models._signal_output import signal_output
from mltrainer.models.base import SIGNAL, Model, ModelOutput
from mltrainer.models.params import ChoiceParam, FloatParam, IntParam
from mltrainer.numerics import rolling as rl
from mltrainer.numerics.frames import as_frame


class _MomentumModel(Model):
    family = "momentum"
    output_kind = SIGNAL
    ranks_across = False  # the signal compares tickers on a date: NaN where one has a price

    def _compute(self, data: MarketData) -> ModelOutput:
        out = signal_output(data, *self._signal(mm.MomentumInputs(data)))
        return replace(out, warnings=self._alone(data))

    def _alone(self, data: MarketData) -> tuple[str, ...]:
        """A warning when no date has prices for two tickers (a ranking's signal is NaN)."""
        if not self.ranks_across or (data.adj_close.notna().sum(axis=1) >= 2).any():
            return ()
        return (
            f"{type(self).__name__} ranks each ticker against the others on a date, but no date "
            f"has prices for two tickers ({fmt.count(data.n_tickers, 'ticker')} in the data): "
            "the signal is NaN throughout; add tickers that trade over the same dates",
        )

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:  # pragma: no cover
        """The signal and the extras' arrays, from inputs an ensemble's members share.

        The arrays may be shared with ``inputs``: read them, never write into them.
        """
        raise NotImplementedError


class SimpleMomentumModel(_MomentumModel):
    """Trailing return against a threshold.

    Parameters
    ----------
    threshold : float
        Dead band: returns within +-threshold give 0 (``step``) or a ramp (``linear``).

    Notes
    -----
    ``r_t = P_t / P_{t-w} - 1``; ``s_t = 1[r_t > c] - 1[r_t < -c]`` (step).
    Extras: ``momentum`` (r_t).

    References
    ----------
    Jegadeesh, N., Titman, S. (1993). Returns to buying winners and selling losers.
    Journal of Finance 48(1), 65-91.
    """

    description = "Trailing return over a short window against a threshold"
    param_specs = {
        "window": IntParam(2, 252, default=10, help="Lookback, trading days (seed range 7-12)"),
        "threshold": FloatParam(
            0.0, 0.5, default=0.02, step=0.005, help="Return dead band around zero (0.02 = 2%)"
        ),
        "mode": ChoiceParam(
            ("step", "linear"),
            default="step",
            help="step: +1/0/-1; linear: ramp r/threshold clipped to [-1, 1]",
        ),
    }

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        r = inputs.trailing_return(self.window)
        if self.mode == "step":
            signal = inputs.step_momentum(self.window, self.threshold)
        else:
            signal = mm.simple_momentum(inputs.prices, **self.get_params(), returns=r)
        return signal, {"momentum": r}


class DualMomentumModel(_MomentumModel):
    """Absolute (time-series) and relative (cross-sectional) momentum together.

    Parameters
    ----------
    abs_threshold : float
        Absolute momentum is +1 above it, -1 below its negative (0: versus zero).

    Notes
    -----
    ``A_t = step(r_t, c_a)``, ``R_t = step(r_t - b_t, c_r)``, ``b_t`` = median_j r_{j,t}.
    Relative momentum needs at least two tickers on a date (NaN otherwise), so one
    ticker alone gives NaN. Extras: ``absolute``, ``relative``.

    References
    ----------
    Antonacci, G. (2014). Dual Momentum Investing. McGraw-Hill.
    """

    description = "Absolute momentum and momentum relative to the universe must agree"
    ranks_across = True
    param_specs = {
        "window": IntParam(20, 504, default=252, help="Lookback, trading days"),
        "abs_threshold": FloatParam(
            0.0, 0.5, default=0.0, step=0.005, help="Absolute return hurdle (0 = versus zero)"
        ),
        "rel_threshold": FloatParam(
            0.0, 0.5, default=0.0, step=0.005, help="Excess over the benchmark needed for +-1"
        ),
        "benchmark": ChoiceParam(
            ("median", "mean"),
            default="median",
            help="Cross-sectional median or universe mean return",
        ),
        "combine": ChoiceParam(
            ("both", "average"),
            default="both",
            help="both: signal only when they agree; average: mean",
        ),
    }

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        signal, absolute, relative = mm.dual_momentum(inputs.prices, **self.get_params())
        return signal, {"absolute": absolute, "relative": relative}


class CrossSectionalMomentumModel(_MomentumModel):
    """Percentile rank of the 12-1 month return across the universe.

    Notes
    -----
    ``m_{i,t} = P_{i,t-skip} / P_{i,t-lookback} - 1``; ``s_{i,t} = 2 (rank_i - 1) /
    (n_t - 1) - 1`` among the n_t tickers with m and a price on day t. NaN for tickers
    not yet listed and on days with fewer than two ranked tickers. Extras: ``momentum``.

    References
    ----------
    Jegadeesh, N., Titman, S. (1993). Journal of Finance 48(1), 65-91.
    Carhart, M. (1997). On persistence in mutual fund performance. J. Finance 52(1).
    """

    description = "Cross-sectional rank of the 12-1 month return"
    ranks_across = True
    param_specs = {
        "lookback": IntParam(42, 504, default=252, help="Return window start, trading days"),
        "skip": IntParam(0, 63, default=21, help="Most recent days skipped (reversal)"),
        "mode": ChoiceParam(
            ("rank", "quantile"),
            default="rank",
            help="rank: linear in rank; quantile: long top / short bottom",
        ),
        "quantile": FloatParam(
            0.05, 0.5, default=0.2, step=0.05, help="Fraction long and short in quantile mode"
        ),
    }

    def _check_params(self) -> None:
        if self.lookback - self.skip < 21:
            raise ParameterError(
                f"lookback ({self.lookback}) must exceed skip ({self.skip}) by at least 21 "
                "days; the classic choice is lookback=252, skip=21"
            )

    def min_history(self) -> int:
        return self.lookback + 1

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        signal, mom = mm.cross_sectional_momentum(inputs.prices, **self.get_params())
        return signal, {"momentum": mom}


class RiskAdjustedMomentumModel(_MomentumModel):
    """Trailing log return per unit of its own volatility, squashed, drawdown-guarded.

    Parameters
    ----------
    max_drawdown : float
        The signal is 0 while the drawdown exceeds this (1.0 disables the guard).

    Notes
    -----
    ``z_t = ln(P_t / P_{t-w}) / (sigma_t sqrt(w))``, sigma_t the sample standard
    deviation of daily log returns over ``vol_window`` bars; ``DD_t = 1 - P_t /
    max(P_{t-D+1..t})``; ``s_t = tanh(z_t / k)`` if ``DD_t <= c`` else 0.
    Extras: ``zscore``, ``drawdown``.

    References
    ----------
    Barroso, P., Santa-Clara, P. (2015). Momentum has its moments. Journal of Financial
    Economics 116(1), 111-120. Daniel, K., Moskowitz, T. (2016). Momentum crashes.
    Journal of Financial Economics 122(2), 221-247.
    """

    description = "Volatility-scaled momentum with a drawdown guard"
    param_specs = {
        "window": IntParam(10, 252, default=60, help="Momentum lookback, trading days"),
        "vol_window": IntParam(20, 252, default=60, help="Volatility window, trading days"),
        "scale": FloatParam(
            0.25, 4.0, default=1.0, step=0.05, help="z-score that maps to tanh(1)=0.76"
        ),
        "drawdown_window": IntParam(20, 504, default=126, help="Running-peak window, days"),
        "max_drawdown": FloatParam(
            0.05, 1.0, default=0.25, step=0.01, help="Drawdown above which the signal is cut to 0"
        ),
    }

    def min_history(self) -> int:
        return max(self.window + 1, self.vol_window + 1, self.drawdown_window)

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        signal, z, dd = mm.risk_adjusted_momentum(inputs.prices, **self.get_params())
        return signal, {"zscore": z, "drawdown": dd}


class TimeSeriesMomentumModel(_MomentumModel):
    """Signs of a short and a long trailing return, averaged.

    Notes
    -----
    ``s_t = w sign(P_t/P_{t-a} - 1) + (1 - w) sign(P_t/P_{t-b} - 1)``. Extras:
    ``short_return``, ``long_return``.

    References
    ----------
    Moskowitz, T., Ooi, Y. H., Pedersen, L. H. (2012). Time series momentum. Journal of
    Financial Economics 104(2), 228-250.
    """

    description = "Sign-weighted average of short and long horizon trends"
    param_specs = {
        "short_window": IntParam(2, 63, default=10, help="Short lookback, trading days"),
        "long_window": IntParam(20, 252, default=60, help="Long lookback, trading days"),
        "short_weight": FloatParam(
            0.0, 1.0, default=0.5, step=0.05, help="Weight of the short horizon (long gets 1 - w)"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("short_window", "long_window", hint="; e.g. 10 and 60")

    def min_history(self) -> int:
        return self.long_window + 1

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        rs = inputs.trailing_return(self.short_window)
        rlong = inputs.trailing_return(self.long_window)
        signal = mm.time_series_momentum(inputs.prices, **self.get_params(), returns=(rs, rlong))
        return signal, {"short_return": rs, "long_return": rlong}


class VolumeConfirmedMomentumModel(_MomentumModel):
    """Step momentum that counts only on above-normal volume.

    Parameters
    ----------
    confirm_window : int
        Days of recent volume averaged (1 = today's volume alone).

    Notes
    -----
    ``s_t = step(r_t, c) * 1[mean(V, a)_t / mean(V, b)_t > q]``, volume made
    split-consistent causally (:func:`~mltrainer.numerics.rolling.causal_split_volume`).
    Extras: ``volume_ratio``.

    References
    ----------
    Lee, C., Swaminathan, B. (2000). Price momentum and trading volume. Journal of
    Finance 55(5), 2017-2069.
    """

    description = "Momentum confirmed by above-normal trading volume"
    requires = ("volume",)
    param_specs = {
        "window": IntParam(2, 252, default=10, help="Momentum lookback, trading days"),
        "threshold": FloatParam(
            0.0, 0.5, default=0.02, step=0.005, help="Return dead band around zero"
        ),
        "confirm_window": IntParam(1, 20, default=5, help="Recent volume averaging, days"),
        "volume_window": IntParam(5, 252, default=50, help="Normal volume window, days"),
        "volume_ratio": FloatParam(
            0.5, 5.0, default=1.2, step=0.05, help="Recent/normal volume needed to confirm"
        ),
    }

    def _check_params(self) -> None:
        self._require_order("confirm_window", "volume_window")

    def min_history(self) -> int:
        return max(self.window + 1, self.volume_window)

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        volume = rl.causal_split_volume(inputs.data.volume, inputs.data.splits)
        step = inputs.step_momentum(self.window, self.threshold)
        signal, ratio = mm.volume_confirmed_momentum(
            inputs.prices, volume, **self.get_params(), momentum=step
        )
        return signal, {"volume_ratio": ratio}


class SectorRotationMomentumModel(_MomentumModel):
    """Long the strongest GICS sectors, short the weakest, tilted by in-sector strength.

    Parameters
    ----------
    n_top, n_bottom : int
        Number of sectors long and short (each at most half the sectors with data).
    sector_weight : float
        Weight of the sector rank part; ``1 - sector_weight`` goes to the stock's
        momentum relative to its sector.

    Notes
    -----
    See :func:`~mltrainer.models._momentum_math.sector_rotation_momentum`, with the
    sectors of each date where the data knows them (:meth:`MarketData.sector_spans`).
    Tickers without a sector are NaN and listed in ``tables["unmapped"]`` with when.
    Extras: ``sector_momentum`` and ``sector_rank`` (dates x sectors, rank 1 =
    strongest).

    References
    ----------
    Moskowitz, T., Grinblatt, M. (1999). Do industries explain momentum? Journal of
    Finance 54(4), 1249-1290.
    """

    description = "Sector ranking by member momentum plus stock-vs-sector strength"
    ranks_across = True
    requires = ("sectors",)
    param_specs = {
        "window": IntParam(21, 252, default=126, help="Momentum lookback, trading days"),
        "n_top": IntParam(1, 5, default=3, help="Sectors held long"),
        "n_bottom": IntParam(1, 5, default=3, help="Sectors held short"),
        "sector_weight": FloatParam(
            0.0, 1.0, default=0.5, step=0.05, help="Weight of the sector part vs in-sector strength"
        ),
    }

    def check_data(self, data: MarketData) -> None:
        super().check_data(data)
        names = data.sector_codes()[0]
        if len(names) < 2:  # nothing to rank a sector against: every value would be NaN
            raise DataError(
                "SectorRotationMomentumModel ranks GICS sectors against each other, but the "
                f"tickers' sectors are {', '.join(names) or 'unknown'} only: add another sector's"
            )

    def _signal(self, inputs: mm.MomentumInputs) -> tuple:
        names, spans = inputs.data.sector_codes()
        signal, sec_mom, rank = mm.sector_rotation_momentum(
            inputs.prices, spans, names, **self.get_params()
        )
        return signal, {"sector_momentum": sec_mom, "sector_rank": rank}

    def _compute(self, data: MarketData) -> ModelOutput:
        names, spans = data.sector_codes()
        signal, extras = self._signal(mm.MomentumInputs(data))
        sectors = pd.Index(names, name="sector")
        by_sector = {k: pd.DataFrame(v, data.dates, sectors) for k, v in extras.items()}
        ends = [row - 1 for row, _ in spans[1:]] + [len(data.dates) - 1]
        rows = [
            (t, f"no GICS sector {fmt.date_range(data.dates[a], data.dates[b])}; signal is NaN")
            for (a, of), b in zip(spans, ends, strict=True)
            for t, k in zip(data.tickers, of, strict=True)
            if k < 0
        ]
        note = pd.DataFrame(rows, columns=["ticker", "note"])
        said = () if len(spans) > 1 or data.sector_periods else (mm.TODAYS_SECTORS,)
        return ModelOutput(
            as_frame(signal, data), by_sector, {"unmapped": note}, said + self._alone(data)
        )


_MEMBERS = {
    "w_simple": SimpleMomentumModel,
    "w_dual": DualMomentumModel,
    "w_cross_sectional": CrossSectionalMomentumModel,
    "w_risk_adjusted": RiskAdjustedMomentumModel,
    "w_time_series": TimeSeriesMomentumModel,
    "w_volume_confirmed": VolumeConfirmedMomentumModel,
    "w_sector_rotation": SectorRotationMomentumModel,
}


class EnsembleMomentumModel(_MomentumModel):
    """Weighted average of the other momentum models' signals.

    Parameters
    ----------
    members : dict, optional
        The models in some of the slots, keyed by their weight's name, e.g.
        ``{"w_simple": SimpleMomentumModel(window=20)}``; each must be a momentum model
        of that slot's class. Slots not given (and ``None``, the default) hold that
        class with its defaults.

    Notes
    -----
    ``S_{i,t} = sum_k w_k s^k_{i,t} / sum_k w_k 1[s^k_{i,t} defined]`` over the members
    used; NaN where no member is defined. Weights are renormalised per cell, so the
    result stays in [-1, 1] while slower members are still warming up. A member whose
    requirement (volume, sectors) the data lacks, or whose history need exceeds the
    data, is skipped; ``tables["members"]`` says which and why. The members share one
    :class:`MomentumInputs`, so a return several of them use is computed once.
    """

    description = "Weighted combination of the momentum models"
    component_params = ("members",)
    param_specs = {
        name: FloatParam(0.0, 1.0, default=1.0, step=0.05, help=f"Weight of {label}")
        for name, label in (
            ("w_simple", "Simple"),
            ("w_dual", "Dual"),
            ("w_cross_sectional", "CrossSectional"),
            ("w_risk_adjusted", "RiskAdjusted"),
            ("w_time_series", "TimeSeries"),
            ("w_volume_confirmed", "VolumeConfirmed (needs volume)"),
            ("w_sector_rotation", "SectorRotation (needs sectors)"),
        )
    }

    def _check_params(self) -> None:
        given = self.members if isinstance(self.members, dict) else {None: self.members}
        for slot, model in ({} if self.members is None else given).items():
            if not isinstance(model, _MEMBERS.get(slot, ())):
                raise ParameterError(
                    "members must map weight names to models of their slot's class "
                    f"({', '.join(f'{k}: {c.__name__}' for k, c in _MEMBERS.items())}); "
                    f"got {slot!r}: {model!r}"
                )
        if sum(getattr(self, name) for name in _MEMBERS) <= 0:
            raise ParameterError("at least one member weight must be positive")

    def _members(self) -> dict[str, _MomentumModel]:
        """The model in each slot: the given one, or that slot's class at its defaults."""
        given = self.members or {}
        return {slot: given[slot] if slot in given else cls() for slot, cls in _MEMBERS.items()}

    def min_history(self) -> int:
        needs = [m.min_history() for s, m in self._members().items() if getattr(self, s) > 0]
        return min(needs) if needs else 2

    def plan(self, data: MarketData) -> pd.DataFrame:
        """Which members run on ``data``: member, weight, used, note (why one is not)."""
        rows = []
        for slot, model in self._members().items():
            weight, note = float(getattr(self, slot)), ""
            try:
                model.check_data(data)  # the data has its fields and enough history
            except DataError as exc:
                note = f"skipped: {exc}"
            note = "weight 0" if weight <= 0 else note
            name = type(model).__name__
            rows.append({"member": name, "weight": weight, "used": note == "", "note": note})
        return pd.DataFrame(rows)

    def _compute(self, data: MarketData) -> ModelOutput:
        plan = self.plan(data)
        if not plan["used"].any():
            reasons = "; ".join(plan["member"] + ": " + plan["note"])
            raise DataError(f"EnsembleMomentumModel: no member can run on this data: {reasons}")
        inputs = mm.MomentumInputs(data)  # shared by the members: prices, returns
        members = (  # computed one at a time as they are added; read-only: may be shared
            (model.fit(data)._signal(inputs)[0], float(getattr(self, slot)))
            for (slot, model), used in zip(self._members().items(), plan["used"], strict=True)
            if used
        )
        signal = mm.weighted_signal(members, like=inputs.prices)
        return ModelOutput(as_frame(signal, data), tables={"members": plan})


MODELS = (
    SimpleMomentumModel,
    DualMomentumModel,
    CrossSectionalMomentumModel,
    RiskAdjustedMomentumModel,
    TimeSeriesMomentumModel,
    VolumeConfirmedMomentumModel,
    SectorRotationMomentumModel,
    EnsembleMomentumModel,
)
