"""One error hierarchy for everything segscope can tell a user went wrong.

The CLI turns a :class:`SegscopeError` into one line on stderr and exit code 2;
the TUI turns it into a notification. Anything else escaping is a bug.
"""

from __future__ import annotations


class SegscopeError(Exception):
    """A problem the user can act on: ``message`` says what, ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint folded into a single line (no newlines survive)."""
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class DataError(SegscopeError):
    """The input data cannot be read or does not have what segscope needs."""


class WorkspaceError(SegscopeError):
    """The workspace is missing, incomplete, locked or from an incompatible version."""


class StoreError(SegscopeError):
    """The vector store cannot be reached or used: a Chroma server that does not answer, or refuses a request."""


class ParameterError(SegscopeError):
    """A run parameter (k, alpha, algorithm, ...) is out of range for this data."""


class EngineError(SegscopeError):
    """The distributed engine cannot run: Ray is not installed, or no cluster answers at the address given."""
