"""The Leaderboard page in AppTest: a starter run when nothing is stored, the latest
stored run otherwise, the family filter, and rows that open the Model Lab with the
model and the setting its last training fold chose."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from mltrainer.backtest.leaderboard import data_meta, run_leaderboard
from mltrainer.backtest.walkforward import WalkForwardSettings
from tests.ui.pagetools import errors, figure, open_page

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "KO"]


@pytest.fixture()
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAINER_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def shown(at) -> list[dict]:
    return at.dataframe[0].value.to_dict(orient="records")


def test_without_a_stored_run_the_page_shows_a_starter_leaderboard(
    app, shared_data_dir, results_dir
):
    at = open_page(app, "leaderboard", "local")
    assert not errors(at)
    assert "No leaderboard has been stored yet" in " ".join(i.value for i in at.info)
    rows = shown(at)
    families = {r["family"] for r in rows}
    assert families == {"momentum", "baseline"}
    assert figure(at, "lb_chart")["data"]
    assert (
        "Out of sample" in at.caption[0].value and "costs commission 5 bps" in at.caption[0].value
    )


def test_a_stored_run_is_shown_filtered_and_linked_to_the_model_lab(app, sp500_dir, results_dir):
    from mltrainer.data.local import load_local

    data = load_local(sp500_dir, tickers=TICKERS, start="2012-01-01", end="2017-12-31")
    keys = ["momentum/SimpleMomentumModel", "risk/VolatilityTargetingModel"]
    settings = WalkForwardSettings(
        train_size=504, test_size=126, backtest_kwargs={"commission_bps": 7.0}
    )
    board = run_leaderboard(data, keys, settings, root=results_dir / "leaderboard", n_jobs=1)
    board.meta["data"] = data_meta(data, TICKERS)
    board.meta["universe"] = {"name": "survivors", "label": "the tickers picked"}
    board.save("audit123")

    at = open_page(app, "leaderboard", "local")
    assert not errors(at) and not at.info
    assert {r["model"] for r in shown(at)} >= {"SimpleMomentumModel", "VolatilityTargetingModel"}
    # the baselines have no setting and no error: blank cells, never the text "None"
    for row in shown(at):
        assert row["chosen_params"] is not None and row["error"] is not None, row
    assert "audit123" in at.caption[0].value
    at.selectbox(key="lb_family").select("risk").run()
    rows = shown(at)
    assert {r["family"] for r in rows} == {"risk", "baseline"}
    link = next(r["lab"] for r in rows if r["model"] == "VolatilityTargetingModel")
    page, _, query = link.partition("?")
    assert page == "model_lab"
    params = dict(parse_qsl(query))
    chosen = json.loads(board.table.loc["risk/VolatilityTargetingModel", "chosen_params"])
    assert params["model"] == "risk/VolatilityTargetingModel" and params["costs"] == "7"
    assert params["tickers"] == ",".join(TICKERS)
    assert {k[2:]: v for k, v in params.items() if k.startswith("p.")} == {
        k: str(v) for k, v in chosen.items()
    }

    lab = app.__class__.from_file(app._script_path, default_timeout=180)
    lab.query_params.update(params)
    at = open_page(lab, "model_lab", "local")
    assert not errors(at)
    assert at.selectbox(key="lab_model:risk").value == "risk/VolatilityTargetingModel"
    for name, value in chosen.items():
        assert at.slider(key=f"lab:risk/VolatilityTargetingModel:{name}").value == pytest.approx(
            value
        )
    assert at.multiselect(key="lab_tickers").value == TICKERS


def test_a_range_too_short_for_the_starter_board_says_how_long_it_must_be(
    app, shared_data_dir, results_dir
):
    """567 trading days hold no 504-day training window plus a 63-day test fold: the page
    says what the range holds and what the board needs (568 is enough; the CLI's check
    in mltrainer.backtest.splits counts the same way)."""
    from mltrainer.data.sources import load_market_data

    dates = load_market_data("local", tickers=["AAPL"]).dates
    app.query_params.update({"start": str(dates[-567].date()), "end": str(dates[-1].date())})
    at = open_page(app, "leaderboard", "local")
    first, last = dates[-567].date(), dates[-1].date()
    assert errors(at) == [
        "No leaderboard has been stored yet. The full one runs from the command line "
        "(`python -m mltrainer leaderboard --universe sp500 --start 2000-01-01`, or on a "
        "Dask cluster with `--scheduler`). Nor could the momentum family run on the "
        f"sidebar's range: the range from {first} to {last} holds 567 trading days; a "
        "walk-forward needs 568 (a 504-day first training window and a test fold of 63 days "
        "or more): widen the sidebar's date range"
    ]
    # no note promises a board "shown meanwhile" that is not there
    assert not [i.value for i in at.info if "shown meanwhile" in i.value]


def test_a_sector_with_no_stock_in_the_range_names_it_not_an_empty_list(
    app, shared_data_dir, results_dir
):
    """Telecommunication Services ended 2018-09-21: the starter board for 2019-2021 said
    'no price for  from 2019-01-02 to 2021-04-21', naming no ticker."""
    app.query_params.update(
        {"sectors": "Telecommunication Services", "start": "2019-01-02", "end": "2021-04-21"}
    )
    at = open_page(app, "leaderboard", "local")
    assert not errors(at) and not at.dataframe
    said = [i.value for i in at.info]
    assert len(said) == 1 and said[0].startswith("No leaderboard has been stored yet.")
    assert "No stock of this data was in Telecommunication Services from 2019-01-02 to " in said[0]
