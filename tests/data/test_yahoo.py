"""Yahoo without a network: the pure parts (ticker spelling, converting a yfinance frame
built from real daily rows into MarketData, per-ticker reporting) and the retry logic,
with the download function injected."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest
from yfinance.exceptions import YFRateLimitError

from mltrainer.data import yahoo
from mltrainer.data.cache import get_cache
from mltrainer.data.http import RetryPolicy
from mltrainer.errors import SourceError

TICKERS = ["AAPL", "MSFT", "BRK.B", "TSLA", "XOM"]
START, END = "2019-06-03", "2021-04-21"
RATE_LIMIT = "YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"


@pytest.fixture(scope="module")
def real(basket):
    """Real bars (AAPL and TSLA split 4:1 and 5:1 on 2020-08-31; dividends)."""
    return basket.select(TICKERS, START, END)


def yahoo_layout(data) -> pd.DataFrame:
    """What yf.download(group_by="ticker", auto_adjust=False, actions=True) returns for
    these rows: OHLC, volume and dividends split-adjusted to the last day, Adj Close as
    is, Stock Splits 0 on ordinary days, BRK-B spelling, a (Ticker, Price) header."""
    factor = data.split_factor()
    parts = {}
    for t in data.tickers:
        f = factor[t]
        parts[yahoo.to_yahoo(t)] = pd.DataFrame(
            {
                "Open": data.open[t] / f,
                "High": data.high[t] / f,
                "Low": data.low[t] / f,
                "Close": data.close[t] / f,
                "Adj Close": data.adj_close[t],
                "Volume": data.volume[t] * f,
                "Dividends": data.dividends[t] / f,
                "Stock Splits": data.splits[t].where(data.splits[t] != 1.0, 0.0),
            }
        )
    frame = pd.concat(parts, axis=1, names=["Ticker", "Price"])
    frame.index.name = "Date"
    return frame


class FakeDownload:
    """Scripted download results; records each call's tickers."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls: list[tuple] = []

    def __call__(self, tickers, start, end):
        self.calls.append((list(tickers), start, end))
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            raise result
        frame, errors = result
        keep = [t for t in tickers if t in frame.columns.get_level_values(0)]
        return frame.loc[:, keep], errors


def load(download, tickers=TICKERS, sleeps=None, **kw):
    sleeps = [] if sleeps is None else sleeps
    return yahoo.load_yahoo(
        tickers,
        START,
        END,
        download=download,
        retry=RetryPolicy(max_attempts=4, backoff=2.0),
        sleep=sleeps.append,
        **kw,
    )


# ------------------------------------------------------------------ spelling
def test_ticker_spelling():
    assert yahoo.to_yahoo("BRK.B") == "BRK-B" and yahoo.to_yahoo("bf.b") == "BF-B"
    assert yahoo.from_yahoo("BRK-B") == "BRK.B" and yahoo.from_yahoo("^GSPC") == "^GSPC"
    assert yahoo.to_yahoo("AAPL") == "AAPL" == yahoo.from_yahoo("aapl")


# ---------------------------------------------------------------- conversion
def test_yfinance_frame_converts_back_to_the_real_as_traded_bars(real):
    bars = yahoo.frame_to_bars(yahoo_layout(real), [yahoo.to_yahoo(t) for t in TICKERS])
    assert sorted(bars) == sorted(yahoo.to_yahoo(t) for t in TICKERS)
    aapl = bars["AAPL"]
    # around the 4:1 split: as traded, 499.23 then 129.04 (not 124.81 then 129.04)
    assert aapl.loc["2020-08-28", "close"] == pytest.approx(499.23)
    assert aapl.loc["2020-08-31", "close"] == pytest.approx(129.04)
    assert aapl.loc["2020-08-31", "splits"] == 4.0
    assert aapl.loc["2020-08-07", "dividends"] == pytest.approx(0.82)  # as paid, pre-split
    for t in TICKERS:
        got = bars[yahoo.to_yahoo(t)]
        ref = real.select([t]).drop_empty()
        for field in ("open", "high", "low", "close", "adj_close", "volume", "dividends", "splits"):
            np.testing.assert_allclose(
                got[field], getattr(ref, field)[t].dropna(), rtol=1e-12, err_msg=f"{t} {field}"
            )


def test_load_yahoo_equals_the_local_loader(real):
    fake = FakeDownload((yahoo_layout(real), {}))
    data = load(fake)
    assert data.source == "yahoo" and data.tickers == TICKERS and not data.warnings
    for field in ("open", "high", "low", "close", "adj_close", "volume", "dividends", "splits"):
        pd.testing.assert_frame_equal(
            getattr(data, field), getattr(real, field), check_freq=False, rtol=1e-12, obj=field
        )
    ((tickers, start, end),) = fake.calls
    assert tickers == ["AAPL", "MSFT", "BRK-B", "TSLA", "XOM"] and start == START
    assert pd.Timestamp(end) > pd.Timestamp.today()  # to today, so every split is known


