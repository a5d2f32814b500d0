"""The model base class and the output container every model returns.

Models follow scikit-learn's estimator rules: ``__init__`` stores its arguments
unchanged (so ``get_params``/``set_params``/``clone`` come from
:class:`sklearn.base.BaseEstimator`), ``fit`` validates and returns ``self``, and the
maths lives in pure functions beside the class. The ``__init__`` is not written by
hand: :class:`Model` generates it from the class's ``param_specs`` (and
``component_params``), so each parameter is declared once.

Time contract (checked for every registered model by ``tests/models/test_common.py``):
the output at date t depends only on data up to t. Anything estimated (k-means,
regressions, GARCH) is re-estimated inside ``predict_output`` on a schedule, from data
strictly before the dates it is applied to; ``fit`` on a longer history must not change
earlier outputs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pandas as pd
from sklearn.base import BaseEstimator, clone  # noqa: F401  (clone re-exported)

from mltrainer import fmt
from mltrainer.data.market_data import MarketData
from mltrainer.errors import DataError, ParameterError
from mltrainer.models.params import validate_params
from mltrainer.numerics.frames import check_prices

# Output kinds: what the primary frame of a model's output holds.
SIGNAL = "signal"  # in [-1, 1] per (date, ticker)
VOLATILITY = "volatility"  # annualised forecast for t+1 from data up to t, per (date, ticker)
WEIGHTS = "weights"  # target portfolio weight per (date, ticker)
REGIME = "regime"  # integer regime label per (date, ticker or index)
RISK = "risk"  # portfolio-level risk figures per date (columns are measures)
OUTPUT_KINDS = (SIGNAL, VOLATILITY, WEIGHTS, REGIME, RISK)


@dataclass
class ModelOutput:
    """What a model computed.

    Attributes
    ----------
    primary : DataFrame
        Indexed exactly like the input dates. Columns are the tickers for the kinds
        signal, volatility, weights and regime; named measures for kind risk.
    extras : dict of DataFrame
        Further date-indexed frames (levels, probabilities, components); subject to the
        same causality rule as ``primary``.
    tables : dict of DataFrame
        Summaries that are not time series (transition matrix, per-regime statistics,
        fitted parameters); computed from the whole input and labelled as such.
    warnings : tuple of str
        What the user must be told about this run: estimator fits that failed (their
        outputs left NaN) or did not converge. A ``RuntimeWarning`` reaches no one in a
        page or a JSON document; carried here, the CLI and the pages show them.
    """

    primary: pd.DataFrame
    extras: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One date-indexed frame: columns (output, ticker) where there are several outputs."""
        if not self.extras:
            return self.primary
        parts = {"primary": self.primary, **self.extras}
        return pd.concat(parts, axis=1, names=["output", "column"])

    def since(self, start: object) -> ModelOutput:
        """The frames from ``start`` on (all of them for None); tables kept whole."""
        cut = slice(None if start is None else pd.Timestamp(start), None)
        extras = {k: v.loc[cut] for k, v in self.extras.items()}
        return ModelOutput(self.primary.loc[cut], extras, self.tables, self.warnings)


