"""Exceptions with messages meant for users: each says what was wrong and what to do."""


class MLTrainerError(Exception):
    """Base class of every error the package raises on purpose."""


class DataError(MLTrainerError, ValueError):
    """Input data is missing, malformed or inconsistent (names the file/ticker/URL)."""


class SourceError(MLTrainerError):
    """A data source (HTTP API, web page) failed: network, rate limit, bad response."""


class ParameterError(MLTrainerError, ValueError):
    """A model parameter is outside its declared specification."""
