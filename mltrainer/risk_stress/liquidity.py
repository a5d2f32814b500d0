"""The liquidity crisis: a forced sale of the whole book into widened spreads.

A sale's cost is the stressed half-spread plus the square-root market-impact law
(Almgren et al. 2005; Toth et al. 2011), which grows with the days the sale takes at a
given share of daily volume: :class:`LiquidityCosts` holds those knobs and the maths,
:func:`liquidity_crisis` applies them to every position of a book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.risk_stress.base import Book, ScenarioResult, Weights, aggregate, from_options


@dataclass(frozen=True)
class LiquidityCosts:
    """What a forced sale costs.

    Attributes
    ----------
    spread_bps : float
        Normal bid-ask spread, basis points (the half-spread is paid).
    spread_multiplier : float
        ``m``: how many times the spread widens in the crisis.
    participation : float
        Share of daily volume a forced seller can take, in (0, 1].
    impact_coef : float
        ``Y``, the square-root law's coefficient.
    """

    spread_bps: float = 10.0
    spread_multiplier: float = 5.0
    participation: float = 0.10
    impact_coef: float = 1.0

    def haircut(
        self, position_value: ArrayLike, adv_dollars: ArrayLike, daily_vol: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forced-sale cost as a fraction of position value, and the days a sale takes.

        ``days = |value| / (participation * ADV$)`` (ADV$ = average daily dollar volume
        = ADV * price); ``haircut = min(1, spread_bps * m / 2e4 + Y * sigma *
        sqrt(participation * days))``: the stressed half-spread plus the square-root
        market-impact law ``Y sigma sqrt(Q / ADV)`` (Q / ADV = participation * days).
        """
        participation = self.participation
        if not 0.0 < participation <= 1.0:
            raise ParameterError(
                f"participation must be in (0, 1] (got {participation}); it is the "
                "share of daily volume a forced seller can take, e.g. 0.1"
            )
        if self.spread_bps < 0 or self.spread_multiplier < 0 or self.impact_coef < 0:
            raise ParameterError("spread_bps, spread_multiplier and impact_coef must be >= 0")
        value = np.abs(np.asarray(position_value, dtype=float))
        adv = np.asarray(adv_dollars, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            days = np.where(
                adv > 0, value / (participation * adv), np.where(value > 0, np.inf, 0.0)
            )
        days = np.where(np.isnan(adv) | np.isnan(value), np.nan, days)
        impact = (
            self.impact_coef * np.asarray(daily_vol, dtype=float) * np.sqrt(participation * days)
        )
        haircut = np.minimum(1.0, self.spread_bps * self.spread_multiplier / 2e4 + impact)
        return haircut, days


def liquidity_haircut(
    position_value: ArrayLike, adv_dollars: ArrayLike, daily_vol: ArrayLike, **costs: float
) -> tuple[np.ndarray, np.ndarray]:
    """Forced-sale cost as a fraction of position value, and the days a sale takes.

    ``costs`` are the fields of :class:`LiquidityCosts` (``participation=0.10,
    spread_bps=10.0, spread_multiplier=5.0, impact_coef=1.0``); see
    :meth:`LiquidityCosts.haircut` for the formula.

    Returns
    -------
    (haircut, days) : arrays like the inputs
    """
    sale = from_options(LiquidityCosts, costs, "liquidity_haircut")
    return sale.haircut(position_value, adv_dollars, daily_vol)


def liquidity_crisis(
    data: MarketData,
    weights: Weights,
    *,
    portfolio_value: float = 1_000_000.0,
    adv_window: int = 20,
    vol_window: int = 60,
    sectors: Mapping[str, str] | None = None,
    allow_leverage: bool = False,
    **costs: float,
) -> ScenarioResult:
    """Forced liquidation of the whole book with spreads widened ``spread_multiplier`` times.

    Per position: ADV$ = mean(close * volume) over the last ``adv_window`` days (both
    as traded, so splits cancel), daily volatility from the last ``vol_window`` returns,
    then :meth:`LiquidityCosts.haircut`. P&L ``= -|value| * haircut``. The cost depends
    on the portfolio's size, so ``portfolio_value`` is in currency (default 1,000,000).
    ``costs`` are the fields of :class:`LiquidityCosts`; ``params["normal_cost"]`` is
    the same sale at the normal spread (``spread_multiplier = 1``).
    """
    sale = from_options(LiquidityCosts, costs, "liquidity_crisis")
    if not isinstance(data, MarketData) or not data.has_volume:
        source = f"source '{data.source}'" if isinstance(data, MarketData) else "a returns frame"
        raise DataError(
            f"the liquidity scenario needs traded volume, which {source} does not "
            "have; use the local or a live source"
        )
    if portfolio_value <= 0:
        raise ParameterError(f"portfolio_value must be positive (got {portfolio_value})")
    book = Book.of(data, weights, data.tickers, portfolio_value, sectors, allow_leverage)
    w = book.weights
    adv, sigma = _adv_and_vol(data, w.index, adv_window, vol_window)
    value = portfolio_value * w
    haircut, days = sale.haircut(value, adv, sigma)
    normal, _ = replace(sale, spread_multiplier=1.0).haircut(value, adv, sigma)
    haircut = pd.Series(haircut, index=w.index)
    status = pd.Series("ok", index=w.index, dtype="object")
    status[adv.isna() | sigma.isna()] = (
        f"missing: too little volume/price history in the last {max(adv_window, vol_window)} days"
    )
    covered = status == "ok"
    positions = pd.DataFrame(
        {
            "adv_dollars": adv,
            "daily_vol": sigma,
            "days_to_liquidate": pd.Series(days, w.index),
            "haircut": haircut.where(covered),
            "return": (-haircut * np.sign(w)).where(covered),
            "status": status,
        }
    )
    params = {
        **{k: float(v) for k, v in asdict(sale).items()},
        "adv_window": int(adv_window),
        "vol_window": int(vol_window),
        "normal_cost": float(-(np.abs(value) * normal)[covered.to_numpy()].sum()),
        "max_days_to_liquidate": float(positions["days_to_liquidate"].max()),
    }
    m = sale.spread_multiplier
    return aggregate(
        book,
        positions,
        key="liquidity_crisis",
        name=f"Liquidity crisis (spreads x{m:g})",
        kind="hypothetical",
        description=(
            f"Forced sale of every position at {sale.participation:.0%} of daily "
            f"volume, spreads x{m:g}, square-root market impact"
        ),
        params=params,
        warnings=[
            f"{t}: no traded volume in the last {adv_window} days; its forced sale is "
            "assumed to lose the whole position"
            for t in w.index[(adv == 0).to_numpy()]
        ],
    )


def _adv_and_vol(
    data: MarketData, tickers: pd.Index, adv_window: int, vol_window: int
) -> tuple[pd.Series, pd.Series]:
    """Average daily dollar volume over ``adv_window`` days (at least half of them
    traded) and the daily volatility over ``vol_window`` returns (at least half)."""
    dollar = (data.close[tickers] * data.volume[tickers]).iloc[-adv_window:]
    adv = dollar.mean().where(dollar.notna().sum() >= max(1, adv_window // 2))
    vol = data.returns()[tickers].iloc[-vol_window:]
    sigma = vol.std(ddof=1).where(vol.notna().sum() >= max(2, vol_window // 2))
    return adv, sigma