# ------------------------------------------------------------- bad tickers
def test_partial_and_empty_tickers_are_reported(real):
    frame = yahoo_layout(real)
    frame.loc["2020-03-02":"2020-03-04", "MSFT"] = np.nan  # three days missing inside
    frame.loc["2021-03-01":, "XOM"] = np.nan  # stops seven weeks early
    fake = FakeDownload(
        (frame, {"ZZZZ": "YFTzMissingError('possibly delisted; no timezone found')"})
    )
    data = load(fake, TICKERS + ["ZZZZ"])
    assert data.tickers == TICKERS  # ZZZZ left out, the rest loaded
    text = "\n".join(data.warnings)
    assert "Yahoo returned no data for ZZZZ (YFTzMissingError('possibly delisted" in text
    assert "MSFT: partial history, 3 trading day(s) without a price" in text
    assert "first 2020-03-02" in text
    assert "XOM: partial history, ends on 2021-02-26" in text
    assert data.close["MSFT"].isna().sum() == 3


def test_all_tickers_failing_is_a_source_error(real):
    fake = FakeDownload((yahoo_layout(real).iloc[:, :0], {"AAPL": "HTTPError 404"}))
    with pytest.raises(SourceError) as err:
        load(fake, ["AAPL", "NOPE"])
    assert "no data for any of 2 ticker(s)" in str(err.value) and "AAPL" in str(err.value)


# ------------------------------------------------------------------ retries
def test_rate_limit_exception_is_retried_with_backoff(real):
    sleeps = []
    fake = FakeDownload(YFRateLimitError(), (yahoo_layout(real), {}))
    data = load(fake, sleeps=sleeps)
    assert data.tickers == TICKERS and sleeps == [2.0] and len(fake.calls) == 2


def test_only_rate_limited_tickers_are_retried(real):
    frame = yahoo_layout(real)
    first = frame.drop(columns="MSFT", level=0)
    fake = FakeDownload((first, {"MSFT": RATE_LIMIT}), (frame, {}))
    sleeps = []
    data = load(fake, sleeps=sleeps)
    assert data.tickers == TICKERS and sleeps == [2.0]
    assert [c[0] for c in fake.calls] == [[yahoo.to_yahoo(t) for t in TICKERS], ["MSFT"]]


def test_rate_limit_exhaustion_is_bounded_and_reported(real):
    frame = yahoo_layout(real).drop(columns="MSFT", level=0)
    fake = FakeDownload((frame, {"MSFT": RATE_LIMIT}))
    sleeps = []
    data = load(fake, sleeps=sleeps)
    assert sleeps == [2.0, 4.0, 8.0] and len(fake.calls) == 4
    assert "MSFT" not in data.tickers
    assert any("MSFT" in w and "gave up after 4 attempts" in w for w in data.warnings)


def test_batches_and_progress(real):
    fake = FakeDownload((yahoo_layout(real), {}))
    seen = []
    load(fake, batch_size=2, progress=lambda f, text: seen.append((round(f, 3), text)))
    assert [len(c[0]) for c in fake.calls] == [2, 2, 1]
    assert seen == [
        (0.333, "Yahoo: batch 1 of 3"),
        (0.667, "Yahoo: batch 2 of 3"),
        (1.0, "Yahoo: batch 3 of 3"),
    ]


def test_yf_download_captures_per_ticker_errors(real, monkeypatch):
    """yf.download logs failures instead of raising; the default download reads them."""
    import yfinance

    def fake_download(tickers, **kw):
        assert kw["group_by"] == "ticker" and kw["auto_adjust"] is False and kw["actions"]
        logger = logging.getLogger("yfinance")
        logger.error("\n2 Failed downloads:")
        logger.error(f"['MSFT', 'BRK-B']: {RATE_LIMIT}")
        return yahoo_layout(real).loc[:, ["AAPL"]]

    monkeypatch.setattr(yfinance, "download", fake_download)
    frame, errors = yahoo.yf_download(["AAPL", "MSFT", "BRK-B"], START, END)
    assert list(frame.columns.get_level_values(0).unique()) == ["AAPL"]
    assert errors == {"MSFT": RATE_LIMIT, "BRK-B": RATE_LIMIT}
    assert yahoo.is_rate_limit(errors["MSFT"]) and yahoo.is_rate_limit(YFRateLimitError())
    assert not yahoo.is_rate_limit("YFTzMissingError('possibly delisted')")


# --------------------------------------------------------------------- cache
def test_cache_reuse_and_stale_copy_after_failure(real):
    fake = FakeDownload((yahoo_layout(real), {}))
    first = load(fake)
    again = load(fake)
    assert len(fake.calls) == 1 and again.adj_close.equals(first.adj_close)

    cache = get_cache()
    keys = sorted(e["key"] for e in cache.status())
    assert keys == sorted(f"yahoo:daily:{t}:{START}" for t in TICKERS)
    for key in keys:
        cache.put_frame(key, cache.get(key).value, kind="prices", expires_at=time.time() - 1)
    failing = FakeDownload(RuntimeError("Connection reset by peer"))
    stale = load(failing)
    assert len(failing.calls) == 4  # bounded retries, then the cached copies
    assert stale.adj_close.equals(first.adj_close)
    assert len(stale.warnings) == len(TICKERS)
    assert all("cached data" in w and "Connection reset" in w for w in stale.warnings)


