"""Exceptions that carry a message a user can act on (what is wrong and how to fix it)."""


class KshotError(Exception):
    """Base class: the CLI prints these without a traceback."""


class DataError(KshotError):
    """A data set is missing, corrupt, or too small for the requested episodes."""


class CheckpointError(KshotError):
    """A checkpoint is missing, damaged, or of another kind than the caller needs."""


class ConfigError(KshotError):
    """A setting is unknown or out of range."""
