"""``python -m mltrainer data ...`` and ``models ...`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mltrainer.cli import main
from mltrainer.data.cache import get_cache


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_load_json(capsys, sp500_dir):
    code, out, _ = _run(
        capsys,
        "data",
        "load",
        "--source",
        "local",
        "--data-dir",
        str(sp500_dir),
        "--tickers",
        "AAPL,BRK.B",
        "--start",
        "2020-01-01",
        "--end",
        "2020-12-31",
        "--json",
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["source"] == "local" and doc["n_tickers"] == 2 and doc["n_dates"] == 253
    assert doc["first_date"] == "2020-01-02" and doc["last_date"] == "2020-12-31"


def test_data_load_text_counts_in_words(capsys, sp500_dir):
    """One ticker on one day reads "1 ticker, 1 date" (it read "1 tickers, 1 dates")."""
    argv = ["data", "load", "--source", "local", "--data-dir", str(sp500_dir)]
    code, out, _ = _run(capsys, *argv, "--tickers", "AAPL", "--start", "2021-04-21")
    assert code == 0
    assert out.splitlines()[1] == "1 ticker, 1 date, from 2021-04-21 to 2021-04-21"
    code, out, _ = _run(capsys, *argv, "--tickers", "AAPL,KO", "--start", "2021-04-20")
    assert out.splitlines()[1] == "2 tickers, 2 dates, from 2021-04-20 to 2021-04-21"


def test_data_load_names_tickers_with_no_price_in_the_range(capsys, sp500_dir):
    """ABBV trades from 2013: in 2005 it is counted among "2 tickers" but has no price,
    which the load now says (text and JSON)."""
    argv = ["data", "load", "--source", "local", "--data-dir", str(sp500_dir)]
    argv += ["--tickers", "ABBV,AAPL", "--start", "2005-01-01", "--end", "2006-01-01"]
    code, out, _ = _run(capsys, *argv, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["n_tickers"] == 2 and doc["tickers_without_prices"] == ["ABBV"]
    assert doc["warnings"] == ["1 ticker with no price in this range: ABBV"]
    code, out, _ = _run(capsys, *argv)
    assert "warning: 1 ticker with no price in this range: ABBV" in out
    code, out, _ = _run(capsys, *argv[:-4], "--tickers", "AAPL,KO", "--json")
    assert json.loads(out)["tickers_without_prices"] == []


def test_data_load_bundled_and_status(capsys):
    code, out, _ = _run(capsys, "data", "load", "--source", "bundled", "--json")
    assert code == 0 and json.loads(out)["n_tickers"] == 20
    code, out, _ = _run(capsys, "data", "status", "--json")
    doc = json.loads(out)
    assert code == 0 and "entries" in doc and "cache_dir" in doc


def test_data_status_says_how_current_the_cached_prices_are(capsys, basket, monkeypatch):
    """'data folder, cache and freshness' showed no freshness: only when each entry was
    stored. The rows each price entry holds and the newest bar are now listed."""
    monkeypatch.setenv("MLTRAINER_OFFLINE", "1")
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    code, out, _ = _run(capsys, "data", "status", "--json")
    assert json.loads(out)["newest_bar"] is None
    cache = get_cache()
    cache.put_frames("panel:test", basket.frames(), kind="panel")  # as load_local_panel does
    ko = basket.select(["KO"], end="2015-06-30")
    bars = pd.DataFrame({"close": ko.close["KO"], "adj_close": ko.adj_close["KO"]})
    cache.put_frame("yahoo:daily:KO:1999-11-01", bars, kind="prices")  # as load_yahoo does
    code, out, _ = _run(capsys, "data", "status", "--json")
    doc = json.loads(out)
    rows = {e["key"]: (e["first"], e["last"], e["columns"]) for e in doc["entries"]}
    assert rows == {
        "panel:test": ("1999-11-01", "2021-04-21", basket.n_tickers),
        "yahoo:daily:KO:1999-11-01": ("1999-11-01", "2015-06-30", 2),
    }
    assert doc["newest_bar"] == "2021-04-21" and doc["offline"] is True
    code, out, _ = _run(capsys, "data", "status")
    age = (pd.Timestamp.today().normalize() - pd.Timestamp("2021-04-21")).days
    assert f"newest bar: 2021-04-21 ({age:,} days before today)" in out
    assert "rows from 1999-11-01 to 2015-06-30" in out
    assert "network: forbidden by MLTRAINER_OFFLINE" in out
    assert "API keys: POLYGON_API_KEY not set" in out
    monkeypatch.setenv("POLYGON_API_KEY", "abc")  # refused (too short): not "not set"
    code, out, _ = _run(capsys, "data", "status")
    assert "API keys: POLYGON_API_KEY set but refused" in out and "abc" not in out


def test_data_status_names_a_data_folder_setting_that_is_wrong(capsys, monkeypatch, tmp_path):
    """A mistyped MLTRAINER_DATA_DIR read 'data folder: none (bundled data is used)',
    as if none were set."""
    monkeypatch.setenv("MLTRAINER_DATA_DIR", str(tmp_path / "nonexist"))
    code, out, _ = _run(capsys, "data", "status")
    assert code == 0
    assert out.splitlines()[0] == (
        f"data folder: none: MLTRAINER_DATA_DIR={tmp_path / 'nonexist'} does not exist "
        "(auto: the live sources, else the bundled data)"
    )


def test_bad_input_is_one_clear_line(capsys, sp500_dir):
    code, out, err = _run(
        capsys,
        "data",
        "load",
        "--source",
        "local",
        "--data-dir",
        str(sp500_dir),
        "--tickers",
        "AAPL,NOTATICKER",
    )
    assert code == 2 and "NOTATICKER" in err and "Traceback" not in err
    code, out, _ = _run(
        capsys, "data", "load", "--source", "local", "--data-dir", "/no/such/dir", "--json"
    )
    assert code == 2 and "does not exist" in json.loads(out)["error"]


def test_models_list_json(capsys):
    from mltrainer.models.registry import MODELS

    code, out, _ = _run(capsys, "models", "list", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["n_models"] == len(MODELS)
    for entry in doc["models"]:
        assert {"key", "family", "description", "params", "output_kind"} <= set(entry)
    # the text gives the specs too, as the help says ("every model with its parameter specs")
    code, out, _ = _run(capsys, "models", "list", "--family", "regime")
    lines = out.splitlines()
    at = lines.index(next(x for x in lines if x.startswith("regime/RegimeSwitchingModel ")))
    assert (
        lines[at + 1].split()
        == "k_regimes int 2 to 3 (default 2): Number of variance regimes".split()
    )
    assert "switching_mean         bool   true | false (default False)" in out


def test_module_entry_point(sp500_dir):
    env = dict(os.environ, MLTRAINER_DATA_DIR=str(sp500_dir.parent))
    proc = subprocess.run(
        [sys.executable, "-m", "mltrainer", "data", "load", "--tickers", "KO", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == "local"


@pytest.mark.parametrize("argv", [["models", "run", "nope/Model", "--json"]])
def test_unknown_model(capsys, argv):
    code, out, _ = _run(capsys, *argv)
    assert code == 2 and "unknown model" in json.loads(out)["error"]


def test_a_refused_option_under_json_prints_the_json_error(capsys):
    """A script reading --json output got nothing on stdout when argparse refused an
    option (a data error gave the JSON document): both now give it, with status 2."""
    code, out, err = _run(capsys, "data", "load", "--start", "2020-02-30", "--json")
    assert code == 2
    doc = json.loads(out)
    assert (
        doc["type"] == "UsageError" and "--start 2020-02-30 is not a calendar date" in doc["error"]
    )
    assert err.startswith("error: --start 2020-02-30")
    code, out, err = _run(capsys, "data", "load", "--start", "2020-02-30")
    assert code == 2 and out == "" and "not a calendar date" in err
    # after "--" a "--json" is an argument, not the option
    code, out, err = _run(capsys, "data", "load", "--start", "x", "--", "--json")
    assert code == 2 and out == ""
