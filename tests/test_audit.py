"""The audit trail: records written, read back, free of secrets."""

from __future__ import annotations

import json
import stat
from datetime import datetime

import pytest

from mltrainer import audit, config
from mltrainer.cli import main
from mltrainer.errors import DataError, ParameterError

SECRET = "fred-0123456789abcdef0123456789abcdef"


@pytest.fixture()
def small(basket):
    return basket.select(tickers=["AAPL", "KO"], start="2019-01-01", end="2019-12-31")


def test_record_is_written_and_read_back(small):
    rec = audit.record(
        kind="backtest",
        model_key="momentum/SimpleMomentumModel",
        params={"window": 60},
        data=small,
        metrics={"sharpe": 0.5, "cagr": float("nan")},
    )
    folder = config.audit_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(audit.audit_file().stat().st_mode) == 0o600
    back = audit.read()
    assert back == [rec]
    assert rec["data_fingerprint"] == small.fingerprint()
    assert rec["tickers"] == ["AAPL", "KO"] and rec["source"] == small.source
    assert rec["start"] == "2019-01-02" and rec["end"] == "2019-12-31"
    assert rec["metrics"] == {"sharpe": 0.5, "cagr": None}
    assert datetime.fromisoformat(rec["time"]).utcoffset().total_seconds() == 0
    assert rec["code_version"].startswith(("git:", "mltrainer "))
    second = audit.record(
        kind="walkforward",
        model_key="ml/BaseMLModel",
        params={},
        data=small,
        start="2019-03-01",
        end="2019-06-30",
    )
    assert [r["id"] for r in audit.read()] == [rec["id"], second["id"]]
    assert audit.read(1) == [second] and second["start"] == "2019-03-01"
    assert audit.show(second["id"][:6]) == second
    with pytest.raises(DataError, match="no audit record"):
        audit.show("ffffffffffff")


def test_no_secret_reaches_the_file(small, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", SECRET)
    rec = audit.record(
        kind="backtest",
        model_key="x/Y",
        params={"note": f"rate {SECRET}"},
        data=small,
        source="fred",
        extra={"url": f"https://x/?q={SECRET}"},
    )
    text = audit.audit_file().read_text()
    assert SECRET not in text and "***" in text
    assert rec["params"]["note"] == "rate ***"
    for bad in ({"api_key": "abc"}, {"nested": {"Token": 1}}, {"client_secret": "s"}):
        with pytest.raises(ParameterError, match="refusing"):
            audit.record(kind="backtest", model_key="x/Y", params=bad, data=small)
    assert len(audit.read()) == 1  # the refused records were not written


def test_cli_audit_list_and_show(small, capsys):
    rec = audit.record(kind="backtest", model_key="x/Y", params={"a": 1}, data=small)
    assert main(["audit", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_records"] == 1 and doc["records"][0]["id"] == rec["id"]
    assert main(["audit", "show", rec["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == rec
    assert main(["audit", "show", "nope", "--json"]) == 2
    assert "no audit record" in json.loads(capsys.readouterr().out)["error"]


def test_results_are_printed_when_the_audit_record_cannot_be_written(
    sp500_dir, tmp_path, monkeypatch, capsys
):
    """An unwritable audit folder threw away a finished run's results ('cannot use
    .../audit.jsonl'); they are printed, then the command says why it fails and exits 1."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the audit folder should be")
    monkeypatch.setenv("MLTRAINER_AUDIT_DIR", str(blocked))
    argv = ["backtest", "momentum/SimpleMomentumModel", "--source", "local"]
    argv += ["--data-dir", str(sp500_dir), "--tickers", "KO,PEP"]
    argv += ["--start", "2015-01-02", "--end", "2016-12-30"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert stop.value.code == 1 and doc["audit_id"] is None and "sharpe" in doc["metrics"]
    assert "the audit record was not written" in doc["audit_error"]
    assert err.startswith("error: the audit record was not written") and str(blocked) in err
    with pytest.raises(SystemExit):
        main(argv)
    out, _ = capsys.readouterr()
    assert "final equity" in out and "audit record: not written (see below)" in out


def test_audit_list_names_damaged_lines_and_shows_the_rest(small, capsys):
    """A line whose fields are of the wrong type (``"time": null``) crashed `audit list`
    with a TypeError from the text format; it is now left out with a note naming it."""
    first = audit.record(kind="backtest", model_key="x/Y", params={"a": 1}, data=small)
    with audit.audit_file().open("a") as fh:
        fh.write('{"id":"abc","time":null}\n')
        fh.write('{"id":"def","time":"2024-01-01T00:00:00+00:00","kind":"backtest","model":[1]}\n')
        fh.write("[1, 2]\n{not json\n")
    last = audit.record(kind="walkforward", model_key="x/Z", params={}, data=small)
    assert main(["audit", "list"]) == 0
    out = capsys.readouterr().out
    assert first["id"] in out and last["id"] in out and "x/Z" in out
    assert "skipped 4 damaged line(s)" in out
    assert "line 2 (id abc): its time is null, not a text" in out
    assert "line 3 (id def): its model is [1], not a text" in out
    assert "line 4: it is a JSON list, not an object" in out and "line 5: it is not valid" in out
    assert main(["audit", "list", "--json", "--limit", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in doc["records"]] == [last["id"]] and len(doc["skipped"]) == 4
    assert main(["audit", "show", "abc", "--json"]) == 0  # still shown in full on request
    assert json.loads(capsys.readouterr().out) == {"id": "abc", "time": None}


def test_audit_list_of_only_damaged_lines_says_so(capsys):
    audit.audit_file().parent.mkdir(parents=True, exist_ok=True)
    audit.audit_file().write_text('{"id":"abc","time":null}\n')
    assert main(["audit", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no record can be listed") and "line 1 (id abc)" in out
