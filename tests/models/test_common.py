"""Checks every registered model must pass (scikit-learn's parametrize_with_checks idea).

A new model is covered the moment it is registered: parameter specs agree with
``get_params``, defaults are allowed, out-of-range values are refused with a message
naming the parameter, ``clone`` works, a refit gives identical output, the output is
indexed like the input, and above all the output is causal: the rows up to date t are
the same whether the model saw data up to t or the whole history.

Slow models run with lighter (still valid) settings and fewer tickers from
``tests/models/fast_settings.py``; the checks themselves are the same for all.
"""

from __future__ import annotations

import inspect
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from mltrainer.errors import DataError, ParameterError
from mltrainer.models.base import (
    OUTPUT_KINDS,
    REGIME,
    RISK,
    SIGNAL,
    VOLATILITY,
    WEIGHTS,
    Model,
    _document_params,
    clone,
)
from mltrainer.models.params import BoolParam, ChoiceParam, FloatParam, IntParam, validate_params
from mltrainer.models.registry import FAMILIES, MODELS
from tests.models.fast_settings import fast_params, fast_tickers

KEYS = sorted(MODELS)
COMMON_TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "TSLA"]  # TSLA lists mid-sample (2010-06)
START, END = "2008-01-01", "2014-12-31"
CUTOFFS = ("2011-03-15", "2013-06-28", "2014-10-01")
_PRICES = ("open", "high", "low", "close", "adj_close")


@pytest.fixture(scope="module")
def common_data(basket):
    return basket.select(tickers=COMMON_TICKERS, start=START, end=END)


def _model(cls, **extra):
    params = fast_params(cls)
    params.update(extra)
    return cls(**params)


def _data_for(cls, data):
    tickers = fast_tickers(cls)
    return data.select(tickers=tickers) if tickers else data


_RUNS: dict = {}


def _full_run(key, data):
    """One full-history run per model, shared by the checks that need it."""
    if key not in _RUNS:
        cls = MODELS[key]
        _RUNS[key] = _model(cls).run(_data_for(cls, data))
    return _RUNS[key]


def test_registry_has_every_family():
    assert set(FAMILIES) == {
        "momentum",
        "technical",
        "volume",
        "volatility",
        "regime",
        "risk",
        "sizing",
        "ml",
    }
    for key, cls in MODELS.items():
        family, name = key.split("/")
        assert cls.family == family and cls.__name__ == name


@pytest.mark.parametrize("key", KEYS)
def test_declaration(key):
    cls = MODELS[key]
    assert cls.description and len(cls.description) < 200, "one-line description required"
    assert cls.output_kind in OUTPUT_KINDS
    assert cls.__doc__ and len(cls.__doc__.strip()) > 40, "numpydoc docstring required"
    params = cls().get_params(deep=False)
    components = set(cls.component_params)
    assert all(params[c] is None for c in components), "members default to None (today's)"
    assert set(params) - components == set(cls.param_specs), (
        "__init__ arguments must equal param_specs (plus the declared component_params)"
    )
    for name, spec in cls.param_specs.items():
        assert params[name] == spec.default, f"{name}: __init__ default differs from spec"
        assert spec.help, f"{name}: help text required (the page shows it as a tooltip)"
    validate_params(cls())  # defaults inside bounds
    validate_params(_model(cls))  # so are the test parameters


@pytest.mark.parametrize("key", KEYS)
def test_signature_is_the_specs(key):
    """The generated __init__: the specs' names and defaults, then the components (None)."""
    cls = MODELS[key]
    assert hasattr(cls.__init__, "__signature__"), "no hand-written __init__: specs declare"
    parameters = inspect.signature(cls).parameters
    assert list(parameters) == [*cls.param_specs, *cls.component_params]
    defaults = [p.default for p in parameters.values()]
    assert defaults == [s.default for s in cls.param_specs.values()] + [None] * len(
        cls.component_params
    )
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters.values())


@pytest.mark.parametrize("key", KEYS)
def test_docstring_documents_every_parameter(key):
    """numpydoc Parameters: hand-written where the help says too little, else generated."""
    cls = MODELS[key]
    section = cls.__doc__.split("Parameters\n    ----------\n")[1].split("\n\n")[0]
    section = section.replace(",\n    ", ", ")
    heads = [line.split(" : ")[0] for line in section.splitlines() if line[4:5] not in " "]
    names = [name.strip() for head in heads for name in head.split(",")]
    assert sorted(names) == sorted([*cls.param_specs, *cls.component_params])


