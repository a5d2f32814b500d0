"""A signal model's output: (dates x tickers) arrays as frames on the data's grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mltrainer.data.market_data import MarketData
from mltrainer.models.base import ModelOutput
from mltrainer.numerics.frames import as_frame


def signal_output(
    data: MarketData,
    signal: np.ndarray,
    extras: dict[str, np.ndarray] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
) -> ModelOutput:
    """The signal and the named extra arrays as frames on ``data``'s dates and tickers.

    The arrays become the frames' memory (no copy): pass arrays that nothing else
    writes into.
    """
    frames = {name: as_frame(values, data) for name, values in (extras or {}).items()}
    return ModelOutput(as_frame(signal, data), frames, tables or {})
