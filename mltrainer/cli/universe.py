"""CLI commands of this group (filled in by the issue that owns them)."""


def register(subparsers) -> None:
    return None
