"""The SDK's errors: raised by the management calls (list, create, results, ...), never by
``route``, which falls back to the control instead.

::

    ClientError
     ├── ApiError            the server answered 4xx: the request is wrong (status, fields)
     └── ServerUnavailable   no answer, a timeout, or a 5xx: try again later
"""

from __future__ import annotations

__all__ = ["ApiError", "ClientError", "ServerUnavailable"]


class ClientError(Exception):
    """Base of the SDK's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The server refused the request (a 4xx), with what its body says.

    ``fields`` lists the request fields a validation error names (``"body.weights"``...).
    """

    def __init__(self, status_code: int, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.detail = message
        self.fields = fields


class ServerUnavailable(ClientError):
    """The server could not be reached, timed out, or answered 5xx."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
