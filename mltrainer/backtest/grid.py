"""Grids of parameter settings for a sweep: every combination, validated and counted."""

from __future__ import annotations

import itertools
import math

from mltrainer.errors import ParameterError
from mltrainer.models.base import Model
from mltrainer.models.params import validate_params

MAX_GRID_POINTS = 10_000  # settings one sweep may try (its deflated Sharpe counts them all)


def expand_grid(
    model_cls: type[Model], grid: dict | None, base_params: dict | None = None
) -> list[dict]:
    """Every combination of a grid (dict of lists) over a model's params, validated."""
    grid = dict(grid or {})
    base = dict(base_params or {})
    specs = model_cls.param_specs
    for name, values in grid.items():
        if name not in specs:
            raise ParameterError(
                f"grid parameter {name!r} is not a parameter of "
                f"{model_cls.__name__}; it takes: {', '.join(specs) or 'none'}"
            )
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"grid parameter {name!r} needs a non-empty list of values")
    names = list(grid)
    # a value given twice is one setting tried, not two (the DSR counts the settings)
    values = [list(dict.fromkeys(grid[k])) for k in names]
    n_points = math.prod(len(v) for v in values)
    if n_points > MAX_GRID_POINTS:  # 50,702 settings were accepted: hours, unannounced
        raise ParameterError(
            f"the grid has {n_points:,} settings ({' x '.join(str(len(v)) for v in values)}); "
            f"at most {MAX_GRID_POINTS:,}, each a walk-forward over every fold: take fewer "
            "values per parameter"
        )
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)] or [{}]
    out = []
    for point in points:
        params = {**base, **point}
        validate_params(model_cls(**params))  # the error names the parameter and the bounds
        out.append(params)
    return out
