"""What every CLI command shares: data options, parameter parsing, JSON output."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from mltrainer import config, fmt, validate
from mltrainer.data.market_data import MarketData, Progress
from mltrainer.data.sources import SOURCES, load_market_data
from mltrainer.errors import MLTrainerError, ParameterError
from mltrainer.outputs import is_device

# What ``register(subparsers)`` receives: ``parser.add_subparsers()``'s return value.
Subparsers = argparse._SubParsersAction
Command = Callable[[argparse.Namespace], int]  # runs a parsed command, returns the exit status


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit status 2.

    argparse prints the whole usage block before the message; a script's log then shows
    a screen of options instead of what was wrong.
    """

    def error(self, message: str) -> NoReturn:
        head, sep, rest = message.partition(": ")
        if sep and head.startswith("argument ") and rest.startswith(head[9:].split("/")[-1]):
            message = rest  # our checks already name the option
        elif sep and rest == "expected one argument":  # "--weights -1,1,1": "-1,1,1" read as
            option = head[9:].split("/")[-1]  # an option; with "=" it is the value
            message += f" (a value that starts with '-' is written {option}=VALUE)"
        raise UsageError(f"{message} (see {self.prog} --help)")

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse drops a write that fails: `--help > file` on a full disk exited 0
        if message and file is sys.stdout:
            write_stdout(message)
        elif message:
            super()._print_message(message, file)


class UsageError(SystemExit):
    """A refused command line: exit status 2, and the message for stderr (and for the
    JSON error document under ``--json``: :func:`mltrainer.cli.main` prints both)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


def n_jobs(text: str, name: str) -> int:
    """joblib's worker count: -1 (every core) or 1 to 256; 0 means nothing."""
    value = validate.parse_int(text, name, -1, 256)
    if value == 0:
        raise ParameterError(f"{name} must be -1 (every core) or 1 to 256 (got 0)")
    return value


def add_file(
    parser: argparse.ArgumentParser, option: str, what: str, required: bool, sink: bool = True
) -> None:
    """An option naming a file to write (``what`` is its help). Refused by name before any
    work: an empty value (``--out ''`` was taken for no file, or for the current folder), a
    folder, an existing path that is not a regular file (writing to a named pipe waits
    forever for a reader), and a file whose folder is missing or not writable (no command
    creates folders: a mistyped path would otherwise scatter new ones). With ``sink``, a
    character device (``/dev/null``, a terminal) is accepted, as by most Unix tools: the
    output is written to it directly (:func:`mltrainer.outputs.write_atomic`)."""

    def convert(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} is empty: give the file to write")
        path = Path(text).expanduser()
        folder = path.parent
        if sink and is_device(path):
            return text
        if path.is_dir():
            problem = "is a folder: give a file name in it"
        elif path.exists() and not path.is_file():
            kind = "a socket or a block device" if sink else "a device or a socket"
            problem = f"is not a regular file (a named pipe, {kind}): give a file"
        elif not folder.is_dir():
            found = next((p for p in (folder, *folder.parents) if p.exists()), None)
            problem = (
                f"cannot be written: {found}: part of that path is a file, not a folder"
                if found is not None and not found.is_dir()
                else f"cannot be written: the folder {folder} does not exist (create it first)"
            )
        elif not os.access(folder, os.W_OK | os.X_OK):
            problem = f"cannot be written: the folder {folder} is not writable"
        else:
            return text
        raise argparse.ArgumentTypeError(f"{option} {text} {problem}")

    convert.__name__ = "file path"
    parser.add_argument(option, type=convert, required=required, default=None, help=what)


def folder_name(option: str) -> Callable[[str], str]:
    """An argparse ``type=`` for a folder option (``--data-dir``): refuses an empty value
    (``--data-dir ''`` was read as the current folder) and a name that is not valid UTF-8
    (pyarrow, which reads the bar files, cannot open it: a traceback)."""

    def convert(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} is empty: give a folder, or leave it out")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = printable(text)
            raise argparse.ArgumentTypeError(
                f"{option} {shown}: the name is not valid UTF-8, which the Parquet and CSV "
                "reader cannot open; rename the folder"
            ) from None
        return text

    convert.__name__ = "folder"
    return convert


def checked(parse: Callable[..., Any], name: str, *args, **kwargs) -> Callable[[str], Any]:
    """An argparse ``type=`` that runs a :mod:`mltrainer.validate` check on the text.

    ``parse(text, name, *args, **kwargs)`` gives the value; its ParameterError becomes
    argparse's error, so the message (which names the option) is printed as it is.
    """

    def convert(text: str) -> Any:
        try:
            return parse(text, name, *args, **kwargs)
        except ParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def _iso_date(text: str, name: str) -> str:
    return validate.parse_date(text, name).isoformat()


