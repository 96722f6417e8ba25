"""The abscope Python SDK: route users in-process with the server's own hashing, send their
exposures and outcomes in the background, and manage experiments.

``pip install abscope`` installs this package alone (httpx and the standard library); the
service is the ``server`` extra. The client never imports server code: it routes with
:mod:`abscope.assignment`, which is pure Python, from the configuration the server
publishes at ``GET /sdk/config`` (:mod:`abscope.sdk_config`).

>>> from abscope.client import Client, AsyncClient, Decision
"""

from abscope.client._async import AsyncClient
from abscope.client._decisions import Decision
from abscope.client._errors import ApiError, ClientError, ServerUnavailable
from abscope.client._events import ClientStats, exposure_id
from abscope.client._sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "ClientStats",
    "Decision",
    "ServerUnavailable",
    "exposure_id",
]
