"""``leaderboard``: every signal and weights model, out of sample, after costs and after
the number of settings tried (:mod:`mltrainer.backtest.leaderboard`)."""

from __future__ import annotations

import argparse
import sys

from mltrainer import fmt
from mltrainer.cli import common
from mltrainer.cli.common import Subparsers, emit, load_data, record_run
from mltrainer.config import DEFAULT_COST_BPS
from mltrainer.errors import DataError
from mltrainer.validate import parse_float


def register(subparsers: Subparsers) -> None:
    """The ``leaderboard`` command."""
    p = common.add_command(
        subparsers,
        "leaderboard",
        _leaderboard,
        "every signal/weights model through the same walk-forward, ranked out of sample",
    )
    p.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    p.add_argument("--models", default=None, metavar="KEY,KEY", help="only these registry keys")
    p.add_argument(
        "--universe",
        choices=("sp500", "survivors"),
        default=None,
        help="sp500: hold a ticker only while an index member (the default without "
        "--tickers); survivors: the tickers over the whole period",
    )
    common.add_number(
        p,
        "--cost-bps",
        parse_float,
        (0.0, 1000.0),
        DEFAULT_COST_BPS,
        f"commission, bps of traded value (default {DEFAULT_COST_BPS:g})",
    )
    common.add_fold_args(p)
    common.add_number(
        p,
        "--n-jobs",
        common.n_jobs,
        (),
        None,
        "local worker processes (default 2, -1 = all cores; ignored on a Dask cluster)",
    )
    p.add_argument(
        "--results-dir",
        type=_results_dir,
        default=None,
        help="an existing folder where runs are stored and resumed from (default "
        "results/leaderboard, made if missing)",
    )
    common.add_scheduler_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    common.add_data_args(p)


def _results_dir(text: str) -> str:
    """``--results-dir``: a store of runs that is read back as well as written, so it must
    exist. A missing folder was made silently: a typo started an empty store and ran every
    task again in it instead of resuming."""
    import os
    from pathlib import Path

    text = common.folder_name("--results-dir")(text)  # not empty, valid UTF-8
    path = Path(text).expanduser()
    if not path.exists():
        problem = (
            f"{text}: no such folder; it holds the stored runs to resume from (to start "
            "a new store there, create the folder first)"
        )
    elif not path.is_dir():
        problem = f"{text} is not a folder"
    elif not os.access(path, os.W_OK | os.X_OK):
        problem = f"{text}: the folder is not writable"
    else:
        return str(path)
    raise argparse.ArgumentTypeError(f"--results-dir {problem}")


def _settings(args: argparse.Namespace, members):
    from mltrainer.backtest.walkforward import WalkForwardSettings

    return WalkForwardSettings(
        **common.fold_kwargs(args),
        backtest_kwargs={"commission_bps": args.cost_bps, "members": members},
    )


def _leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mltrainer.backtest.leaderboard import data_meta, leaderboard_models, run_leaderboard
    from mltrainer.backtest.pit import resolve_universe
    from mltrainer.numerics.engine import connect

    models = None if args.models is None else [k.strip() for k in args.models.split(",")]
    models = None if models is None else [k for k in models if k]  # "" names none: an error
    keys = leaderboard_models(args.family or None, models)
    connect(args.scheduler)  # a wrong address fails now, not after loading the data
    data = load_data(args)
    universe = resolve_universe(data, args.universe, tickers_given=bool(args.tickers))
    settings = _settings(args, universe.mask)
    from mltrainer.numerics.parallel import execution

    with _bar(not args.no_progress) as progress, execution(scheduler=args.scheduler):
        board = run_leaderboard(
            data,
            keys,
            settings,
            root=Path(args.results_dir) if args.results_dir else None,
            progress=progress,
            n_jobs=args.n_jobs,
        )
    errors = board.table.loc[board.table["family"] != "baseline", "error"]
    if errors.notna().all():  # nothing to rank, nothing to store
        raise DataError(
            f"no model could be scored on this data ({errors.index[0]}: {errors.iloc[0]})"
        )
    board.meta["universe"] = universe.to_dict()
    board.meta["data"] = data_meta(data, args.tickers)
    audit_id = _record(args, data, keys, board)
    path = board.save(audit_id)
    doc = {
        "meta": board.meta,
        "rows": board.table.reset_index().to_dict(orient="records"),
        "n_tasks_run": board.n_tasks,
        "path": str(path),
        "audit_id": audit_id,
    }
    emit(args, doc, "\n".join(_lines(board, data, path, audit_id)))
    return 0


def _record(args: argparse.Namespace, data, keys: list[str], board) -> str:
    """The audit record of the run (the leader and the span); returns its id."""
    scored = board.table[board.table["family"] != "baseline"].dropna(subset=["oos_sharpe"])
    metrics = {"n_models": len(keys), "n_scored": len(scored)}
    if len(scored):
        metrics.update(
            best_model=scored.index[0],
            best_oos_sharpe=float(scored["oos_sharpe"].iloc[0]),
            best_oos_dsr=float(scored["oos_dsr"].iloc[0]),
        )
    extra = {"run_id": board.meta["run_id"], "out_of_sample": board.meta["out_of_sample"]}
    params = {"models": keys, "cost_bps": args.cost_bps, "train_days": args.train_days}
    return record_run(args, "leaderboard", params, data, metrics, extra)["id"]


def _lines(board, data, path, audit_id: str) -> list[str]:
    """The table as text, headed by what every figure covers."""
    span = board.meta["out_of_sample"] or {}
    costs = ", ".join(
        f"{k.removesuffix('_bps')} {v:g} bps" for k, v in span.get("costs", {}).items()
    )
    lines = [
        f"leaderboard: {len(board.table)} rows; out of sample {span.get('first_date')} to "
        f"{span.get('last_date')} ({fmt.count(span.get('n_folds', 0), 'test fold')}, "
        "settings chosen on training folds only)",
        f"universe: {board.meta['universe']['label']}; {fmt.count(data.n_tickers, 'ticker')} "
        f"({data.source}); costs {costs or 'none'}",
        f"{'model':<42}{'CAGR':>8}{'Sharpe':>8}{'DSR':>6}{'max DD':>8}{'turn/yr':>9}"
        f"{'N':>3}{'default Sh':>11}  chosen (last fold)",
    ]
    for key, row in board.table.iterrows():
        if isinstance(row.get("error"), str) and row["family"] != "baseline":
            lines.append(f"{key:<42}not scored: {row['error'][:80]}")
            continue
        lines.append(
            f"{key:<42}{_f(row['oos_cagr'], '.1%'):>8}{_f(row['oos_sharpe'], '.2f'):>8}"
            f"{_f(row.get('oos_dsr'), '.2f'):>6}{_f(row['oos_max_drawdown'], '.1%'):>8}"
            f"{_f(row['oos_turnover'], '.1f'):>9}{int(row['n_settings']):>3}"
            f"{_f(row.get('default_oos_sharpe'), '.2f'):>11}  {_s(row.get('chosen_params'))}"
        )
    lines.append(f"{board.n_tasks} (model, setting) task(s) run; the rest read back")
    lines.append(f"stored: {path}; {common.audit_text(audit_id)}")
    return lines


def _f(value, fmt: str) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if value != value else format(value, fmt)


def _s(value) -> str:
    return value if isinstance(value, str) else ""


class _bar:
    """A tqdm bar on stderr counting (model, setting) tasks; None when not shown."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar = None

    def __enter__(self):
        if not self.show:
            return None
        from tqdm import tqdm

        self.bar = tqdm(desc="leaderboard", unit="task", file=sys.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

        return progress

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
