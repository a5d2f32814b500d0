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