def test_generated_parameter_docs():
    """Entries the docstring lacks come from the specs, in a section of their own if need be."""
    specs = {"n": IntParam(1, 9, default=3, help="Count"), "b": BoolParam(True, help="Flag.")}
    generated = ["    n : int in [1, 9], default=3", "        Count.", "    b : bool, default=True"]
    bare = _document_params("One line.", specs).splitlines()
    assert bare[:4] == ["One line.", "", "    Parameters", "    ----------"]
    assert bare[4:7] == generated
    doc = "Title.\n\n    Parameters\n    ----------\n    n : int\n        By hand.\n\n"
    doc += "    Notes\n    -----\n    x.\n    "
    out = _document_params(doc, specs)
    assert "By hand." in out and "Count" not in out and out.endswith("    x.\n    ")
    assert out.index("b : bool, default=True") < out.index("Notes")
    notes_only = _document_params("Title.\n\n    Notes\n    -----\n    x.\n    ", specs)
    assert notes_only.index("Parameters") < notes_only.index("Notes")


def test_generated_init_stores_unchanged_and_refuses_unknown_names():
    cls = MODELS["momentum/SimpleMomentumModel"]
    odd = object()  # no validation or conversion in __init__ (scikit-learn's rule)
    model = cls(window=odd)
    assert model.window is odd and model.mode == cls.param_specs["mode"].default
    with pytest.raises(TypeError, match="SimpleMomentumModel.*windw"):
        cls(windw=3)
    with pytest.raises(TypeError, match="positional"):
        cls(3)
    twin = pickle.loads(pickle.dumps(cls(window=20)))
    assert twin.get_params() == cls(window=20).get_params() and repr(twin) == repr(cls(window=20))


@pytest.mark.parametrize("text,shown", [("1e308", "1e+308"), ("-1e20", "-1e+20"), ("64", "64")])
def test_an_out_of_range_integer_is_quoted_short(text, shown):
    """A huge integer read from text ("1e308" is an integer to Python) is quoted as the
    user wrote it in the error, not as its 309 digits."""
    spec = IntParam(2, 63, default=10, help="Short lookback")
    with pytest.raises(ParameterError) as caught:
        spec.check("short_window", spec.parse(text))
    assert str(caught.value) == (
        f"short_window must be between 2 and 63 (got {shown}); Short lookback"
    )


def _bad_values(spec):
    if isinstance(spec, IntParam):  # 21.0 passed the check and failed deep in the maths
        return [spec.low - 1, spec.high + 1, float(spec.default)]
    if isinstance(spec, FloatParam):
        return [spec.low - abs(spec.high - spec.low) - 1, spec.high + abs(spec.high) + 1]
    if isinstance(spec, ChoiceParam):
        return ["__not_a_choice__"]
    if isinstance(spec, BoolParam):
        return ["yes"]
    raise AssertionError(f"unknown spec type {type(spec)}")


@pytest.mark.parametrize("key", KEYS)
def test_out_of_bounds_values_raise(key, common_data):
    cls = MODELS[key]
    for name, spec in cls.param_specs.items():
        for bad in _bad_values(spec):
            model = _model(cls, **{name: bad})
            with pytest.raises(ParameterError, match=name):
                model.fit(_data_for(cls, common_data))


@pytest.mark.parametrize("key", KEYS)
def test_template_contract(key):
    """Every model is the template: it implements _compute, never the entry points."""
    cls = MODELS[key]
    for entry in ("fit", "run", "predict_output", "predict"):
        assert getattr(cls, entry) is getattr(Model, entry), f"{key} overrides {entry}"
    assert cls._compute is not Model._compute, f"{key} does not implement _compute"
    assert not hasattr(cls, "test_params") and not hasattr(cls, "test_tickers")


@pytest.mark.parametrize("key", KEYS)
def test_min_history_is_a_positive_int(key):
    cls = MODELS[key]
    for model in (cls(), _model(cls)):
        bars = model.min_history()
        assert isinstance(bars, int | np.integer) and bars >= 1


@pytest.mark.parametrize("key", KEYS)
def test_runs_on_exactly_its_min_history(key, common_data):
    """min_history() dates are enough to run; one date fewer is a DataError saying how
    many days are needed and how many there are (VolatilityClusteringModel crashed in
    numpy on 21 dates: its 63-day autocorrelation window outgrew the data)."""
    cls = MODELS[key]
    data = _data_for(cls, common_data)
    need = _model(cls).min_history()
    exact = data.select(start=data.dates[-need])
    assert _model(cls).run(exact).primary.index.equals(exact.dates)
    if need > 1:
        with pytest.raises(DataError, match=f"at least {need} trading days.*has {need - 1},"):
            _model(cls).run(data.select(start=data.dates[-need + 1]))


