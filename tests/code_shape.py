"""Static checks of the package's shape (issue 12), usable as a script on some files.

``python -m tests.code_shape [paths...]`` prints what breaks the limits in those files
(all of ``mltrainer/`` by default): files over 600 lines, functions over 80 lines,
public functions and classes without a docstring, public functions without type hints
on every parameter and the return. ``tests/test_code_shape.py`` runs the same checks
over the whole package.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mltrainer"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def package_files(paths: list[str] | None = None) -> list[Path]:
    """The package's Python files (or the given ones / those below the given folders)."""
    if not paths:
        return sorted(PACKAGE.rglob("*.py"))
    out: list[Path] = []
    for p in map(Path, paths):
        p = p if p.is_absolute() else ROOT / p
        out.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return out


def long_files(files: list[Path]) -> list[str]:
    """Files longer than the limit."""
    out = []
    for f in files:
        n = len(f.read_text().splitlines())
        if n > MAX_FILE_LINES:
            out.append(f"{f.relative_to(ROOT)}: {n} lines (limit {MAX_FILE_LINES})")
    return out


def long_functions(files: list[Path]) -> list[str]:
    """Functions and methods longer than the limit (decorators and docstring included)."""
    out = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    return out


def _module_name(f: Path) -> str:
    parts = f.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _hint_gaps(fn) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    gaps = [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls")
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.annotation is p.empty
    ]
    if sig.return_annotation is sig.empty:
        gaps.append("return")
    return gaps


def undocumented(files: list[Path]) -> list[str]:
    """Public functions, classes and methods of the modules lacking a docstring or hints.

    A method that overrides a documented one inherits its docstring (``inspect.getdoc``);
    its own signature must still carry type hints.
    """
    out = []
    for f in files:
        if f.name == "__main__.py":  # importing it runs the CLI
            continue
        name = _module_name(f)
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj):
                out.extend(_check(f"{name}.{attr}", obj, obj))
            elif inspect.isclass(obj):
                if not (obj.__doc__ or "").strip():
                    out.append(f"{name}.{attr}: class without a docstring")
                for meth, member in vars(obj).items():
                    if meth.startswith("_"):
                        continue
                    if isinstance(member, staticmethod | classmethod):
                        member = member.__func__
                    if isinstance(member, property):
                        if not inspect.getdoc(member):
                            out.append(f"{name}.{attr}.{meth}: property without a docstring")
                        continue
                    if inspect.isfunction(member):
                        out.extend(_check(f"{name}.{attr}.{meth}", member, getattr(obj, meth)))
    return out


def _check(label: str, fn, bound) -> list[str]:
    out = []
    if not inspect.getdoc(bound):
        out.append(f"{label}: no docstring")
    gaps = _hint_gaps(fn)
    if gaps:
        out.append(f"{label}: no type hint for {', '.join(gaps)}")
    return out


def main(argv: list[str]) -> int:
    """Print every finding for the given paths; exit status 1 if there is any."""
    sys.path.insert(0, str(ROOT))
    files = package_files(argv)
    findings = long_files(files) + long_functions(files) + undocumented(files)
    print("\n".join(findings) or "no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
