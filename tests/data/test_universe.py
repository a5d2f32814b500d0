"""The S&P 500 universe: point-in-time membership on the real 2024 page, sectors, weights,
the other sources, the update schedule, export, the manager's fallbacks and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import time

import pandas as pd
import pytest

from mltrainer.cli import main
from mltrainer.data import wikipedia
from mltrainer.data.cache import get_cache
from mltrainer.data.constituents import _SECTOR_PRIORITY
from mltrainer.data.gics import GICS_SECTORS
from mltrainer.data.http import HttpClient, RetryPolicy
from mltrainer.data.universe import (
    SP500Stock,
    SP500Universe,
    SP500UniverseManager,
    gics_sector,
    sector_map,
)
from mltrainer.errors import DataError
from tests.data import httpserver
from tests.data.httpserver import Reply

http_server = httpserver.http_server
PAGE = "wikipedia/List_of_S&P_500_companies-2024-10-10.html"


@pytest.fixture(scope="module")
def page_path(shared_data_dir):
    return shared_data_dir / PAGE


@pytest.fixture(scope="module")
def universe(page_path) -> SP500Universe:
    return SP500UniverseManager().from_html(page_path)


# --------------------------------------------------------------- point in time
def test_members_on_2020_has_later_removals_and_lacks_later_additions(universe):
    members = set(universe.members_on("2020-01-02"))
    # removed after 2020-01-02 according to the page's changes table
    for gone in ("AAL", "XRX", "HOG", "M", "RTN", "AGN", "WCG"):
        assert gone in members, gone
    # added after 2020-01-02
    for new in ("TSLA", "PLTR", "MRNA", "OTIS", "CARR", "ETSY", "PAYC"):
        assert new not in members, new
    # long-standing members stay
    assert {"AAPL", "MSFT", "JPM", "XOM", "BRK.B"} <= members


def test_membership_count_stays_near_500(universe):
    for year in range(2000, 2025):
        n = len(universe.members_on(f"{year}-06-30"))
        assert 500 <= n <= 509, (year, n)
        if year >= 2010:
            assert n <= 505, (year, n)


def test_change_takes_effect_on_its_date(universe):
    assert "PLTR" in universe.members_on("2024-09-23")
    assert "AAL" not in universe.members_on("2024-09-23")
    before = universe.members_on("2024-09-20")
    assert "PLTR" not in before and "AAL" in before
    # on and after as_of: the page's current list
    assert universe.members_on("2024-10-09") == sorted(universe.symbols)
    assert universe.members_on("2030-01-01") == sorted(universe.symbols)


def test_members_are_listed_under_the_symbols_of_the_day(universe):
    # the page lists META; before 2022-06-09 the company traded as FB
    assert "FB" in universe.members_on("2014-01-02")
    assert "META" not in universe.members_on("2014-01-02")
    assert "FB" not in universe.members_on("2013-12-20")  # Facebook joined 2013-12-23
    assert {"CPAY", "WTW"} <= set(universe.members_on("2024-06-28"))
    assert {"FLT", "WLTW"} <= set(universe.members_on("2021-06-30"))


def test_membership_frame_agrees_with_members_on(universe):
    dates = pd.DatetimeIndex(
        ["2024-09-20", "2005-03-01", "2020-01-02", "2024-09-23", "2013-12-23", "1999-01-04"]
    )
    frame = universe.membership_frame(dates)
    assert frame.index.equals(dates) and frame.dtypes.eq(bool).all()
    for day in dates:  # columns: every symbol of the day that was ever a member
        assert sorted(frame.columns[frame.loc[day]]) == universe.members_on(day), day


def test_membership_frame_maps_2021_tickers(universe, sp500_dir):
    """Price files labelled with 2021 tickers (FB, not META) line up with membership."""
    dates = pd.bdate_range("2019-12-30", "2020-01-03")
    frame = universe.membership_frame(dates, ["FB", "AAPL", "TSLA", "ANTM"], key_date="2021-04-21")
    assert frame["FB"].all() and frame["AAPL"].all() and frame["ANTM"].all()
    assert not frame["TSLA"].any()  # joined 2020-12-21


def test_no_changes_table_means_no_history():
    flat = SP500UniverseManager().from_pytickersymbols()
    with pytest.raises(DataError, match="no changes table"):
        flat.members_on("2020-01-02")
    with pytest.raises(DataError, match="universe update"):
        flat.membership_frame(pd.DatetimeIndex(["2020-01-02"]))


# -------------------------------------------------------------- sectors, weights
def test_sectors_and_sector_map(universe):
    counts = universe.sectors()
    assert counts.sum() == 503 and set(counts.index) == set(GICS_SECTORS)
    assert counts["Industrials"] == 78 and counts["Energy"] == 22
    sectors = sector_map(universe)
    assert sectors["BRK.B"] == "Financials" and sectors["AAPL"] == "Information Technology"
    assert len(sectors) == 503


def test_equal_and_cap_weights(universe, shared_data_dir):
    eq = universe.equal_weights()
    assert eq.sum() == pytest.approx(1.0) and eq.iloc[0] == pytest.approx(1 / 503)
    assert universe.sector_weights("equal")["Industrials"] == pytest.approx(78 / 503)

    fresh = SP500UniverseManager().from_html(shared_data_dir / PAGE)
    caps = fresh.cap_weights()  # from the financials snapshot in the data folder
    snap = pd.read_csv(shared_data_dir / "constituents-financials-2026-08-22.csv")
    snap = snap.set_index("Symbol")["Market Cap"]
    known = snap.reindex(fresh.symbols).dropna()
    known = known[known > 0]
    assert caps.sum() == pytest.approx(1.0)
    assert caps["AAPL"] == pytest.approx(known["AAPL"] / known.sum())
    assert set(caps.index) == set(known.index)
    assert "BRK.B" not in caps and any("BRK.B" in w for w in fresh.warnings)

    by_sector = fresh.sector_weights("cap")
    assert by_sector.sum() == pytest.approx(1.0)
    assert by_sector.index[0] == "Information Technology"
    it = [s for s in fresh.symbols if sector_map(fresh)[s] == "Information Technology"]
    assert by_sector["Information Technology"] == pytest.approx(caps.reindex(it).sum())
    with pytest.raises(DataError, match="'cap' or 'equal'"):
        fresh.sector_weights("float")


# ------------------------------------------------------------------- sources
def test_pytickersymbols_sectors_agree_with_gics(shared_data_dir):
    assert set(_SECTOR_PRIORITY) == set(GICS_SECTORS)
    bundled = SP500UniverseManager().from_pytickersymbols()
    assert len(bundled) == 503 and bundled.source.startswith("pytickersymbols")
    assert all(s.sector in GICS_SECTORS for s in bundled.constituents)
    ref = pd.read_csv(shared_data_dir / "constituents-2026-08-08.csv").set_index("Symbol")
    ours = pd.Series(sector_map(bundled))
    common = ours.index.intersection(ref.index)
    agree = (ours[common] == ref.loc[common, "GICS Sector"]).mean()
    assert len(common) > 480 and agree > 0.98
    # companies the wheel tags with two sectors
    assert gics_sector(["Energy", "Utilities"]) == "Utilities"
    assert gics_sector(["Commercial REITs", "Financials", "Real Estate"]) == "Real Estate"
    assert gics_sector(["Financials", "Industrials", "Professional Information"]) == "Financials"
    assert gics_sector(["Healthcare", "Medical devices"]) == "Health Care"
    assert gics_sector(["Swimming pools"]) is None


def test_constituent_csvs(shared_data_dir):
    manager = SP500UniverseManager()
    new = manager.from_csv(shared_data_dir / "constituents-2026-08-08.csv")
    assert len(new) == 503 and new.as_of == pd.Timestamp("2026-08-08")
    assert new.get("MMM") == SP500Stock(
        "MMM",
        "3M",
        "Industrials",
        "Industrial Conglomerates",
        "1957-03-04",
        "0000066740",
        None,
        "Saint Paul, Minnesota",
        "1902",
    )
    old = manager.from_csv(shared_data_dir / "constituents-2021-04-23.csv")
    assert len(old) == 505 and old.get("BRK.B").sector == "Financials"
    assert set(old.sectors().index) == set(GICS_SECTORS)
    with pytest.raises(DataError, match="Sector column holds sub-industries"):
        manager.from_csv(shared_data_dir / "constituents-financials-2026-08-22.csv")


def test_bad_files(tmp_path):
    manager = SP500UniverseManager()
    with pytest.raises(DataError, match="missing.csv: no such file"):
        manager.from_csv(tmp_path / "missing.csv")
    odd = tmp_path / "odd.csv"
    odd.write_text("Year,Return\n2020,0.16\n")
    with pytest.raises(DataError, match="odd.csv: not a constituents list"):
        manager.from_csv(odd)
    page = tmp_path / "page.html"
    page.write_text("<html><body><p>no tables</p></body></html>")
    with pytest.raises(DataError, match="page.html: no S&P 500 constituents table"):
        manager.from_html(page)
    with pytest.raises(DataError, match="unknown universe source"):
        manager.load("bloomberg")


# -------------------------------------------------------------------- export
def test_export_round_trips(universe, tmp_path):
    frame = universe.to_frame()
    universe.export(tmp_path / "u.csv")
    back = pd.read_csv(tmp_path / "u.csv", dtype=str)
    assert back["symbol"].tolist() == frame["symbol"].tolist()
    assert back["cik"].tolist() == frame["cik"].tolist()
    universe.export(tmp_path / "u.parquet")
    assert pd.read_parquet(tmp_path / "u.parquet")["sector"].tolist() == frame["sector"].tolist()
    universe.export(tmp_path / "u.json")
    doc = json.loads((tmp_path / "u.json").read_text())
    assert len(doc["constituents"]) == 503 and len(doc["changes"]) == 353
    assert doc["changes"][-1]["date"] == "1997-06-17" and doc["as_of"] == "2024-10-09"
    with pytest.raises(DataError, match=r"\.xlsx.*use \.csv, \.parquet or \.json"):
        universe.export(tmp_path / "u.xlsx")
    for folder in ("reports.2024", "out.csv"):  # named as a folder, not an unknown format
        (tmp_path / folder).mkdir()
        with pytest.raises(DataError, match=rf"{folder} is a folder; name a \.csv"):
            universe.export(tmp_path / folder)


# ------------------------------------------------------------------ schedule
def test_update_schedule_follows_quarterly_rebalances():
    nxt = SP500UniverseManager.next_update
    assert nxt(dt.date(2024, 10, 10)) == dt.date(2024, 12, 23)  # third Friday Dec 20 + 3
    assert nxt(dt.date(2024, 12, 23)) == dt.date(2025, 3, 24)  # third Friday Mar 21 + 3
    assert nxt(dt.date(2025, 6, 1)) == dt.date(2025, 6, 23)  # third Friday Jun 20 + 3
    stale = SP500UniverseManager.is_stale
    assert not stale("2024-10-10", dt.date(2024, 12, 22))
    assert stale("2024-10-10", dt.date(2024, 12, 23))
    assert not stale(dt.datetime(2025, 1, 5, 9), dt.date(2025, 3, 21))


# ------------------------------------------------------------ manager, locally
def test_manager_update_cache_and_fallbacks(http_server, page_path, monkeypatch, capsys):
    path = "/wiki/List_of_S%26P_500_companies"
    url = http_server.url + path
    monkeypatch.setenv(wikipedia.URL_ENV, url)
    manager = SP500UniverseManager(
        client=HttpClient(timeout=(2.0, 5.0), retry=RetryPolicy(max_attempts=2, backoff=0.01))
    )
    # nothing cached: the newer of the data folder's newest saved page (2024-10-09) and
    # newest constituents list (2026-08-08), else the offline list
    assert manager.load().source == "constituents file constituents-2026-08-08.csv"
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(page_path.parent / "no-such-folder"))
    assert manager.load().source.startswith("pytickersymbols")

    http_server.route(path, Reply.error(503, "Service Unavailable"))
    fallback = manager.update()  # nothing cached and the page fails: bundled list + warning
    assert fallback.source.startswith("pytickersymbols")
    assert "could not load the list from Wikipedia" in fallback.warnings[0]
    assert "HTTP 503" in fallback.warnings[0]
    assert fallback.update_failed and fallback.summary()["next_update"] is None  # undated

    http_server.route(path, Reply.file(page_path))
    live = manager.update()
    assert live.source == "Wikipedia" and len(live) == 503 and not live.warnings
    assert not live.update_failed
    assert manager.load().source == "Wikipedia (cached)"  # auto prefers the cached page
    assert manager.load_history().members_on("2020-01-02") == live.members_on("2020-01-02")

    key = f"wikipedia:sp500:{url}"
    cache = get_cache()
    cache.put_json(key, cache.get(key).value, kind="constituents", expires_at=time.time() - 1)
    http_server.route(path, Reply.error(500))
    stale = manager.update()  # the cached copy survives the failing refresh
    assert len(stale) == 503 and "cached data" in stale.warnings[0]
    assert stale.update_failed
    # the CLI's update says it failed in its exit status (a cron job must not see 0)
    assert main(["universe", "update", "--json"]) == 1
    said = capsys.readouterr()
    assert json.loads(said.out)["updated"] is False
    # and says why on stderr, one line (exit 1 came with an empty stderr)
    assert said.err.startswith("error: ") and "cached data" in said.err, said.err
    assert said.err.count("\n") == 1, said.err
    assert "before the last quarterly rebalance" in manager.load().warnings[0]


# ------------------------------------------------------------------------ CLI
def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_parse_and_members(capsys, page_path):
    code, out, _ = run(capsys, "universe", "parse", "--html", str(page_path), "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["constituents"]) == 503 and len(doc["changes"]) == 353
    assert doc["changes"][0]["removed_ticker"] == "BBWI"

    code, out, _ = run(
        capsys, "universe", "members", "--date", "2020-01-02", "--html", str(page_path), "--json"
    )
    doc = json.loads(out)
    assert code == 0 and "AAL" in doc["members"] and "TSLA" not in doc["members"]
    assert doc["count"] == len(doc["members"]) == 504


def test_auto_takes_the_newer_of_the_saved_page_and_the_constituents_list(
    page_path, tmp_path, monkeypatch
):
    """The saved page of 2024-10-09 won over a list of 2026-08-08 because pages came
    first: the members shown were two years old. The newer now wins; a page wins a tie
    or an older list (it has the changes table too)."""
    data = page_path.parent.parent
    (tmp_path / "wikipedia").mkdir()
    (tmp_path / "wikipedia" / page_path.name).symlink_to(page_path)
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path))
    manager = SP500UniverseManager()
    assert manager.load().source.startswith("Wikipedia page saved in")
    (tmp_path / "constituents-2021-04-23.csv").symlink_to(data / "constituents-2021-04-23.csv")
    page = manager.load()
    assert page.source.startswith("Wikipedia page saved in") and not page.changes.empty
    (tmp_path / "constituents-2026-08-08.csv").symlink_to(data / "constituents-2026-08-08.csv")
    newer = manager.load()
    assert newer.source == "constituents file constituents-2026-08-08.csv"
    assert newer.as_of == pd.Timestamp("2026-08-08") and "META" in newer.symbols


def test_cli_show_export_and_errors(capsys, page_path, tmp_path):
    code, out, _ = run(capsys, "universe", "show", "--html", str(page_path), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["n_constituents"] == 503 and doc["sectors"]["Energy"] == 22
    assert doc["next_update"] == "2024-12-23"

    # show, export and members read the same sources in the same order (no cache here)
    code, out, _ = run(capsys, "universe", "show")
    assert code == 0 and "503 members from constituents file constituents-2026-08-08.csv" in out

    target = tmp_path / "members.parquet"
    code, out, _ = run(
        capsys, "universe", "export", "--out", str(target), "--source", "pytickersymbols", "--json"
    )
    assert code == 0 and json.loads(out)["n_constituents"] == 503
    assert len(pd.read_parquet(target)) == 503

    code, out, err = run(
        capsys,
        "universe",
        "members",
        "--date",
        "2020-01-02",
        "--html",
        str(tmp_path / "missing.html"),
        "--json",
    )
    assert code == 2 and "missing.html: no such file" in json.loads(out)["error"]
    code, _, err = run(capsys, "universe", "members", "--date", "someday", "--html", str(page_path))
    assert code == 2 and "--date must be a date" in err
