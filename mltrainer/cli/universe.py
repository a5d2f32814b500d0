"""``universe show|update|export|parse|members``: the S&P 500 constituents from the CLI."""

from __future__ import annotations

import sys

import pandas as pd

from mltrainer import fmt
from mltrainer.cli.common import (
    Subparsers,
    add_command,
    add_file,
    add_group,
    add_json,
    emit,
    folder_name,
)
from mltrainer.data.universe import SP500Universe, SP500UniverseManager
from mltrainer.errors import DataError


def register(subparsers: Subparsers) -> None:
    """The ``universe`` commands: show, update, export, parse, members."""
    sub = add_group(
        subparsers, "universe", "S&P 500 constituents, sectors, updates, point-in-time membership"
    )
    _add_source(add_command(sub, "show", _show, "members, sector counts and update schedule"))
    add_json(
        add_command(
            sub,
            "update",
            _update,
            "refresh from Wikipedia (through the cache; falls back with a warning)",
        )
    )
    export = add_command(
        sub, "export", _export, "write the constituents to .csv, .parquet or .json"
    )
    add_file(export, "--out", "output file (.csv, .parquet or .json)", required=True)
    _add_source(export)

    parse = add_command(
        sub, "parse", _parse, "parse a saved Wikipedia page: constituents and changes"
    )
    parse.add_argument("--html", required=True, help="saved 'List of S&P 500 companies' page")
    add_json(parse)

    members = add_command(
        sub, "members", _members, "members on a past date, under the symbols of that day"
    )
    members.add_argument("--date", required=True, help="YYYY-MM-DD")
    members.add_argument(
        "--html",
        default=None,
        help="a saved Wikipedia page, used alone (default: every membership "
        "source in the data folder and the cached Wikipedia copy)",
    )
    members.add_argument(
        "--data-dir",
        default=None,
        type=folder_name("--data-dir"),
        help="data folder (default: MLTRAINER_DATA_DIR or ../shared/data)",
    )
    members.add_argument(
        "--polygon",
        action="store_true",
        help="also ask Polygon's ticker events for past symbols of today's "
        "members (needs POLYGON_API_KEY; one request per ticker, cached)",
    )
    add_json(members)


def _add_source(parser) -> None:
    parser.add_argument(
        "--source",
        choices=SP500UniverseManager.SOURCES,
        default="auto",
        help="auto: the cached Wikipedia copy, else the newer of the data folder's newest "
        "saved page and newest constituents list, else pytickersymbols",
    )
    parser.add_argument("--html", default=None, help="a saved Wikipedia page (implies html)")
    parser.add_argument("--csv", default=None, help="a constituents CSV (implies csv)")
    add_json(parser)


def _load(args) -> SP500Universe:
    manager = SP500UniverseManager()
    if args.html:
        return manager.load("html", args.html)
    if args.csv:
        return manager.load("csv", args.csv)
    return manager.load(args.source)


def _describe(universe: SP500Universe) -> tuple[dict, str]:
    doc = universe.summary()
    lines = [
        f"S&P 500 universe: {fmt.integer(doc['n_constituents'])} members from {doc['source']}"
        + (f" (as of {doc['as_of']})" if doc["as_of"] else ""),
        f"changes table: {fmt.integer(doc['n_changes'])} rows"
        + (f" since {doc['changes_from']}" if doc["changes_from"] else ""),
        f"next update due: {doc['next_update'] or 'unknown (the list has no date)'}"
        + ("" if doc["stale"] is None else (" (stale now)" if doc["stale"] else "")),
        "sectors:",
    ]
    lines += [f"  {name:<24} {fmt.integer(count):>5}" for name, count in doc["sectors"].items()]
    lines += [f"warning: {w}" for w in doc["warnings"]]
    return doc, "\n".join(lines)


def _show(args) -> int:
    doc, text = _describe(_load(args))
    emit(args, doc, text)
    return 0


def _update(args) -> int:
    """Exit status 1 when Wikipedia gave no fresh list: what is printed is a fallback
    (the warning says which), and a scheduled update must not pass for done."""
    universe = SP500UniverseManager().update()
    doc, text = _describe(universe)
    doc["updated"] = not universe.update_failed
    emit(args, doc, text)
    if universe.update_failed:  # said on stderr too: exit 1 came with nothing there
        why = universe.warnings[-1] if universe.warnings else "Wikipedia gave no fresh list"
        print(f"error: {why}", file=sys.stderr)
        return 1
    return 0


def _export(args) -> int:
    import os

    for flag, given in (("--csv", args.csv), ("--html", args.html)):
        # `--csv list.csv --out list.csv` rewrote the list it read, in another layout
        if given and os.path.exists(given) and os.path.exists(args.out):
            if os.path.samefile(given, args.out):
                raise DataError(
                    f"--out {args.out} is the file {flag} reads: the export would replace "
                    "its own source; give another file"
                )
    universe = _load(args)
    path = universe.export(args.out)
    doc = {
        "path": str(path),
        "n_constituents": len(universe),
        "source": universe.source,
        "warnings": list(universe.warnings),
    }
    emit(args, doc, f"wrote {fmt.integer(len(universe))} members from {universe.source} to {path}")
    return 0


def _parse(args) -> int:
    universe = SP500UniverseManager().from_html(args.html)
    doc = universe.to_json()
    span = (
        f" ({doc['changes'][-1]['date']} to {doc['changes'][0]['date']})" if doc["changes"] else ""
    )
    doc["warnings"] = list(universe.warnings)
    emit(
        args,
        doc,
        "\n".join(
            [
                f"{args.html}: {fmt.integer(len(doc['constituents']))} constituents, "
                f"{fmt.integer(len(doc['changes']))} changes{span}",
                *(f"warning: {w}" for w in universe.warnings),
            ]
        ),
    )
    return 0


def _members(args) -> int:
    from mltrainer.data.membership import load_membership, membership_from_page
    from mltrainer.validate import parse_date

    when = pd.Timestamp(parse_date(args.date, "--date"))
    if args.html:
        membership = membership_from_page(args.html)
    else:
        membership = load_membership(args.data_dir, polygon=args.polygon or None)
    doc = membership.lookup(when)
    # a date outside every source gets the members of the nearest covered date: the
    # headline said "487 members on 1990-01-01" for the members of 1996-01-02
    used = min(max(when, membership.start), membership.end)
    doc["members_date"] = used.date().isoformat()
    shown = doc["members_date"] + (
        f" (the nearest date membership is known; {doc['date']} was asked for)"
        if used != when
        else ""
    )
    sources = "; ".join(f"{c['source']} {c['start']} to {c['end']}" for c in doc["coverage"])
    text = "\n".join(
        [
            f"{fmt.integer(doc['count'])} members on {shown} under the symbols of that day "
            f"(from {doc['source'] or 'the nearest covered date'})",
            " ".join(doc["members"]),
            f"sources: {sources}",
            *(
                [f"symbol changes also from: {'; '.join(doc['symbol_sources'])}"]
                if doc["symbol_sources"]
                else []
            ),
            *(f"warning: {w}" for w in doc["warnings"]),
        ]
    )
    emit(args, doc, text)
    return 0
