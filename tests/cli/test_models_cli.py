"""``models run``: the same numbers as the package, as JSON and as Parquet, audited."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mltrainer import audit
from mltrainer.cli import main
from mltrainer.data.local import load_local
from mltrainer.models.registry import MODELS

ARGS = [
    "--source",
    "local",
    "--tickers",
    "AAPL,MSFT,KO",
    "--start",
    "2015-01-01",
    "--end",
    "2019-12-31",
]


@pytest.mark.parametrize(
    "key,params",
    [
        ("momentum/TimeSeriesMomentumModel", {"short_window": 8}),
        ("technical/OscillatorModel", {}),
        ("regime/VolatilityRegimeModel", {}),
    ],
)
def test_run_matches_the_package_and_writes_parquet(key, params, capsys, tmp_path, sp500_dir):
    out = tmp_path / "out.parquet"
    argv = [
        "models",
        "run",
        key,
        *ARGS,
        "--data-dir",
        str(sp500_dir),
        "--out",
        str(out),
        "--json",
    ] + [f"--param={k}={v}" for k, v in params.items()]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    # the model learns from all the history before --start, as in the Model Lab; its
    # output starts at --start (windows full there, not NaN for their length)
    data = load_local(sp500_dir, tickers=["AAPL", "MSFT", "KO"], end="2019-12-31")
    expected = MODELS[key](**params).run(data).since("2015-01-01").to_frame()
    assert doc["first_date"] == "2015-01-02" and data.dates[0] < pd.Timestamp("2015")
    assert expected.iloc[0].notna().all()
    frame = pd.read_parquet(out)
    assert frame.shape == expected.shape == (doc["n_rows"], doc["n_columns"])
    assert doc["params"] == {**MODELS[key]().get_params(), **params}
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True),
        expected.set_axis(frame.columns, axis=1).reset_index(drop=True),
        check_dtype=False,
    )
    last = audit.read(1)[-1]
    assert last["model"] == key and last["kind"] == "model_run"


def test_bad_parameter_names_what_is_allowed(capsys, sp500_dir):
    code = main(
        [
            "models",
            "run",
            "momentum/SimpleMomentumModel",
            *ARGS,
            "--data-dir",
            str(sp500_dir),
            "--param",
            "window=100000",
            "--json",
        ]
    )
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 2 and "window" in error and "between" in error
    code = main(
        [
            "models",
            "run",
            "momentum/SimpleMomentumModel",
            *ARGS,
            "--data-dir",
            str(sp500_dir),
            "--param",
            "nonsense=1",
            "--json",
        ]
    )
    assert code == 2 and "unknown parameter" in json.loads(capsys.readouterr().out)["error"]


def test_a_failed_markov_refit_is_a_warning_in_the_json(
    capsys, sp500_dir, markov_first_refit_fails
):
    argv = [
        "models",
        "run",
        "regime/RegimeSwitchingModel",
        "--source",
        "local",
        "--tickers",
        "KO",
        "--start",
        "2012-01-01",
        "--end",
        "2017-12-31",
        "--data-dir",
        str(sp500_dir),
    ]
    with pytest.warns(RuntimeWarning, match="Markov switching fit failed"):
        assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    failed = [w for w in doc["model_warnings"] if "Markov switching fit failed for KO" in w]
    assert len(failed) == 1 and "left NaN" in failed[0] and failed[0] in doc["warnings"]
    table = doc["tables"]["fit_failures"]
    assert len(table["data"]) == 1
    assert str(table["data"][0][table["columns"].index("from_date")])[:10] in failed[0]
    with pytest.warns(RuntimeWarning):
        assert main(argv) == 0
    assert "warning: Markov switching fit failed for KO" in capsys.readouterr().out


def test_text_says_where_the_model_learns_from(capsys, sp500_dir):
    argv = ["models", "run", "momentum/TimeSeriesMomentumModel", *ARGS]
    assert main([*argv, "--data-dir", str(sp500_dir)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "from 2015-01-02 to 2019-12-31" in first
    assert "the model learns from 1999-11-01 on" in first


def test_a_range_after_the_data_is_an_error_not_an_empty_output(capsys, sp500_dir):
    argv = ["models", "run", "momentum/TimeSeriesMomentumModel", "--source", "local"]
    argv += ["--tickers", "AAPL", "--start", "2022-01-03", "--data-dir", str(sp500_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no trading day from 2022-01-03 on in the data" in err
    assert "runs from 1999-11-01 to 2021-04-21" in err
