"""Errors a user can cause or fix: the CLI prints them as one line and exits with `exit_code`."""


class DeepsearchError(Exception):
    """An error with a one-line, user-facing message."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(DeepsearchError):
    """A bad configuration value, file or key."""

    exit_code = 2


class UsageError(DeepsearchError):
    """Bad command-line input (empty question, missing path, …)."""

    exit_code = 2
