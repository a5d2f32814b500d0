"""Numerical building blocks shared by the models, measures and backtests.

One home for each tool, written once and tested against pandas / scipy:

- :mod:`~mltrainer.numerics.rolling`: NaN-aware trailing windows on (dates x tickers)
  arrays (sums, means, standard deviations, extremes, ranks, returns).
- :mod:`~mltrainer.numerics.filters`: exponential (EMA) and Wilder smoothing.
- :mod:`~mltrainer.numerics.schedule`: walk-forward refit schedules.
- :mod:`~mltrainer.numerics.units`: the trading-days-per-year annualisation constant.
- :mod:`~mltrainer.numerics.threads`: one-thread BLAS/OpenMP sections for small fits.
- :mod:`~mltrainer.numerics.frames`: array <-> frame helpers.
- :mod:`~mltrainer.numerics.parallel`: the per-ticker task runner and its execution
  settings (jobs, progress callback).

Nothing here knows about a particular model.
"""
