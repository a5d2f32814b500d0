"""The one explicit registry of models, keyed ``family/ClassName``.

Each family module lists its classes in a ``MODELS`` tuple; this module joins them.
Two families may both have a class of the same name (risk and sizing both have a
``RiskParityModel``): the family prefix keeps them apart.
"""

from __future__ import annotations

from mltrainer.errors import ParameterError
from mltrainer.models import ml, momentum, regime, risk, sizing, technical, volatility, volume
from mltrainer.models.base import Model

FAMILIES = {
    "momentum": momentum,
    "technical": technical,
    "volume": volume,
    "volatility": volatility,
    "regime": regime,
    "risk": risk,
    "sizing": sizing,
    "ml": ml,
}

MODELS = {
    f"{family}/{cls.__name__}": cls for family, module in FAMILIES.items() for cls in module.MODELS
}

for _key, _cls in MODELS.items():
    if _cls.family != _key.split("/")[0]:
        raise RuntimeError(f"{_key}: class declares family {_cls.family!r}")


def get_model(key: str) -> type[Model]:
    """The model class for a registry key, with a helpful error for an unknown one."""
    try:
        return MODELS[key]
    except KeyError:
        near = [k for k in MODELS if key.lower() in k.lower()]
        hint = f"; did you mean {', '.join(near[:5])}?" if near else "; see `models list`"
        raise ParameterError(f"unknown model {key!r}{hint}") from None


def describe(key: str) -> dict:
    """Registry entry as a JSON-ready dict: family, name, description, specs, output kind."""
    cls = get_model(key)
    return {
        "key": key,
        "family": cls.family,
        "name": cls.__name__,
        "description": cls.description,
        "output_kind": cls.output_kind,
        "requires": list(cls.requires),
        "params": {name: spec.as_dict() for name, spec in cls.param_specs.items()},
    }


def by_family() -> dict[str, list[str]]:
    """Registry keys grouped by family, in registry order."""
    out: dict[str, list[str]] = {}
    for key in MODELS:
        out.setdefault(key.split("/")[0], []).append(key)
    return out
