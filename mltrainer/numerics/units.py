"""Annualisation: the one trading-days-per-year constant used everywhere."""

from __future__ import annotations

import math

TRADING_DAYS = 252
"""Trading days per year: daily returns and variances are annualised with it."""

SQRT_TRADING_DAYS = math.sqrt(TRADING_DAYS)
"""``sqrt(252)``: annualises a daily standard deviation."""
