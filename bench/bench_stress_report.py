"""Benchmark: the full stress report of a 50-stock portfolio on the real S&P 500 data.

Target: at most 10 s for data load + every computation + the HTML file. Prints each
stage, then the same report through the CLI as a user runs it (a fresh Python process,
imports included), then the PDF print (Chromium, not part of the target).

    .venv/bin/python bench/bench_stress_report.py [--pdf]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 10.0


def main() -> int:
    from mltrainer import config
    from mltrainer.data.sources import load_market_data

    if config.sp500_daily_dir() is None:
        print("the real data folder is absent (set MLTRAINER_DATA_DIR); nothing to measure")
        return 1
    out_dir = Path(tempfile.mkdtemp(prefix="bench-stress-"))
    panel = load_market_data("local")  # warms the panel cache, as a second CLI run would
    # 50 real names spread over the alphabet: mixed sectors, some listing mid-sample
    tickers = panel.tickers[::10][:50]
    weights = [round(1 / 50, 6)] * 50

    t0 = time.perf_counter()
    from mltrainer.reports.stress_html import write_stress_report
    from mltrainer.reports.stress_report import build_stress_report

    data = load_market_data("local", tickers=tickers)
    t1 = time.perf_counter()
    report = build_stress_report(data)
    t2 = time.perf_counter()
    files = write_stress_report(report, out_dir / "stress.html")
    t3 = time.perf_counter()
    total = t3 - t0
    print(
        f"stress report, {len(tickers)} stocks, {len(data.dates)} days "
        f"({data.dates[0].date()}..{data.dates[-1].date()})"
    )
    print(f"  load       {t1 - t0:6.2f} s")
    print(
        f"  compute    {t2 - t1:6.2f} s  ({len(report.scenarios)} scenarios, "
        f"{len(report.var_table)} VaR figures, {len(report.backtest)} backtests)"
    )
    print(f"  HTML       {t3 - t2:6.2f} s  ({files['html_bytes'] / 1e6:.1f} MB)")
    print(
        f"  total      {total:6.2f} s  (target <= {TARGET_S:.0f} s: "
        f"{'OK' if total <= TARGET_S else 'MISSED'})"
    )

    cmd = [
        sys.executable,
        "-m",
        "mltrainer",
        "report",
        "stress",
        "--source",
        "local",
        "--tickers",
        ",".join(tickers),
        "--weights",
        ",".join(map(str, weights)),
        "--out",
        str(out_dir / "cli.html"),
    ]
    t4 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    t5 = time.perf_counter()
    status = "OK" if proc.returncode == 0 and t5 - t4 <= TARGET_S else "MISSED"
    print(
        f"  CLI        {t5 - t4:6.2f} s  (fresh process incl. imports; {status})"
        + ("" if proc.returncode == 0 else f" exit {proc.returncode}: {proc.stderr.strip()}")
    )

    if "--pdf" in sys.argv:
        from mltrainer.reports.html import print_pdf

        t6 = time.perf_counter()
        result = print_pdf(out_dir / "stress.html", out_dir / "stress.pdf")
        print(f"  PDF        {time.perf_counter() - t6:6.2f} s  ({result.message})")
    print(f"files in {out_dir}")
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
