"""What the workbench's services refuse, each with a German message and the HTTP status the
test-control API answers with (the command line prints the message)."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A request the workbench cannot carry out; nothing was changed."""

    status = 400

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Per input field, every problem found (a citizen's data that fails the registration
        # checks names them all at once).
        self.fields = fields or {}


class NotFound(WorkbenchError):
    status = 404


class Conflict(WorkbenchError):
    """Would clash with what exists (a username or an address in use)."""

    status = 409


class Invalid(WorkbenchError):
    """Well-formed, but the values are not acceptable."""

    status = 422
