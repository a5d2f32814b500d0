"""The offline data shipped inside skfolio/arch/pytickersymbols, checked against the
packages' own loaders (not re-derived)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.bundled import load_bundled, load_index, load_macro
from mltrainer.errors import DataError


def test_bundled_stocks_are_skfolios_prices():
    from skfolio.datasets import load_sp500_dataset

    data = load_bundled()
    ref = load_sp500_dataset()
    assert data.source == "bundled" and data.n_tickers == 20
    np.testing.assert_array_equal(data.adj_close.to_numpy(), ref.to_numpy(dtype="float64"))
    assert not data.has_volume and not data.has_ohlc
    assert data.sectors["JPM"] == "Financials" and data.sectors["XOM"] == "Energy"
    assert len(data.sectors) == 20


def test_index_joins_arch_ohlcv_and_skfolio_close():
    import arch.data.sp500

    idx = load_index("SP500")
    arch_df = arch.data.sp500.load()
    assert idx.dates[0] == pd.Timestamp("1990-01-02")
    assert idx.dates[-1] == pd.Timestamp("2022-12-28")
    day = pd.Timestamp("2008-10-15")
    assert idx.high.loc[day, "SP500"] == arch_df.loc[day, "High"]
    assert idx.volume.loc[day, "SP500"] == arch_df.loc[day, "Volume"]
    assert idx.adj_close.loc["2020-03-16", "SP500"] == pytest.approx(2386.13, abs=0.01)


def test_macro_series_by_fred_name():
    vix = load_macro("VIXCLS")
    assert vix.loc["2018-02-05"] == pytest.approx(37.32, abs=0.01)  # the Volmageddon close
    assert load_macro("baa").name == "BAA"
    with pytest.raises(DataError, match="not bundled.*VIXCLS"):
        load_macro("DGS10")
