"""One-thread BLAS/OpenMP sections for many small fits."""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

_CONTROLLER: list[ThreadpoolController] = []


def single_thread() -> AbstractContextManager:
    """A context in which BLAS and OpenMP use one thread (libraries scanned once).

    Small fits (k-means, mixtures, GARCH likelihoods, Markov filters, gradient boosting
    on a refit's few thousand rows) gain nothing from threads, and on a busy machine
    oversubscription made a k-means fit 40x slower. One thread also makes an
    optimiser's result the same in the main process and in a worker (SLSQP lands on
    optima that differ in the 5th digit with the BLAS thread count).
    """
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)
