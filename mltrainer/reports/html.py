"""Building blocks of a self-contained HTML report, and printing it to PDF with Chromium.

A report is one ``.html`` file that opens offline: the Plotly bundle is inlined once in
the page head and every figure is a ``<div>`` drawn from inline JSON, with no
``<script src=...>`` and no web font. :func:`print_pdf` runs headless Chromium on the
file; when no Chromium is installed it says so instead of failing.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from mltrainer import fmt
from mltrainer.outputs import temporary_beside

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: #1c2833; margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d5d8dc; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-top: 1.5em; }
.meta { color: #566573; font-size: 0.92em; }
.note { color: #566573; font-size: 0.9em; }
.warn { background: #fef5e7; border-left: 4px solid #d68910; padding: 6px 10px; margin: 6px 0; }
table.data { border-collapse: collapse; font-size: 0.86em; margin: 8px 0 16px; }
table.data th, table.data td { border: 1px solid #d5d8dc; padding: 3px 8px; }
table.data th { background: #f4f6f7; text-align: left; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.neg { color: #c0392b; } td.pos { color: #1e8449; }
.zone-green { background: #d5f5e3; } .zone-yellow { background: #fcf3cf; }
.zone-red { background: #fadbd8; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.kpi { border: 1px solid #d5d8dc; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.kpi .v { font-size: 1.35em; font-weight: 600; } .kpi .l { color: #566573; font-size: 0.85em; }
.figure { page-break-inside: avoid; break-inside: avoid; }
.summary { border: 2px solid #1c2833; border-radius: 8px; padding: 4px 18px 12px; }
.summary p.lead { font-size: 1.05em; }
.modebar, .modebar-container { display: none !important; }
@page { margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { page-break-before: auto; break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  .summary { break-after: page; page-break-after: always; break-inside: avoid; }
  .kpis, .figure, .kpi { break-inside: avoid; page-break-inside: avoid; }
  table.data { width: 100%; font-size: 8.5pt; }
  table.data thead { display: table-header-group; }
  table.data tr { break-inside: avoid; page-break-inside: avoid; }
  .figure .js-plotly-plot, .figure .plot-container { max-width: 100% !important; }
  .scenario { page-break-inside: auto; }
}
"""

Formatter = Callable[[object], str]


def esc(text: object) -> str:
    """``str(text)`` escaped for HTML (quotes included)."""
    return html.escape(str(text), quote=True)


def pct(x: float | None, digits: int = 2) -> str:
    """A fraction as a percentage (``0.1234`` -> ``12.34%``, never ``-0.00%``); empty
    for None or NaN (:func:`mltrainer.fmt.percent`)."""
    return "" if x is None or not np.isfinite(x) else fmt.percent(x, digits)


def money(x: float | None, digits: int = 0) -> str:
    """An amount in dollars with thousands separators, the sign first (``-$27,416``);
    empty for None or NaN (:func:`mltrainer.fmt.money`)."""
    return "" if x is None or not np.isfinite(x) else fmt.money(x, digits)


def number(x: float | None, digits: int = 3) -> str:
    """An integer as is, a float with ``digits`` decimals (separated thousands); empty
    for None or a non-finite float."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    if isinstance(x, (int, np.integer)):
        return f"{x:,d}"
    return f"{x:,.{digits}f}"


def table(
    frame: pd.DataFrame,
    formats: dict[str, Formatter] | None = None,
    *,
    index: bool = True,
    signed: tuple[str, ...] = (),
    css: dict | None = None,
    missing: str = "missing",
) -> str:
    """An HTML table with per-column formatters; NaN is shown as ``missing``.

    ``signed`` columns are coloured red below zero and green above; ``css`` maps a
    column to a function of the raw value giving an extra cell class.
    """
    formats = formats or {}
    css = css or {}
    head = "".join(
        f"<th>{esc(c)}</th>"
        for c in ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    )
    columns = {col: frame[col].tolist() for col in frame.columns}  # keeps ints as ints
    rows = []
    for i, label in enumerate(frame.index):
        cells = [f"<th>{esc(label)}</th>"] if index else []
        for col in frame.columns:
            value = columns[col][i]
            is_num = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, bool
            )
            classes = ["num"] if is_num else []
            if is_num and not np.isfinite(value):
                text = missing
            elif value is None:
                text = ""
            else:
                fmt = formats.get(col)
                text = fmt(value) if fmt else (number(value) if is_num else str(value))
                if col in signed and is_num:
                    classes.append("neg" if value < 0 else "pos" if value > 0 else "")
            if col in css:
                classes.append(css[col](value))
            cls = f' class="{" ".join(c for c in classes if c)}"' if any(classes) else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="data"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def figure(fig: go.Figure) -> str:
    """A figure as a ``<div>`` (the Plotly bundle itself is in the page head)."""
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        # a report is read and printed, not edited: no toolbar (hover still works)
        config={"displaylogo": False, "responsive": True, "displayModeBar": False},
    )
    return f'<div class="figure">{body}</div>'


def page(title: str, body: str) -> str:
    """A complete HTML document with the CSS and the Plotly bundle inlined once."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body>{body}</body></html>\n"
    )


# ----------------------------------------------------------------------------- PDF
@dataclass(frozen=True)
class PdfResult:
    """Whether a PDF was written, where, and a sentence for the user."""

    ok: bool
    path: Path | None
    message: str


def find_chromium() -> str | None:
    """The Chromium executable on PATH (``chromium`` or ``chromium-browser``), if any."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(
    html_path: str | Path, pdf_path: str | Path, timeout: float = 120.0, chromium: str | None = None
) -> PdfResult:
    """Print an HTML file to PDF with headless Chromium (no header/footer, no network).

    Returns a :class:`PdfResult` saying why when Chromium is absent or fails; never
    raises for those.
    """
    exe = chromium or find_chromium()
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    if exe is None:
        return PdfResult(
            False,
            None,
            "PDF not written: Chromium is not installed (looked for "
            "'chromium' and 'chromium-browser' on PATH); install it, e.g. "
            "`apt-get install chromium`, or print the HTML report from a browser",
        )
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    # printed beside it and renamed into place: a failed print leaves an earlier PDF whole
    tmp = temporary_beside(pdf_path)
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="mltrainer-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # let the inline scripts draw every chart before the page is printed
            "--virtual-time-budget=15000",
            "--run-all-compositor-stages-before-draw",
            f"--print-to-pdf={tmp}",
            "--no-pdf-header-footer",
            html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            return PdfResult(
                False, None, f"PDF not written: Chromium did not finish within {timeout:.0f} s"
            )
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            return PdfResult(False, None, f"PDF not written: cannot run {exe} ({exc})")
    if not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        # Chromium's stderr is mostly noise about D-Bus and GPU; its own ERROR lines about
        # the file say why (``Failed to write file ...: No such file or directory``)
        said = [ln for ln in (proc.stderr or "").strip().splitlines() if "dbus" not in ln]
        tail = [ln.rsplit("] ", 1)[-1] for ln in said[-3:]]
        return PdfResult(
            False,
            None,
            f"PDF not written: Chromium exited with {proc.returncode}"
            + (f" ({' / '.join(tail)})" if tail else ""),
        )
    try:
        os.replace(tmp, pdf_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return PdfResult(False, None, f"PDF not written: {pdf_path}: {exc.strerror or exc}")
    return PdfResult(True, pdf_path, f"PDF written to {pdf_path}")
