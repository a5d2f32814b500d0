"""Lighter (still valid) settings and fewer tickers for the slow models in the tests.

Test settings belong to the tests, not to the product classes: the checks themselves
are the same for every model; only these models run with cheaper parameters.
"""

from __future__ import annotations

FAST_PARAMS = {
    "ml/BaseMLModel": {"refit_every": 252, "max_train_samples": 5000},
    "ml/EnsembleMLModel": {
        "refit_every": 252,
        "n_estimators": 10,
        "max_depth": 3,
        "hidden_units": 8,
        "max_train_samples": 2000,
    },
    "ml/DeepLearningModel": {
        "refit_every": 252,
        "hidden_layers": "32",
        "max_epochs": 10,
        "max_train_samples": 3000,
    },
    "ml/ReinforcementLearningModel": {"refit_every": 252, "episodes": 2},
}

FAST_TICKERS = {
    "regime/RegimeSwitchingModel": ["JPM", "TSLA"],
}


def fast_params(cls) -> dict:
    """The test settings of a model class (empty: its defaults)."""
    return dict(FAST_PARAMS.get(f"{cls.family}/{cls.__name__}", {}))


def fast_tickers(cls) -> list[str] | None:
    """The tickers a slow model is checked on (None: all of the test data's)."""
    return FAST_TICKERS.get(f"{cls.family}/{cls.__name__}")
