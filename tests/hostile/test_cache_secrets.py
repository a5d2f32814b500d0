"""A hostile cache folder and careless keys.

The cache: a row of ``cache.db`` crafted to point at a file outside the folder (by a
relative path, an absolute path or a symlink) must neither be read nor deleted; files are
owner-only; a planted pickle or a corrupt entry is evicted and fetched again with a
warning, never a dead ``data load``. The keys: a value too short to redact safely is
refused with a message naming the variable; a usable key is redacted wherever it stands.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import stat

import diskcache
import pandas as pd
import pytest

from mltrainer import audit, config
from mltrainer.data import fred, polygon
from mltrainer.data.cache import DataCache, _pack, get_cache
from mltrainer.data.http import HttpClient, RetryPolicy, redact
from mltrainer.errors import SourceError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server

STOLEN = {"stolen": True}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------- crafted rows
@pytest.fixture
def victim(tmp_path):
    """A file outside the cache, alone in its folder, that reads as a valid cache entry
    (so a cache that read it would return its value instead of a miss)."""
    folder = tmp_path / "home" / "notes"
    folder.mkdir(parents=True)
    path = folder / "diary.bin"
    path.write_bytes(
        _pack(
            {"fmt": "json", "kind": "x", "stored_at": 0.0, "expires_at": None, "meta": {}},
            json.dumps(STOLEN).encode(),
        )
    )
    return path


def craft(folder, key: str, filename: str) -> None:
    """Point the row of ``key`` at ``filename``, as someone who can write cache.db would."""
    with sqlite3.connect(folder / "cache.db") as db:
        assert (
            db.execute(
                "UPDATE Cache SET filename = ?, mode = ?, value = NULL WHERE key = ?",
                (filename, diskcache.core.MODE_BINARY, key),
            ).rowcount
            == 1
        )


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_row_pointing_outside_is_neither_read_nor_deleted(how, tmp_path, victim, basket):
    folder = tmp_path / "cache"
    cache = DataCache(folder)
    cache.put_frame("prices", basket.adj_close, kind="prices")
    if how == "relative":
        craft(folder, "prices", "../home/notes/diary.bin")
    elif how == "absolute":
        craft(folder, "prices", str(victim))
    else:  # a name of the cache's own form, but a link to the victim
        link = folder / "ab" / "cd" / ("e" * 28 + ".val")
        link.parent.mkdir(parents=True)
        link.symlink_to(victim)
        craft(folder, "prices", "ab/cd/" + "e" * 28 + ".val")
    before = victim.read_bytes()

    assert cache.get("prices") is None  # refused: not the victim's value, not an error
    hit = cache.fetch("prices", lambda: basket.adj_close.iloc[:10], kind="prices")
    assert "dropped and fetched again" in hit.warning and len(hit.value) == 10
    assert cache.get("prices").value.shape == (10, basket.adj_close.shape[1])
    cache.put_frame("prices", basket.adj_close.iloc[:20], kind="prices")  # overwrite
    cache.delete("prices")
    assert victim.read_bytes() == before and victim.parent.is_dir()
    # and through diskcache's own read path, which DataCache does not wrap
    cache.put_frame("again", basket.adj_close, kind="prices")
    craft(folder, "again", "../home/notes/diary.bin")
    with pytest.raises(Exception, match="not one of the cache's own value files"):
        cache._store.get("again")
    cache._store.cull()
    cache._store.clear()
    assert victim.read_bytes() == before


def test_deleting_a_crafted_row_leaves_the_outside_file_and_its_folders(tmp_path, victim, basket):
    folder = tmp_path / "cache"
    cache = DataCache(folder)
    cache.put_frame("prices", basket.adj_close, kind="prices")
    craft(folder, "prices", "../home/notes/diary.bin")
    cache.delete("prices")
    assert "prices" not in cache
    assert victim.is_file() and victim.parent.parent.is_dir()


# ------------------------------------------------------------------ file modes
def test_database_and_value_files_are_owner_only(tmp_path, basket):
    folder = tmp_path / "cache"
    cache = DataCache(folder)
    cache.put_frame("big", basket.adj_close, kind="prices")
    cache.put_json("small", {"a": 1}, kind="fred")
    assert mode(folder) == 0o700
    db_files = list(folder.glob("cache.db*"))
    assert folder / "cache.db" in db_files
    assert {p.name: mode(p) for p in db_files} == {p.name: 0o600 for p in db_files}
    values = list(folder.rglob("*.val"))
    assert values and all(mode(p) == 0o600 for p in values)
    assert all(mode(p.parent) == 0o700 and mode(p.parent.parent) == 0o700 for p in values)


def test_an_older_cache_is_tightened_on_open(tmp_path):
    folder = tmp_path / "cache"
    plain = diskcache.Cache(str(folder))  # diskcache's defaults: 0644 under the umask
    plain.set("k", b"v")
    plain.close()
    (folder / "cache.db").chmod(0o644)
    DataCache(folder).close()
    assert mode(folder / "cache.db") == 0o600 and mode(folder) == 0o700


# -------------------------------------------------------- refused and corrupt
class Evil:
    def __init__(self, marker, size=0):
        self.marker, self.pad = str(marker), "x" * size

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("size", [0, 100_000], ids=["in-db", "in-file"])
def test_planted_pickle_is_evicted_and_refetched_with_a_warning(size, tmp_path):
    folder = tmp_path / "cache"
    DataCache(folder).close()
    marker = tmp_path / "pwned"
    plain = diskcache.Cache(str(folder))
    plain.set("wiki", Evil(marker, size))
    plain.close()
    cache = DataCache(folder)
    hit = cache.fetch("wiki", lambda: {"rows": 503}, kind="constituents", fmt="json")
    assert hit.value == {"rows": 503} and not marker.exists()
    assert "dropped and fetched again" in hit.warning and "unpickle" in hit.warning
    again = cache.fetch(
        "wiki", lambda: pytest.fail("served from the cache"), kind="constituents", fmt="json"
    )
    assert again.value == {"rows": 503} and again.warning is None


def test_fred_load_survives_a_planted_pickle(http_server, monkeypatch, shared_data_dir):
    """``data load`` used to fail on every run until the cache was deleted by hand."""
    monkeypatch.setenv(fred.API_ENV, http_server.url)
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    http_server.route("/graph/fredgraph.csv", Reply.file(shared_data_dir / "fred" / "SP500.csv"))
    cache = get_cache()
    plain = diskcache.Cache(str(cache.directory))
    plain.set("fred:series:SP500", Evil(cache.directory / "pwned"))
    plain.close()
    client = HttpClient(timeout=(2.0, 5.0), retry=RetryPolicy(max_attempts=1))
    series = fred.load_fred("SP500", client=client)
    assert len(series) > 2000 and "dropped and fetched again" in series.attrs["warning"]
    assert not (cache.directory / "pwned").exists()
    assert "warning" not in fred.load_fred("SP500", client=client).attrs


def test_corrupt_entry_is_evicted_and_refetched_with_a_warning(tmp_path, basket):
    cache = DataCache(tmp_path / "cache")
    frame = basket.adj_close.iloc[:500]
    cache.put_frame("p", frame, kind="prices")
    (value,) = (tmp_path / "cache").rglob("*.val")
    value.write_bytes(b"\0" * value.stat().st_size)
    hit = cache.fetch("p", lambda: frame, kind="prices")
    assert "corrupt" in hit.warning
    pd.testing.assert_frame_equal(cache.get("p").value, frame, check_freq=False)


# ---------------------------------------------------------------------- keys
@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(config, "_warned", set(), raising=False)


@pytest.mark.parametrize("value", ["0", "xq7", "aaaaaaaaaaaa", "12345678", "abc def 123"])
def test_unsafe_key_is_refused_naming_the_variable(value, monkeypatch, caplog, fresh_warnings):
    monkeypatch.setenv("FRED_API_KEY", value)
    caplog.set_level(logging.WARNING, logger="mltrainer.config")
    assert config.api_key("FRED_API_KEY") is None
    problem = config.key_problem("FRED_API_KEY")
    assert problem.startswith("FRED_API_KEY is ignored") and value not in problem.split(": ")[1]
    assert [r.getMessage() for r in caplog.records] == [problem]  # logged once
    config.api_key("FRED_API_KEY")
    assert len(caplog.records) == 1


def test_polygon_says_the_key_was_refused(monkeypatch, fresh_warnings):
    monkeypatch.setenv("POLYGON_API_KEY", "0")
    with pytest.raises(SourceError, match="POLYGON_API_KEY is ignored") as err:
        polygon.api_key()
    assert "set POLYGON_API_KEY" not in str(err.value)


def test_short_key_no_longer_corrupts_messages_or_audit_lines(monkeypatch, fresh_warnings, basket):
    monkeypatch.setenv("FRED_API_KEY", "0")
    text = "HTTP 500 from /fred?series_id=DGS10 at 2020-01-10: rate 0.05"
    assert config.scrub(text) == text and redact(text) == text
    small = basket.select(tickers=["KO"], start="2020-01-01", end="2020-03-31")
    rec = audit.record(
        kind="backtest",
        model_key="x/Y",
        params={"window": 10},
        data=small,
        metrics={"sharpe": 0.5, "turnover": 100.0},
    )
    line = audit.audit_file().read_text().strip()
    assert json.loads(line) == rec and rec["metrics"] == {"sharpe": 0.5, "turnover": 100.0}
    assert rec["start"] == "2020-01-02" and "***" not in line


def test_redaction_removes_a_key_wherever_it_stands(monkeypatch):
    """A usable key is long and varied, so it is removed also inside a longer word: a
    boundary test let it through after a JSON escape (``\\nKEY``) or before letters."""
    monkeypatch.setenv("FRED_API_KEY", "abc12345")
    text = (
        "xabc123456y abc123456 0abc12345 abc12345 'abc12345' api=abc12345&x=1 "
        "next=%3Fapi_key%3Dabc12345%26 Bearer abc12345. \\nabc12345 ABC12345x"
    )
    assert config.scrub(text) == (
        "x***6y ***6 0*** *** '***' api=***&x=1 next=%3Fapi_key%3D***%26 Bearer ***. \\n*** ***x"
    )
    assert config.scrub(text) == config.scrub(text, "abc12345")
    assert redact(text).startswith("x***6y ***6 0*** *** '***' api=***&x=1")


def test_a_short_secret_handed_in_is_replaced_as_a_whole_token_only():
    text = "rate 0.05 at 10:00, secret 10 and x10y"
    assert config.scrub(text, "10") == "rate 0.05 at ***:00, secret *** and x10y"


def test_a_real_key_still_disappears_everywhere(monkeypatch):
    key = "fredkey0123456789abcdef0123456789"
    monkeypatch.setenv("FRED_API_KEY", key)
    assert config.api_key("FRED_API_KEY") == key
    for text in (f"api_key={key}", f"/x?a=1&k={key}", f'"{key}"', f"({key})", f"{key}\n"):
        assert key not in config.scrub(text)
