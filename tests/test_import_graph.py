"""No import cycle between the subpackages of ``mltrainer/`` (nor between the modules of
``mltrainer/reports/``).

The graph is read from the source with :mod:`ast`, so an import hidden inside a function
(or under ``TYPE_CHECKING``) counts as much as one at the top of a module: a lazy import
only postpones a cycle, it does not remove it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mltrainer"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every mltrainer module ``name`` imports (anywhere in its body)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import mod`` imports the module pkg.mod when there is one
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # ``import a.b.c`` of an attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    """``mltrainer.models.risk`` -> ``mltrainer.models``; top-level modules stand alone."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _witnesses(component: list[str], unit=_unit) -> list[str]:
    """The module-level imports that make up a cycle between units, for the message."""
    members = set(component)
    return sorted(
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if unit(a) in members and unit(b) in members and unit(a) != unit(b)
    )


def test_the_graph_sees_the_package():
    assert "mltrainer.models.base" in MODULES and "mltrainer.cli" in MODULES
    # both a module-level and a function-level import are edges
    assert "mltrainer.models.base" in GRAPH["mltrainer.models.risk"]
    assert "mltrainer.reports.stress_report" in GRAPH["mltrainer.cli.report"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_cycle_between_subpackages():
    units: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        units.setdefault(_unit(module), set()).update(
            _unit(t) for t in targets if _unit(t) != _unit(module)
        )
    cycles = _cycles(units)
    if cycles:
        pytest.fail(
            "import cycles between subpackages:\n"
            + "\n".join(f"{' <-> '.join(c)} via {'; '.join(_witnesses(c))}" for c in cycles)
        )


def test_no_cycle_inside_reports():
    reports = {
        m: {t for t in GRAPH[m] if t.startswith("mltrainer.reports.")}
        for m in GRAPH
        if m.startswith("mltrainer.reports.")
    }
    cycles = _cycles(reports)
    if cycles:
        pytest.fail(
            "import cycles inside mltrainer.reports:\n"
            + "\n".join(
                f"{' <-> '.join(c)} via {'; '.join(_witnesses(c, unit=lambda m: m))}"
                for c in cycles
            )
        )


def test_the_stress_report_loads_no_model_fitting_library():
    """The report's "regime now" needs the volatility regime (quantiles) only: k-means,
    mixtures and Markov switching are imported when such a model runs, not with the
    report (they cost ~0.2 s of every `report stress` command)."""
    code = (
        "import sys, mltrainer.reports.stress_report, mltrainer.cli; "
        "print(sorted(m for m in ('sklearn.cluster', 'sklearn.mixture', 'statsmodels') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
