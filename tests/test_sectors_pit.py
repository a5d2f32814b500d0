"""Sectors and weights as of a date, on the real dated lists, membership and prices.

Reference values are GICS facts with known dates (Real Estate from 2016-09-01,
Communication Services from 2018-09-24, payments in Financials from 2023-03-20) and the
real lists themselves (the 2021 CSV against the 2024 Wikipedia page).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrainer.data.gics import (
    TELECOM,
    UNKNOWN,
    map_sector,
    sector_lists,
    sectors_as_of,
)
from mltrainer.errors import DataError
from mltrainer.plots.sectors import treemap
from mltrainer.sectors_pit import EQUAL, cap_snapshot, index_on, pit_sector_returns

LIST_2021 = "constituents-2021-04-23.csv"
LIST_2026 = "constituents-2026-08-08.csv"


@pytest.fixture(scope="module")
def membership(shared_data_dir):
    from mltrainer.data.membership import load_membership

    return load_membership(shared_data_dir)


@pytest.fixture(scope="module")
def lists(membership):
    return sector_lists(membership)


def _as_of(symbols, date, membership, lists):
    return sectors_as_of(symbols, date, lists, membership.history).frame


def test_the_dated_lists_are_the_three_real_ones(lists):
    assert [(x.name, x.date.date().isoformat()) for x in lists] == [
        (LIST_2021, "2021-04-23"),
        ("List_of_S&P_500_companies-2024-10-10.html", "2024-10-09"),
        (LIST_2026, "2026-08-08"),
    ]


@pytest.mark.parametrize("reit", ["PSA", "SPG"])
def test_a_reit_is_financials_before_real_estate_existed(membership, lists, reit):
    before = _as_of([reit], "2015-06-30", membership, lists).loc[reit]
    after = _as_of([reit], "2017-06-30", membership, lists).loc[reit]
    assert before["sector"] == "Financials" and after["sector"] == "Real Estate"
    assert before["list"] == LIST_2021 and "2016-09-01" in before["changes"]
    assert after["list"] == LIST_2021 and after["changes"] == ""


def test_communication_services_maps_back_by_sub_industry(membership, lists):
    old = _as_of(["GOOGL", "NFLX", "EA", "T", "CMCSA"], "2017-06-30", membership, lists)
    assert old["sector"].to_dict() == {
        "GOOGL": "Information Technology",
        "NFLX": "Consumer Discretionary",
        "EA": "Information Technology",
        "T": TELECOM,
        "CMCSA": "Consumer Discretionary",
    }
    assert old["changes"].str.contains("2018-09-24").all()
    new = _as_of(["GOOGL"], "2019-06-30", membership, lists).loc["GOOGL"]
    assert new["sector"] == "Communication Services" and new["changes"] == ""


def test_symbols_of_the_day_find_their_company_in_a_later_list(membership, lists):
    # Facebook traded as FB until 2022-06-09 and is META in 2024 and 2026
    fb = _as_of(["FB"], "2017-06-30", membership, lists).loc["FB"]
    assert fb["sector"] == "Information Technology" and fb["list"] == LIST_2021


def test_payments_move_to_financials_in_march_2023(membership, lists):
    assert (
        _as_of(["V", "MA"], "2022-06-30", membership, lists)["sector"].tolist()
        == ["Information Technology"] * 2
    )
    # the change took effect after the close of Friday 2023-03-17: that day is the old
    # sectors' last, Monday the new ones' first (the 17th was in the new ones)
    last_old = _as_of(["V", "MA", "ADP", "TGT"], "2023-03-17", membership, lists)["sector"]
    assert last_old.tolist() == ["Information Technology"] * 3 + ["Consumer Discretionary"]
    first_new = _as_of(["V", "MA", "ADP", "TGT"], "2023-03-20", membership, lists)["sector"]
    assert first_new.tolist() == ["Financials"] * 2 + ["Industrials", "Consumer Staples"]
    # carried forward from the 2021 list through the 2023 change (sub-industry from 2024)
    mid = _as_of(["V", "TGT", "WMT", "ADP"], "2023-06-30", membership, lists)
    assert mid["sector"].to_dict() == {
        "V": "Financials",
        "TGT": "Consumer Staples",
        "WMT": "Consumer Staples",
        "ADP": "Industrials",
    }
    v = _as_of(["V"], "2026-08-08", membership, lists).loc["V"]
    assert v["sector"] == "Financials" and v["list"] == LIST_2026 and v["changes"] == ""


def test_mapping_the_2024_page_back_reproduces_the_2021_list(lists):
    """Every company in both lists has the 2021 sector once the 2024 one is mapped back
    through the 2023 changes, except two company-level reclassifications (Roper and
    Teledyne, Industrials -> Information Technology) that no structural rule explains."""
    by_name = {x.name: x.frame for x in lists}
    old, new = by_name[LIST_2021], by_name["List_of_S&P_500_companies-2024-10-10.html"]
    both = old.index.intersection(new.index)
    assert len(both) > 430
    mapped = pd.Series(
        {
            s: map_sector(
                new.at[s, "sector"],
                new.at[s, "sub_industry"],
                s,
                pd.Timestamp("2024-10-09"),
                pd.Timestamp("2021-04-23"),
            )[0]
            for s in both
        }
    )
    wrong = sorted(mapped.index[mapped != old.loc[both, "sector"]])
    assert wrong == ["ROP", "TDY"]


def test_members_in_no_dated_list_are_unknown_and_counted(membership, lists):
    members = membership.members_on("2008-09-15")
    result = sectors_as_of(members, "2008-09-15", lists, membership.history)
    lehman = next(s for s in members if s in ("LEH", "LEHMQ"))
    assert result.frame.at[lehman, "sector"] == UNKNOWN
    assert result.frame.at[lehman, "list"] == ""
    assert 150 < result.n_unknown < 260
    assert f"{(result.frame['list'] == '').sum()} Unknown (in no dated list)" in result.provenance()
    # a later list's company added after the date is another company under a reused
    # symbol: CEG in 2008 (Constellation Energy Group) is not the 2022 spin-off
    assert "CEG" in members and result.frame.at["CEG", "list"] == ""


@pytest.fixture(scope="module")
def crisis(panel, membership, lists):
    return index_on("2008-09-15", panel.adj_close, membership, lists, caps=cap_snapshot())


def test_the_treemap_of_2008_draws_the_members_of_that_day(crisis, membership, panel):
    members = membership.members_on("2008-09-15")
    assert crisis.members == members and crisis.n_members == len(members)
    assert "NVDA" in members and "NVDA" in set(crisis.stocks["ticker"])
    lehman = next(s for s in members if s in ("LEH", "LEHMQ"))
    assert lehman in crisis.without_prices  # a member with no local price file
    assert crisis.n_with_prices + len(crisis.without_prices) >= crisis.n_members - 5
    # every tile is a member that day (the membership mask), with a price that day
    mask = membership.mask(
        [pd.Timestamp("2008-09-15")],
        list(crisis.stocks["ticker"]),
        panel.adj_close.apply(lambda c: c.last_valid_index()),
    )
    assert mask.iloc[0].all()
    assert panel.adj_close.loc["2008-09-15", crisis.stocks["ticker"]].notna().all()
    # equal weight: the 2026 caps are never used for 2008
    assert crisis.weighting == EQUAL
    assert (crisis.stocks["size"] == 1.0).all()
    caps = cap_snapshot().caps
    assert not np.isin(crisis.stocks["size"].to_numpy(), caps.to_numpy()).any()
    title = crisis.title()
    assert "2008-09-15" in title and "equal weight" in title and len(title) <= 60
    assert f"{crisis.n_members} members; {crisis.n_with_prices} have price data" in crisis.caption()


def test_the_2008_treemap_figure_has_equal_tiles_in_2008_sectors(crisis):
    stocks = crisis.stocks.assign(**{"return": 0.0, "name": ""})
    fig = treemap(stocks, title=crisis.title(), max_stocks=None)
    t = fig.data[0]
    leaves = [v for i, v in zip(t.ids, t.values, strict=True) if i.startswith("t:")]
    assert len(leaves) == crisis.n_with_prices and set(leaves) == {1.0}
    sectors = {i[2:] for i in t.ids if i.startswith("s:")}
    assert "Real Estate" not in sectors and "Communication Services" not in sectors
    assert TELECOM in sectors  # AT&T and Verizon, mapped back through 2018
    assert "2008-09-15" in fig.layout.title.text


def test_caps_only_from_the_snapshot_date_on(panel, membership, lists):
    snap = cap_snapshot()
    before = index_on(
        snap.date - pd.Timedelta(days=1), panel.adj_close, membership, lists, caps=snap
    )
    assert before.weighting == EQUAL
    on = index_on(snap.date, panel.adj_close, membership, lists, caps=snap)
    assert on.weighting.startswith(f"market cap from {snap.name}")
    aapl = on.stocks.set_index("ticker").at["AAPL", "size"]
    assert aapl == snap.caps["AAPL"]


def test_weights_by_later_caps_say_when_the_caps_are_from(shared_data_dir):
    """Market-cap weights of a book over a range that ends before the snapshot carry a
    note naming the snapshot's date and file; from the snapshot's date on, none."""
    from mltrainer.sectors_pit import later_caps_note

    snap = cap_snapshot()
    assert f"{snap.date:%Y-%m-%d}" == "2026-08-22"
    assert later_caps_note(snap, "2008-12-31") == (
        "market-cap weights use the caps of 2026-08-22 (constituents-financials-2026-08-22"
        ".csv), published after the range ends on 2008-12-31: the data has no market caps "
        "of the range's time, so these weights reflect what the companies became later"
    )
    assert later_caps_note(snap, "2026-08-21") is not None
    assert later_caps_note(snap, "2026-08-22") is None


def test_a_company_renamed_by_the_snapshot_takes_its_cap_under_the_later_symbol(panel, membership):
    """The local prices use April-2021 symbols, the snapshot those of 2026-08-22: FB and
    ANTM had no cap (the snapshot lists META and ELV) and a book holding them could not
    be cap-weighted. Each key now takes its company's cap, and the note names the
    later symbols; a key without a naming date is looked up as it is."""
    from mltrainer.sectors_pit import _renamed_note, cap_notes, caps_by_key, last_price_dates

    snap = cap_snapshot()
    assert "FB" not in snap.caps.index and "ANTM" not in snap.caps.index
    naming = last_price_dates(panel.adj_close[["FB", "ANTM", "AAPL"]])
    caps, renamed = caps_by_key(snap, naming, membership)
    assert renamed == {"FB": "META", "ANTM": "ELV"}
    assert caps == {
        k: snap.caps[v] for k, v in {"FB": "META", "ANTM": "ELV", "AAPL": "AAPL"}.items()
    }
    assert caps_by_key(snap, pd.Series({"META": pd.NaT}), membership)[0] == {
        "META": snap.caps["META"]
    }
    notes = cap_notes("2020-12-31", naming)
    assert notes[0].startswith("market-cap weights use the caps of 2026-08-22")
    assert notes[1] == (
        "constituents-financials-2026-08-22.csv lists companies by their symbols of "
        "2026-08-22: FB's cap is the one listed for META, ANTM's the one listed for ELV"
    )
    many = _renamed_note(snap, {f"K{i}": f"S{i}" for i in range(8)})
    assert many.endswith("K5's the one listed for S5; and 2 more under their later symbols")
    assert cap_notes("2026-08-31", naming) == (notes[1],)  # caps of the range's time


def test_without_membership_files_the_curated_renames_still_find_the_cap(
    panel, monkeypatch, tmp_path
):
    """A data folder with prices and a cap snapshot but no membership source: FB still
    takes META's cap, through the package's curated renames."""
    from mltrainer.data.membership import load_membership
    from mltrainer.sectors_pit import caps_by_key, last_price_dates

    snap = cap_snapshot()
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path))  # no membership there
    with pytest.raises(DataError, match="no S&P 500 membership source"):
        load_membership()
    caps, renamed = caps_by_key(snap, last_price_dates(panel.adj_close[["FB", "AAPL"]]))
    assert renamed == {"FB": "META"}
    assert caps == {"FB": snap.caps["META"], "AAPL": snap.caps["AAPL"]}


def test_the_snapshot_is_read_once_per_version_of_the_file(tmp_path):
    """The Risk page asks for the caps on every rerun: one read per version of the file;
    a file rewritten with other caps is read again."""
    path = tmp_path / "constituents-financials-2026-08-22.csv"
    path.write_text("Symbol,Market Cap\nAAA,100\nBBB,300\n")
    first = cap_snapshot(tmp_path)
    assert cap_snapshot(tmp_path) is first and first.caps.to_dict() == {"AAA": 100, "BBB": 300}
    path.write_text("Symbol,Market Cap\nAAA,100\nBBB,3000\n")
    assert cap_snapshot(tmp_path).caps["BBB"] == 3000


def test_cap_weighting_without_a_snapshot_says_so(monkeypatch, tmp_path):
    from mltrainer.errors import DataError
    from mltrainer.sectors_pit import cap_weighting_inputs

    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path))  # a data folder with no caps
    with pytest.raises(DataError, match="no market-cap snapshot .* use another weighting"):
        cap_weighting_inputs()


def test_the_shares_hook_sizes_by_price_times_shares(panel, membership, lists):
    keys = ["AAPL", "MSFT"]
    shares = pd.Series({"AAPL": 2.0, "MSFT": 3.0})
    ix = index_on(
        "2015-06-30", panel.adj_close, membership, lists, shares=shares, close=panel.close
    )
    sized = ix.stocks.set_index("ticker")["size"]
    close = panel.close.loc["2015-06-30"]
    assert sized[keys].tolist() == pytest.approx([2.0 * close["AAPL"], 3.0 * close["MSFT"]])
    assert sized.drop(keys).isna().all() and ix.n_unsized == len(sized) - 2


def test_sector_baskets_hold_the_members_and_sectors_of_each_day(panel, membership, lists):
    rets = panel.returns().loc["2015-01-02":"2019-12-31"]
    # each key names its company on its last price date in the whole panel (2021)
    anchors = panel.adj_close.apply(lambda c: c.last_valid_index())
    daily, note = pit_sector_returns(rets, membership, lists, anchors=anchors)
    assert daily["Real Estate"].loc[:"2016-08-31"].isna().all()
    assert daily["Real Estate"].loc["2016-09-01":].notna().all()
    assert daily[TELECOM].loc["2018-09-24":].isna().all()
    assert daily["Communication Services"].loc[:"2018-09-21"].isna().all()
    assert "GICS sectors on 2018-09-24" in note
    # oracle: one day by hand, the plain mean of that day's members in that day's sector
    day = pd.Timestamp("2015-06-30")
    member = membership.mask([day], rets.columns, anchors).iloc[0]
    keys = list(member.index[member])
    sectors = sectors_as_of(keys, day, lists, membership.history, anchors=anchors).sectors
    r = rets.loc[day, keys]
    oracle = r.groupby(pd.Series(sectors)).mean()
    assert daily.loc[day, oracle.index].to_numpy() == pytest.approx(oracle.to_numpy())
    assert daily.loc[day, "Universe"] == pytest.approx(r.mean())

    # limited to sectors: each day's members in them that day, not in today's sectors
    # (a 'Real Estate' filter drew the REITs of 2015, labelled Financials, as Financials)
    kept, _ = pit_sector_returns(rets, membership, lists, anchors=anchors, keep=("Real Estate",))
    assert list(kept.columns) == ["Real Estate", "Universe"]
    assert kept.loc[:"2016-08-31"].isna().all(axis=None)
    after = kept.loc["2016-09-01":]
    assert after["Real Estate"].to_numpy() == pytest.approx(daily.loc["2016-09-01":, "Real Estate"])
    assert after["Universe"].to_numpy() == pytest.approx(after["Real Estate"].to_numpy())
    two, _ = pit_sector_returns(rets, membership, lists, anchors=anchors, keep=("Energy", TELECOM))
    sub = [k for k in keys if sectors.get(k) in ("Energy", TELECOM)]
    assert two.loc[day, "Universe"] == pytest.approx(rets.loc[day, sub].mean())
    assert two.loc[day, TELECOM] == pytest.approx(oracle[TELECOM])


def test_ticker_lists_take_the_sectors_of_the_range(panel, membership):
    from mltrainer.data.gics import with_sector_periods

    dated = with_sector_periods(panel, membership)

    def picked(data, sector, start, end):
        return data.tickers_in_sectors([sector], start, end)

    # GOOGL was Information Technology until Communication Services began, 2018-09-24
    assert "GOOGL" in picked(dated, "Information Technology", "2010-01-01", "2010-12-31")
    assert picked(dated, "Communication Services", "2010-01-01", "2010-12-31") == []
    assert "GOOGL" in picked(dated, "Communication Services", "2020-01-01", "2020-12-31")
    assert "GOOGL" not in picked(dated, "Information Technology", "2020-01-01", "2020-12-31")
    # a range across the change has it in both; a weekend takes the Monday after
    assert "GOOGL" in picked(dated, "Information Technology", "2018-06-01", "2018-12-31")
    assert "GOOGL" in picked(dated, "Communication Services", "2018-06-01", "2018-12-31")
    assert "GOOGL" in picked(dated, "Communication Services", "2018-09-22", "2018-09-23")
    assert "GOOGL" not in picked(dated, "Communication Services", "2018-09-21", "2018-09-21")
    # REITs were Financials before Real Estate (2016-09-01)
    assert "PSA" in picked(dated, "Financials", "2015-01-01", "2015-12-31")
    assert picked(dated, "Real Estate", "2015-01-01", "2015-12-31") == []
    # panel order, and every ticker of a sector on some day
    energy = picked(dated, "Energy", None, None)
    assert energy == [t for t in dated.tickers if t in set(energy)] and "XOM" in energy
    # undated data (no membership files) can only take today's sectors
    assert "GOOGL" in picked(panel, "Communication Services", "2010-01-01", "2010-12-31")


def test_sector_names_are_those_of_every_date(panel, membership):
    from mltrainer.data.gics import with_sector_periods

    today = sorted(set(panel.sectors.values()) - {UNKNOWN})
    assert panel.sector_names() == today and len(today) == 11
    dated = with_sector_periods(panel, membership).sector_names()
    assert dated == sorted([*today, TELECOM])


def test_a_later_member_maps_back_by_the_sub_industry_of_its_own_later_row(membership, lists):
    """CHTR (a member from 2016), TMUS (2019) and TTWO (2018) were Unknown for 2010: the
    2024 page's row, the one with their sub-industry, was set aside as 'added after the
    date' although it is the same company as the 2021 list's row."""
    frame = _as_of(["CHTR", "TMUS", "TTWO", "LYV", "ATVI"], "2010-12-31", membership, lists)
    assert frame["sector"].to_dict() == {
        "CHTR": "Consumer Discretionary",  # Cable & Satellite
        "TMUS": TELECOM,  # Wireless Telecommunication Services
        "TTWO": "Information Technology",  # Interactive Home Entertainment
        "LYV": "Consumer Discretionary",  # Movies & Entertainment
        "ATVI": UNKNOWN,  # gone before the 2024 page: no list gives its sub-industry
    }
