"""The stress-test report: its numbers, the self-contained HTML, the PDF and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from mltrainer import config
from mltrainer.cli import main
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.reports import html as report_html
from mltrainer.reports.stress_html import render_html, write_stress_report
from mltrainer.reports.stress_report import StressSettings, build_stress_report, executive_summary
from mltrainer.risk_stress.scenarios import HISTORICAL_SCENARIOS

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA"]
WEIGHTS = pd.Series([0.3, 0.25, 0.2, 0.15, 0.1], index=TICKERS)
SECTORS = {
    "AAPL": "Information Technology",
    "MSFT": "Information Technology",
    "JPM": "Financials",
    "XOM": "Energy",
    "TSLA": "Consumer Discretionary",
}
HYPOTHETICAL = (
    "Market crash -20%",
    "Volatility x3",
    "Correlations +50% toward 1",
    "Liquidity crisis (spreads x5)",
)


@pytest.fixture(scope="module")
def data(basket):
    from dataclasses import replace

    return replace(basket.select(tickers=TICKERS), sectors=SECTORS)


@pytest.fixture(scope="module")
def report(data):
    return build_stress_report(data, WEIGHTS, generated=pd.Timestamp("2021-04-22 08:00Z"))


@pytest.fixture(scope="module")
def page(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "stress.html"
    files = write_stress_report(report, path)
    assert files["pdf"] is None and Path(files["html"]) == path.resolve()
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- numbers
def test_var_figures_match_a_hand_quantile(data, report):
    r = data.returns()[TICKERS]
    # daily rebalanced book; before TSLA listed the other weights are rescaled to one
    have = r.notna().astype(float)
    port = (r.fillna(0.0) @ WEIGHTS).iloc[1:] / (have @ WEIGHTS).iloc[1:]
    pd.testing.assert_series_equal(report.returns.iloc[1:], port, check_names=False, rtol=1e-12)
    tail = port.iloc[-250:].to_numpy()
    row = report.var_table.query("method == 'historical' and level == 0.99").iloc[0]
    assert row["var"] == pytest.approx(-np.quantile(tail, 0.01), rel=1e-12)
    q = np.quantile(tail, 0.01)
    assert row["es"] == pytest.approx(-tail[tail <= q].mean(), rel=1e-12)
    assert row["var_value"] == pytest.approx(1e6 * row["var"], rel=1e-12)


def test_backtest_counts_the_exceptions(report):
    bt = report.backtest.query("method == 'historical' and level == 0.99").iloc[0]
    assert bt["exceptions"] == int(report.exceptions.sum())
    # recount: a loss beyond the previous day's 99% forecast (the chart shows it shifted)
    forecast = report.var_forecasts["99% historical"]
    hits = (-report.returns > forecast) & forecast.notna()
    assert int(hits.sum()) == bt["exceptions"]
    assert bt["days"] == int((forecast.notna() & report.returns.notna()).sum())
    assert bt["zone (250 d)"] in ("green", "yellow", "red")
    assert 0 <= bt["kupiec_p"] <= 1 and 0 <= bt["christoffersen_p_ind"] <= 1


def test_drawdown_and_scenarios(report):
    equity = (1 + report.returns.fillna(0)).cumprod()
    assert report.drawdown_stats["max_drawdown"] == pytest.approx(
        float((1 - equity / equity.cummax()).max()), rel=1e-12
    )
    names = [r.name for r in report.scenarios]
    assert names == [s.name for s in HISTORICAL_SCENARIOS] + list(HYPOTHETICAL)
    assert report.skipped == {}
    assert report.meta["market"].startswith("S&P 500 index")
    covid = next(r for r in report.scenarios if r.key == "covid_2020")
    assert covid.by_sector.loc["Information Technology", "pnl"] == pytest.approx(
        covid.positions.loc[["AAPL", "MSFT"], "pnl"].sum(), rel=1e-12
    )


# ------------------------------------------------------------------------------- HTML
def test_html_is_self_contained(page):
    assert not re.search(r"<script[^>]+src\s*=", page, flags=re.I)
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']https?:", page, flags=re.I)
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1, "the plotly bundle must be inlined exactly once"
    # the bundle itself names its CDN (for map data it never fetches here); nothing else may
    assert not re.search(r"https?://cdn", page.replace(bundle, ""))
    assert page.count('class="plotly-graph-div"') >= 10


def test_html_names_source_dates_and_every_scenario(page, report):
    assert "Data source: <b>local</b>" in page
    assert "<b>2021-04-21</b> (last trading day in the data)" in page
    # the local files' as-of is a date: no invented '00:00'
    assert pd.Timestamp(report.meta["as_of"]) == pd.Timestamp("2021-04-21")
    assert "data as of <b>2021-04-21</b>" in page
    assert "Generated 2021-04-22T08:00:00+00:00" in page
    for s in HISTORICAL_SCENARIOS:
        assert f"<h3>{s.name}</h3>" in page
    for name in HYPOTHETICAL:
        assert f"<h3>{name}</h3>" in page
    for word in (
        "Kupiec",
        "Christoffersen",
        "traffic light",
        "Drawdowns",
        "By GICS sector",
        "cornish_fisher",
        "fhs_ewma",
        "missing: not listed until 2010-06-29",
    ):
        assert word in page


def test_missing_scenarios_are_listed_not_dropped(data):
    late = data.select(start="2009-06-01")
    report = build_stress_report(late, WEIGHTS)
    assert set(report.skipped) == {"dotcom", "gfc_2008", "lehman_week"}
    html = render_html(report)
    assert "Scenarios not run" in html and "<li><b>Dot-com bust</b>: scenario" in html


def test_a_skipped_shock_is_named_in_words(sp500_dir):
    """CARR (listed 2020-03-19) leaves AAPL alone with a year of history in a 2020-06-30
    book: the correlation scenario is skipped, and the report listed it by its key,
    'correlation_breakdown'."""
    from mltrainer.data.sources import load_market_data

    late = load_market_data(
        "local", data_dir=sp500_dir, tickers=["AAPL", "CARR"], start="2015-01-01", end="2020-06-30"
    )
    report = build_stress_report(late, pd.Series({"AAPL": 0.5, "CARR": 0.5}))
    assert "correlation_breakdown" in report.skipped  # the key stays for --json readers
    html = render_html(report)
    assert "<li><b>Correlation breakdown</b>: fewer than two positions have 252-day" in html
    assert "<b>correlation_breakdown</b>" not in html


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "weights, error, message",
    [
        (pd.Series({"AAPL": 0.5, "MSFT": 0.6}), DataError, "weights sum to 1.1"),
        (pd.Series({"AAPL": 0.5, "NOPE": 0.5}), DataError, "unknown ticker.*NOPE"),
        (pd.Series({"AAPL": 1.0}), DataError, "at least two positions"),
    ],
)
def test_bad_portfolios_are_clear_errors(data, weights, error, message):
    with pytest.raises(error, match=message):
        build_stress_report(data, weights)


def test_too_short_history_and_bad_settings(data):
    with pytest.raises(DataError, match="needs at least 270 days.*widen"):
        build_stress_report(data.select(start="2021-01-01"), WEIGHTS)
    with pytest.raises(ParameterError, match="correlation push"):
        build_stress_report(data, WEIGHTS, StressSettings(correlation_push=2.0))


# -------------------------------------------------------------------------------- PDF
def test_pdf_without_chromium_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(report_html.shutil, "which", lambda name: None)
    html = tmp_path / "r.html"
    html.write_text("<html><body>x</body></html>")
    result = report_html.print_pdf(html, tmp_path / "r.pdf")
    assert not result.ok and result.path is None
    assert "Chromium is not installed" in result.message
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.browser
def test_pdf_with_chromium(report, tmp_path):
    if report_html.find_chromium() is None:
        message = (
            "chromium is not installed: the PDF export cannot be tested here "
            "(apt-get install chromium)"
        )
        if os.environ.get("MLTRAINER_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    files = write_stress_report(report, tmp_path / "r.html", pdf=tmp_path / "r.pdf")
    assert files["pdf_ok"], files["pdf_message"]
    pdf = (tmp_path / "r.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 5  # a multi-page report


def test_cli_fails_when_the_pdf_asked_for_is_not_written(sp500_dir, tmp_path):
    """No Chromium on PATH: the HTML page is written, the reason printed (and said on
    stderr), and the exit code is 1, so that a script does not go on to send a PDF that
    is not there."""
    env = dict(
        os.environ,
        PATH=str(Path(sys.executable).parent),  # python, and no chromium
        MLTRAINER_DATA_DIR=str(sp500_dir.parent),
        MLTRAINER_CACHE_DIR=str(tmp_path / "cache"),
    )
    argv = ["report", "stress", "--source", "local", "--tickers", "KO,PEP", "--start", "2019-01-02"]
    argv += ["--out", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf")]
    proc = subprocess.run(
        [sys.executable, "-m", "mltrainer", *argv],
        capture_output=True,
        text=True,
        cwd=config.PROJECT_ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-800:]
    assert "PDF not written: Chromium is not installed" in proc.stdout
    # and on stderr, one line: the exit status 1 came with nothing there to say why
    assert proc.stderr.startswith("error: PDF not written: Chromium is not installed")
    assert proc.stderr.count("\n") == 1, proc.stderr[-800:]
    assert (tmp_path / "r.html").is_file() and not (tmp_path / "r.pdf").exists()


# -------------------------------------------------------------------------------- CLI
def test_cli_end_to_end_on_real_data(sp500_dir, tmp_path):
    out = tmp_path / "report.html"
    env = dict(
        os.environ,
        MLTRAINER_DATA_DIR=str(sp500_dir.parent),
        MLTRAINER_CACHE_DIR=str(tmp_path / "cache"),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mltrainer",
            "report",
            "stress",
            "--source",
            "local",
            "--tickers",
            "AAPL,JPM,KO",
            "--weights",
            "0.5,0.3,0.2",
            "--start",
            "2005-01-01",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=config.PROJECT_ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["html"] == str(out.resolve()) and out.is_file()
    assert doc["meta"]["source"] == "local" and doc["meta"]["last_date"] == "2021-04-21"
    assert doc["meta"]["first_date"] == "2005-01-03"
    assert [p["ticker"] for p in doc["portfolio"]] == ["AAPL", "JPM", "KO"]
    assert doc["portfolio"][2]["sector"] == "Consumer Staples"  # from the constituents list
    # --start sets the range shown and scored; the crises before it are still replayed
    assert doc["meta"]["history_start"] == "1999-11-01"
    assert doc["skipped"] == {}
    assert len(doc["scenarios"]) == 11
    page = out.read_text(encoding="utf-8")
    assert "Data source: <b>local</b>" in page and "2008 financial crisis" in page
    assert "Dot-com bust" in page and "Executive summary" in page
    summary = doc["executive_summary"]
    assert summary["worst_historical"]["name"] == "Dot-com bust"
    assert len(summary["sentences"]) == 3
    # the VaR backtest scores the range only (about 4,100 trading days), not since 1999
    assert 4_000 < summary["var"]["days"] <= len(pd.bdate_range("2005-01-03", "2021-04-21"))


def test_cli_bad_weights_are_one_clear_line(capsys, sp500_dir, tmp_path):
    code = main(
        [
            "report",
            "stress",
            "--source",
            "local",
            "--data-dir",
            str(sp500_dir),
            "--tickers",
            "AAPL,MSFT",
            "--weights",
            "0.5",
            "--out",
            str(tmp_path / "r.html"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--weights has 1 number(s) for 2 ticker(s)" in err
    assert not (tmp_path / "r.html").exists()


def test_cli_risk_parity_weighting_is_the_measures_function(capsys, sp500_dir, tmp_path):
    from mltrainer.data.local import load_local
    from mltrainer.measures.weighting import portfolio_weights

    code = main(
        [
            "report",
            "stress",
            "--source",
            "local",
            "--data-dir",
            str(sp500_dir),
            "--tickers",
            "AAPL,JPM,KO",
            "--weighting",
            "risk-parity",
            "--json",
            "--out",
            str(tmp_path / "r.html"),
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    data = load_local(sp500_dir).select(tickers=["AAPL", "JPM", "KO"])
    expected = portfolio_weights("risk_parity", data.tickers, returns=data.returns())
    got = pd.Series({p["ticker"]: p["weight"] for p in doc["portfolio"]})
    np.testing.assert_allclose(got[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert (
        main(
            [
                "report",
                "stress",
                "--tickers",
                "AAPL,JPM",
                "--weights",
                "0.5,0.5",
                "--weighting",
                "equal",
                "--out",
                str(tmp_path / "x.html"),
            ]
        )
        == 2
    )


def test_the_var_part_computed_apart_gives_the_same_report(data, report):
    """The dashboard keeps the VaR part while a scenario slider moves: a report built on
    it is the report built whole, and a scenario setting does not change its key."""
    from dataclasses import replace

    from mltrainer.reports.stress_report import StressSettings, stress_var_part

    s = StressSettings(crash=-0.35, methods=("historical", "fhs_ewma"))
    assert s.var_only() == replace(StressSettings(), methods=("historical", "fhs_ewma"))
    assert s.var_only() == replace(s, crash=-0.1, vol_multiplier=5.0).var_only()
    whole = build_stress_report(data, WEIGHTS, s, start="2015-01-02")
    var = stress_var_part(data, WEIGHTS, s.var_only(), start="2015-01-02")
    parts = build_stress_report(data, WEIGHTS, s, start="2015-01-02", var=var)
    for name in ("var_table", "backtest", "var_forecasts"):
        pd.testing.assert_frame_equal(getattr(parts, name), getattr(whole, name))
    pd.testing.assert_series_equal(parts.exceptions, whole.exceptions)
    assert parts.warnings == whole.warnings
    assert parts.scenario_table().equals(whole.scenario_table())


def test_forecasts_handed_in_by_a_cache_give_the_same_var_part(data):
    """The dashboard hands the VaR part each method's rolling forecasts from its cache:
    the figures are those estimated in place, and forecasts of other levels or of
    another book are refused, not scored."""
    from mltrainer.measures.portfolio import portfolio_returns
    from mltrainer.reports.stress_report import stress_var_part
    from mltrainer.reports.stress_var import rolling_forecasts

    s = StressSettings(methods=("historical", "normal"), levels=(0.95, 0.975))
    whole = stress_var_part(data, WEIGHTS, s, start="2015-01-02")
    port = portfolio_returns(data.select(tickers=TICKERS).returns(), WEIGHTS)
    asked = []

    def estimate(method):
        asked.append(method)
        return rolling_forecasts(port, method, s.levels, s.var_window)

    given = stress_var_part(data, WEIGHTS, s, start="2015-01-02", estimate=estimate)
    assert asked == ["historical", "normal"]
    pd.testing.assert_frame_equal(given.table, whole.table)
    pd.testing.assert_frame_equal(given.backtest, whole.backtest)
    pd.testing.assert_frame_equal(given.forecasts, whole.forecasts)
    with pytest.raises(ValueError, match="levels .0.95, 0.99., wanted .0.95, 0.975."):
        stress_var_part(
            data,
            WEIGHTS,
            s,
            estimate=lambda m: rolling_forecasts(port, m, (0.95, 0.99), s.var_window),
        )
    with pytest.raises(ValueError, match="not for these returns"):
        stress_var_part(
            data,
            WEIGHTS,
            s,
            estimate=lambda m: rolling_forecasts(port.iloc[1:], m, s.levels, s.var_window),
        )


def test_the_index_regime_is_computed_once_per_day():
    """Each rebuild of a report (a scenario slider on the Risk page) asked the regime
    model for the same day again (0.1 s): the labels are kept per day and model."""
    from mltrainer.data.bundled import sp500_index_close
    from mltrainer.data.market_data import MarketData
    from mltrainer.models.regime import VolatilityRegimeModel
    from mltrainer.reports import stress_report as sr

    sr._index_labels.cache_clear()
    first = sr.index_regime("2020-03-20")
    assert sr.index_regime(pd.Timestamp("2020-03-20")) == first
    assert sr._index_labels.cache_info().hits == 1
    close = sp500_index_close().loc[:"2020-03-20"].dropna().to_frame("SP500")
    direct = VolatilityRegimeModel().run(MarketData.from_close(close, source="bundled"))
    direct = direct.primary.iloc[:, 0]
    assert first["label"] == int(direct.dropna().iloc[-1]) and first["name"] == "high"
    assert first["date"] == "2020-03-20"


def test_cli_market_cap_weights_say_their_caps_are_from_after_the_range(
    capsys, sp500_dir, tmp_path
):
    """The caps are those of the 2026-08-22 snapshot, whatever the range: a 2008 book
    weighted by them said nothing of it (the weights of a company's later size)."""
    from mltrainer.sectors_pit import cap_snapshot

    out = tmp_path / "caps.html"
    argv = ["report", "stress", "--source", "local", "--data-dir", str(sp500_dir)]
    argv += ["--tickers", "AAPL,JPM,XOM", "--weighting", "market-cap", "--end", "2008-12-31"]
    assert main([*argv, "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    caps = cap_snapshot().caps[["AAPL", "JPM", "XOM"]]
    got = pd.Series({p["ticker"]: p["weight"] for p in doc["portfolio"]})
    np.testing.assert_allclose(got[caps.index], caps / caps.sum(), rtol=1e-12)
    note = (
        "market-cap weights use the caps of 2026-08-22 (constituents-financials-2026-08-22"
        ".csv), published after the range ends on 2008-12-31"
    )
    assert doc["warnings"][0].startswith(note)
    assert note in out.read_text(encoding="utf-8")
    assert main([*argv, "--out", str(out)]) == 0
    assert f"note: {note}" in capsys.readouterr().out


def test_cli_market_cap_weights_take_a_renamed_company_under_its_later_symbol(
    capsys, sp500_dir, tmp_path
):
    """FB (the local files' symbol) is META in the snapshot: ``--weighting market-cap``
    refused it ("no market cap for FB"); it takes META's cap, and says so, whatever
    ``--end`` (the symbol names its company on its last day in the whole file)."""
    from mltrainer.sectors_pit import cap_snapshot

    out = tmp_path / "caps.html"
    argv = ["report", "stress", "--source", "local", "--data-dir", str(sp500_dir)]
    argv += ["--tickers", "FB,AAPL,JPM", "--weighting", "market-cap", "--end", "2019-12-31"]
    assert main([*argv, "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    caps = cap_snapshot().caps[["META", "AAPL", "JPM"]].set_axis(["FB", "AAPL", "JPM"])
    got = pd.Series({p["ticker"]: p["weight"] for p in doc["portfolio"]})
    np.testing.assert_allclose(got[caps.index], caps / caps.sum(), rtol=1e-12)
    assert doc["warnings"][1] == (
        "constituents-financials-2026-08-22.csv lists companies by their symbols of "
        "2026-08-22: FB's cap is the one listed for META"
    )


# -------------------------------------------------------------- the range vs the history
def test_a_later_range_still_replays_the_crises_before_it(data):
    """The range decides what is shown and scored, never what can be replayed (issue 13)."""
    late = build_stress_report(data, WEIGHTS, start="2011-04-25")
    names = {r.name for r in late.scenarios}
    assert {"Dot-com bust", "2008 financial crisis", "Lehman week"} <= names
    assert late.skipped == {}
    assert late.meta["first_date"] == "2011-04-25" and late.meta["history_start"] < "2000"
    # shown and scored from the range start; forecasts there learned from the years before
    assert late.returns.index[0] == pd.Timestamp("2011-04-25")
    assert late.var_forecasts.index[0] == pd.Timestamp("2011-04-25")
    assert late.var_forecasts.iloc[0].notna().all()
    n_range = int(late.returns.notna().sum())
    cf = late.backtest["method"] == "cornish_fisher"  # no figure outside its domain
    assert (late.backtest.loc[~cf, "days"] == n_range).all()
    missed = n_range - late.backtest.loc[cf, "days"]
    assert (missed > 0).all() and any(
        f"cornish_fisher 99.0%: {missed.iloc[-1]} days without a forecast" in w
        for w in late.warnings
    )
    whole = build_stress_report(data, WEIGHTS)
    assert (whole.backtest["days"] > n_range).all()
    # the same forecast on the same day, whatever the range: it depends on the past only
    day = pd.Timestamp("2015-06-01")
    pd.testing.assert_series_equal(late.var_forecasts.loc[day], whole.var_forecasts.loc[day])
    assert late.drawdown.index[0] == pd.Timestamp("2011-04-25")


def test_the_executive_summary_is_written_from_the_figures(report):
    e = report.summary()["executive_summary"]
    worst = min((r for r in report.scenarios if r.kind == "historical"), key=lambda r: r.pnl)
    assert e["worst_historical"]["name"] == worst.name
    assert e["worst_historical"]["pnl"] == pytest.approx(worst.pnl)
    var = report.var_table.query("method == 'historical' and level == 0.99").iloc[0]
    assert e["var"]["var_value"] == pytest.approx(var["var_value"])
    assert len(e["sentences"]) == 3
    assert f"${var['var_value']:,.0f}" in e["sentences"][0]
    assert worst.name in e["sentences"][2]
    assert e["regime"]["name"] in ("low", "medium", "high")
    # the backtest sentence spans the days it scored (after the first VaR window), not
    # the data's first date
    scored = report.exceptions.dropna().index
    assert scored[0] > pd.Timestamp(report.meta["first_date"])
    assert (e["var"]["first_day"], e["var"]["last_day"]) == (
        str(scored[0].date()),
        str(scored[-1].date()),
    )
    assert (
        f"Over {len(scored):,} days from {scored[0].date()} to {scored[-1].date()}"
        in (e["sentences"][1])
    )


def test_a_range_too_short_to_test_the_var_keeps_the_rest(data):
    """Five days (2021-04-15 to 2021-04-21) cannot test a VaR forecast: the report says so
    and leaves the tests out, but keeps today's VaR/ES, the scenarios and the drawdowns."""
    short = build_stress_report(data, WEIGHTS, start="2021-04-15")
    assert short.backtest.empty and len(short.returns) == 5
    assert not short.var_table.empty and short.scenarios and len(short.drawdown) == 5
    note = next(w for w in short.warnings if w.startswith("the VaR backtest of"))
    assert "(from 2021-04-15 to 2021-04-21) holds 5 scored days" in note
    assert "at least 20" in note
    summary = short.summary()["executive_summary"]
    assert summary["var"]["kupiec_p"] is None and summary["var"]["zone"] is None
    assert (
        "The 5 days from 2021-04-15 to 2021-04-21 are too few to test the forecast"
        in (summary["sentences"][1])
    )
    page = render_html(short)
    assert "VaR backtest" in page and "holds 5 scored days" in page  # the warnings
    assert "5 scored days, fewer than the 20 a test of the forecast needs" in page
    assert "Basel traffic light," not in page and "Kupiec p" not in page
    with pytest.raises(DataError, match="holds 1 day of portfolio returns; at least 2"):
        build_stress_report(data, WEIGHTS, start="2021-04-21")
    with pytest.raises(DataError, match="holds 0 days"):
        build_stress_report(data.select(end="2021-04-18"), WEIGHTS, start="2021-04-17")


def test_a_book_that_loses_all_its_value_says_so(data):
    """100x AAPL against 99x MSFT (custom weights of 1 and -0.99 rescaled to sum to 1)
    loses 298% on 2011-04-26: the report used to stop with "equity must be positive";
    its value now ends at 0 there, its drawdown is 100%, and a note says why."""
    levered = pd.Series({"AAPL": 100.0, "MSFT": -99.0})
    r = build_stress_report(data, levered, start="2011-04-21")
    assert r.returns.loc["2011-04-26"] == pytest.approx(-2.98, abs=0.01)
    assert r.drawdown_stats["max_drawdown"] == 1.0 and r.drawdown_stats["recovery"] is None
    assert r.drawdown_stats["trough"] == "2011-04-26"
    assert (r.drawdown.loc["2011-04-26":] == -1.0).all()
    note = "the book loses all its value on 2011-04-26 (a one-day return of -298% at 199.0x"
    assert any(w.startswith(note) for w in r.warnings)
    assert note in render_html(r)


def test_basel_light_over_a_range_shorter_than_250_days_says_how_long(data):
    """From 2021-01-04 the range holds 75 scored days: the Basel figures cover those, and
    every label says 75, not 250."""
    short = build_stress_report(data, WEIGHTS, start="2021-01-04")
    others = short.backtest[short.backtest["method"] != "cornish_fisher"]
    assert set(others["basel_days"]) == {75} and set(others["days"]) == {75}
    var = short.summary()["executive_summary"]["var"]
    assert var["basel_days"] == 75
    assert (
        "Basel traffic light over the last 75 days"
        in (short.summary()["executive_summary"]["sentences"][1])
    )
    page = render_html(short)
    assert "last 75 days" in page and "exceptions (last 75 d)" in page
    assert "(250 d)" not in page and "last 250 days" not in page


def test_print_css_hides_toolbars_and_keeps_blocks_whole(page):
    assert ".modebar" in page and "display: none" in page
    assert '"displayModeBar": false' in page
    assert "break-inside: avoid" in page and "table-header-group" in page
    assert page.index("Executive summary") < page.index("<h2>Portfolio</h2>")


def test_positions_priced_over_part_of_the_range_are_named(panel, capsys, sp500_dir, tmp_path):
    """CARR trades from 2020-03-19 and VAR stops on 2021-04-16: a report on both from
    1999 says so, since for twenty years its figures are VAR's alone; a book priced over
    the whole range gets no such note, and the CLI prints the report's notes."""
    both = build_stress_report(panel.select(tickers=["VAR", "CARR"]), {"VAR": 0.5, "CARR": 0.5})
    note = next(w for w in both.warnings if "has prices only from" in w)
    assert "CARR has prices only from 2020-03-19" in note
    assert "VAR has no price after 2021-04-16" in note
    assert "the range runs from 1999-11-01 to 2021-04-21" in note
    late = build_stress_report(panel.select(tickers=["VAR", "CARR"]), start="2020-06-01")
    assert not any("has prices only from" in w for w in late.warnings)
    assert any("VAR has no price after 2021-04-16" in w for w in late.warnings)
    full = build_stress_report(panel.select(tickers=["AAPL", "KO"]))
    assert not any("has prices only" in w or "no price after" in w for w in full.warnings)
    args = ["report", "stress", "--source", "local", "--data-dir", str(sp500_dir)]
    code = main([*args, "--tickers", "VAR,CARR", "--out", str(tmp_path / "r.html")])
    assert code == 0
    assert (
        "note: VAR has no price after 2021-04-16; CARR has prices only" in capsys.readouterr().out
    )


def test_a_position_with_no_price_in_the_range_has_an_empty_table_row(panel, tmp_path):
    """ABBV trades from 2013: a 2005 report holding it said nothing in its table's dates
    but the data's first day, and its last price date raised an IndexError."""
    r = build_stress_report(panel.select(tickers=["ABBV", "AAPL"], end="2006-01-01"))
    abbv = r.portfolio.loc["ABBV"]
    assert pd.isna(abbv["first_date"]) and pd.isna(abbv["last_date"])
    assert np.isnan(abbv["last_close"]) and np.isnan(abbv["vol_1y"])
    assert r.portfolio.loc["AAPL", "last_date"] == "2005-12-30"
    assert any("ABBV has no price in the range" in w for w in r.warnings)
    page = render_html(r)
    assert "<th>ABBV</th>" in page and '<td class="num">missing</td>' in page


def test_the_coverage_note_stays_one_line_and_names_positions_with_no_price(panel):
    """Eight names listed in 2008-09 beside AAPL, from 1999: six are named and two
    counted. A name whose file ends before the range (MSFT's real closes cut after 2015,
    as a delisted company's file ends) is named as having no price in it."""
    late = ["PM", "V", "AWK", "DISCK", "AVGO", "VRSK", "DG", "FTNT"]
    note = next(
        w
        for w in build_stress_report(panel.select(tickers=["AAPL", *late])).warnings
        if "has prices only from" in w
    )
    assert "VRSK has prices only from 2009-10-07; and 2 more (the range runs" in note
    assert "DG" not in note and "FTNT" not in note
    close = panel.adj_close[["AAPL", "MSFT"]].copy()
    close.loc["2016":, "MSFT"] = np.nan
    gone = build_stress_report(MarketData.from_close(close, source="local"), start="2016-06-01")
    assert any(
        w.startswith("MSFT has no price in the range (the range runs from 2016-06-01")
        for w in gone.warnings
    )


def test_the_portfolio_table_prices_are_the_closes_as_traded(data):
    """AAPL closed at $322.56 on 2010-12-31 (before its 7:1 and 4:1 splits); the table
    showed 9.92, the adjusted close on the data's April-2021 scale, as 'last_price'."""
    r = build_stress_report(
        data.select(end="2010-12-31"), WEIGHTS, StressSettings(methods=("historical",))
    )
    row = r.portfolio.loc["AAPL"]
    assert row["last_close"] == pytest.approx(322.56)
    assert row["last_date"] == "2010-12-31"
    assert "last_price" not in r.portfolio
    # a source with adjusted closes only says so
    adjusted = MarketData.from_close(data.select(end="2010-12-31").adj_close, source="bundled")
    r = build_stress_report(adjusted, WEIGHTS, StressSettings(methods=("historical",)))
    assert "last_close" not in r.portfolio
    assert r.portfolio.loc["AAPL", "last_adj_close"] == pytest.approx(
        data.adj_close.loc["2010-12-31", "AAPL"]
    )


def test_the_report_says_basel_zones_are_set_for_99_percent(page, report):
    """The report tests 95 % VaR with the Basel cut-offs too: it says they are the
    Committee's for 99 % and applied by analogy at other levels."""
    from mltrainer.measures.backtest_var import BASEL_LEVEL_NOTE

    assert set(report.backtest["level"]) != {0.99}
    assert report_html.esc(BASEL_LEVEL_NOTE) in page


def test_a_range_where_cornish_fisher_has_no_forecast_says_so(data):
    """From June 2020, 1,000-day windows hold the crash: the expansion is outside its
    domain on every day. The summary read 'would lose more than n/a (n/a)' and 'The 0
    days from None to None are too few'; it now says there is no forecast, and the notes
    say why instead of calling the range too short."""
    s = StressSettings(
        methods=("cornish_fisher",), chart_method="cornish_fisher", levels=(0.9,), var_window=1000
    )
    r = build_stress_report(data, WEIGHTS, s, start="2020-06-01")
    first, second = r.summary()["executive_summary"]["sentences"][:2]
    assert first.endswith("has no 90% cornish_fisher VaR for the next day (see the notes).")
    assert second == "No day of the range has a cornish_fisher forecast to test (see the notes)."
    assert not any("left out: the range" in w for w in r.warnings)
    note = next(w for w in r.warnings if w.startswith("cornish_fisher: no VaR/ES"))
    assert "days without a forecast" in note and "excess kurtosis is high" in note


def test_positions_carry_the_sectors_of_the_books_date(panel, shared_data_dir):
    """A book of 2010-12-31 listed GOOGL under Communication Services and T under
    Communication Services, a sector created in 2018, in its table and every scenario."""
    from mltrainer.data.gics import with_sector_periods
    from mltrainer.data.membership import load_membership

    dated = with_sector_periods(panel, load_membership(shared_data_dir))
    tickers = ["GOOGL", "T", "XOM", "AAPL"]
    data = dated.select(tickers=tickers, start="2005-01-03", end="2010-12-31")
    weights = pd.Series(0.25, index=tickers)
    report = build_stress_report(data, weights, generated=pd.Timestamp("2021-04-22 08:00Z"))
    then = {
        "GOOGL": "Information Technology",
        "T": "Telecommunication Services",
        "XOM": "Energy",
        "AAPL": "Information Technology",
    }
    assert report.portfolio["sector"].to_dict() == then
    assert report.scenarios
    for result in report.scenarios:
        shown = result.positions["sector"].dropna().to_dict()
        assert shown == {t: then[t] for t in shown}, result.name
    assert "Communication Services" not in {s for r in report.scenarios for s in r.by_sector.index}
    # today's sectors where the data does not date them
    today = build_stress_report(panel.select(tickers=tickers, end="2010-12-31"), weights)
    assert today.portfolio["sector"]["GOOGL"] == "Communication Services"


def test_the_sector_table_says_what_it_adds_up_to(panel, shared_data_dir):
    """CHTR has no price in 2008: the 2008 replay's sector rows summed to -324,138 while
    the headline read -388,965 (CHTR's sixth of the book proxied by the others), and the
    report did not say why the table and the headline differ."""
    from mltrainer.data.gics import with_sector_periods
    from mltrainer.data.membership import load_membership

    dated = with_sector_periods(panel, load_membership(shared_data_dir))
    tickers = ["GOOGL", "T", "XOM", "AAPL", "JPM", "CHTR"]
    data = dated.select(tickers=tickers, start="2005-01-03", end="2010-12-31")
    report = build_stress_report(data, pd.Series(1 / 6, index=tickers))
    (gfc,) = [r for r in report.scenarios if r.key == "gfc_2008"]
    covered = gfc.positions["pnl"].sum()
    assert gfc.by_sector["pnl"].sum() == pytest.approx(covered)
    assert gfc.pnl == pytest.approx(covered / (5 / 6))
    html = render_html(report)
    assert html.count("Sectors of 2010-12-31, the book&#x27;s date.") == len(report.scenarios)
    shown = (
        f"The sectors add up to the covered positions&#x27; P&amp;L, "
        f"{report_html.money(covered)}; the headline {report_html.money(gfc.pnl)} also "
        "counts the 16.67% of gross exposure without data, proxied by the covered positions"
    )
    assert shown in html


def test_a_worst_loss_proxied_from_part_of_the_book_says_how_much(panel):
    """A 2012 book of AAPL, FB and TSLA: FB listed in May 2012 and TSLA in 2010, so the
    dot-com replay prices AAPL alone and scales it to the book. The executive summary
    called its -80.4% the book's "worst stress loss" without a word on that."""
    r = build_stress_report(
        panel.select(tickers=["AAPL", "FB", "TSLA"], end="2012-06-29"), start="2012-01-01"
    )
    sentence = executive_summary(r)["sentences"][2]
    assert sentence.startswith(
        "Worst stress losses: Dot-com bust (2000-03-24 to 2002-10-09): -$803,879 (-80.4%; "
        "only 33.3% of the book had the data it needs, the rest proxied); Market crash "
        "-20%: -$204,588 (-20.5%; only 66.7% of the book had the data it needs, the rest "
        "proxied)"
    )
    assert ">worst historical: Dot-com bust (33.33% of the book with data)<" in render_html(r)
    whole = build_stress_report(
        panel.select(tickers=["AAPL", "MSFT"], end="2012-06-29"), start="2012-01-01"
    )
    assert "proxied" not in executive_summary(whole)["sentences"][2]


def test_every_figure_title_says_its_dates(data):
    """Figures copied out of the report carried no date: 'Portfolio weights', 'Portfolio
    drawdown from its running peak', 'Dot-com bust: P&L by sector' (sectors of which
    day?), and the VaR note promised figures 'for tomorrow'."""
    r = build_stress_report(data.select(end="2015-06-30"), WEIGHTS, start="2015-01-01")
    titles = set(re.findall(r'"title":\{"text":"([^"]*)"', render_html(r)))
    for title in (
        "Portfolio weights on 2015-06-30",
        "Daily returns 2015-01-02 to 2015-06-30 against the historical VaR forecast made the "
        "day before (out of sample)",
        "Basel traffic light, 99% VaR, last 124 days to 2015-06-30",
        "Portfolio drawdown from its running peak, 2015-01-02 to 2015-06-30",
        "Portfolio return by scenario (the positions of 2015-06-30)",
        "Portfolio value through each historical window (the positions of 2015-06-30)",
        "Dot-com bust (2000-03-24 to 2002-10-09): P&L by position",
        "Dot-com bust (2000-03-24 to 2002-10-09): P&L by sector (sectors of 2015-06-30)",
        "Market crash -20% (on 2015-06-30): P&L by sector",
    ):
        assert title in titles, title
    page = render_html(r)
    assert (
        "One-day figures for the trading day after 2015-06-30, estimated from the last 250 " in page
    )
    assert "for tomorrow" not in page


def test_a_position_without_a_price_on_the_books_date_is_named_in_the_summary(panel):
    """TSLA listed in 2010: a book of AAPL and TSLA on 2008-09-12 (the Friday before
    Lehman) headlined 'The 2-position portfolio ... would lose more than $64,299', AAPL's
    VaR alone, with the missing price only in the notes at the end."""
    r = build_stress_report(
        panel.select(tickers=["AAPL", "TSLA"], end="2008-09-12"), start="2008-01-01"
    )
    assert executive_summary(r)["sentences"][0].startswith(
        "The 2-position portfolio worth $1,000,000 (TSLA: no price on 2008-09-12; on days "
        "without one, the others carry its weight) would lose more than $64,299 (6.43%)"
    )
    both = build_stress_report(panel.select(tickers=["AAPL", "MSFT"], end="2008-09-12"))
    assert "no price" not in executive_summary(both)["sentences"][0]


def test_a_one_year_volatility_needs_most_of_the_year(panel):
    """CARR and OTIS listed on 2020-03-19: a book on 2020-04-30 showed their 'vol_1y' as
    137% and 120%, the annualised volatility of 29 COVID days, under a one-year label."""
    r = build_stress_report(panel.select(tickers=["AAPL", "CARR", "OTIS"], end="2020-04-30"))
    vol = r.portfolio["vol_1y"]
    assert vol[["CARR", "OTIS"]].isna().all()
    want = panel.returns()["AAPL"].loc[:"2020-04-30"].iloc[-252:].std() * np.sqrt(252)
    assert vol["AAPL"] == pytest.approx(want, rel=1e-12)


def test_confidence_levels_keep_their_decimals(data):
    """--levels 0.99,0.994,0.995 wrote '... on one day in 1% of days' for the 99.5% VaR
    (0.5%), a card '1-day 100% VaR', and the 99% and 99.4% forecasts shared the chart's
    column '99% historical', so one overwrote the other."""
    s = StressSettings(levels=(0.99, 0.994, 0.995), methods=("historical",))
    r = build_stress_report(data.select(end="2015-06-30"), WEIGHTS, s, start="2015-01-01")
    assert list(r.var_forecasts.columns) == [
        "99% historical",
        "99.4% historical",
        "99.5% historical",
    ]
    assert " on one day in 0.5% of days by historical VaR" in executive_summary(r)["sentences"][0]
    page = render_html(r)
    assert ">1-day 99.5% VaR (historical)<" in page
    assert "Basel traffic light, 99.5% VaR, last 124 days to 2015-06-30" in page
    assert [m for m in ("1-day 100%", "loss = 100%") if m in page] == []


def test_the_drawdown_counts_the_ranges_first_day(basket):
    """A range from 2020-02-24 (AAPL, MSFT, XOM, JPM fell 4.1% that day): the report gave
    a 32.8% maximum drawdown from a 'peak' on 2020-02-24, the close after that loss; held
    from the close before, the book was 35.6% down on 2020-03-23."""
    data = basket.select(tickers=["AAPL", "MSFT", "XOM", "JPM"], end="2020-03-23")
    r = build_stress_report(data, start="2020-02-24")
    rets = data.adj_close.pct_change(fill_method=None).loc["2020-02-24":].mean(axis=1)
    value = (1 + rets).cumprod()
    assert r.drawdown.index[0] == pd.Timestamp("2020-02-24")
    assert r.drawdown.iloc[0] == pytest.approx(rets.iloc[0], rel=1e-12)
    stats = r.drawdown_stats
    assert stats["max_drawdown"] == pytest.approx(1 - value.min(), rel=1e-12)
    assert stats["max_drawdown"] == pytest.approx(0.3559, abs=1e-4)
    assert stats["peak"] == "2020-02-21" and stats["trough"] == "2020-03-23"
