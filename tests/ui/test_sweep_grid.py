"""A sweep "around the current values" always contains the current value (issue 13)."""

from __future__ import annotations

import pytest

from mltrainer.models.params import FloatParam, IntParam
from mltrainer.models.registry import MODELS
from ui.lab import grid_values

NUMERIC = [
    (key, name, spec)
    for key, cls in sorted(MODELS.items())
    for name, spec in cls.param_specs.items()
    if isinstance(spec, IntParam | FloatParam)
]


@pytest.mark.parametrize(("key", "name", "spec"), NUMERIC, ids=lambda v: str(v)[:40])
def test_grid_contains_the_current_value(key, name, spec):
    centres = {spec.default, spec.low, spec.high}
    for centre in centres:
        for n in range(2, 7):
            values = grid_values(spec, n, centre)
            assert centre in values, f"{key} {name}={centre}, n={n}: {values}"
            assert len(values) <= n and values == sorted(values)
            assert all(spec.low <= v <= spec.high for v in values)


def test_reported_cases():
    specs = MODELS["momentum/SimpleMomentumModel"].param_specs
    assert grid_values(specs["window"], 3, 10) == [5, 10, 20]  # was [5, 12, 20]
    assert grid_values(specs["threshold"], 3, 0.02) == [0.01, 0.02, 0.04]  # was 0.025 in it
