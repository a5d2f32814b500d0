"""Hostile command lines: every bad value is exit status 2 and one line on stderr that
names the option, never a traceback, a silent exit 0 or a report of nonsense.

Most cases run the CLI in-process (``main(argv)``, fast); a few run ``python -m
mltrainer`` in a subprocess to prove the exit status a shell sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mltrainer import audit, validate
from mltrainer.cli import main
from mltrainer.config import PROJECT_ROOT
from mltrainer.errors import ParameterError

MODEL = "momentum/SimpleMomentumModel"
LOAD = ["data", "load", "--source", "local", "--tickers", "AAPL"]
BACKTEST = [
    "backtest",
    MODEL,
    "--source",
    "local",
    "--tickers",
    "KO,PEP",
    "--start",
    "2015-01-01",
    "--end",
    "2016-12-31",
]
WALKFORWARD = ["walkforward", MODEL, "--source", "local", "--tickers", "KO,PEP"]
STRESS = [
    "report",
    "stress",
    "--source",
    "local",
    "--tickers",
    "KO,PEP,WMT",
    "--start",
    "2012-01-01",
]

# (argv, a fragment the one error line must contain); the cases come first
NAMED = [
    # leaderboard and walkforward read --n-jobs the same way (-1 = every core, 0 refused)
    (["leaderboard", "--n-jobs", "0", "--tickers", "AAPL"], "-1 (every core) or 1 to 256"),
    (["walkforward", "momentum/SimpleMomentumModel", "--n-jobs", "0"], "-1 (every core) or 1"),
    # "-1,1,1" is read as an option: argparse's "expected one argument" said nothing more
    (
        ["report", "stress", "--tickers", "AAPL,MSFT,KO", "--weights", "-1,1,1", "--out", "x.html"],
        "is written --weights=VALUE",
    ),
    # a whole number too long to be a count: the message said it must be "at least 1"
    (BACKTEST + ["--rebalance-every", "9" * 20], "at least 1 of at most 18 digits"),
    # an empty file name was taken for no file (models run) or for the current folder
    (["models", "run", "momentum/SimpleMomentumModel", "--out", ""], "--out is empty"),
    (["universe", "export", "--out", " "], "--out is empty"),
    (["report", "stress", "--tickers", "AAPL,KO", "--out", ""], "--out is empty"),
    (["report", "stress", "--out", "{tmp}/r.html", "--pdf", ""], "--pdf is empty"),
    # a file to write in a missing folder, or a folder: refused before any work, the same
    # way by every command (report stress used to create the folder, the others failed
    # after the work with pandas' message)
    (["universe", "export", "--out", "{tmp}/missing/u.csv"], "folder {tmp}/missing does not"),
    (["models", "run", MODEL, "--out", "{tmp}/missing/m.parquet"], "does not exist"),
    (STRESS + ["--out", "{tmp}/missing/x.html"], "folder {tmp}/missing does not exist"),
    (STRESS + ["--out", "{tmp}/x.html", "--pdf", "{tmp}/missing/x.pdf"], "--pdf"),
    (STRESS + ["--out", "{tmp}"], "is a folder"),
    # a typo'd grid is refused like --weights; a grid of hours is refused up front
    (WALKFORWARD + ["--grid", "window=5,,10"], "--grid window=5,,10 has an empty item"),
    (
        WALKFORWARD
        + ["--grid", "window=" + ",".join(str(w) for w in range(2, 103))]
        + ["--grid", "threshold=" + ",".join(str(i / 1000) for i in range(100))],
        "the grid has 10,100 settings (101 x 100); at most 10,000",
    ),
    (LOAD + ["--start", "2020-13-45"], "--start"),
    (LOAD + ["--start", "notadate"], "--start"),
    (LOAD + ["--end", "99999-01-01"], "--end"),
    (BACKTEST[:-2] + ["--end", "2016-02-30"], "--end"),
    (["data", "load", "--source", "local", "--tickers", ",,,"], "--tickers"),
    (["models", "list", "--family", "nosuch"], "momentum"),
    (["audit", "list", "--limit", "-3"], "--limit"),  # was a silent "no records yet"
    (["audit", "list", "--limit", "1e308"], "--limit"),
    (STRESS + ["--out", "{tmp}/x.html", "--vol-multiplier", "inf"], "--vol-multiplier"),
    (STRESS + ["--out", "{tmp}/x.html", "--value", "inf"], "--value"),
    (STRESS + ["--out", "{tmp}/x.html", "--spread-multiplier", "inf"], "--spread-multiplier"),
    (STRESS + ["--out", "{tmp}/x.html", "--weights", "1,0,0"], "weight 0"),
    # an output named for another format: never overwritten with an HTML page
    (STRESS + ["--out", "{tmp}/x.html", "--pdf", "{tmp}/x.html"], "--pdf must name a .pdf"),
    (STRESS + ["--out", "{tmp}/x.pdf"], "--out must name a .html or .htm file (got 'x.pdf')"),
    (STRESS + ["--out", "{tmp}/x.html", "--weights", "1e308,1e308,1e308"], "too large to add"),
]

BAD_DATES = [
    "2020-13-45",
    "notadate",
    "99999-01-01",
    "2016-02-30",
    "2021-02-29",
    "2020-00-10",
    "2020-01-00",
    "1800-01-01",
    "2200-01-01",
    "20200101",
    "2020/01/02",
    "2020-1-1",
    "",
    " ",
    "2020-01-01T00:00",
    "-2020-01-01",
    "2020-01-01; rm -rf /",
    "NaT",
    "now",
    "１２３４-01-01",
]
BAD_TICKERS = [
    ",,,",
    "",
    " , ,",
    "AAPL;MSFT",
    "AA PL",
    "../etc/passwd",
    "A" * 20,
    "AAPL,<script>",
    "KO,\x00",
    "$(id)",
    ",".join(f"T{i}" for i in range(1001)),
    "KO" + ",KO" * 3 + ",🙂",
]
BAD_BPS = ["nan", "inf", "-inf", "-1", "1e308", "1e400", "abc", "1001", "0x10", ""]
BAD_POSITIVE = ["0", "-1", "nan", "inf", "-inf", "1e308", "abc", ""]
BAD_INT = ["0", "-3", "1.5", "abc", "1e3", "99999999999999999999", ""]


def _cases():
    cases = [pytest.param(argv, frag, id=f"named-{i}") for i, (argv, frag) in enumerate(NAMED)]
    for value in BAD_DATES:
        cases.append(pytest.param(LOAD + ["--start", value], "--start", id=f"start={value!r}"))
    for value in BAD_DATES[:8]:
        cases.append(
            pytest.param(BACKTEST[:-2] + ["--end", value], "--end", id=f"backtest-end={value!r}")
        )
    cases.append(
        pytest.param(
            LOAD + ["--start", "2020-01-05", "--end", "2020-01-01"], "after", id="start-after-end"
        )
    )
    for value in BAD_TICKERS:
        cases.append(
            pytest.param(
                ["data", "load", "--source", "local", "--tickers", value],
                "--tickers",
                id=f"tickers={value[:20]!r}",
            )
        )
    for option in ("--cost-bps", "--slippage-bps", "--spread-bps"):
        for value in BAD_BPS:
            cases.append(
                pytest.param(BACKTEST + [option, value], option, id=f"backtest{option}={value}")
            )
    for option in ("--gross-limit", "--max-weight"):
        for value in BAD_POSITIVE:
            cases.append(
                pytest.param(BACKTEST + [option, value], option, id=f"backtest{option}={value}")
            )
    for value in BAD_INT:
        cases.append(
            pytest.param(
                BACKTEST + ["--rebalance-every", value],
                "--rebalance-every",
                id=f"rebalance-every={value}",
            )
        )
    for value in ("nan", "inf", "-5"):
        cases.append(
            pytest.param(
                WALKFORWARD + ["--cost-bps", value],
                "--cost-bps",
                id=f"walkforward-cost-bps={value}",
            )
        )
    for option, values in (
        ("--train-days", ["abc", "-5", "1e9", "0"]),
        ("--test-days", ["2.5", "-1"]),
        ("--embargo", ["-1", "nan"]),
        ("--label-horizon", ["0", "inf"]),
        ("--n-jobs", ["0", "x", "-2"]),
        ("--universe", ["nasdaq"]),
    ):
        for value in values:
            cases.append(
                pytest.param(
                    WALKFORWARD + [option, value], option, id=f"walkforward{option}={value}"
                )
            )
    stress = STRESS + ["--out", "{tmp}/x.html"]
    for option, values in (
        ("--value", ["nan", "-inf", "0", "-1", "1e308", "abc"]),
        ("--vol-multiplier", ["nan", "0", "-1", "1e308"]),
        ("--spread-multiplier", ["nan", "-1", "-inf", "1e308"]),
        ("--crash", ["0", "-2", "0.5", "inf", "nan"]),
        ("--correlation-push", ["-0.1", "1.5", "nan"]),
        ("--var-window", ["10", "abc", "1e9"]),
        ("--beta-window", ["10", "-1"]),
        ("--weights", ["1,nan,0.5", "1,inf,-inf", "a,b,c", "1,2", ",,,", "0,0,0", "1,,1"]),
        ("--levels", ["0.95,,0.99", "inf", "1.5", "0.95,nan"]),
    ):
        for value in values:
            cases.append(
                pytest.param(
                    stress + [option, value],
                    option.lstrip("-").split("-")[0],
                    id=f"stress{option}={value}",
                )
            )
    for value in ("abc", "1.5", ""):
        cases.append(
            pytest.param(
                ["audit", "list", "--limit", value], "--limit", id=f"audit-limit={value!r}"
            )
        )
    twice = ["--param", "window=10", "--param", "window = 20"]  # the last one used to win
    cases.append(pytest.param(BACKTEST + twice, "--param window given twice", id="param-twice"))
    grids = ["--grid", "window=10,20", "--grid", "window=60"]
    cases.append(pytest.param(WALKFORWARD + grids, "--grid window given twice", id="grid-twice"))
    return cases


def _run(capsys, argv, tmp_path):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,fragment", _cases())
def test_bad_input_is_exit_2_and_one_line(capsys, shared_data_dir, tmp_path, argv, fragment):
    code, out, err = _run(capsys, argv, tmp_path)
    fragment = fragment.replace("{tmp}", str(tmp_path))
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-500:])
    assert "Traceback" not in err and len(lines) == 1, err[-800:]
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert not (tmp_path / "x.html").exists()  # nothing claimed as "written"
    assert not (tmp_path / "missing").exists()  # no folder made for a mistyped path


def test_an_output_named_for_another_format_is_left_as_it_was(capsys, tmp_path):
    """`--out passwd` (or data.csv, or report.pdf) wrote the HTML page over that file."""
    for name in ("passwd", "prices.csv", "book.pdf"):
        kept = tmp_path / name
        kept.write_text("someone's file\n")
        code, _, err = _run(capsys, [*STRESS, "--out", str(kept)], tmp_path)
        assert code == 2 and "--out must name a .html or .htm file" in err, err
        assert kept.read_text() == "someone's file\n"


def test_unknown_family_names_every_family(capsys):
    from mltrainer.models.registry import MODELS

    code, _, err = _run(capsys, ["models", "list", "--family", "nosuch"], None)
    assert code == 2
    for family in {k.split("/")[0] for k in MODELS}:
        assert family in err


def test_good_options_still_pass(capsys, shared_data_dir, tmp_path):
    """The checks refuse the bad values only: legal edge values go through."""
    code, out, err = _run(
        capsys,
        [
            "data",
            "load",
            "--source",
            "local",
            "--tickers",
            " ko , brk.b,KO",
            "--start",
            "2020-02-28",
            "--end",
            "2020-02-29",
            "--json",
        ],
        tmp_path,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["tickers"] == ["KO", "BRK.B"] and doc["first_date"] == "2020-02-28"
    code, out, _ = _run(capsys, ["models", "list", "--family", "momentum"], tmp_path)
    assert code == 0 and "SimpleMomentum" in out


def test_a_non_utf8_byte_in_the_audit_trail_skips_that_line_only(capsys):
    path = audit.audit_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    good = [
        {
            "id": f"r{i}",
            "time": "2024-01-01T00:00:00",
            "kind": "backtest",
            "model": MODEL,
            "start": None,
            "end": None,
        }
        for i in range(3)
    ]
    path.write_bytes(
        json.dumps(good[0]).encode()
        + b"\n"
        + b'{"id": "bad\xff\xfe", "kind": "backtest"}\n'
        + json.dumps(good[1]).encode()
        + b"\n\xc3\x28\n[1, 2]\n42\n"
        + json.dumps(good[2]).encode()
        + b"\n"
    )
    code, out, err = _run(capsys, ["audit", "list"], None)
    assert code == 0 and not err, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["r0", "r1", "r2"]
    assert len(lines) == 4 and lines[3].startswith("skipped 4 damaged line(s)")
    assert "line 2: it is not UTF-8 text" in lines[3] and "line 6: it is a JSON int" in lines[3]
    code, out, err = _run(capsys, ["audit", "show", "r1", "--json"], None)
    assert code == 0 and json.loads(out)["id"] == "r1"


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (LOAD + ["--start", "2020-13-45"], "--start"),
        (["data", "load", "--source", "local", "--tickers", ",,,"], "--tickers"),
        (["models", "list", "--family", "nosuch"], "--family"),
        (BACKTEST[:-2] + ["--end", "2016-02-30"], "--end"),
        (STRESS + ["--out", "{tmp}/x.html", "--pdf", "{tmp}/x.html"], "--pdf"),
        # numpy's overflow warning used to print a second line above the error
        (STRESS + ["--out", "{tmp}/x.html", "--weights", "1e308,1e308,1e308"], "too large"),
    ],
)
def test_exit_status_seen_by_a_shell(shared_data_dir, tmp_path, argv, fragment):
    env = {**os.environ, "MLTRAINER_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mltrainer", *(a.replace("{tmp}", str(tmp_path)) for a in argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr.count("\n") == 1 and fragment in proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout
    assert not (tmp_path / "x.html").exists()


def _limited(memory_bytes: int):
    def apply() -> None:  # in the child: a regression fails there, not the whole suite
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


@pytest.mark.parametrize("kind", ["device", "pipe", "folder"])
@pytest.mark.parametrize(
    "argv,expected",
    [
        (["universe", "parse", "--html"], "a saved copy of the Wikipedia"),
        (["universe", "show", "--csv"], "a constituents CSV"),
    ],
    ids=["page", "csv"],
)
def test_a_file_that_never_ends_is_refused_at_once(shared_data_dir, tmp_path, kind, argv, expected):
    """A named pipe or /dev/zero reports size 0 and never ends: reading it whole ran the
    process out of memory (the kernel killed it). Only regular files are read, and at
    most one byte past the limit. The child runs with 3 GB of address space and 60 s."""
    path = {"device": "/dev/zero", "pipe": str(tmp_path / "page.html"), "folder": str(tmp_path)}
    if kind == "pipe":
        os.mkfifo(path["pipe"])
    proc = subprocess.run(
        [sys.executable, "-m", "mltrainer", *argv, path[kind]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLTRAINER_OFFLINE": "1"},
        preexec_fn=_limited(3 * 2**30),
    )
    what = "a folder" if kind == "folder" else "a device or a pipe"
    assert proc.returncode == 2, proc.stderr[-800:]
    assert proc.stderr.count("\n") == 1, proc.stderr[-800:]
    assert proc.stderr.startswith(
        f"error: {path[kind]}: is {what}, not a file (expected {expected}"
    )


# ------------------------------------------------------------ the layer itself
@pytest.mark.parametrize(
    "text,expected",
    [
        ("2020-02-29", "2020-02-29"),
        (" 2016-02-28 ", "2016-02-28"),
        ("1900-01-01", "1900-01-01"),
    ],
)
def test_parse_date_accepts_calendar_dates(text, expected):
    assert validate.parse_date(text, "start").isoformat() == expected


@pytest.mark.parametrize("text", BAD_DATES)
def test_parse_date_refuses_with_the_name_and_the_value(text):
    with pytest.raises(ParameterError, match="^start"):
        validate.parse_date(text, "start")


@pytest.mark.parametrize(
    "text,low,high,low_open",
    [
        ("nan", None, None, False),
        ("inf", None, None, False),
        ("-inf", 0, None, False),
        ("1e400", None, None, False),
        ("0", 0, None, True),
        ("50.5", 0, 50, False),
    ],
)
def test_parse_float_refuses_non_finite_and_out_of_range(text, low, high, low_open):
    with pytest.raises(ParameterError, match="^costs must be a finite number"):
        validate.parse_float(text, "costs", low, high, low_open=low_open)


def test_parse_tickers_dedupes_and_caps():
    assert validate.parse_tickers("ko, KO ,brk.b,^gspc") == ["KO", "BRK.B", "^GSPC"]
    assert len(validate.parse_tickers(",".join(f"T{i}" for i in range(50)), max_n=50)) == 50
    with pytest.raises(ParameterError, match="51 tickers; at most 50"):
        validate.parse_tickers(",".join(f"T{i}" for i in range(51)), max_n=50)


@pytest.mark.parametrize(
    "argv,quoted",
    [
        (BACKTEST + ["--param", "window=nan"], "'nan'"),
        (["report", "stress", "--source", "local", "--out", "{tmp}/a-file/x.html"], "a-file:"),
    ],
    ids=["param-value", "unwritable-path"],
)
def test_a_quoted_value_keeps_its_quotes(capsys, shared_data_dir, tmp_path, argv, quoted):
    """The one-line error is the exception's own text, not cut at a closing quote (a
    parameter's repr); a file system error names its path and what is wrong with it."""
    (tmp_path / "a-file").write_text("not a folder")
    code, _, err = _run(capsys, argv, tmp_path)
    assert code == 2 and quoted in err, err[-500:]
    if "a-file" in quoted:
        assert "a-file: part of that path is a file, not a folder" in err, err
