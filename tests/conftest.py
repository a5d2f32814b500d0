"""Shared fixtures: real data only, loaded once per session.

Tests that need ``../shared/data`` skip only when that folder is absent (``.ci/run``
fails before that can happen in CI). The cache used by tests is a temporary folder,
never the user's ``cache/``. Reference packages (TA-Lib, vectorbt) come as fixtures
through :func:`require_module`: missing, their tests skip, or fail in CI.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from mltrainer import config

# A fixed, varied basket of real tickers: long histories, a split-heavy one (AAPL),
# one that starts mid-sample (TSLA, 2010), a dotted ticker (BRK.B), financials, energy.
BASKET = ["AAPL", "MSFT", "JPM", "XOM", "JNJ", "WMT", "TSLA", "BRK.B", "KO", "INTC"]


def require_module(name: str) -> ModuleType:
    """Import an optional package a reference test compares against.

    Where it is missing the test skips, except with MLTRAINER_REQUIRE_REFERENCES=1 (set
    by .ci/run), where it fails: in CI a reference test must run, not vanish in a skip.
    """
    if os.environ.get("MLTRAINER_REQUIRE_REFERENCES") == "1":
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(
                f"{name} is missing ({exc}); required here: MLTRAINER_REQUIRE_REFERENCES=1",
                pytrace=False,
            )
    return pytest.importorskip(
        name, reason=f"{name} is not installed (a reference package from requirements-dev.txt)"
    )


@pytest.fixture(scope="session")
def talib() -> ModuleType:
    """TA-Lib, the oracle of the indicator tests."""
    return require_module("talib")


@pytest.fixture(scope="session")
def vectorbt() -> ModuleType:
    """vectorbt, the backtest engine's documented twin."""
    return require_module("vectorbt")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = config.data_dir()
    if path is None or not (path / "sp500_daily").is_dir():
        pytest.skip("../shared/data is absent (set MLTRAINER_DATA_DIR to the real data folder)")
    return path


@pytest.fixture(scope="session")
def sp500_dir(shared_data_dir) -> Path:
    return shared_data_dir / "sp500_daily"


@pytest.fixture(scope="session")
def basket(sp500_dir):
    """MarketData for BASKET, 1999-2021, from the real per-ticker files."""
    from mltrainer.data.local import load_local
    from mltrainer.data.sources import local_sectors

    return load_local(sp500_dir, tickers=BASKET, sectors=local_sectors(sp500_dir))


@pytest.fixture(scope="session")
def panel(sp500_dir):
    """All 504 real tickers, 1999-2021 (about 5,400 dates)."""
    from mltrainer.data.local import load_local
    from mltrainer.data.sources import local_sectors

    return load_local(sp500_dir, sectors=local_sectors(sp500_dir))


@pytest.fixture(scope="session")
def bundled():
    """The real data shipped inside skfolio/arch (20 stocks, the index)."""
    from mltrainer.data.bundled import load_bundled

    return load_bundled()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes to its own cache and audit folders, never the user's."""
    root = tmp_path_factory.mktemp("mltrainer")
    monkeypatch.setenv("MLTRAINER_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("MLTRAINER_AUDIT_DIR", str(root / "audit"))


@pytest.fixture()
def blocked_cache_dir(tmp_path, monkeypatch) -> Path:
    """MLTRAINER_CACHE_DIR naming a file, where the cache folder should be, in a process
    that has opened no cache yet (what a deployment with a broken cache volume meets)."""
    from mltrainer.data import cache

    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MLTRAINER_CACHE_DIR", str(blocked))
    monkeypatch.setattr(cache, "_CACHES", {})
    monkeypatch.setattr(cache, "_PROBLEMS", {})
    return blocked


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """No test touches the internet: connections to anything but loopback fail loudly."""
    import ipaddress
    import socket

    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise OSError(f"test tried to reach {host}: tests may only use 127.0.0.1")
        return real_connect(sock, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture()
def markov_first_refit_fails(monkeypatch):
    """Fault injection: statsmodels refuses every refit on 504 returns (the first one of
    the default schedule), as it does on degenerate windows ("Could not untransform
    parameters"); the data stay real."""
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    real_fit = MarkovRegression.fit

    def failing_fit(self, *args, **kwargs):
        if self.nobs == 504:
            raise ValueError("injected: Could not untransform parameters")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(MarkovRegression, "fit", failing_fit)
