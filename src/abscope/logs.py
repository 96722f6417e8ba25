"""Log lines: uvicorn's text, or one JSON object per line, each with its request's id.

``ABSCOPE_LOG_FORMAT=json`` (:class:`abscope.config.Settings`) makes ``abscope serve`` log
every line of abscope's loggers (``abscope.*``) and uvicorn's (``uvicorn.error``, and
``uvicorn.access`` when the access log is on) to stderr as one JSON object:

=============  ============================================================================
key            value
=============  ============================================================================
``time``       when, ISO 8601 in UTC with milliseconds: ``2026-12-01T16:15:39.123Z``
``level``      ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``
``logger``     the logger's name: ``abscope.api``, ``uvicorn.error``, ``uvicorn.access``
``message``    the message, its arguments filled in
``request_id`` the id of the request being served (:data:`request_id`), ``null`` outside one
``exception``  the traceback, only on a line that logged an exception
=============  ============================================================================

An access line also has ``client``, ``method``, ``path`` and ``status``. The request id is
kept in a :class:`contextvars.ContextVar` that :mod:`abscope.api.request_id` sets for the
time of each request, so lines logged in the thread pool during the request carry it too.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any, Final, Literal

__all__ = ["JsonFormatter", "LogFormat", "log_config", "request_id"]

LogFormat = Literal["text", "json"]

request_id: Final[ContextVar[str | None]] = ContextVar("abscope_request_id", default=None)
"""The id of the request being served in this context, or ``None``."""

_ACCESS_FIELDS: Final = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (the keys of the module's table)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        # uvicorn's access line: '%s - "%s %s HTTP/%s" %d' of these five.
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            if len(record.args) == len(_ACCESS_FIELDS):
                line.update(zip(_ACCESS_FIELDS, record.args, strict=True))
                del line["http_version"]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_config(log_format: LogFormat, level: str = "info") -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``log_format``: ``None`` (uvicorn's own) for text.

    For JSON, one stderr handler with :class:`JsonFormatter` for uvicorn's loggers and
    abscope's (``level`` for abscope's, as uvicorn sets its own from ``--log-level``). It is
    plain data: written to a file as JSON, it is ``uvicorn --log-config``'s too.
    """
    if log_format == "text":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["json"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "abscope.logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {**logger, "level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {**logger, "level": "INFO"},
            "abscope": {**logger, "level": level.upper() if level != "trace" else "DEBUG"},
        },
    }
