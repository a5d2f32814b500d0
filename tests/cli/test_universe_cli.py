"""``python -m mltrainer universe ...``: what one command writes, another reads."""

from __future__ import annotations

import json

from mltrainer.cli import main


def _json(capsys, *argv) -> dict:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err[-800:]
    return json.loads(out)


def test_an_exported_csv_is_read_back_by_show(capsys, shared_data_dir, tmp_path):
    """`universe export --out u.csv` then `universe show --csv u.csv` was refused as "the
    constituents-financials file, whose Sector column holds sub-industries": the export
    has a market_cap column. Its sub_industry column says its sectors are sectors."""
    source = str(shared_data_dir / "constituents-2021-04-23.csv")
    shown = _json(capsys, "universe", "show", "--csv", source)
    out = tmp_path / "u.csv"
    _json(capsys, "universe", "export", "--csv", source, "--out", str(out))
    back = _json(capsys, "universe", "show", "--csv", str(out))
    assert back["n_constituents"] == shown["n_constituents"] == 505
    assert back["sectors"] == shown["sectors"]
    # the financials snapshot itself is still refused by name
    financials = str(shared_data_dir / "constituents-financials-2026-08-22.csv")
    code = main(["universe", "show", "--csv", financials])
    _, err = capsys.readouterr()
    assert code == 2 and "looks like the constituents-financials file" in err


def test_members_outside_the_known_dates_name_the_date_they_are_of(capsys, shared_data_dir):
    """Membership is known from 1996-01-02: `--date 1990-01-01` headed its list "487
    members on 1990-01-01" (the members of 1996-01-02, said only in a warning below)."""
    argv = ["universe", "members", "--data-dir", str(shared_data_dir), "--date"]
    code = main([*argv, "1990-01-01"])
    out, err = capsys.readouterr()
    assert code == 0, err[-800:]
    assert out.splitlines()[0].startswith(
        "487 members on 1996-01-02 (the nearest date membership is known; 1990-01-01 was "
        "asked for) under the symbols of that day"
    ), out.splitlines()[0]
    doc = _json(capsys, *argv, "1990-01-01")
    assert doc["date"] == "1990-01-01" and doc["members_date"] == "1996-01-02"
    doc = _json(capsys, *argv, "2010-06-30")  # inside: the date asked for
    assert doc["date"] == doc["members_date"] == "2010-06-30"


def test_an_export_over_the_list_it_reads_is_refused(capsys, shared_data_dir, tmp_path):
    """`universe export --csv list.csv --out list.csv` replaced the list it read with the
    export's layout (as root even in a read-only data folder); through a link too."""
    source = tmp_path / "constituents-2021-04-23.csv"
    source.write_bytes((shared_data_dir / source.name).read_bytes())
    (tmp_path / "link.csv").symlink_to(source)
    before = source.read_bytes()
    for out in (source, tmp_path / "link.csv", tmp_path / ".." / tmp_path.name / source.name):
        code = main(["universe", "export", "--csv", str(source), "--out", str(out)])
        _, err = capsys.readouterr()
        assert code == 2 and err == (
            f"error: --out {out} is the file --csv reads: the export would replace its own "
            "source; give another file\n"
        ), err
    assert source.read_bytes() == before and (tmp_path / "link.csv").is_symlink()