def add_group(subparsers: Subparsers, name: str, help: str, metavar: str = "ACTION") -> Subparsers:
    """A command group (``universe``, ``data``...): its own sub-commands, one required."""
    group = subparsers.add_parser(name, help=help)
    return group.add_subparsers(dest="action", required=True, metavar=metavar)


def add_command(
    subparsers: Subparsers, name: str, func: Command, help: str
) -> argparse.ArgumentParser:
    """A sub-command ``name`` that runs ``func(args)``; its arguments are added to the
    parser returned."""
    parser = subparsers.add_parser(name, help=help)
    parser.set_defaults(func=func)
    return parser


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: the command prints one JSON document instead of text."""
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON document on stdout"
    )


def add_data_args(parser: argparse.ArgumentParser, tickers: bool = True) -> None:
    """--source, --data-dir, --tickers, --start, --end (and --json)."""
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="where the prices come from (default: auto)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        type=folder_name("--data-dir"),
        help="folder of per-ticker files (or its parent holding sp500_daily/)",
    )
    if tickers:
        parser.add_argument(
            "--tickers",
            default=None,
            type=checked(validate.parse_tickers, "--tickers"),
            help="comma-separated tickers (default: all the source has)",
        )
    parser.add_argument(
        "--start", default=None, type=checked(_iso_date, "--start"), help="first date, YYYY-MM-DD"
    )
    parser.add_argument(
        "--end", default=None, type=checked(_iso_date, "--end"), help="last date, YYYY-MM-DD"
    )
    add_json(parser)


def add_scheduler_arg(parser: argparse.ArgumentParser) -> None:
    """``--scheduler tcp://host:port``: run the command's sweep on that Dask cluster."""
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="URL",
        help="Dask scheduler to run the tasks on, e.g. tcp://127.0.0.1:8786 (default: "
        "$MLTRAINER_DASK_SCHEDULER, else local processes)",
    )


