"""Lists a command prints or takes: complete, and each item once."""

from __future__ import annotations

import json

from mltrainer.cli import main


def _json(capsys, *argv) -> dict:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err[-800:]
    return json.loads(out)


def test_data_load_lists_every_ticker_it_counts(capsys, shared_data_dir):
    """Without --tickers the JSON said n_tickers 504 beside a "tickers" list of the first
    50, with nothing saying it was cut."""
    doc = _json(capsys, "data", "load", "--source", "local", "--start", "2021-04-01")
    assert doc["n_tickers"] == len(doc["tickers"]) == 504
    assert doc["tickers"][-1] == "ZTS"


def test_a_var_method_or_level_given_twice_is_one_row(capsys, shared_data_dir, tmp_path):
    """`--methods historical,historical --levels 0.95,0.95,0.99` gave six VaR rows, each
    (method, level) pair two or four times."""
    argv = ["report", "stress", "--source", "local", "--tickers", "KO,PEP"]
    argv += ["--start", "2020-06-01", "--out", str(tmp_path / "r.html")]
    argv += ["--methods", "historical, historical", "--levels", "0.95,0.95,0.99"]
    doc = _json(capsys, *argv)
    assert [(r["method"], r["level"]) for r in doc["var"]] == [
        ("historical", 0.95),
        ("historical", 0.99),
    ]
    assert doc["settings"]["levels"] == [0.95, 0.99]
