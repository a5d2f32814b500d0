"""``backtest KEY`` and ``walkforward KEY``: a model's signal through the engine."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mltrainer import fmt
from mltrainer.cli import common
from mltrainer.cli.common import Subparsers, add_command, emit, load_data, record_run
from mltrainer.config import DEFAULT_COST_BPS
from mltrainer.errors import ParameterError
from mltrainer.numerics.units import TRADING_DAYS
from mltrainer.validate import parse_float, parse_int

if TYPE_CHECKING:  # pragma: no cover
    from mltrainer.numerics.parallel import Progress


def register(subparsers: Subparsers) -> None:
    """The ``backtest`` and ``walkforward`` commands."""
    bt = add_command(
        subparsers,
        "backtest",
        _backtest,
        "backtest a signal or weights model (it trades from --start; the model learns from "
        "the history before it too, as in the dashboard)",
    )
    _model_args(bt)
    wf = add_command(
        subparsers,
        "walkforward",
        _walkforward,
        "walk-forward validation over a parameter grid (purged folds)",
    )
    _model_args(wf)
    wf.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="values to search for one parameter (repeatable)",
    )
    common.add_fold_args(wf)
    common.add_number(wf, "--n-jobs", common.n_jobs, (), -1, "parallel workers (-1 = all cores)")
    common.add_scheduler_arg(wf)
    wf.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


# the engine's settings (BacktestSettings) each command-line option sets, by its ``dest``
_ENGINE_OPTIONS = (
    "commission_bps",
    "slippage_bps",
    "spread_bps",
    "gross_limit",
    "max_weight",
    "strict",
    "rebalance_every",
)


def _model_args(parser: argparse.ArgumentParser) -> None:
    common.add_model_args(parser)
    bps, limit = (0.0, 1000.0), (0.0, 100.0)  # the engine's own bounds on a cost, a limit
    add = functools.partial(common.add_number, parser)
    add(
        "--cost-bps",
        parse_float,
        bps,
        DEFAULT_COST_BPS,  # as the Model Lab and the leaderboard
        f"commission, bps of traded value (default {DEFAULT_COST_BPS:g})",
        dest="commission_bps",
    )
    add("--slippage-bps", parse_float, bps, 0.0, "slippage, bps of traded value")
    add("--spread-bps", parse_float, bps, 0.0, "half the bid-ask spread, bps of traded value")
    add(
        "--gross-limit",
        parse_float,
        limit,
        1.0,
        "largest gross exposure (1 = fully invested)",
        low_open=True,
    )
    add(
        "--max-weight",
        parse_float,
        limit,
        None,
        "largest absolute weight of one ticker",
        low_open=True,
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse weights above the limits instead of scaling/clipping",
    )
    add(
        "--rebalance-every",
        parse_int,
        (1,),
        1,
        "trade every k-th date only (positions drift between)",
    )
    parser.add_argument(
        "--universe",
        choices=("sp500", "survivors"),
        default=None,
        help="sp500: hold a ticker only while it is an S&P 500 member (the "
        "default without --tickers when membership is known), reported "
        "beside the same run on the survivors; survivors: the tickers "
        "over the whole period",
    )
    common.add_data_args(parser)


def _backtest_kwargs(args: argparse.Namespace) -> dict:
    """The engine's settings given on the command line."""
    return {name: getattr(args, name) for name in _ENGINE_OPTIONS}


def _universe(args, data, traded_from=None):
    from mltrainer.backtest.pit import resolve_universe

    return resolve_universe(
        data, args.universe, tickers_given=bool(args.tickers), traded_from=traded_from
    )


def _universe_lines(universe, effect: dict | None) -> list[str]:
    lines = [f"universe: {universe.label}"]
    if effect:
        pit, surv = effect["point_in_time"], effect["survivors"]
        lines.append(f"  survivorship effect ({effect['note']}):")
        lines.append(f"  {'':<16}{'CAGR':>9}{'Sharpe':>9}{'max DD':>9}")
        d = effect["survivors_minus_point_in_time"]
        for name, row, sign in (
            ("point in time", pit, False),
            ("survivors", surv, False),
            ("difference", d, True),
        ):
            lines.append(
                f"  {name:<16}"
                + "".join(
                    f"{fmt.metric(k, row[k], sign=sign):>9}"
                    for k in ("cagr", "sharpe", "max_drawdown")
                )
            )
    return lines


