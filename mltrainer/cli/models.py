"""``models list`` and ``models run KEY``: every registered model, one command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mltrainer import fmt
from mltrainer.cli import common
from mltrainer.cli.common import Subparsers, emit, history_note, record_run
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError
from mltrainer.models.params import parse_param_args
from mltrainer.outputs import is_device, parquet_writer, write_atomic

if TYPE_CHECKING:  # importing the models' base class pulls in scikit-learn
    from mltrainer.models.base import Model, ModelOutput

# The registry imports every model family (sklearn, statsmodels, arch): seconds of start-up
# that `--help` and the other commands should not pay, so it is imported where it is used.


def register(subparsers: Subparsers) -> None:
    """The ``models`` commands: list, run."""
    sub = common.add_group(subparsers, "models", "list and run the registered models")
    lst = common.add_command(sub, "list", _list, "every model with its parameter specs")
    lst.add_argument("--family", default=None, help="only this family")
    common.add_json(lst)

    run = common.add_command(sub, "run", _run, "run one model on market data")
    common.add_model_args(run)
    common.add_file(run, "--out", "write the output frame to FILE.parquet", required=False)
    common.add_data_args(run)


def _list(args) -> int:
    from mltrainer.models.registry import MODELS, describe
    from mltrainer.validate import choice

    if args.family is not None:
        choice(args.family, "--family", sorted({k.split("/")[0] for k in MODELS}))
    keys = [k for k in MODELS if args.family is None or k.startswith(args.family + "/")]
    docs = [describe(k) for k in keys]
    lines = []
    for d in docs:
        lines.append(f"{d['key']:<55} {d['output_kind']:<10} {d['description']}")
        lines += [f"    {name:<22} {_spec_text(spec)}" for name, spec in d["params"].items()]
    emit(args, {"n_models": len(docs), "models": docs}, "\n".join(lines) or "no models registered")
    return 0


def _spec_text(spec: dict) -> str:
    """One parameter spec as text: kind, allowed values, default, help."""
    if "choices" in spec:
        allowed = " | ".join(map(str, spec["choices"]))
    elif "low" in spec:
        allowed = f"{spec['low']:g} to {spec['high']:g}"
    else:
        allowed = "true | false"
    return f"{spec['kind']:<6} {allowed} (default {spec['default']}): {spec.get('help', '')}"


def _run(args) -> int:
    from mltrainer.models.registry import get_model

    cls = get_model(args.key)
    params = parse_param_args(cls.param_specs, args.param)
    model = cls(**params)
    # as in the Model Lab and `backtest`: the model learns from the history before --start
    # (its windows are full on --start, not NaN for their length); the output starts there
    data = common.load_history(args, model.min_history())
    output = model.run(data).since(args.start)
    frame = output.to_frame()
    if not len(frame.index):  # --start after the data's last day: no row, not an empty file
        raise DataError(
            f"no trading day {fmt.date_range(args.start, args.end)} in the data, which runs "
            f"{fmt.date_range(data.dates[0], data.dates[-1])}; choose dates inside it"
        )
    if args.out:
        path = Path(args.out)
        if path.suffix.lower() != ".parquet" and not is_device(path):
            raise DataError(f"--out must name a .parquet file (got {path.name})")
        flat = frame.copy()
        if flat.columns.nlevels > 1:
            flat.columns = ["|".join(map(str, c)) for c in flat.columns]
        flat.columns = [str(c) for c in flat.columns]
        write_atomic(path, parquet_writer(flat))
    _audit(args, model, data, output)
    last = frame.ffill().iloc[-1] if len(frame) else None
    doc = {
        "model": args.key,
        "params": model.get_params(),
        "source": data.source,
        "n_tickers": data.n_tickers,
        "first_date": str(frame.index[0].date()) if len(frame) else None,
        "last_date": str(frame.index[-1].date()) if len(frame) else None,
        "output_kind": cls.output_kind,
        "columns": [
            list(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns[:200]
        ],
        "n_columns": frame.shape[1],
        "n_rows": frame.shape[0],
        "last_values": None
        if last is None
        else {
            "|".join(map(str, k)) if isinstance(k, tuple) else str(k): v for k, v in last.items()
        },
        "tables": {
            name: table.to_dict(orient="split")
            for name, table in output.tables.items()
            if table.size <= 2000
        },
        "out": args.out,
        "warnings": [*data.warnings, *output.warnings],
        "model_warnings": list(output.warnings),
    }
    text = "\n".join(
        [
            f"{args.key} on {fmt.count(data.n_tickers, 'ticker')} ({data.source}), "
            f"{fmt.date_range(doc['first_date'], doc['last_date'])}: "
            f"{fmt.integer(frame.shape[0])} rows x {fmt.integer(frame.shape[1])} columns"
            + (f"; written to {args.out}" if args.out else "")
            + history_note(data, doc["first_date"]),
            *(f"warning: {w}" for w in output.warnings),
        ]
    )
    emit(args, doc, text)
    return 0


def _audit(args: argparse.Namespace, model: Model, data: MarketData, output: ModelOutput) -> None:
    """Append the run to the audit trail, with the size of its primary output."""
    primary = output.primary
    metrics = {
        "n_rows": int(primary.shape[0]),
        "n_columns": int(primary.shape[1]),
        "n_values": int(primary.notna().to_numpy().sum()),
    }
    record_run(args, "model_run", model.get_params(), data, metrics)