class Model(BaseEstimator):
    """Base of every registered model: the template every model follows.

    Subclasses declare ``family``, ``description``, ``output_kind`` and
    ``param_specs`` (optionally ``requires``: fields of MarketData that must be
    present, e.g. ``("volume",)``, ``("ohlc",)`` or ``("sectors",)``), and write no
    ``__init__``: the one generated from the specs (:meth:`__init_subclass__`) takes
    every parameter by keyword with the spec's default and stores it unchanged. They override
    :meth:`min_history` when they need more than two dates, may add cross-parameter
    checks in ``_check_params``, and implement one method, :meth:`_compute`. They do
    not override :meth:`run`, :meth:`predict_output` or :meth:`predict`: every entry
    point validates the parameters and checks the data first, so a bad setting is a
    :class:`~mltrainer.errors.ParameterError` naming the parameter, never a numpy
    error from deep inside the maths.

    Parallelism and progress are not parameters (they do not change a result): they
    come from :func:`mltrainer.numerics.parallel.execution`.
    """

    family: str = ""
    description: str = ""
    output_kind: str = SIGNAL
    param_specs: dict = {}
    requires: tuple = ()
    component_params: tuple[str, ...] = ()
    """``__init__`` arguments that hold other models (an ensemble's members), not
    settings: they have no spec (no slider) and default to None, meaning today's
    members at their defaults."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            cls.__init__ = _spec_init(cls)
        if cls.__dict__.get("__doc__") and cls.param_specs:
            cls.__doc__ = _document_params(cls.__doc__, cls.param_specs)

    def fit(self, data: MarketData, y: object = None) -> Model:
        """Validate the parameters and check the data; returns ``self``.

        The models are walk-forward: whatever they estimate is re-estimated inside
        :meth:`predict_output` from data before each date, so ``fit`` learns nothing
        that could leak into later outputs.
        """
        self._validate(data)
        self.n_tickers_in_ = data.n_tickers
        return self

    def predict_output(self, data: MarketData) -> ModelOutput:
        """Validate, then compute: the full output (primary frame, extras, tables)."""
        self._validate(data)
        return self._output(data)

    def predict(self, data: MarketData) -> pd.DataFrame:
        """The primary output frame (see :class:`ModelOutput`), validated like ``run``."""
        return self.predict_output(data).primary

    def run(self, data: MarketData) -> ModelOutput:
        """``fit`` then compute on the same data (what the CLI and pages call)."""
        return self.fit(data)._output(data)

    def _validate(self, data: MarketData) -> None:
        validate_params(self)
        self.check_data(data)

    def _output(self, data: MarketData) -> ModelOutput:
        out = self._compute(data)
        out = out if isinstance(out, ModelOutput) else ModelOutput(out)
        if not out.warnings and not out.primary.notna().to_numpy().any():  # say why it is empty
            out.warnings = (
                f"{type(self).__name__} gave no value for any ticker on any date "
                f"{fmt.date_range(data.dates[0], data.dates[-1])}: its windows found no usable "
                "data (prices that never move, too few dates or tickers); the output is empty",
            )
        return out

    def _compute(self, data: MarketData) -> ModelOutput | pd.DataFrame:  # pragma: no cover
        """The maths on validated parameters and checked data (subclasses implement)."""
        raise NotImplementedError

    def _require_order(self, low: str, high: str, strict: bool = True, hint: str = "") -> None:
        """Raise a ParameterError unless the parameter ``low`` is below ``high`` (at most
        ``high`` when not ``strict``); ``hint`` ends the message (typical values)."""
        a, b = getattr(self, low), getattr(self, high)
        if (a >= b) if strict else (a > b):
            relation = "must be below" if strict else "cannot exceed"
            raise ParameterError(f"{low} ({a}) {relation} {high} ({b}){hint}")

    def min_history(self) -> int:
        """Dates needed before the first value can exist (models override): a full
        ``window`` of returns for a model with a ``window`` parameter, else two dates."""
        return self.window + 1 if "window" in self.param_specs else 2

    def check_data(self, data: MarketData) -> None:
        """Raise a DataError if the data lacks a required field or enough dates."""
        check_requirements(self, data)
        check_prices(type(self).__name__, data)
        require_history(type(self).__name__, data, self.min_history())

    @classmethod
    def key(cls) -> str:
        """The registry key, ``family/ClassName``."""
        return f"{cls.family}/{cls.__name__}"


def _spec_init(cls: type[Model]):
    """An ``__init__`` taking ``cls.param_specs`` then ``cls.component_params`` by keyword.

    Its ``__signature__`` (defaults: the specs', None for components) is what
    :meth:`~sklearn.base.BaseEstimator.get_params` reads; it stores every argument
    unchanged and raises TypeError for an unknown name, as a written one would.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(n, keyword, default=s.default) for n, s in cls.param_specs.items()]
    params += [inspect.Parameter(n, keyword, default=None) for n in cls.component_params]
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params]
    )

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}(): {exc}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    return __init__


