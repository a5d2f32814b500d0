"""Point-in-time membership on the real files: symbols of the day, the symbol table's
consistency, agreement with a dated list, coverage warnings, the data-key mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.membership import (
    combine,
    load_membership,
    part_from_wikipedia,
    read_membership_files,
    read_snapshot,
)
from mltrainer.data.symbols import SymbolHistory, derive_renames, normalise_symbol
from mltrainer.data.wikipedia import read_html_file

PAGE = "wikipedia/List_of_S&P_500_companies-2024-10-10.html"


def jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b)


@pytest.fixture(scope="module")
def membership(shared_data_dir):
    return load_membership(shared_data_dir, use_cache=False)


@pytest.fixture(scope="module")
def key_dates(panel):
    return panel.adj_close.apply(lambda c: c.last_valid_index())


def test_members_agree_with_the_dated_list_of_2021_04_23(membership, shared_data_dir):
    snap = read_snapshot(shared_data_dir / "constituents-2021-04-23.csv")
    members = membership.members_on("2021-04-23")
    assert jaccard(members, snap.symbols) >= 0.99
    assert len(members) == 505


@pytest.mark.parametrize(
    ("date", "present", "absent"),
    [
        # symbols of the day, not the 2019 or 2024 ones
        (
            "2014-06-30",
            {"HCN", "WLP", "PCLN", "YHOO", "TSO", "DPS", "UA", "FB", "GOOG", "GOOGL"},
            {"WELL", "ANTM", "BKNG", "AABA", "ANDV", "KDP", "UAA", "META"},
        ),
        ("2010-06-30", {"GOOG", "HCN", "KFT"}, {"GOOGL", "MDLZ"}),
        ("2020-06-30", {"FB", "ANTM", "WELL", "TT", "IR", "LHX"}, {"META", "ELV", "HCN", "HRS"}),
        ("2023-01-03", {"META", "ELV", "FISV", "PEAK"}, {"FB", "ANTM", "FI", "DOC"}),
        ("2024-06-28", {"FI", "DOC", "CPAY", "DAY"}, {"FISV", "PEAK", "FLT", "CDAY"}),
    ],
)
def test_members_are_reported_under_the_symbols_of_the_day(membership, date, present, absent):
    members = set(membership.members_on(date))
    assert present <= members, present - members
    assert not (absent & members), absent & members


def test_an_old_and_a_new_symbol_are_never_members_on_the_same_day(membership):
    iv = membership.intervals
    spans = {s: g[["start", "end"]].to_numpy() for s, g in iv.groupby("symbol")}
    clashes = []
    for old, new, date in zip(
        *(membership.history.renames()[c] for c in ("old", "new", "date")), strict=True
    ):
        for s0, e0 in spans.get(old, []):
            for s1, e1 in spans.get(new, []):
                lo, hi = max(s0, s1), min(e0, e1)
                # a freed symbol re-used by another company is not a clash (GOOG in 2014)
                if (
                    lo < hi
                    and membership.history.symbol_on(new, hi - np.timedelta64(1, "D"), lo) == old
                ):
                    clashes.append((old, new, str(date.date()), str(pd.Timestamp(lo).date())))
    assert not clashes


def test_every_ticker_of_the_price_data_maps_to_a_membership(membership, panel, key_dates):
    mask = membership.mask(panel.adj_close.index, panel.adj_close.columns, key_dates)
    never = [k for k in mask.columns if not mask[k].any()]
    assert never == []
    # on its own last price date every 2021 file is a member (VAR's ends before its removal)
    on_last = {k: bool(mask.at[key_dates[k], k]) for k in mask.columns}
    assert [k for k, v in on_last.items() if not v] == []


def test_the_mask_equals_members_on_under_each_keys_symbol_of_the_day(membership, panel, key_dates):
    days = pd.DatetimeIndex(
        ["2001-03-01", "2005-01-03", "2008-09-15", "2014-06-30", "2016-12-07", "2019-12-10"]
    )
    mask = membership.mask(days, panel.adj_close.columns, key_dates)
    for day in days:
        members = set(membership.members_on(day))
        for key in panel.adj_close.columns:
            sym = membership.history.symbol_on(key, key_dates[key], day)
            assert mask.at[day, key] == (sym is not None and sym in members), (day, key, sym)
    # dual classes: class C (GOOG from 2014-04-03) is no member in 2010; class A is (as GOOG)
    assert not mask.at[pd.Timestamp("2008-09-15"), "GOOG"]
    assert mask.at[pd.Timestamp("2008-09-15"), "GOOGL"]


def test_the_mask_reads_both_share_class_spellings(membership):
    days = pd.DatetimeIndex(["2012-01-03", "2015-01-02"])
    a = membership.mask(days, ["BRK.B"], "2021-04-21")
    b = membership.mask(days, ["BRK-B"], "2021-04-21")
    assert a.to_numpy().tolist() == b.to_numpy().tolist() == [[True], [True]]
    assert normalise_symbol("brk/b") == "BRK.B"


def test_dates_outside_the_sources_get_a_warning(membership):
    assert membership.date_warnings("2010-01-04") == []
    early = membership.lookup("1990-01-01")
    assert any("known from 1996-01-02" in w for w in early["warnings"])
    late = membership.lookup("2030-01-02")
    assert any("known up to" in w for w in late["warnings"])
    assert membership.source_on("2010-01-04").startswith("membership file")
    assert membership.source_on("2026-03-02").startswith("constituents snapshot")


def test_the_newest_snapshot_is_exact_on_its_date(membership, shared_data_dir):
    snap = read_snapshot(shared_data_dir / "constituents-2026-08-08.csv")
    assert set(membership.members_on("2026-08-08")) == snap.symbols


def test_the_curated_table_covers_every_rename_the_changes_file_implies(shared_data_dir):
    _, changes = read_membership_files(
        shared_data_dir / "membership/sp500_ticker_start_end.csv",
        shared_data_dir / "membership/sp500_changes_since_2019.csv",
    )
    snap = read_snapshot(shared_data_dir / "constituents-2026-08-08.csv")
    first = dict(zip(snap.frame["symbol"], snap.frame["date_added"], strict=True))
    history = SymbolHistory.default()
    assert derive_renames(changes, first, known=history.changes).empty
    # without the table, the rule finds FB -> META and the others by themselves
    found = derive_renames(changes, first)
    pairs = set(zip(found["old"], found["new"], strict=True))
    assert {("FB", "META"), ("ANTM", "ELV"), ("FI", "FISV"), ("BLL", "BALL")} <= pairs


def test_membership_from_the_wikipedia_page_alone_under_symbols_of_the_day(shared_data_dir):
    tables = read_html_file(shared_data_dir / PAGE)
    history = SymbolHistory.default()
    part = part_from_wikipedia(
        list(tables.constituents["symbol"]), tables.changes, tables.as_of, history, "page"
    )
    wiki = combine([part], history)
    snap = read_snapshot(shared_data_dir / "constituents-2021-04-23.csv")
    assert jaccard(wiki.members_on("2021-04-23"), snap.symbols) >= 0.97
    assert "FB" in wiki.members_on("2021-04-23") and "META" not in wiki.members_on("2021-04-23")


def test_membership_from_an_older_layout_of_the_real_page(shared_data_dir, tmp_path):
    """The 2024 page rewritten into the older markup gives the same point-in-time lists."""
    from mltrainer.data.membership import membership_from_page
    from tests.data.test_wikipedia import LAYOUTS, _rewrite

    original = shared_data_dir / PAGE
    text = original.read_text(encoding="utf-8")
    for step in LAYOUTS["all of them, no table ids"]:
        text = step(text) if callable(step) else _rewrite(text, *step)
    older = tmp_path / original.name  # same name: the page's date comes from its text
    older.write_text(text, encoding="utf-8")
    new, old = membership_from_page(older), membership_from_page(original)
    for day in ("2005-01-03", "2014-06-30", "2021-04-23"):
        assert new.members_on(day) == old.members_on(day), day
    assert new.warnings == []


def test_relabel_gives_a_taken_over_symbol_to_the_renamed_company():
    """By hand: FB's rows become META's; a row already filed as META (another company
    that held the symbol before) gives way, and the row order stays."""
    from mltrainer.data.symbols import relabel

    frame = pd.DataFrame({"ticker": ["AAPL", "META", "FB", "KO"], "r": [1.0, 2.0, 3.0, 4.0]})
    got = relabel(frame, {"FB": "META"})
    assert got.to_dict("list") == {"ticker": ["AAPL", "META", "KO"], "r": [1.0, 3.0, 4.0]}
    assert relabel(frame, {}).equals(frame)


def test_symbols_on_renames_only_what_changed_between_the_dates():
    history = SymbolHistory.default()
    got = history.symbols_on(["FB", "AAPL", "ANTM", "NOPE"], "2021-04-21", "2024-10-09")
    assert got == {"FB": "META", "ANTM": "ELV"}
    assert history.symbols_on(["META"], "2024-10-09", "2021-04-21") == {"META": "FB"}
    assert history.symbols_on([], "2021-04-21", "2024-10-09") == {}
