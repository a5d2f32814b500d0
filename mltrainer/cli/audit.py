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

    records = audit.read(args.limit)
    lines = [
        f"{r.get('id', '?'):<12}  {r.get('time', '?'):<25}  {r.get('kind', '?'):<11}  "
        f"{r.get('model') or '-':<45}  {r.get('start')} {r.get('end')}"
        for r in records
    ]
    emit(
        args,
        {"file": str(audit.audit_file()), "n_records": len(records), "records": records},
        "\n".join(lines) if lines else f"no records yet ({audit.audit_file()})",
    )
    return 0


def _show(args) -> int:
    import json

    from mltrainer import audit

    rec = audit.show(args.id)
    emit(args, rec, json.dumps(rec, indent=2))
    return 0
