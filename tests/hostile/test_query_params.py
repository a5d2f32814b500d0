"""Hostile dashboard links: a malformed query parameter never shows an exception (with
the server's file paths); the page says which parameter it ignored and uses the default.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from mltrainer.config import PROJECT_ROOT
from mltrainer.data.local import list_files
from mltrainer.validate import from_query, parse_float
from tests.ui.conftest import ENTRY
from tests.ui.pagetools import errors

DEFAULT_TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "JNJ"]


@pytest.fixture()
def app():
    return AppTest.from_file(ENTRY, default_timeout=180)


@pytest.fixture(scope="module")
def real_tickers(sp500_dir):
    return sorted(list_files(sp500_dir))


def _warnings(at) -> str:
    return " ".join(w.value for w in at.warning) + " ".join(w.value for w in at.sidebar.warning)


def _open_lab(app, params: dict):
    app.query_params.update(params)
    first = app.run()
    assert not first.exception, first.exception
    notes = _warnings(first)
    at = first.switch_page(str(PROJECT_ROOT / "pages" / "model_lab.py")).run()
    return at, notes + " " + _warnings(at)


# --------------------------------------------------------- the Model Lab's own parameters
BAD_COSTS = ["abc", "inf", "-inf", "nan", "-5", "51", "1e308", "1e400", "", "0x10", "5;DROP"]


@pytest.mark.parametrize("costs", BAD_COSTS)
def test_bad_costs_fall_back_to_the_default_with_a_warning(app, shared_data_dir, costs):
    at, notes = _open_lab(app, {"costs": costs})
    assert not at.exception, at.exception
    assert not errors(at)
    assert at.slider(key="lab_costs").value == 5.0
    assert "'costs'" in notes


TICKER_LISTS = {  # built from the real folder's tickers
    "51-real-tickers": lambda t: ",".join(t[:51]),
    "504-real-tickers": lambda t: ",".join(t[:504]),
    "52-after-dedup": lambda t: ",".join(["KO"] * 10 + t[10:62]),
    "commas": lambda t: ",,,",
    "script": lambda t: "<script>alert(1)</script>",
    "semicolon": lambda t: "KO;PEP",
    "5000-chars": lambda t: "A" * 5000,
    "path": lambda t: "KO,../../etc/passwd",
}


@pytest.mark.parametrize("kind", list(TICKER_LISTS))
def test_bad_ticker_lists_fall_back_to_the_default(app, shared_data_dir, real_tickers, kind):
    at, notes = _open_lab(app, {"tickers": TICKER_LISTS[kind](real_tickers)})
    assert not at.exception, at.exception
    assert at.multiselect(key="lab_tickers").value == DEFAULT_TICKERS
    assert "'tickers'" in notes


def test_fifty_tickers_are_still_accepted(app, shared_data_dir, real_tickers):
    at, notes = _open_lab(app, {"tickers": ",".join(real_tickers[:50])})
    assert not at.exception, at.exception
    assert at.multiselect(key="lab_tickers").value == real_tickers[:50]
    assert "'tickers'" not in notes


@pytest.mark.parametrize(
    "params",
    [
        {"family": "nosuch"},
        {"family": "../../etc"},
        {"model": "momentum/Nope"},
        {"model": "x" * 10_000},
        {"ticker": "ZZZZ"},
        {"bench": "nosuch"},
        {"p.short_window": "abc"},
        {"p.short_window": "inf"},
        {"p.long_window": "-1"},
        {"p.nosuch": "1"},
        {"model": "momentum/TimeSeriesMomentumModel", "p.short_window": "1e308"},
    ],
    ids=lambda p: ",".join(f"{k}={v[:20]}" for k, v in p.items()),
)
def test_unknown_values_fall_back_without_an_exception(app, shared_data_dir, params):
    at, _ = _open_lab(app, params)
    assert not at.exception, at.exception
    assert not errors(at)
    assert at.selectbox(key="lab_family").value in ("momentum", params.get("family"))


@pytest.mark.parametrize(
    "tickers,shown,said",
    [
        ("META,AAPL", ["AAPL"], "The link's ticker META is not in the local data; left out. "),
        ("META", DEFAULT_TICKERS, "The link's ticker META is not in the local data; showing "),
        ("ZZZZ,QQQQ", DEFAULT_TICKERS, "The link's tickers ZZZZ, QQQQ are not in the local "),
    ],
)
def test_a_links_unknown_tickers_are_named_in_the_lab(app, shared_data_dir, tickers, shown, said):
    """The Model Lab dropped a link's unknown tickers silently, and all of them for its
    default basket: a link made on today's symbols (META) opened on the local files
    (FB in 2021) on AAPL, MSFT... with no word. It names them, and what the data calls
    the company; the next run (the settings now the page's own) says nothing."""
    at, notes = _open_lab(
        app, {"source": "local", "model": "momentum/TimeSeriesMomentumModel", "tickers": tickers}
    )
    assert not errors(at) and at.multiselect(key="lab_tickers").value == shown
    assert said in notes
    hint = "META is FB here (its symbol until 2022-06-09)."
    assert (hint in notes) == ("META" in tickers)
    at.run()
    assert not any("The link's ticker" in w.value for w in at.warning)


@pytest.mark.parametrize(
    "params,said",
    [
        ({"family": "nosuch"}, "The link's family='nosuch' is not a model family; showing"),
        ({"model": "momentum/Nope"}, "The link's model='momentum/Nope' is not a registered"),
        ({"model": "momentum/Nope", "p.window": "3"}, "The link's p.window: no registered "),
        ({"p.short_window": "30"}, "The link's p.short_window: no registered model in the"),
        ({"bench": "nosuch"}, "The link's bench='nosuch' is not one of universe, sp500; "),
        ({"universe": "x"}, "The link's universe='x' is not one of survivors, sp500; showing"),
        ({"ticker": "ZZZZ"}, "The link's ticker='ZZZZ' is not among the tickers run; the"),
        (
            {"model": "momentum/TimeSeriesMomentumModel", "p.zz": "1"},
            "The link's p.zz: not a parameter of momentum/TimeSeriesMomentumModel; ignored.",
        ),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else "",
)
def test_a_lab_links_unknown_choices_are_named(app, shared_data_dir, params, said):
    """The Model Lab fell back to its defaults on a link's unknown family, model,
    benchmark, universe, chart ticker or parameter name with no word."""
    at, notes = _open_lab(app, params)
    assert not errors(at) and said in notes
    assert at.selectbox(key="lab_family").value == "momentum"


def test_a_renamed_parameter_in_a_lab_link_is_taken_not_named(app, shared_data_dir):
    """``p.min_history`` is the old name of ``min_observations`` (ui.params.RENAMED_PARAMS):
    the page sets it, and does not call it unknown."""
    at, notes = _open_lab(app, {"model": "regime/VolatilityRegimeModel", "p.min_history": "300"})
    assert "The link's" not in notes and not errors(at)
    assert at.slider(key="lab:regime/VolatilityRegimeModel:min_observations").value == 300


def test_a_link_with_a_model_alone_opens_its_family(app, shared_data_dir):
    """A link that names a model of another family without its family opened the
    momentum default; a link whose family contradicts its model is named."""
    at, notes = _open_lab(app, {"model": "volatility/GARCHVolatilityModel"})
    assert at.selectbox(key="lab_family").value == "volatility"
    assert at.selectbox(key="lab_model:volatility").value == "volatility/GARCHVolatilityModel"
    assert "The link's" not in notes
    at, notes = _open_lab(
        AppTest.from_file(ENTRY, default_timeout=180),
        {"family": "volatility", "model": "momentum/TimeSeriesMomentumModel"},
    )
    assert at.selectbox(key="lab_model:momentum").value == "momentum/TimeSeriesMomentumModel"
    assert "is of the momentum family, not volatility; it is shown in its own family" in notes


# --------------------------------------------------------------- the sidebar's parameters
@pytest.mark.parametrize(
    "params,name",
    [
        ({"start": "2020-13-45", "end": "2020-12-31"}, "start"),
        ({"start": "notadate", "end": "2020-12-31"}, "start"),
        ({"start": "2015-01-02", "end": "99999-01-01"}, "end"),
        ({"start": "2015-01-02", "end": "2016-02-30"}, "end"),
        ({"start": "2019-01-02", "end": "2015-12-31"}, "after"),
        ({"source": "nosuch"}, "source"),
        ({"source": "../../etc/passwd"}, "source"),
    ],
)
def test_bad_sidebar_values_are_named_and_ignored(app, shared_data_dir, params, name):
    """The malformed value is named and left out; a valid one beside it is used (an
    end alone: ten years to it; a start alone: to the data's last day)."""
    at, notes = _open_lab(app, params)
    assert not at.exception, at.exception
    assert name in notes
    assert at.sidebar.selectbox(key="g_source").value == "auto"
    start, end = (str(d) for d in at.sidebar.date_input(key="g_dates").value)
    expected = {
        "start": ("2011-01-03", "2020-12-31"),
        "end": ("2015-01-02", "2021-04-21"),
    }.get(name, ("2011-04-24", "2021-04-21"))  # else the default range
    assert (start, end) == expected


@pytest.mark.parametrize(
    "params,dates,note",
    [
        ({"start": "1995-01-03", "end": "1998-06-01"}, None, "lies outside the data"),
        ({"start": "2022-01-03"}, None, "from 2022-01-03 on lies outside the data"),
        (
            {"start": "2019-01-02", "end": "2023-06-30"},
            ("2019-01-02", "2021-04-21"),
            "reaches beyond the data (the data runs from 1999-11-01 to 2021-04-21)",
        ),
        ({"start": "2015-01-02"}, ("2015-01-02", "2021-04-21"), None),
        ({"end": "2012-12-31"}, ("2003-01-03", "2012-12-31"), None),
    ],
    ids=["before-the-data", "after-the-data", "beyond-the-end", "start-only", "end-only"],
)
def test_a_link_range_outside_the_data_is_named_not_silently_clipped(
    app, shared_data_dir, params, dates, note
):
    """A link's dates used to be clipped silently: 1995-1998 became the one day
    1999-11-01, and a start with no end was ignored."""
    at, notes = _open_lab(app, params)
    assert not at.exception, at.exception
    start, end = (str(d) for d in at.sidebar.date_input(key="g_dates").value)
    assert (start, end) == (dates or ("2011-04-24", "2021-04-21"))  # else the default
    if note is None:
        assert "The link's range" not in notes
    else:
        assert note in notes


def test_unknown_sectors_in_a_link_are_named(app, shared_data_dir):
    at, notes = _open_lab(app, {"sectors": "Energy,Informaton Technology"})
    assert not at.exception, at.exception
    assert at.sidebar.multiselect(key="g_sectors").value == ["Energy"]
    assert "'Informaton Technology' are not GICS sectors of this data" in notes


def test_from_query_names_the_parameter_and_keeps_the_default():
    parse = lambda text: parse_float(text, "costs", 0, 50)  # noqa: E731
    assert from_query({}, "costs", parse, 5.0) == (5.0, None)
    assert from_query({"costs": "12"}, "costs", parse, 5.0) == (12.0, None)
    value, message = from_query({"costs": "inf"}, "costs", parse, 5.0)
    assert value == 5.0 and "'costs'" in message and "inf" in message


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("p.short_window", "abc"),
        ("p.short_window", "-3"),
        ("p.short_window", "1e308"),
        ("p.long_window", "nan"),
        ("p.long_window", "999999"),
    ],
)
def test_a_bad_model_parameter_in_a_link_is_named_and_falls_back(
    app, shared_data_dir, param, value
):
    at, notes = _open_lab(
        app, {"family": "momentum", "model": "momentum/TimeSeriesMomentumModel", param: value}
    )
    assert not at.exception and not errors(at)
    name = param.removeprefix("p.")
    assert f"p.{name}" in notes and "using the default" in notes
    default = {"short_window": 10, "long_window": 60}[name]
    assert at.slider(key=f"lab:momentum/TimeSeriesMomentumModel:{name}").value == default