def _model(args):
    from mltrainer.models.params import parse_param_args
    from mltrainer.models.registry import get_model

    cls = get_model(args.key)
    return cls, parse_param_args(cls.param_specs, args.param)


def _backtest(args) -> int:
    from mltrainer.backtest.engine import backtest_model, run_backtest
    from mltrainer.backtest.pit import survivorship_effect

    cls, params = _model(args)
    model = cls(**params)
    # the model learns from the history before --start too, as in the Model Lab and
    # `report stress`: --start is the first date traded and scored, not the first its
    # windows see (else a 60-day momentum backtest from --start held cash for 60 days)
    data = common.load_history(args, model.min_history())
    universe = _universe(args, data, traded_from=args.start)  # the history only informs
    kwargs = {**_backtest_kwargs(args), "start": args.start}
    result, output = backtest_model(model, data, members=universe.mask, **kwargs)
    summary = result.summary()
    effect = None
    if universe.mask is not None:  # the same signal on the survivors, for comparison
        kwargs.setdefault("weighting", "weights" if model.output_kind == "weights" else "normalize")
        survivors = run_backtest(output.primary, data, **kwargs)
        effect = survivorship_effect(result.metrics, survivors.metrics)
    warnings = [*universe.warnings, *summary["warnings"]]
    metrics = {**summary["metrics"], "final_equity": summary["final_equity"]}
    extra = {"settings": summary["settings"], "universe": universe.name}
    rec = record_run(args, "backtest", model.get_params(), data, metrics, extra)
    doc = {
        "model": args.key,
        "params": model.get_params(),
        "source": data.source,
        **summary,
        "warnings": warnings,
        "universe": universe.to_dict(),
        "survivorship": effect,
        "audit_id": rec["id"],
    }
    m = summary["metrics"]
    text = "\n".join(
        [
            f"{args.key} on {fmt.count(data.n_tickers, 'ticker')} ({data.source}), "
            f"{fmt.date_range(summary['first_date'], summary['last_date'])}"
            + common.history_note(data, summary["first_date"]),
            *_universe_lines(universe, effect),
            f"final equity {fmt.number(summary['final_equity'], 4)} (from 1)",
            *(f"  {k:<28} {fmt.metric(k, v):>10}" for k, v in m.items()),
            *metric_basis(summary["settings"]),
            *(f"warning: {w}" for w in warnings),
            common.audit_text(rec["id"]),
        ]
    )
    emit(args, doc, text)
    return 0


RATES = (
    f"annualised over {TRADING_DAYS} trading days a year; "
    "Sharpe and Sortino with a zero risk-free rate"
)


def metric_basis(settings: dict) -> list[str]:
    """What the backtest's figures are measured against, as text under them."""
    bench = settings["benchmark"]
    bench = "the benchmark given" if bench == "given" else f"the {bench}"
    costs = (
        f"{fmt.number(settings[k], 1)} bps {name}"
        for k, name in [("commission_bps", "commission"), ("slippage_bps", "slippage")]
    )
    spread = settings["spread_bps"]
    spread = spread if isinstance(spread, str) else f"{fmt.number(spread, 1)} bps"
    return [
        f"  ({RATES};",
        f"   net of costs on traded value: {', '.join(costs)}, half-spread {spread};",
        "   beta, alpha, information_ratio, benchmark_cagr: against",
        f"   {bench};",
        "   total_costs: all costs paid, as a share of the starting equity)",
    ]


def parse_grid(specs: dict, items: list[str]) -> dict:
    """``name=v1,v2,...`` strings -> {name: [values]} parsed with the parameter specs."""
    grid = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--grid expects name=v1,v2,... (got {item!r})")
        name, text = (s.strip() for s in item.split("=", 1))
        if name not in specs:
            raise ParameterError(
                f"unknown grid parameter {name!r}; this model takes: {', '.join(specs) or 'none'}"
            )
        if name in grid:  # the last one silently replaced the first
            raise ParameterError(f"--grid {name} given twice; list its values once: {name}=a,b")
        values = [v.strip() for v in text.split(",")]
        if not any(values):
            raise ParameterError(f"--grid {name}= needs at least one value")
        if not all(values):  # as --weights: 'window=5,,10' is a typo, not two values
            raise ParameterError(f"--grid {name}={text[:40]} has an empty item")
        try:
            grid[name] = [specs[name].parse(v) for v in values]
        except ParameterError as exc:
            raise ParameterError(f"{name}: {exc}") from None
    return grid


