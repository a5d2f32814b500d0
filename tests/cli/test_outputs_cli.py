"""Where a command's ``--out`` goes: a character device is a sink, a pipe is refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mltrainer.cli import main
from mltrainer.config import PROJECT_ROOT

MODEL = "momentum/SimpleMomentumModel"
RUN = ["models", "run", MODEL, "--source", "local", "--tickers", "KO", "--start", "2021-01-01"]
STRESS = ["report", "stress", "--source", "local", "--tickers", "KO,PEP"]
STRESS += ["--start", "2020-06-01", "--methods", "historical"]


def _no_file_in_dev() -> set[str]:
    """The regular files directly in /dev (a temporary file renamed over /dev/null by a
    write "beside" it would make /dev/null one)."""
    return {p.name for p in Path("/dev").iterdir() if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize(
    "argv,said",
    [
        (RUN, "written to /dev/null"),
        (["universe", "export"], "to /dev/null"),
        (STRESS, "stress report written to /dev/null ("),
    ],
    ids=["models-run", "universe-export", "report-stress"],
)
def test_dev_null_is_accepted_as_a_sink(capsys, shared_data_dir, argv, said):
    """`--out /dev/null` (run for the checks and the summary, keep no file) was refused
    as "not a regular file"; it is written in place, never through a temporary file
    renamed over it, and stays the device it was."""
    before = _no_file_in_dev()
    code = main([*argv, "--out", "/dev/null"])
    out, err = capsys.readouterr()
    assert code == 0, err[-800:]
    assert said in out, out
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert _no_file_in_dev() == before


def test_a_report_to_dev_null_still_prints_its_pdf(capsys, shared_data_dir, tmp_path):
    """The PDF is printed from the page: with the page sent to /dev/null it is printed
    from a temporary copy, not from the (empty) device."""
    from mltrainer.reports.html import find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium is not installed")
    pdf = tmp_path / "r.pdf"
    code = main([*STRESS, "--out", "/dev/null", "--pdf", str(pdf)])
    _, err = capsys.readouterr()
    assert code == 0, err[-800:]
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_a_device_that_cannot_take_the_output_is_one_line(capsys, shared_data_dir):
    """/dev/full refuses every write: one line naming it, exit 2."""
    code = main(["universe", "export", "--out", "/dev/full"])
    _, err = capsys.readouterr()
    assert code == 2 and err == "error: /dev/full: cannot be written (No space left on device)\n"


@pytest.mark.parametrize("argv", [RUN, STRESS], ids=["models-run", "report-stress"])
def test_a_named_pipe_is_still_refused_at_once(shared_data_dir, tmp_path, argv):
    """A pipe nobody reads would block the write forever: refused before any work."""
    fifo = tmp_path / ("x.html" if argv is STRESS else "x.parquet")
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "mltrainer", *argv, "--out", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLTRAINER_OFFLINE": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr.startswith(f"error: --out {fifo} is not a regular file (a named pipe")
    assert proc.stderr.count("\n") == 1


def test_a_pdf_is_printed_to_a_file_not_a_device(capsys, tmp_path):
    """Chromium prints to a file: `--pdf /dev/null` stays refused (a printed file renamed
    into place would replace the device)."""
    code = main([*STRESS, "--out", str(tmp_path / "r.html"), "--pdf", "/dev/null"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: --pdf /dev/null is not a regular file"), err
