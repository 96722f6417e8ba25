"""The one error tree of abscope. Domain code raises these; the API and CLI map them once.

::

    AbscopeError
    ├── NotFound            404  an experiment (or variant) that does not exist
    ├── Conflict            409  a state that forbids the request (bad transition, id taken,
    │                            a log that contradicts the user's assignment, ...)
    ├── InvalidInput        422  a value that breaks a rule; ``field`` names it
    ├── StorageUnavailable  503  the store did not answer; see the class for what that means
    └── Busy                503  the service runs as much of some expensive work as it may at
                                 once (simulations); ``retry_after`` says when to try again
"""

from __future__ import annotations

__all__ = ["AbscopeError", "Busy", "Conflict", "InvalidInput", "NotFound", "StorageUnavailable"]


class AbscopeError(Exception):
    """Base of every error abscope raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AbscopeError):
    """The requested experiment or variant does not exist."""


class Conflict(AbscopeError):
    """The request cannot apply to the current state."""


class InvalidInput(AbscopeError):
    """A value is invalid; ``field`` is its dotted path, e.g. ``variants.1.weight``.

    ``location`` is where the field was sent (``body``, or ``query`` for a query parameter
    such as ``phase``); ``kind`` is a machine-readable error type, as pydantic's are.
    """

    def __init__(
        self, field: str, message: str, *, location: str = "body", kind: str = "value_error"
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message
        self.location = location
        self.kind = kind


class StorageUnavailable(AbscopeError):
    """The backing store did not answer.

    When the store could not be reached, nothing was applied. After a timeout nobody can
    know whether a write landed, so clients retry with the same ``event_id``: a retried
    event is counted once.

    ``message`` is for the operator's log and may name the server and the driver's error;
    ``public`` is what a client may be shown: the action that failed, never an address.
    """

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or "the store is unavailable"


class Busy(AbscopeError):
    """As much of an expensive kind of work runs (or waits) as the service allows; nothing
    was done. ``retry_after`` is the number of seconds after which a retry may get a turn."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