def _walkforward(args: argparse.Namespace) -> int:
    cls, params = _model(args)
    grid = parse_grid(cls.param_specs, args.grid)
    overlap = set(grid) & set(params)
    if overlap:
        raise ParameterError(f"{', '.join(sorted(overlap))}: given both as --param and --grid")
    from mltrainer.numerics.engine import connect

    connect(args.scheduler)  # a wrong address fails now, not after loading the data
    data = load_data(args)
    universe = _universe(args, data)
    runs = _walkforward_runs(args, cls, data, grid, params, universe.mask)
    summary = runs["main"].summary()
    effect = _fold_survivorship(summary, runs.get("survivors"))
    audit_id = _record_walkforward(args, data, {**params, "grid": grid}, summary)
    doc = {
        "model": args.key,
        "source": data.source,
        **summary,
        "universe": universe.to_dict(),
        "survivorship": effect,
        "audit_id": audit_id,
    }
    lines = [
        f"{args.key}: {fmt.integer(len(runs['main'].grid))} grid point(s), "
        f"{fmt.integer(len(runs['main'].folds))} folds ({args.mode}, train "
        f"{fmt.integer(args.train_days)} / test {fmt.integer(args.test_days)} days)",
        *_universe_lines(universe, effect),
        *(f"warning: {w}" for w in universe.warnings),
        *_walkforward_lines(summary),
        f"({RATES}; net of the costs of --cost-bps, --slippage-bps and --spread-bps)",
        *(f"warning (out of sample): {w}" for w in summary["warnings"]),
        common.audit_text(audit_id),
    ]
    emit(args, doc, "\n".join(lines))
    return 0


def _walkforward_runs(args, cls, data, grid, params, members) -> dict:
    """The walk-forward on the universe (``main``), then on the survivors if it has members."""
    from mltrainer.backtest.walkforward import walk_forward
    from mltrainer.numerics.parallel import execution

    masks = {"main": members} if members is None else {"main": members, "survivors": None}
    # a single grid point runs in-process; its refits may then use the workers
    with (
        _progress_bar(not args.no_progress) as (on_run, on_fit),
        execution(n_jobs=_workers(args.n_jobs), progress=on_fit, scheduler=args.scheduler),
    ):
        return {
            name: walk_forward(
                cls,
                data,
                grid,
                params=params,
                **common.fold_kwargs(args),
                backtest_kwargs={**_backtest_kwargs(args), "members": mask},
                n_jobs=args.n_jobs,
                progress=on_run,
            )
            for name, mask in masks.items()
        }


def _record_walkforward(args, data, params: dict, summary: dict) -> str:
    """The audit record of a walk-forward (its out-of-sample figures); returns its id."""
    dsr = summary["deflated_sharpe"]
    metrics = {f"oos_{k}": v for k, v in summary["oos_metrics"].items()}
    metrics.update(dsr_oos=dsr["oos"]["dsr"], dsr_best_trial=dsr["best_trial"]["dsr"])
    extra = {"settings": summary["settings"]}
    return record_run(args, "walkforward", params, data, metrics, extra)["id"]


def _workers(n_jobs: int) -> int:
    """joblib's ``n_jobs`` as a count of workers (-1: every core)."""
    from joblib import cpu_count

    return cpu_count() if n_jobs == -1 else n_jobs


