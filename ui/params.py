"""Parameter specs -> Streamlit widgets. The one place that knows both.

Each spec kind maps to one widget through a table (no if/elif on model names); the
help text becomes the tooltip; values can be seeded from the URL so a shared link
reproduces a run.
"""

from __future__ import annotations

import math

import streamlit as st

from mltrainer.models.params import BoolParam, ChoiceParam, FloatParam, IntParam
from ui import links

MAX_SLIDER_STEPS = 5_000  # beyond this many positions a slider cannot be aimed: a number box


def _decimals(step: float) -> int:
    """Decimals that show every value a step of ``step`` can reach (0.005 -> 3)."""
    if step <= 0 or float(step).is_integer():
        return 0
    return min(
        8,
        max(0, -math.floor(math.log10(step) + 1e-9))
        + (0 if round(step / 10 ** math.floor(math.log10(step)), 9).is_integer() else 1),
    )


def _int(label, spec: IntParam, value, key, bind):
    step = spec.step or 1
    if (spec.high - spec.low) / step > MAX_SLIDER_STEPS:
        return st.number_input(
            label, spec.low, spec.high, int(value), step=step, help=spec.help, key=key, bind=bind
        )
    return st.slider(
        label, spec.low, spec.high, int(value), step=step, help=spec.help, key=key, bind=bind
    )


def _float(label, spec: FloatParam, value, key, bind):
    step = float(spec.step)
    fmt = f"%.{_decimals(step)}f"
    if (spec.high - spec.low) / step > MAX_SLIDER_STEPS:
        return st.number_input(
            label,
            float(spec.low),
            float(spec.high),
            float(value),
            step=step,
            format=fmt,
            help=spec.help,
            key=key,
            bind=bind,
        )
    return st.slider(
        label,
        float(spec.low),
        float(spec.high),
        float(value),
        step=step,
        format=fmt,
        help=spec.help,
        key=key,
        bind=bind,
    )


def _choice(label, spec: ChoiceParam, value, key, bind):
    options = list(spec.choices)
    return st.selectbox(
        label,
        options,
        index=options.index(value),
        help=spec.help,
        key=key,
        format_func=str,
        bind=bind,
    )


def _bool(label, spec: BoolParam, value, key, bind):
    return st.checkbox(label, value=bool(value), help=spec.help, key=key, bind=bind)


WIDGETS = {IntParam: _int, FloatParam: _float, ChoiceParam: _choice, BoolParam: _bool}


def coerce(spec, value, name: str = "value") -> tuple:
    """A value from the URL (text) or session, parsed and checked: ``(value, problem)``,
    the default and what was wrong with it when invalid."""
    try:
        parsed = spec.parse(value) if isinstance(value, str) else value
        spec.check(name, parsed)
        return parsed, None
    except Exception as exc:  # a bad link falls back to the default, said on the page
        return spec.default, f"{exc}; using the default {spec.default!r}"


# Parameters renamed since links were shared (new name -> old names): an old link still
# sets them. min_history of the volatility and market-condition regime models shadowed
# Model.min_history() (issue 12).
RENAMED_PARAMS = {"min_observations": ("min_history",)}


def _link_value(name: str, key_prefix: str, initial: dict, bind: bool) -> tuple | None:
    """``(link key, text)`` a link gives parameter ``name``, under its name or an old one.

    Bound widgets read their own key from the URL; only their old keys are looked up here.
    """
    for link_name in (name, *RENAMED_PARAMS.get(name, ())):
        if link_name in initial:
            return f"p.{link_name}", initial[link_name]
        old_key = f"{key_prefix}:{link_name}"
        if bind and link_name != name and old_key in st.query_params:
            return old_key, st.query_params[old_key]
    return None


def param_widgets(
    model_cls, key_prefix: str, initial: dict | None = None, columns: int = 2, bind: bool = False
) -> dict:
    """Draw one widget per declared parameter; return {name: value}.

    ``initial`` (e.g. from st.query_params) seeds the widgets the first time they are
    drawn. ``bind``: each widget keeps its value in the URL under its key
    (``{key_prefix}:{name}``), so a copied link reproduces the settings.
    """
    initial = initial or {}
    values = {}
    specs = list(model_cls.param_specs.items())
    cols = st.columns(columns) if specs else []
    for i, (name, spec) in enumerate(specs):
        key = f"{key_prefix}:{name}"
        value = spec.default
        found = _link_value(name, key_prefix, initial, bind)
        if found is not None:
            value, problem = coerce(spec, found[1], name)
            if problem:
                st.warning(links.plain(f"Link parameter {found[0]}: {problem}"))
        with cols[i % columns]:
            values[name] = WIDGETS[type(spec)](
                name.replace("_", " "), spec, value, key, "query-params" if bind else None
            )
    return values