def add_number(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    parse: Callable[..., Any],
    bounds: tuple,
    default: Any,
    help: str,
    **kwargs: Any,
) -> None:
    """A numeric option ``flag`` checked by the :mod:`mltrainer.validate` parser
    ``parse(text, flag, *bounds, low_open=..., high_open=...)``; other keyword arguments
    (``dest``) go to argparse. The flag is written once, and every error names it."""
    opens = {k: kwargs.pop(k) for k in ("low_open", "high_open") if k in kwargs}
    parser.add_argument(
        flag, type=checked(parse, flag, *bounds, **opens), default=default, help=help, **kwargs
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The registry ``key`` and repeatable ``--param NAME=VALUE`` of a command that runs
    one model (parsed with the model's specs by
    :func:`~mltrainer.models.params.parse_param_args`)."""
    parser.add_argument("key", help="registry key, family/ClassName (see `models list`)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model parameter (repeatable)",
    )


def add_fold_args(parser: argparse.ArgumentParser) -> None:
    """The walk-forward fold options shared by ``walkforward`` and ``leaderboard``:
    training and test windows, the window mode, purging and the embargo."""
    days = validate.parse_int
    add_number(
        parser,
        "--train-days",
        days,
        (20, 20000),
        756,
        "first training window (expanding) or every window (rolling), trading days",
    )
    add_number(parser, "--test-days", days, (5, 20000), 252, "test fold, trading days")
    parser.add_argument(
        "--mode",
        choices=("expanding", "rolling"),
        default="expanding",
        help="training window: all past data, or the last --train-days",
    )
    add_number(
        parser, "--label-horizon", days, (1, 252), 1, "days a decision's label spans (purging)"
    )
    add_number(parser, "--embargo", days, (0, 252), 0, "embargo after each test fold, days")


def fold_kwargs(args: argparse.Namespace) -> dict:
    """:func:`~mltrainer.backtest.walkforward.walk_forward`'s fold settings from the
    options of :func:`add_fold_args`."""
    same = {name: getattr(args, name) for name in ("mode", "label_horizon", "embargo")}
    return {"train_size": args.train_days, "test_size": args.test_days, **same}


def parse_tickers(value: str | list[str] | None) -> list[str] | None:
    """``--tickers`` as a list (already checked by argparse), or None for all."""
    if value is None or isinstance(value, list):
        return value
    return validate.parse_tickers(value, "--tickers")


def load_data(args: argparse.Namespace, progress: Progress | None = None) -> MarketData:
    """MarketData for the data options of a parsed command line (see
    :func:`add_data_args`); ``progress(fraction, text)`` follows a live download."""
    validate.check_date_range(args.start, args.end, ("--start", "--end"))
    return load_market_data(
        source=args.source,
        data_dir=args.data_dir,
        tickers=parse_tickers(getattr(args, "tickers", None)),
        start=args.start,
        end=args.end,
        progress=progress,
    )


def load_history(args: argparse.Namespace, lead_days: int) -> MarketData:
    """Data up to ``--end`` with the history before ``--start`` that a model learns from
    (``--start`` then sets the first day traded, shown and scored): all of it from a local
    or bundled folder, as the dashboard uses; from Yahoo or Polygon (``auto`` included when
    it goes online), ``lead_days`` trading days before ``--start`` (their default history,
    two years on Polygon, from 2000 on Yahoo, may begin after it)."""
    validate.check_date_range(args.start, args.end, ("--start", "--end"))
    start = None
    if args.start is not None and live_source(args):
        lead = pd.Timedelta(days=lead_days * 7 // 5 + 14)  # trading to calendar days
        start = (pd.Timestamp(args.start) - lead).date().isoformat()
    return load_data(argparse.Namespace(**{**vars(args), "start": start}))


def live_source(args: argparse.Namespace) -> bool:
    """Whether the data comes from a live source: Yahoo or Polygon, or ``auto`` without a
    local folder and with the network (Yahoo then, whose default history starts 2000)."""
    if args.source != "auto":
        return args.source in ("yahoo", "polygon")
    from mltrainer.data.sources import live_reachable, resolve_local_dir

    return resolve_local_dir(args.data_dir) is None and live_reachable()


def history_note(data: MarketData, first_date: str | None) -> str:
    """Where a model's inputs start, when before the first date shown (else "")."""
    if first_date is None or data.dates[0] >= pd.Timestamp(first_date):
        return ""
    return (
        f"; the model learns from {fmt.date(data.dates[0])} on (each day's value uses data "
        "up to that day only)"
    )


def record_run(
    args: argparse.Namespace,
    kind: str,
    params: dict,
    data: MarketData,
    metrics: dict,
    extra: dict | None = None,
) -> dict:
    """Append a run of the model ``args.key`` (None for a command over many models) on
    ``data`` to the audit trail, with the range asked for (``--start``/``--end``) and the
    data's tickers and source; the record written (its ``id`` included)."""
    from mltrainer import audit  # only the commands that record pay for its imports

    try:
        return audit.record(
            kind=kind,
            model_key=getattr(args, "key", None),
            params=params,
            data=data,
            tickers=data.tickers,
            start=args.start,
            end=args.end,
            metrics=metrics,
            source=data.source,
            extra=extra,
        )
    except OSError as exc:  # the results are printed all the same, then the command fails
        where = config.audit_dir() / audit.FILE_NAME
        args.audit_problem = (
            f"the audit record was not written ({where}: {exc.strerror or exc}); the results "
            "above are not in the audit trail"
        )
        return {"id": None}


def audit_text(audit_id: str | None) -> str:
    """The output line naming a run's audit record (or saying it was not written)."""
    return f"audit record {audit_id}" if audit_id else "audit record: not written (see below)"


def _default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not math.isfinite(obj) else float(obj)
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pd.Series,)):
        return {str(k): v for k, v in obj.items()}
    if isinstance(obj, (pd.DataFrame,)):
        return json.loads(obj.to_json(orient="split", date_format="iso"))
    if isinstance(obj, set):
        return sorted(obj)
    return str(obj)


def _clean(obj):
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def printable(text: str) -> str:
    """``text`` with the bytes of a name that is not UTF-8 (the surrogates Python reads
    them as) shown as ``\\xff``: printed as they were, they ended in a traceback."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class OutputError(MLTrainerError):
    """Standard output cannot take the command's output (a full disk, a closed
    descriptor): said on stderr, never retried on stdout."""


def write_stdout(text: str) -> None:
    """``text`` on stdout, flushed now. A full disk behind ``> file`` ended in a traceback
    (the error document retried on the same stdout), and a closed stdout (``>&-``) in a
    silent exit 0: both are an :class:`OutputError` saying so."""
    if sys.stdout is None:
        raise OutputError("standard output is closed: the command's output cannot be printed")
    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a file name that is not UTF-8, on a strict stdout
            sys.stdout.write(printable(text))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`| head`): handled by the caller
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from None


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout: numpy numbers as numbers, NaN and infinities
    as null, timestamps as ISO text, frames in pandas' "split" layout."""
    text = json.dumps(_clean(obj), default=_default, indent=2, allow_nan=False)
    write_stdout(text + "\n")


def emit(args: argparse.Namespace, obj: dict, text: str) -> None:
    """Print ``obj`` as JSON with --json, else the human-readable ``text``; then, if the
    run's audit record could not be written, say so and exit 1 (the results first: a long
    walk-forward's figures were lost to an unwritable audit folder)."""
    problem = getattr(args, "audit_problem", None)
    if getattr(args, "json", False):
        print_json({**obj, "audit_error": problem} if problem else obj)
    else:
        write_stdout(text + "\n")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(1)
