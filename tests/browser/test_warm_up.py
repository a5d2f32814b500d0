"""A model run whose output starts at the range start (issue 13): models that need a long
warm-up (a GARCH fit, a Markov-switching fit) learn from the history before the range, so
the Model Lab's output chart has a value on the range's first trading day, not a blank
stretch while the model warms up."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.browser.test_pages import assert_no_exception
from ui.apptest_tools import wait_until_idle

pytestmark = pytest.mark.browser

START, END = "2011-04-25", "2013-12-31"  # years of history before the start in the data

# per chart, per trace: its name and the first date whose value is a finite number
FIRST_PLOTTED = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    el => (el._fullData || []).map(t => {
        const x = Array.from(t.x || []), y = Array.from(t.y || []);
        const i = y.findIndex(v => v !== null && v !== '' && Number.isFinite(+v));
        return [t.name, i >= 0 ? String(x[i]).slice(0, 10) : null];
    }))"""


@pytest.fixture(scope="module")
def first_trading_day(sp500_dir) -> str:
    from mltrainer.data.local import load_local

    dates = load_local(sp500_dir, tickers=["AAPL"]).dates
    assert dates[0] < pd.Timestamp(START)  # the data does have history before the range
    return f"{dates[dates >= pd.Timestamp(START)][0]:%Y-%m-%d}"


@pytest.mark.parametrize(
    "family, key",
    [("volatility", "GARCHVolatilityModel"), ("regime", "RegimeSwitchingModel")],
)
def test_the_output_starts_on_the_first_trading_day_of_the_range(
    server, page, first_trading_day, family, key
):
    page.goto(
        f"{server}/model_lab?family={family}&model={family}%2F{key}&tickers=AAPL%2CMSFT"
        f"&ticker=AAPL&start={START}&end={END}",
        wait_until="domcontentloaded",
    )
    page.wait_for_selector(".js-plotly-plot", timeout=300_000)
    wait_until_idle(page, 300_000)
    assert_no_exception(page)
    output = page.evaluate(FIRST_PLOTTED)[0]  # the first chart: price and model output
    names = [name for name, _ in output]
    assert "AAPL" in names and any(n and n.endswith(": AAPL") for n in names), output
    for name, first in output:
        assert first == first_trading_day, f"{key}: {name} starts on {first}"