@pytest.mark.parametrize("key", KEYS)
def test_a_corrupt_price_is_a_data_error_naming_it(key, common_data):
    """One real bar edited to 0, -5, inf or 1e308 (what a broken feed sends): a DataError
    naming the field, ticker, date and value, not a silent -100% return, an inf momentum,
    a 1e306 equity curve or a numpy traceback deep in an estimator."""
    from dataclasses import replace

    cls = MODELS[key]
    data = _data_for(cls, common_data)
    ticker, day = data.tickers[0], pd.Timestamp("2012-03-15")
    for bad, shown in ((0.0, "0"), (-5.0, "-5"), (np.inf, "inf"), (1e308, r"1e\+308")):
        close = data.adj_close.copy()
        close.loc[day, ticker] = bad
        with pytest.raises(
            DataError, match=f"adj_close price of {ticker} on 2012-03-15 is {shown}"
        ):
            _model(cls).run(replace(data, adj_close=close))
    high = data.high.copy()
    high.loc[day, ticker] = np.inf
    with pytest.raises(DataError, match="the high price of .* is inf; prices must be positive"):
        _model(cls).predict(replace(data, high=high))


@pytest.mark.parametrize("key", KEYS)
def test_an_empty_output_says_why(key, common_data):
    """One halted ticker (JPM's first real bar held for seven years): a model either
    refuses it (DataError), gives values, or warns; 20 of the 49 returned an all-NaN
    output with no word, which a page showed as a run without a result."""
    from dataclasses import replace

    cls = MODELS[key]
    one = common_data.select(tickers=["JPM"])
    held = {f: getattr(one, f).assign(JPM=getattr(one, f)["JPM"].iloc[0]) for f in _PRICES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # failed fits: judged below
        try:
            out = _model(cls).run(replace(one, **held))
        except DataError:
            return
    assert out.primary.notna().to_numpy().any() or out.warnings


@pytest.mark.parametrize("key", KEYS)
def test_every_entry_point_rejects_invalid_params(key, common_data):
    """predict and predict_output validate like run: the error names the parameter."""
    cls = MODELS[key]
    data = _data_for(cls, common_data)
    for name, spec in cls.param_specs.items():
        bad = _bad_values(spec)[0]
        for entry in ("run", "predict", "predict_output"):
            with pytest.raises(ParameterError, match=name):
                getattr(_model(cls, **{name: bad}), entry)(data)


@pytest.mark.parametrize("key", KEYS)
def test_clone_and_set_params(key):
    cls = MODELS[key]
    model = _model(cls)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    name, spec = next(iter(cls.param_specs.items()), (None, None))
    if name is not None:
        twin.set_params(**{name: spec.default})
        assert twin.get_params()[name] == spec.default


@pytest.mark.parametrize("key", KEYS)
def test_output_shape_and_range(key, common_data):
    cls = MODELS[key]
    data = _data_for(cls, common_data)
    out = _full_run(key, common_data)
    assert out.primary.index.equals(data.dates), "primary output must be indexed like the input"
    for name, frame in out.extras.items():
        assert frame.index.equals(data.dates), f"extras[{name!r}] must be indexed like the input"
    if cls.output_kind in (SIGNAL, VOLATILITY, WEIGHTS, REGIME):
        assert list(out.primary.columns) == data.tickers
    values = out.primary.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[np.isfinite(values)]
    assert finite.size > 0, "the model produced no value at all on 7 years of real data"
    if cls.output_kind == SIGNAL:
        assert finite.min() >= -1 - 1e-12 and finite.max() <= 1 + 1e-12
    if cls.output_kind == VOLATILITY:
        assert finite.min() >= 0
    if cls.output_kind == REGIME:
        assert np.array_equal(finite, np.round(finite)), "regime labels are integers"
    # a ticker that lists mid-sample has no value before its first price
    if "TSLA" in data.tickers and cls.output_kind not in (REGIME, RISK):
        first = data.adj_close["TSLA"].first_valid_index()
        before = out.primary.loc[: first - pd.Timedelta(days=1), "TSLA"]
        if cls.output_kind in (SIGNAL, VOLATILITY):
            assert before.isna().all() or (before.fillna(0) == 0).all()


@pytest.mark.parametrize("key", KEYS)
def test_refit_is_deterministic(key, common_data):
    cls = MODELS[key]
    first = _full_run(key, common_data)
    again = _model(cls).run(_data_for(cls, common_data))
    pd.testing.assert_frame_equal(first.primary, again.primary)
    for name in first.extras:
        pd.testing.assert_frame_equal(first.extras[name], again.extras[name])


@pytest.mark.parametrize("key", KEYS)
def test_causality(key, common_data):
    """Output up to t is the same with or without the data after t (several t)."""
    cls = MODELS[key]
    data = _data_for(cls, common_data)
    full = _full_run(key, common_data)
    for cutoff in CUTOFFS:
        part = _model(cls).run(data.truncate(cutoff))
        n = len(part.primary)
        assert n > 0
        frames = {"primary": (full.primary, part.primary)}
        frames.update({k: (full.extras[k], part.extras[k]) for k in part.extras})
        for name, (f_full, f_part) in frames.items():
            head = f_full.iloc[:n]
            assert head.index.equals(f_part.index)
            pd.testing.assert_frame_equal(
                head,
                f_part,
                check_exact=False,
                rtol=1e-9,
                atol=1e-12,
                obj=f"{key} {name} up to {cutoff}",
            )
