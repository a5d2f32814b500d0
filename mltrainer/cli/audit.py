"""``audit list`` and ``audit show ID``: the trail of past runs."""

from __future__ import annotations

from mltrainer.cli.common import Subparsers, add_command, add_group, add_json, add_number, emit
from mltrainer.validate import parse_int


def register(subparsers: Subparsers) -> None:
    """The ``audit`` commands: list, show."""
    sub = add_group(subparsers, "audit", "the audit trail of past runs")
    lst = add_command(sub, "list", _list, "the most recent records, newest last")
    add_number(lst, "--limit", parse_int, (1, 10_000), 20, "how many (default 20)")
    add_json(lst)

    show = add_command(sub, "show", _show, "one record in full")
    show.add_argument("id", help="record id (or a unique prefix), see `audit list`")
    add_json(show)


def _list(args) -> int:
    from mltrainer import audit

    records, skipped = audit.scan(args.limit)
    lines = [
        f"{r['id']:<12}  {r['time']:<25}  {r['kind']:<11}  "
        f"{r.get('model') or '-':<45}  {r.get('start')} {r.get('end')}"
        for r in records
    ]
    if not lines:
        empty = "no record can be listed" if skipped else "no records yet"
        lines = [f"{empty} ({audit.audit_file()})"]
    if skipped:
        more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        lines.append(
            f"skipped {len(skipped)} damaged line(s) of {audit.audit_file()}: "
            + "; ".join(skipped[:5])
            + more
        )
    emit(
        args,
        {
            "file": str(audit.audit_file()),
            "n_records": len(records),
            "records": records,
            "skipped": skipped,
        },
        "\n".join(lines),
    )
    return 0


def _show(args) -> int:
    import json

    from mltrainer import audit

    rec = audit.show(args.id)
    emit(args, rec, json.dumps(rec, indent=2))
    return 0
