"""Every benchmark of bench/ at two commits, back to back, with the ratio of their times.

Run: ``.venv/bin/python bench/compare.py [--base REV] [--only NAME ...] [--skip NAME ...]``
(needs ../shared/data). The base commit is checked out into a temporary git worktree;
each script then runs at the base and at the working tree, alternately (base first),
with the same interpreter and environment, so machine load hits both alike. Prints
per script the wall time of each side and head / base (below 1: faster now), then
every timing figure the script printed on both sides ("0.123 s", "45 ms"), paired in
order, with their ratios: the figures are what the issue asks for, the wall time
includes imports and data loading.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s)\b")


def _run(folder: Path, script: str, args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(folder / "bench" / script), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=3600,
        env={"PYTHONPATH": str(folder), **_env()},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return wall, f"FAILED ({done.returncode}): {done.stderr[-500:]}"
    return wall, done.stdout


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _figures(text: str) -> list[float]:
    return [float(v) / (1000.0 if unit == "ms" else 1.0) for v, unit in FIGURE.findall(text)]


def main() -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="commit to compare with")
    parser.add_argument("--only", nargs="*", default=None, help="script names to run")
    parser.add_argument("--skip", nargs="*", default=["bench_pages.py", "compare.py"])
    args = parser.parse_args()
    scripts = sorted(p.name for p in (ROOT / "bench").glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s in args.only or s.removesuffix(".py") in args.only]
    scripts = [s for s in scripts if s not in args.skip]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(base), args.base], cwd=ROOT, check=True
        )
        try:
            for script in scripts:
                if not (base / "bench" / script).exists():
                    print(f"{script}: not at {args.base}; skipped")
                    continue
                t_base, out_base = _run(base, script, [])
                t_head, out_head = _run(ROOT, script, [])
                print(
                    f"\n{script}: base {t_base:.1f} s, head {t_head:.1f} s, "
                    f"head/base {t_head / t_base:.2f}"
                )
                for side, out in (("base", out_base), ("head", out_head)):
                    if out.startswith("FAILED"):
                        print(f"  {side}: {out}")
                fb, fh = _figures(out_base), _figures(out_head)
                if len(fb) == len(fh) and fb:
                    pairs = ", ".join(
                        f"{b:.3g}->{h:.3g} ({h / b:.2f})"
                        for b, h in zip(fb, fh, strict=True)
                        if b > 0
                    )
                    print(f"  figures (s, base->head, ratio): {pairs}")
                else:
                    print(
                        f"  figures differ in number ({len(fb)} vs {len(fh)}): compare "
                        "the outputs by hand"
                    )
                    print("  base: " + " | ".join(out_base.strip().splitlines()[-6:]))
                    print("  head: " + " | ".join(out_head.strip().splitlines()[-6:]))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
