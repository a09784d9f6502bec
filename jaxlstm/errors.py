"""Typed exceptions: every error a user can cause is one of these, with a one-line message and a fix."""

__all__ = ["ConfigError", "DataError", "JaxlstmError", "RunError", "TrainingError"]


class JaxlstmError(Exception):
    """Base class of jaxlstm's user-facing errors; the CLI prints the message and exits with status 2."""


class DataError(JaxlstmError):
    """A CSV file or its contents cannot be used (missing file, bad column, NaN, too few rows, ...)."""


class ConfigError(JaxlstmError):
    """An argument or option is out of range or inconsistent (window, split, batch size, ...)."""


class RunError(JaxlstmError):
    """A run directory cannot be written, read or reused (exists already, corrupt, other architecture)."""


class TrainingError(JaxlstmError):
    """Training cannot go on (the loss or a gradient is NaN or infinite)."""
