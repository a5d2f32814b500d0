"""A stdout that cannot take the output: exit 2 and one line on stderr, never a
traceback, never a silent exit 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mltrainer.config import PROJECT_ROOT

COMMANDS = [
    ["audit", "list"],
    ["models", "list", "--json"],
    ["data", "load", "--source", "local", "--tickers", "KO", "--start", "2021-01-01", "--json"],
    # an error whose JSON document cannot be printed either
    ["data", "load", "--source", "local", "--tickers", "ZZZZ", "--json"],
]
IDS = ["audit-list", "models-list-json", "data-load-json", "data-load-error-json"]


def _cli(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mltrainer", *argv],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLTRAINER_OFFLINE": "1"},
        **kwargs,
    )


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_a_full_disk_behind_stdout_is_one_line(shared_data_dir, argv):
    """`> out.json` on a full disk (/dev/full): the JSON document was retried as an
    error document on the same stdout, and both tracebacks printed."""
    with open("/dev/full", "w") as full:
        proc = _cli(argv, stdout=full)
    assert proc.returncode == 2, proc.stderr[-800:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr[-800:]
    if "ZZZZ" in argv:  # the command's own error is the one said
        assert proc.stderr.startswith("error: unknown ticker(s) ZZZZ"), proc.stderr
    else:
        assert proc.stderr == "error: cannot write to standard output: No space left on device\n"


@pytest.mark.parametrize("argv", COMMANDS[:3], ids=IDS[:3])
def test_a_closed_stdout_is_an_error_not_a_silent_success(shared_data_dir, argv):
    """`>&-`: Python has no sys.stdout and print() drops the output; the command exited
    0 having printed nothing."""
    proc = _cli(argv, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr == (
        "error: standard output is closed: the command's output cannot be printed\n"
    )


def test_a_reader_that_leaves_early_is_still_fine(shared_data_dir):
    """`| head -1`: the rest is not wanted; exit 0 and nothing on stderr, as before."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltrainer", "models", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLTRAINER_OFFLINE": "1"},
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and first and not err, err[-800:]


@pytest.mark.parametrize("argv", [["--help"], ["models", "run", "--help"], ["--version"]])
def test_help_on_a_full_disk_is_not_a_silent_success(argv):
    """`--help > file` on a full disk exited 0: the text was lost when the interpreter
    flushed stdout at exit, with no word of it."""
    with open("/dev/full", "w") as full:
        proc = _cli(argv, stdout=full)
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"
