"""``report stress``: the stress-test report as one self-contained HTML file (+ PDF)."""

from __future__ import annotations

import time

import pandas as pd

from mltrainer.cli.common import add_data_args, emit, load_data, parse_tickers
from mltrainer.errors import DataError, ParameterError
from mltrainer.measures.var import METHODS


def register(subparsers) -> None:
    group = subparsers.add_parser("report", help="reports for stakeholders (HTML, PDF)")
    sub = group.add_subparsers(dest="action", required=True, metavar="REPORT")

    stress = sub.add_parser(
        "stress", help="stress-test report of a weighted portfolio: VaR/ES and their backtest, "
        "drawdowns, historical replays and hypothetical shocks")
    add_data_args(stress)
    stress.add_argument("--weights", default=None,
                        help="comma-separated weights in --tickers order, summing to 1 "
                             "(default: equal weights)")
    stress.add_argument("--out", required=True, help="the HTML file to write")
    stress.add_argument("--pdf", default=None,
                        help="also print a PDF here (needs Chromium; says so if absent)")
    stress.add_argument("--value", type=float, default=1_000_000.0,
                        help="portfolio value in currency (default 1,000,000)")
    stress.add_argument("--levels", default="0.95,0.99", help="VaR confidence levels")
    stress.add_argument("--methods", default=",".join(m for m in METHODS if m != "fhs_garch"),
                        help=f"VaR methods, among {', '.join(METHODS)}")
    stress.add_argument("--var-window", type=int, default=250,
                        help="returns per VaR forecast (default 250)")
    stress.add_argument("--crash", type=float, default=-0.20,
                        help="market move of the crash scenario (default -0.20)")
    stress.add_argument("--vol-multiplier", type=float, default=3.0,
                        help="volatility multiplier of the volatility-spike scenario")
    stress.add_argument("--correlation-push", type=float, default=0.5,
                        help="fraction of the way correlations move toward 1 (0-1)")
    stress.add_argument("--spread-multiplier", type=float, default=5.0,
                        help="spread widening of the liquidity-crisis scenario")
    stress.add_argument("--beta-window", type=int, default=252,
                        help="trailing days for betas, volatilities and correlations")
    stress.add_argument("--market", choices=("sp500", "portfolio"), default="sp500",
                        help="market for betas: the bundled S&P 500 index, or the equal-weight "
                             "mean of the portfolio's tickers")
    stress.set_defaults(func=_stress)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ParameterError(f"{what} must be comma-separated numbers (got {text!r})") from None


def parse_weights(tickers: list[str] | None, text: str | None) -> pd.Series | None:
    """``--weights`` as a Series over ``--tickers`` (None: equal weights)."""
    if text is None:
        return None
    if not tickers:
        raise DataError("--weights needs --tickers (the weights are given in that order)")
    values = _floats(text, "--weights")
    if len(values) != len(tickers):
        raise DataError(f"--weights has {len(values)} number(s) for {len(tickers)} ticker(s) "
                        f"({', '.join(tickers)}); give one weight per ticker")
    return pd.Series(values, index=tickers, dtype="float64")


def _stress(args) -> int:
    from mltrainer.reports.stress_report import (
        StressSettings,
        build_stress_report,
        write_stress_report,
    )

    t0 = time.perf_counter()
    weights = parse_weights(parse_tickers(args.tickers), args.weights)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    settings = StressSettings(
        portfolio_value=args.value, levels=tuple(_floats(args.levels, "--levels")),
        methods=methods, var_window=args.var_window, crash=args.crash,
        vol_multiplier=args.vol_multiplier, correlation_push=args.correlation_push,
        spread_multiplier=args.spread_multiplier, beta_window=args.beta_window,
        market=args.market, chart_method=methods[0] if methods else "historical")
    settings.check()  # before the data is loaded: a typo fails fast
    data = load_data(args)
    report = build_stress_report(data, weights, settings)
    files = write_stress_report(report, args.out, args.pdf)
    doc = {**files, **report.summary(), "seconds": round(time.perf_counter() - t0, 3)}
    table = report.scenario_table()
    lines = [
        f"stress report written to {files['html']} ({files['html_bytes'] / 1e6:.1f} MB)",
        f"data: {report.meta['source']}, prices up to {report.meta['last_date']}, "
        f"{report.meta['n_positions']} positions",
    ]
    if args.pdf is not None:
        lines.append(files["pdf_message"])
    lines += [f"  {row.scenario:<32} {row.portfolio_return:+8.2%} {row.pnl:>16,.0f}"
              for row in table.itertuples()]
    lines += [f"skipped {k}: {v}" for k, v in report.skipped.items()]
    lines.append(f"done in {doc['seconds']} s")
    emit(args, doc, "\n".join(lines))
    return 0