def test_offline_setting_serves_the_cache_and_never_calls_yfinance(real, monkeypatch):
    """MLTRAINER_OFFLINE: the real download is not called; cached copies, even expired
    ones, are served with a warning; a ticker with no copy is an error naming the setting."""
    first = load(FakeDownload((yahoo_layout(real), {})), tickers=["AAPL", "MSFT"])
    cache = get_cache()
    for key in (e["key"] for e in cache.status()):
        cache.put_frame(key, cache.get(key).value, kind="prices", expires_at=time.time() - 1)

    def forbidden(*args, **kw):
        raise AssertionError("yfinance called while offline")

    monkeypatch.setattr(yahoo, "yf_download", forbidden)
    monkeypatch.setenv("MLTRAINER_OFFLINE", "yes")
    served = yahoo.load_yahoo(["AAPL", "MSFT"], START, END)
    assert served.adj_close.equals(first.adj_close)
    assert len(served.warnings) == 2
    assert all("cached data" in w and "MLTRAINER_OFFLINE is set" in w for w in served.warnings)
    with pytest.raises(SourceError, match="MLTRAINER_OFFLINE is set.*none of: XOM"):
        yahoo.load_yahoo(["XOM"], START, END)
    caps, notes = yahoo.yahoo_market_caps(["AAPL"])
    assert caps == {} and "MLTRAINER_OFFLINE is set" in notes[0]


def test_market_caps_with_injected_ticker():
    class FakeTicker:
        def __init__(self, symbol):
            self.symbol = symbol

        @property
        def fast_info(self):
            if self.symbol == "NOPE":
                raise KeyError("marketCap")
            return {"marketCap": {"AAPL": 3.0e12, "BRK-B": 1.0e12}[self.symbol]}

    caps, notes = yahoo.yahoo_market_caps(["AAPL", "BRK.B", "NOPE"], ticker_factory=FakeTicker)
    assert caps == {"AAPL": 3.0e12, "BRK.B": 1.0e12}
    assert len(notes) == 1 and "NOPE" in notes[0]


def test_yfinance_own_warnings_are_not_shown(real, monkeypatch, recwarn):
    """yfinance 1.7 calls pandas' deprecated ``rename(inplace=True)`` inside download(),
    which printed a Pandas4Warning over every Yahoo load. Warnings raised by yfinance's
    own code are dropped during our download, and only then."""
    import warnings

    import yfinance

    scope = {"__name__": "yfinance.multi", "warnings": warnings, "frame": yahoo_layout(real)}
    exec(  # a function whose warnings come from the module yfinance.multi, as the real one's
        "def download(tickers, **kw):\n"
        "    warnings.warn('inplace is deprecated', FutureWarning)\n"
        "    return frame\n",
        scope,
    )
    monkeypatch.setattr(yfinance, "download", scope["download"])
    frame, errors = yahoo.yf_download(["AAPL"], START, END)
    assert len(frame) and not errors
    assert not [w for w in recwarn if "inplace" in str(w.message)]
    # the filter ends with the download: the same warning from yfinance is shown again
    with pytest.warns(FutureWarning, match="inplace"):
        scope["download"](["AAPL"])


def test_cli_auto_online_asks_yahoo_for_the_history_before_start(
    basket, monkeypatch, tmp_path, capsys
):
    """With no local folder and the network up, ``--source auto`` downloads from Yahoo:
    the backtest asks for the model's warm-up before --start (a 5-day window: 6 trading
    days, 6 x 7/5 + 14 = 22 calendar days, from 1995-12-11), not Yahoo's default history
    from 2000 (which began five years after a 1996 --start)."""
    monkeypatch.delenv("MLTRAINER_OFFLINE", raising=False)  # "the network up"
    import json

    from mltrainer.cli import main
    from mltrainer.data import sources

    calls = []

    def download(tickers, start, end):  # the real rows of those dates, in Yahoo's layout
        calls.append((list(tickers), start, end))
        rows = basket.select(["MSFT"], start=max(start, "1999-11-01"), end=end)
        return yahoo_layout(rows), {}

    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path))  # no sp500_daily folder
    monkeypatch.setattr(sources, "live_reachable", lambda: True)
    monkeypatch.setattr(yahoo, "yf_download", download)
    argv = ["backtest", "momentum/SimpleMomentumModel", "--param", "window=5"]
    argv += ["--source", "auto", "--tickers", "MSFT", "--end", "2000-06-30", "--json"]
    assert main([*argv, "--start", "2000-03-01"]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "yahoo" and doc["first_date"] == "2000-03-01"
    assert [c[1] for c in calls] == ["2000-02-08"]  # 22 days before, not 2000-01-01
    calls.clear()
    assert main([*argv, "--start", "1996-01-02"]) == 0, capsys.readouterr().err
    assert [c[1] for c in calls] == ["1995-12-11"]