@contextmanager
def _progress_bar(show: bool) -> Iterator[tuple[Progress, Progress]]:
    """Callbacks ``(done, total)`` for the runs of a walk-forward and the fits inside.

    One tqdm bar on stderr counts the runs; its postfix, the steps (refits or tickers,
    as :func:`~mltrainer.numerics.parallel.step_unit` says) of the model running in this
    process. None for both when ``show`` is false (no bar either when stderr is
    not a terminal).
    """
    if not show:
        yield None, None
        return
    from tqdm import tqdm

    from mltrainer.numerics.parallel import step_unit

    bar = tqdm(
        total=None, desc="walk-forward", unit="run", file=sys.stderr, leave=False, disable=None
    )  # None: no bar when stderr is not a terminal

    def on_run(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    def on_fit(done: int, total: int) -> None:
        bar.set_postfix_str(f"{step_unit()} {done}/{total}")

    try:
        yield on_run, on_fit
    finally:
        bar.close()


def _fold_survivorship(summary: dict, survivors) -> dict | None:
    """The survivorship effect on the out-of-sample folds (None without a survivors run)."""
    if survivors is None:
        return None
    from mltrainer.backtest.pit import survivorship_effect

    effect = survivorship_effect(summary["oos_metrics"], survivors.summary()["oos_metrics"])
    effect["note"] += " (out-of-sample folds of the same walk-forward)"
    return effect


def _walkforward_lines(summary: dict) -> list[str]:
    """The fold table, the out-of-sample figures and the baselines, as text."""
    dsr = summary["deflated_sharpe"]
    oos = summary["oos_metrics"]
    lines = [
        f"{'fold':>4}  {'test period':<23}  {'params':<30} {'IS Sharpe':>9} {'OOS Sharpe':>10}"
    ]
    for row in summary["folds"]:
        lines.append(
            f"{fmt.integer(row['fold']):>4}  {fmt.date(row['test_start'])} "
            f"{fmt.date(row['test_end'])}  {str(row['params']):<30} "
            f"{fmt.ratio(row['is_sharpe']):>9} {fmt.ratio(row['oos_sharpe']):>10}"
        )
    lines.append(
        "(a fold's dates are its decision dates; each decision earns the next day's return, "
        "so the out-of-sample track runs a day past the last fold)"
    )
    return [
        *lines,
        f"out-of-sample: Sharpe {fmt.ratio(oos['sharpe'])}, CAGR {fmt.percent(oos['cagr'])}, "
        f"max drawdown {fmt.percent(oos['max_drawdown'])}",
        "deflated Sharpe ratio (the probability that the true Sharpe is above the best of "
        f"{fmt.integer(dsr['oos']['n_trials'])} trials under no skill; Bailey & Lopez de Prado): "
        f"out of sample {fmt.ratio(dsr['oos']['dsr'])}, best grid point over the whole "
        f"range {fmt.ratio(dsr['best_trial']['dsr'])}",
        *_baseline_lines(summary["baselines"]),
    ]


def _baseline_lines(baselines: dict | None) -> list[str]:
    """The baseline table of :meth:`BaselineReport.summary` as text."""
    if not baselines:
        return []
    span = baselines["out_of_sample"]
    costs = ", ".join(
        f"{k.removesuffix('_bps')} {fmt.number(v, 1)} bps" for k, v in span["costs"].items()
    )
    lines = [
        f"{span['label']}: {fmt.date_range(span['first_date'], span['last_date'])} "
        f"({fmt.integer(span['n_dates'])} dates, {fmt.integer(span['n_folds'])} folds); "
        f"universe {span['universe']}; costs {costs}",
        f"  {'':<40}{'CAGR':>8}{'Sharpe':>8}{'max DD':>8}{'turnover':>11}  |"
        f"{'excess CAGR':>13}{'excess Sharpe':>15}{'IR':>7}",
    ]
    columns = (  # (figure, width, shown with a sign)
        ("cagr", 8, False),
        ("sharpe", 8, False),
        ("max_drawdown", 8, False),
        ("annual_turnover", 11, False),
        ("excess_cagr", 13, True),
        ("excess_sharpe", 15, True),
        ("information_ratio", 7, False),
    )
    for key, row in baselines.items():
        if key == "out_of_sample":
            continue
        if not row["available"]:
            lines.append(f"  {row['label']:<40}{row['note']}")
            continue
        cells = [
            f"{_baseline_cell(name, row.get(name), sign):>{width}}" for name, width, sign in columns
        ]
        lines.append(f"  {row['label']:<40}{''.join(cells[:4])}  |{''.join(cells[4:])}")
    return lines


def _baseline_cell(name: str, value, sign: bool) -> str:
    """One figure of the baseline table (``-`` where the row has none)."""
    if value is None:
        return "-"
    shown = fmt.metric(name, value, sign=sign)
    return f"{shown}/yr" if name == "annual_turnover" else shown
