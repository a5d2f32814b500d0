"""``python -m mltrainer``: the package's functions for scripts and batch runs.

Each command group lives in its own module with a ``register(subparsers)`` function;
the list below is explicit. Errors raised on purpose (bad data, bad parameters, a
failing source) print one clear line (or a JSON ``{"error": ...}`` with ``--json``)
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys

from mltrainer import config
from mltrainer.errors import MLTrainerError


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m mltrainer`` parser with every command group registered."""
    from mltrainer.cli import audit, backtest, data, leaderboard, models, report, universe
    from mltrainer.cli.common import OneLineParser

    parser = OneLineParser(
        prog="python -m mltrainer",
        description="mltrainer: S&P 500 data, models, backtests and reports",
    )
    from mltrainer import __version__

    parser.add_argument("--version", action="version", version=f"mltrainer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (data, universe, models, backtest, leaderboard, report, audit):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command line (``sys.argv[1:]`` when ``argv`` is None); the exit status:
    0 done, 2 a refused option or an error raised on purpose, 130 interrupted."""
    from mltrainer.cli.common import OutputError, UsageError, print_json

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # a refused option: one line, and JSON if asked for
        words = sys.argv[1:] if argv is None else argv
        if "--json" in words[: words.index("--") if "--" in words else None]:
            try:
                print_json({"error": config.scrub(exc.message), "type": "UsageError"})
            except (OutputError, BrokenPipeError):  # stderr says it all the same
                _silence_stdout()
        print(f"error: {config.scrub(exc.message)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help or --version (0): a code, not an exit
        return exc.code if isinstance(exc.code, int) else 2
    except OutputError as exc:  # --help or --version could not be printed
        _silence_stdout()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # the reader went away (`... | head`): nothing more can be printed, and that is fine
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at the null device: what is left in its buffer would fail again when
    the interpreter flushes it at exit (a second error, or a traceback)."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # closed (None), or not a real file
        pass


def _cache_note() -> None:
    """Say on stderr when the cache folder could not be used (the command ran on a
    temporary one), if the command opened the cache."""
    cache = sys.modules.get("mltrainer.data.cache")
    problem = cache.cache_problem(open_cache=False) if cache is not None else None
    if problem:
        print(f"warning: {problem}", file=sys.stderr)


def _os_message(exc: OSError) -> str:
    """A file system error in words: which path, and what is wrong with it."""
    if not exc.filename or not exc.strerror:
        return str(exc)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):  # a file where a folder is needed
        return f"cannot use {exc.filename}: part of that path is a file, not a folder"
    return f"cannot use {exc.filename}: {exc.strerror}"


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except (MLTrainerError, OSError) as exc:
        from mltrainer.cli.common import OutputError, print_json

        message = config.scrub(_os_message(exc) if isinstance(exc, OSError) else str(exc))
        if isinstance(exc, OutputError):  # not retried on the stdout that failed
            _silence_stdout()
        elif getattr(args, "json", False):
            try:
                print_json({"error": message, "type": type(exc).__name__})
            except OutputError:  # stdout full too: stderr says what was wrong
                _silence_stdout()
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        _cache_note()
