"""One exception base for sous; driver errors are wrapped where they enter."""

from __future__ import annotations

# The most of an error's text a row keeps (a queue row's last_error, a menu job's error_message).
STORED_ERROR_CHARS = 2000


class SousError(Exception):
    """Base of every error sous raises on purpose."""

    code = "INTERNAL_ERROR"


class ConfigError(SousError):
    """Settings are missing or invalid; the message names every problem."""

    code = "CONFIG_ERROR"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


class DatabaseError(SousError):
    """A database call failed (wraps the driver's error)."""

    code = "DATABASE_ERROR"


class ProviderError(SousError):
    """A model provider failed: timeout, transport error or an invalid answer."""

    code = "PROVIDER_ERROR"

    def __init__(self, provider: str, kind: str, message: str) -> None:
        self.provider = provider
        self.kind = kind
        super().__init__(f"{provider}: {kind}: {message}")


class InvalidInput(SousError):
    """Input that can never succeed; callers turn it into a 4xx or a rejected row."""

    code = "INVALID_INPUT"