def _document_params(doc: str, specs: dict) -> str:
    """``doc`` with a numpydoc Parameters section in spec order: the hand-written entries,
    and for every spec the section does not describe an entry made from the spec (type,
    range, default, help).

    A docstring describes by hand only what the help does not say (a formula, how
    parameters interact); the rest would repeat the specs.
    """
    lines = doc.splitlines()
    pad = " " * min((len(x) - len(x.lstrip()) for x in lines[1:] if x.strip()), default=4)
    heads = [i for i in range(len(lines) - 1) if set(lines[i + 1].strip()) == {"-"}]
    start = next((i for i in heads if lines[i].strip() == "Parameters"), None)
    end = min((i for i in heads if start is None or i > start), default=len(lines))
    if start is None:
        body_start = end
    else:
        body_start, end = (
            start + 2,
            start + 2 + len("\n".join(lines[start + 2 : end]).rstrip().splitlines()),
        )
    groups = []  # (names, lines) of the hand-written entries
    for line in lines[body_start:end]:
        if line[len(pad) :][:1] not in " " and not (groups and groups[-1][1][-1].endswith(",")):
            groups.append(([], [line]))
        else:
            groups[-1][1].append(line)
    for names, entry in groups:
        head = " ".join(x.strip() for x in entry if x[len(pad) :][:1] != " ").split(" : ")[0]
        names += [name.strip() for name in head.split(",")]
    out, done = [], set()
    for name in [*specs, *(n for names, _ in groups for n in names)]:
        group = next((g for g in groups if name in g[0]), None)
        if name in done:
            continue
        if group is not None:
            out += group[1]
            done.update(group[0])
        else:
            text = specs[name].help.rstrip(".") + "."
            out += [f"{pad}{name} : {_spec_type(specs[name])}", f"{pad}    {text}"]
            done.add(name)
    if start is None and end < len(lines):  # a new section before the first one
        out = [f"{pad}Parameters", f"{pad}----------", *out, ""]
    elif start is None:  # a new section at the end
        while not lines[end - 1].strip():
            end -= 1
        body_start = end
        out = ["", f"{pad}Parameters", f"{pad}----------", *out]
    lines[body_start:end] = out
    return "\n".join(lines) + ("\n" if doc.endswith("\n") else "")


def _spec_type(spec) -> str:
    """The numpydoc type of a spec's parameter: type, allowed values, default."""
    if spec.kind == "choice":
        return "{" + ", ".join(map(repr, spec.choices)) + f"}}, default={spec.default!r}"
    if spec.kind == "bool":
        return f"bool, default={spec.default}"
    return f"{spec.kind} in [{spec.low}, {spec.high}], default={spec.default}"


def check_requirements(model: Model, data: MarketData) -> None:
    """Raise a DataError saying which field a model needs that the data lacks."""
    name = type(model).__name__
    if data.n_tickers == 0 or len(data.dates) == 0:
        raise DataError(f"{name}: the data is empty (no tickers or no dates)")
    for attr, what, verb, hint in (_NEEDS[need] for need in model.requires):
        if not getattr(data, attr):
            raise DataError(f"{name} needs {what}, which source '{data.source}' {verb}{hint}")


_NEEDS = {  # a ``requires`` field -> (MarketData attribute, what it is, message ending)
    "volume": ("has_volume", "traded volume", "does not have", "; use the local or a live source"),
    "ohlc": ("has_ohlc", "high/low prices", "does not have", "; use the local or a live source"),
    "sectors": ("sectors", "GICS sectors for the tickers", "did not provide", ""),
}


def require_history(name: str, data: MarketData, bars: int) -> None:
    """Raise if the data has fewer than ``bars`` dates (the window cannot be filled)."""
    if len(data.dates) < bars:  # only after check_requirements: the data has dates
        raise DataError(
            f"{name} needs at least {bars} trading days of history for its windows; the data "
            f"has {len(data.dates)}, {data.dates[0].date()} to {data.dates[-1].date()}"
        )
