"""Stress testing: historical replays and hypothetical shocks of a weighted portfolio.

The maths is in pure functions (data in, result out), one module per kind of scenario
(:mod:`~mltrainer.risk_stress.historical`, :mod:`~mltrainer.risk_stress.shocks`,
:mod:`~mltrainer.risk_stress.liquidity`) over the shared book and result of
:mod:`~mltrainer.risk_stress.base`; :mod:`mltrainer.risk_stress.scenarios` is the
catalogue with the conventions, and :mod:`~mltrainer.risk_stress.rolling` the losses of
an equal-weight book through time. :class:`~mltrainer.models.stress.StressTestingModel`
wraps them for the model registry, and :mod:`mltrainer.reports.stress_report` turns them
into a stakeholder report. This package depends on ``data``, ``measures``, ``numerics``
and ``errors`` only, never on ``models`` (``tests/test_import_graph.py`` checks that no
package cycle comes back).
"""

from mltrainer.risk_stress import scenarios
from mltrainer.risk_stress.scenarios import *  # noqa: F403  (the catalogue is the API)

__all__ = scenarios.__all__
