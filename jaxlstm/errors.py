"""Typed exceptions: every error a user can cause is one of these, with a one-line message and a fix; and `plural`,
the count and noun that their messages (and the commands' printouts) write."""

__all__ = ["ConfigError", "DataError", "JaxlstmError", "RunError", "TrainingError", "plural"]


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


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` for a message: the noun as it is for a count of 1, else ``many`` (default: ``noun``
    with an ``s``); a float count is written with ``:g``.

    >>> plural(1, "day"), plural(0, "row"), plural(3, "test day"), plural(2, "process", "processes"), plural(6.5, "day")
    ('1 day', '0 rows', '3 test days', '2 processes', '6.5 days')
    """
    word = noun if count == 1 else many or f"{noun}s"
    return f"{count:g} {word}" if isinstance(count, float) else f"{count} {word}"