# ------------------------------------------------- the pages' own URL-bound widgets
def _open(app, page: str, params: dict):
    app.query_params.update(params)
    at = app.run()
    assert not at.exception, at.exception
    at.switch_page(str(PROJECT_ROOT / "pages" / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at, [t.value for t in at.toast]


def test_a_value_a_page_widget_cannot_take_is_named(app, shared_data_dir):
    """Streamlit drops a bound widget's link value it cannot use and shows the default
    without a word; the page now names each one (and only those: a valid value, or one
    equal to the default, passes)."""
    at, toasts = _open(
        app,
        "risk",
        {
            "risk_level": "0.5",  # not one of the levels
            "risk_window": "abc",
            "risk_value": "1e400",
            "risk_crash": "-0.3",  # valid
            "risk_method": "historical",  # the default, written out
        },
    )
    assert at.select_slider(key="risk_level").value == 0.99
    assert at.slider(key="risk_crash").value == -0.3
    named = " ".join(toasts)
    assert "risk_level='0.5'" in named and "showing 0.99 instead" in named
    assert "risk_window='abc'" in named and "showing 250 instead" in named
    assert "risk_value='1e400'" in named
    assert "risk_crash" not in named and "risk_method" not in named
    assert len(toasts) == 3


def test_a_repeated_value_or_a_half_range_is_named(app, shared_data_dir):
    """A range slider's link value that is not two values was dropped unsaid
    (mon:vol_windows=300), and a value given three times, each a level the page has,
    was called 'not a value this page takes'."""
    at, toasts = _open(app, "monitor", {"mon:vol_windows": "300"})
    assert at.slider(key="mon:vol_windows").value == (21, 252)
    assert toasts == [
        "The link's mon:vol_windows ('300') is not a range this page takes (two values, "
        "mon:vol_windows=low&mon:vol_windows=high, within the slider's bounds); showing 21 "
        "to 252 instead."
    ]
    at, toasts = _open(
        AppTest.from_file(ENTRY, default_timeout=180),
        "risk",
        {"risk_level": ["0.95", "0.99", "0.9"]},
    )
    shown = at.select_slider(key="risk_level").value
    assert toasts == [
        f"The link gives risk_level 3 times ('0.95', '0.99', '0.9'); this page takes one "
        f"and shows {shown!r}."
    ]


@pytest.mark.parametrize(
    "page,params",
    [
        ("monitor", {"mon:vol_windows": ["30", "200"]}),  # a range, as the page writes it
        ("universe", {"uni_window": "1 year", "uni_around": "30", "rrg_tail": "8"}),
        ("universe", {"uni_window": "3 months", "uni_tab": "Sector rotation"}),
        ("regimes", {"rg_detail": "Volatility", "rg_log": "true"}),
        ("regimes", {"rg_models": ["Volatility", "MarketCondition"]}),  # the default
        ("regimes", {"rg_models": ["Clustering", "Volatility"]}),
        ("risk", {"risk:tickers": ["AAPL", "MSFT"], "risk:method": "Risk parity"}),
        ("monitor", {"mon_regime": "VolatilityRegime"}),
        ("model_lab", {"lab_mode": "Expanding", "lab_points": "4", "lab_test": "126"}),
    ],
    ids=[
        "monitor-range",
        "universe",
        "universe-defaults",
        "regimes",
        "regimes-default-models",
        "regimes-models",
        "risk-tickers",
        "monitor",
        "model-lab",
    ],
)
def test_valid_page_values_in_a_link_are_not_named(app, shared_data_dir, page, params):
    _, toasts = _open(app, page, params)
    assert toasts == []


def test_a_page_stopped_by_an_error_still_names_the_links_bad_value(app, shared_data_dir):
    """A weekend range stops the Risk page at its VaR (an error on the page); the
    window the link gave, which the page could not take, is named all the same."""
    at, toasts = _open(
        app, "risk", {"risk_window": "abc", "start": "2019-01-05", "end": "2019-01-06"}
    )
    assert at.error and toasts == [
        "The link's risk_window='abc' is not a value this page takes; showing 250 instead."
    ]


def test_matches_reads_the_url_forms_of_one_value():
    import datetime as dt

    from ui.links import matches

    assert matches("true", True) and matches("False", False) and not matches("yes", True)
    assert matches("250", 250) and matches("0.990", 0.99) and matches("1e6", 1_000_000.0)
    assert not matches("abc", 250) and not matches("inf", 1e6) and not matches("nan", 0.5)
    assert matches("2015-06-30", dt.date(2015, 6, 30)) and not matches(
        "2015-6-30x", dt.date(2015, 6, 30)
    )
    assert matches("historical", "historical") and not matches("Historical", "historical")


@pytest.mark.parametrize(
    "tickers,left_out",
    [(["AAPL", "ZZZZ", "MSFT"], ["AAPL", "MSFT"]), (["ZZZZ"], None), (["AAPL", "ZZZZ"], ["AAPL"])],
    ids=["one-unknown", "all-unknown", "page-stops-on-one-ticker"],
)
def test_a_links_unknown_choices_are_named(app, shared_data_dir, tickers, left_out):
    """A multiselect keeps the link's choices it knows and drops the rest silently (all
    of them: its default); the page names the dropped ones."""
    at, toasts = _open(app, "risk", {"risk:tickers": tickers})
    assert toasts == [
        "The link's risk:tickers choices 'ZZZZ' are not on this page's list; left out."
    ]
    if left_out is not None:
        assert at.multiselect(key="risk:tickers").value == left_out


def test_a_links_ticker_the_data_calls_otherwise_is_explained(app, shared_data_dir):
    """A Risk link made on today's symbols (META) opened on the local files (FB in 2021):
    the toast says what the data calls the company, for this session's page only."""
    at, toasts = _open(app, "risk", {"source": "local", "risk:tickers": ["META", "AAPL", "MSFT"]})
    assert toasts == [
        "The link's risk:tickers choices 'META' are not on this page's list; left out. "
        "META is FB here (its symbol until 2022-06-09)."
    ]
    assert at.multiselect(key="risk:tickers").value == ["AAPL", "MSFT"]


IMAGE = "![x](https://ev.il/t.png)"  # markdown the reader's browser would fetch


def test_a_links_raw_value_is_shown_as_text_never_as_markdown(app, shared_data_dir):
    """The warnings quote the link's value; unescaped, a crafted link put an image (fetched
    from another site by the reader's browser) or a link in the page's own warning."""
    at, notes = _open_lab(app, {"costs": IMAGE, "start": "[x](https://ev.il)", "end": "2020-12-31"})
    assert "'costs'" in notes and "'start'" in notes
    assert "![" not in notes and "[x](" not in notes
    assert "\\!\\[x\\](https://ev.il/t.png)" in notes


def test_a_links_raw_value_in_a_toast_is_text(app, shared_data_dir):
    tickers = ["AAPL", "MSFT", IMAGE]
    at, toasts = _open(app, "risk", {"risk_window": IMAGE, "risk:tickers": tickers})
    assert len(toasts) == 2 and not any("![" in t for t in toasts)
    assert all("\\!\\[x\\]" in t for t in toasts)


def test_a_value_the_app_reads_given_twice_is_named(app, shared_data_dir):
    """?sectors=Energy&sectors=Utilities took Utilities unsaid, and a Model Lab link with
    two models, two windows and two ticker lists ran the last of each unsaid; the URL
    kept both values, so a copied link stayed ambiguous."""
    at, said = _open_lab(
        app,
        {
            "sectors": ["Energy", "Utilities"],
            "model": ["momentum/SimpleMomentumModel", "momentum/DualMomentumModel"],
            "p.window": ["30", "40"],
            "tickers": ["KO,PEP", "MSFT,AAPL"],
        },
    )
    assert "The link gives sectors 2 times ('Energy', 'Utilities'); using the last, " in said
    assert "The link gives model 2 times" in said and "'momentum/DualMomentumModel'" in said
    assert "The link gives p.window 2 times ('30', '40'); using the last, '40'." in said
    assert "The link gives tickers 2 times" in said
    assert at.sidebar.multiselect(key="g_sectors").value == ["Utilities"]
    url = dict(at.query_params)  # one value each now: a copied link says what is shown
    assert (url["sectors"], url["model"], url["p.window"]) == (
        "Utilities",
        "momentum/DualMomentumModel",
        "40",
    )


def test_a_hand_typed_sector_list_is_read_as_meant(app, shared_data_dir):
    """'Energy, Utilities' dropped ' Utilities' as no GICS sector, 'telecommunication
    services' was refused for its case, and 'Energy,Energy' drew two Energy chips."""
    at, notes = _open_lab(
        app, {"sectors": "Energy, Utilities ,energy,telecommunication services,,Energy"}
    )
    assert not at.exception, at.exception
    assert at.sidebar.multiselect(key="g_sectors").value == [
        "Energy",
        "Utilities",
        "Telecommunication Services",
    ]
    assert "not GICS sectors" not in notes
