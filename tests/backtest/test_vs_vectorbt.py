"""The engine and the metrics against vectorbt on real prices and real signals.

vectorbt is configured as the engine's documented twin: ``from_orders`` with
``size_type="targetpercent"``, one cash-sharing group, sells first (``call_seq="auto"``),
the total cost as ``fees`` and no slippage. Its capital is 1e8 because vectorbt ignores
orders below 1e-12 shares, which a capital of 1.0 would hit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.backtest.engine import run_backtest, signal_to_weights

CAPITAL = 1e8


@pytest.fixture(scope="module")
def prices(basket):
    return basket.select(start="2006-01-01", end="2020-12-31")


def _vbt_equity(vbt, px: pd.DataFrame, targets: pd.DataFrame, fee: float):
    pf = vbt.Portfolio.from_orders(
        px.ffill(),
        size=targets,
        size_type="targetpercent",
        fees=fee,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        init_cash=CAPITAL,
        freq="1D",
    )
    return pf.value() / CAPITAL


def _momentum(px: pd.DataFrame, window: int) -> pd.DataFrame:
    return np.sign(px / px.shift(window) - 1)


def _ranked(px: pd.DataFrame, window: int) -> pd.DataFrame:
    """Cross-sectional rank of momentum, centred: long the winners, short the losers."""
    return (px / px.shift(window) - 1).rank(axis=1, pct=True) - 0.5


@pytest.mark.parametrize("case", ["long_short_daily", "sparse_rebalance", "long_only_capped"])
def test_equity_curve_equals_vectorbt(vectorbt, prices, case):
    px = prices.adj_close
    tradable = px.notna()
    if case == "long_short_daily":
        sig, kw, fee = _ranked(px, 20), dict(commission_bps=10, spread_bps=5), 0.0015
    elif case == "sparse_rebalance":
        sig, kw, fee = (
            _ranked(px, 60),
            dict(commission_bps=4, slippage_bps=3, rebalance_every=5),
            0.0007,
        )
    else:
        sig = _momentum(px, 120).clip(lower=0)
        kw, fee = dict(commission_bps=8, gross_limit=0.95, max_weight=0.2), 0.0008
    res = run_backtest(sig, prices, **kw)
    # the same targets, given to vectorbt: NaN = no order (held), like the engine
    w, _ = signal_to_weights(
        sig.where(tradable), gross_limit=kw.get("gross_limit", 1.0), max_weight=kw.get("max_weight")
    )
    targets = w.where(tradable)
    every = kw.get("rebalance_every", 1)
    if every > 1:
        targets.iloc[np.arange(len(targets)) % every != 0] = np.nan
    # vectorbt never borrows: it partially fills a buy its cash cannot pay for, so the
    # comparison stays where cash is positive (net exposure well below 1)
    assert targets.sum(axis=1).max() < 0.96
    expected = _vbt_equity(vectorbt, px, targets, fee)
    np.testing.assert_allclose(res.equity.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=0)
    assert res.metrics["total_costs"] > 0.01  # the costs are material, not a no-op
