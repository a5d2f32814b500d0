"""Declared parameter specifications: what a page turns into sliders and the CLI parses.

Each model class declares ``param_specs = {name: Spec(...)}``, the one declaration of
its parameters: :class:`~mltrainer.models.base.Model` generates the ``__init__`` that
takes those names by keyword with the specs' defaults. :func:`validate_params` checks
every value against its spec and raises :class:`~mltrainer.errors.ParameterError`
naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields
from typing import Any

from mltrainer.errors import ParameterError


class _Spec:
    """What every spec offers: ``check(name, value)``, ``parse(text)``, ``as_dict()``."""

    kind: str

    def check(self, name: str, value: Any) -> None:
        """Raise a ParameterError naming ``name`` if ``value`` is not allowed."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """The value a command-line string stands for (ParameterError if none)."""
        raise NotImplementedError

    def as_dict(self) -> dict:
        """The spec as a JSON-ready dict (``kind`` first), for ``models describe``."""
        out = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class _RangeParam(_Spec):
    """A number in ``[low, high]`` (a slider with ``step``); a subclass says which
    numbers (``_accepts``, ``_what``) and how a string reads (``parse``)."""

    low: float
    high: float
    default: float
    step: float = 1
    help: str = ""
    kind: str = field(default="number", init=False)
    _what = "a number"

    def _accepts(self, value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, (int, float))

    def check(self, name: str, value: Any) -> None:
        if not self._accepts(value):
            raise ParameterError(
                f"{name} must be {self._what} in [{self.low}, {self.high}] (got {value!r})"
            )
        if not self.low <= value <= self.high:
            shown = f"{float(value):.6g}" if abs(value) >= 1e15 else value  # not 309 digits
            raise ParameterError(
                f"{name} must be between {self.low} and {self.high} (got {shown}); "
                f"{self.help or 'see the parameter help'}"
            )


@dataclass(frozen=True)
class IntParam(_RangeParam):
    """An integer in ``[low, high]`` (a slider with ``step``)."""

    step: int = 1
    kind: str = field(default="int", init=False)
    _what = "an integer"

    def _accepts(self, value: Any) -> bool:
        # not 21.0, as scikit-learn's Interval(Integral): it failed deep in the maths
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    def parse(self, text: str) -> int:
        try:
            return int(float(text)) if float(text).is_integer() else int(text)
        except ValueError:
            raise ParameterError(f"expected an integer, got {text!r}") from None


@dataclass(frozen=True)
class FloatParam(_RangeParam):
    """A number in ``[low, high]`` (a slider with ``step``)."""

    step: float = 0.01
    kind: str = field(default="float", init=False)

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ParameterError(f"expected a number, got {text!r}") from None


@dataclass(frozen=True)
class ChoiceParam(_Spec):
    """One of ``choices`` (a select box)."""

    choices: tuple
    default: Any
    help: str = ""
    kind: str = field(default="choice", init=False)

    def check(self, name: str, value: Any) -> None:
        if value not in self.choices:
            raise ParameterError(
                f"{name} must be one of {', '.join(map(repr, self.choices))} (got {value!r})"
            )

    def parse(self, text: str) -> Any:
        for choice in self.choices:
            if str(choice) == text:
                return choice
        raise ParameterError(f"expected one of {', '.join(map(str, self.choices))}, got {text!r}")


@dataclass(frozen=True)
class BoolParam(_Spec):
    """True or false (a checkbox)."""

    default: bool
    help: str = ""
    kind: str = field(default="bool", init=False)

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise ParameterError(f"{name} must be true or false (got {value!r})")

    def parse(self, text: str) -> bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ParameterError(f"expected true or false, got {text!r}")


ParamSpec = IntParam | FloatParam | ChoiceParam | BoolParam


def validate_params(model: Any) -> None:
    """Check every declared parameter of ``model`` against its spec.

    Then call the model's own cross-parameter check (``_check_params``), if any.
    """
    cls = type(model).__name__
    for name, spec in type(model).param_specs.items():
        try:
            spec.check(name, getattr(model, name))
        except ParameterError as exc:
            raise ParameterError(f"{cls}: {exc}") from None
    check = getattr(model, "_check_params", None)
    if check is not None:
        try:
            check()
        except ParameterError as exc:
            raise ParameterError(f"{cls}: {exc}") from None


def parse_param_args(specs: dict, pairs: list[str]) -> dict:
    """Parse CLI ``name=value`` strings with the specs; errors name the parameter."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--param expects name=value (got {pair!r})")
        name, text = (s.strip() for s in pair.split("=", 1))
        if name not in specs:
            raise ParameterError(
                f"unknown parameter {name!r}; this model takes: {', '.join(specs) or 'none'}"
            )
        if name in out:  # the last one silently won: a run that is not the one asked for
            raise ParameterError(f"--param {name} given twice; give each parameter once")
        try:
            out[name] = specs[name].parse(text)
        except ParameterError as exc:
            raise ParameterError(f"{name}: {exc}") from None
    return out
