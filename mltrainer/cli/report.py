"""``report stress``: the stress-test report as one self-contained HTML file (+ PDF)."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import pandas as pd

from mltrainer import fmt, validate
from mltrainer.cli.common import (
    Subparsers,
    add_command,
    add_data_args,
    add_file,
    add_group,
    add_number,
    emit,
    live_source,
    load_data,
    load_history,
    parse_tickers,
)
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.var import METHODS
from mltrainer.outputs import is_device
from mltrainer.validate import parse_float, parse_int


def _market_caps(data: MarketData, naming: pd.Series) -> dict:
    from mltrainer.sectors_pit import cap_weighting_inputs

    return cap_weighting_inputs(naming)


def naming_dates(args: argparse.Namespace, data: MarketData) -> pd.Series:
    """The date on which each ticker of ``data`` names its company: its last price date
    in the whole local or bundled file (whatever ``--end``), today for a live source
    (today's symbols). A cap snapshot lists a company under its symbol of its own day."""
    from mltrainer.sectors_pit import last_price_dates

    if live_source(args):
        return pd.Series(pd.Timestamp.today().normalize(), index=data.tickers)
    whole = load_data(argparse.Namespace(**{**vars(args), "start": None, "end": None}))
    return last_price_dates(whole.adj_close).reindex(data.tickers)


def weight_notes(choice: str | None, data: MarketData, naming: pd.Series) -> tuple[str, ...]:
    """What the report must say about weights built by ``--weighting``: market caps
    published after the data's last day are not the caps of its time, and the caps a
    snapshot lists under a later symbol."""
    from mltrainer.sectors_pit import cap_notes

    return cap_notes(data.dates[-1], naming) if choice == "market-cap" else ()


# --weighting choice -> (method of mltrainer.measures.weighting.portfolio_weights, loader of
# its inputs); a sizing model's weights need a model run: the dashboard offers them, the
# CLI does not
WEIGHTING_CHOICES = {
    "equal": ("equal", lambda data, naming: {}),
    "risk-parity": ("risk_parity", lambda data, naming: {"returns": data.returns()}),
    "market-cap": ("market_cap", _market_caps),
}


def register(subparsers: Subparsers) -> None:
    """The ``report`` commands: stress."""
    sub = add_group(subparsers, "report", "reports for stakeholders (HTML, PDF)", "REPORT")
    stress = add_command(
        sub,
        "stress",
        _stress,
        "stress-test report of a weighted portfolio: VaR/ES and their backtest, "
        "drawdowns, historical replays and hypothetical shocks",
    )
    add_data_args(stress)
    weighting = stress.add_mutually_exclusive_group()
    weighting.add_argument(
        "--weights",
        default=None,
        help="comma-separated weights in --tickers order, summing to 1 (default: equal weights)",
    )
    weighting.add_argument(
        "--weighting",
        choices=tuple(WEIGHTING_CHOICES),
        default=None,
        help="build the weights instead: equal, risk-parity (Ledoit-Wolf "
        "covariance of the last 756 days), market-cap (the "
        "constituents-financials snapshot)",
    )
    add_file(stress, "--out", "the HTML file to write", required=True)
    what = "also print a PDF here (needs Chromium; says so if absent)"
    add_file(stress, "--pdf", what, required=False, sink=False)  # Chromium prints to a file
    _add_stress_settings(stress)


# the StressSettings fields that options of the same name (--value: portfolio_value) give
_SETTINGS = (
    "portfolio_value",
    "var_window",
    "crash",
    "vol_multiplier",
    "correlation_push",
    "spread_multiplier",
    "beta_window",
    "market",
)


def _add_stress_settings(stress: argparse.ArgumentParser) -> None:
    """The options of :class:`~mltrainer.reports.stress_report.StressSettings`."""
    add = functools.partial(add_number, stress)
    add(
        "--value",
        parse_float,
        (0.0, 1e15),
        1_000_000.0,
        "portfolio value in currency (default 1,000,000)",
        low_open=True,
        dest="portfolio_value",
    )
    stress.add_argument("--levels", default="0.95,0.99", help="VaR confidence levels")
    stress.add_argument(
        "--methods",
        default=",".join(m for m in METHODS if m != "fhs_garch"),
        help=f"VaR methods, among {', '.join(METHODS)}",
    )
    add("--var-window", parse_int, (50, 100_000), 250, "returns per VaR forecast (default 250)")
    add(
        "--crash",
        parse_float,
        (-1.0, 0.0),
        -0.20,
        "market move of the crash scenario (default -0.20)",
        high_open=True,
    )
    add(
        "--vol-multiplier",
        parse_float,
        (0.0, 100.0),
        3.0,
        "volatility multiplier of the volatility-spike scenario",
        low_open=True,
    )
    add(
        "--correlation-push",
        parse_float,
        (0.0, 1.0),
        0.5,
        "fraction of the way correlations move toward 1 (0-1)",
    )
    add(
        "--spread-multiplier",
        parse_float,
        (0.0, 1000.0),
        5.0,
        "spread widening of the liquidity-crisis scenario",
    )
    add(
        "--beta-window",
        parse_int,
        (60, 100_000),
        252,
        "trailing days for betas, volatilities and correlations",
    )
    stress.add_argument(
        "--market",
        choices=("sp500", "portfolio"),
        default="sp500",
        help="market for betas: the bundled S&P 500 index, or the equal-weight "
        "mean of the portfolio's tickers",
    )


def _floats(text: str, what: str) -> list[float]:
    return validate.parse_floats(text, what)


def parse_weights(tickers: list[str] | None, text: str | None) -> pd.Series | None:
    """``--weights`` as a Series over ``--tickers`` (None: equal weights)."""
    if text is None:
        return None
    if not tickers:
        raise DataError("--weights needs --tickers (the weights are given in that order)")
    return pd.Series(validate.parse_weights(text, tickers, "--weights"), dtype="float64")


def built_weights(choice: str, data: MarketData, naming: pd.Series) -> pd.Series:
    """``--weighting``: the weights of every ticker of ``data`` by
    :func:`~mltrainer.measures.weighting.portfolio_weights` (``naming``: see
    :func:`naming_dates`)."""
    from mltrainer.measures.weighting import portfolio_weights

    method, inputs = WEIGHTING_CHOICES[choice]
    return portfolio_weights(method, data.tickers, **inputs(data, naming))


def check_outputs(out: str, pdf: str | None) -> None:
    """Refuse, before any work, an output whose name says another format: an HTML page
    written to ``report.pdf`` or ``data.csv`` would mislabel it and overwrite that file
    (and so the PDF can never be printed over the page it prints from). A character
    device (``--out /dev/null``) has no format to mislabel."""
    for flag, path, suffixes in (("--out", out, (".html", ".htm")), ("--pdf", pdf, (".pdf",))):
        if path is not None and Path(path).suffix.lower() not in suffixes and not is_device(path):
            raise ParameterError(
                f"{flag} must name a {' or '.join(suffixes)} file (got {Path(path).name!r})"
            )


def _stress(args) -> int:
    from mltrainer.reports.stress_html import write_stress_report
    from mltrainer.reports.stress_report import StressSettings, build_stress_report

    t0 = time.perf_counter()
    check_outputs(args.out, args.pdf)
    weights = parse_weights(parse_tickers(args.tickers), args.weights)
    # a method or level given twice is one (as a ticker or a grid value): each was a
    # second, identical row of every VaR and backtest table
    methods = tuple(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
    settings = StressSettings(
        **{name: getattr(args, name) for name in _SETTINGS},
        levels=tuple(dict.fromkeys(_floats(args.levels, "--levels"))),
        methods=methods,
        chart_method=methods[0] if methods else "historical",
    )
    settings.check()  # before the data is loaded: a typo fails fast
    # all history up to --end: the VaR forecasts learn from it and every crisis it covers
    # is replayed; --start only sets the range the report shows and scores
    data = load_history(args, settings.var_window + max(settings.beta_window, 63))
    notes = ()
    if args.weighting is not None:
        naming = naming_dates(args, data) if args.weighting == "market-cap" else None
        weights = built_weights(args.weighting, data, naming)
        notes = weight_notes(args.weighting, data, naming)
    report = build_stress_report(data, weights, settings, start=args.start, notes=notes)
    files = write_stress_report(report, args.out, args.pdf)
    doc = {**files, **report.summary(), "seconds": round(time.perf_counter() - t0, 3)}
    table = report.scenario_table()
    lines = [
        f"stress report written to {files['html']} ({fmt.number(files['html_bytes'] / 1e6, 1)} MB)",
        f"data: {report.meta['source']}, range "
        f"{fmt.date_range(report.meta['first_date'], report.meta['last_date'])} (history "
        f"from {fmt.date(report.meta['history_start'])}), "
        f"{fmt.integer(report.meta['n_positions'])} positions",
        *(f"  {t}" for t in report.summary()["executive_summary"]["sentences"]),
    ]
    if args.pdf is not None:
        lines.append(files["pdf_message"])
    lines += [
        f"  {row.scenario:<32} {fmt.percent(row.portfolio_return, 2, sign=True):>9} "
        f"{fmt.money(row.pnl):>16}"
        for row in table.itertuples()
    ]
    lines += [f"skipped {k}: {v}" for k, v in report.skipped.items()]
    lines += [f"note: {w}" for w in report.warnings[:5]]
    if len(report.warnings) > 5:
        lines.append(f"note: {len(report.warnings) - 5} more in the report")
    lines.append(f"done in {fmt.number(doc['seconds'], 1)} s")
    emit(args, doc, "\n".join(lines))
    # the HTML page is written either way; a PDF that was asked for and not written fails
    # the command, so that a script does not go on to send a file that is not there, and
    # says why on stderr (the exit status 1 came with nothing there to read)
    if args.pdf is not None and not files.get("pdf_ok"):
        print(f"error: {files['pdf_message']}", file=sys.stderr)
        return 1
    return 0
