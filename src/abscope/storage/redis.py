"""The Redis backend: one Redis server or a Redis Cluster, with the same keys and scripts.

Every key is built by :mod:`abscope.storage.keys` (its docstring is the table of keys). All
keys of one experiment share the hash tag ``{experiment_id}``, so the multi-key writes below
are single Lua script calls, atomic on one server and on a cluster alike:

* ``lua/record_events.lua`` applies a batch of one experiment's events (any phases) in order.
  A batch that spans experiments is one MULTI/EXEC transaction of such calls on one server,
  so it applies whole; on a cluster the experiments live on different nodes, so it is one
  call per experiment, and when a later call fails the answer says which events were not
  applied (``unavailable``);
* ``lua/save_experiment.lua`` is the compare-and-set on the configuration hash;
* ``lua/assign_if_absent.lua`` stores a sticky assignment unless one exists;
* ``lua/delete_data.lua`` deletes an experiment's data keys;
* ``lua/acquire_lease.lua`` and ``lua/release_lease.lua`` take, renew and give up a lease
  (one key outside every experiment's slot, expiring on the server: an expired lease is
  free without anyone releasing it).

The events of named metrics are counted by ``record_events.lua`` too, in the same call as
the exposure they may register, so they are as atomic and idempotent as the primary's.
A batch without them passes none of the metric keys, and the script's work for it is what
it was before metrics existed, but for one string comparison per exposure. A request of a
quantile metric carries its counter increments in its packed argument (kind
``metric_quantile``); the script sums them over the batch and applies them with ``HINCRBY``
to the phase's quantiles hash at the end, in the same call, never reading them. A named
metric's CUPED covariate travels in its exposure's packed value (``c;name,c;...``) or as a
backfill item of kind ``metric_covariate``; a batch carrying one passes the metric keys
too. Whether a phase has any metric covariate is looked up once per call (``EXISTS``), so
metric events of an experiment without them cost one call per batch, not one per event.

Scripts are called by SHA1 (EVALSHA); only a server that answers NOSCRIPT (it restarted, or
never ran the script) gets the source, once, by EVAL on the node that serves the keys.
Nothing uses KEYS or SCAN: deletion enumerates the keys from the experiment's set of phases.

Connecting
----------
``RedisStore.from_url("redis://host:6379/0")`` talks to one server;
``RedisStore.from_url("redis+cluster://host:7000")`` (or ``cluster=True`` with a
``redis://`` URL) to a Redis Cluster, through any one of its nodes. ``rediss://`` and
``rediss+cluster://`` use TLS. A ready client (``redis.Redis`` or
``redis.cluster.RedisCluster`` with ``decode_responses=True``) can be passed instead; the
store then leaves closing it to its owner.

Failures
--------
Sockets time out after :data:`SOCKET_TIMEOUT` seconds. Opening a connection is retried
(:data:`CONNECT_ATTEMPTS` attempts with a short exponential backoff); a command is never
retried, because after a timeout nobody knows whether the server applied it, and a blind
retry could count a batch twice (the caller may retry: events with an ``event_id`` are then
counted once). Every Redis error becomes :class:`~abscope.errors.StorageUnavailable`, whose
public message names the action but never the server's address or the driver's message
(those are in the log message only).

Deleting and re-creating
------------------------
The configuration hash and an experiment's data live in different slots, so create and delete
take two steps. Delete removes the configuration first (the experiment is then gone), then the
data. Create wipes any data left under the id (by a delete interrupted between its two steps,
or events logged for an experiment that did not exist), so a new experiment starts empty.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final, TypeVar

import hiredis
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError, NoScriptError, RedisClusterException, RedisError
from redis.retry import Retry

from abscope.errors import Conflict, NotFound, StorageUnavailable
from abscope.models import (
    CovariateCounts,
    Event,
    Experiment,
    MetricCounts,
    Status,
    VariantCounts,
    WeightedCounts,
)
from abscope.storage import keys
from abscope.storage.base import (
    DEFAULT_EVENT_ID_WINDOW,
    Clock,
    CovariateItem,
    CovariateOutcome,
    EventOutcome,
    EventResult,
    HourCounts,
    MetricHourCounts,
    Store,
    covariate_item,
    utc_now,
)

__all__ = ["CONNECT_ATTEMPTS", "SOCKET_TIMEOUT", "RedisStore"]

SOCKET_TIMEOUT: Final = 2.0
"""Seconds to wait for a connection or a reply."""
CONNECT_ATTEMPTS: Final = 3
"""Attempts at opening a connection before giving up."""

_CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_DELETE_ATTEMPTS: Final = 5
_OUTCOMES: Final[tuple[EventOutcome, ...]] = (
    "counted",
    "duplicate",
    "variant_mismatch",
    "covariate_mismatch",
)
_COVARIATE_OUTCOMES: Final[tuple[CovariateOutcome, ...]] = (
    "set",
    "unchanged",
    "conflict",
    "not_exposed",
)
_NEW_EXPOSURE: Final = 4
_NEW_CONVERSION: Final = 8
_INTEGER_METRICS: Final = frozenset({"samples", "conversions"})
_METRIC_KINDS: Final = {"conversion": "metric_conversion", "value": "metric_value"}
_UNAVAILABLE: Final = EventResult("unavailable")
_log = logging.getLogger("abscope.storage.redis")

RedisClient = Redis | RedisCluster


def _connect_with_retry(connect: Callable[[], None], disconnect: Callable[[], None]) -> None:
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=CONNECT_ATTEMPTS - 1)
    retry.call_with_retry(connect, lambda _error: disconnect())


class _Connection(Connection):
    def connect(self) -> None:
        _connect_with_retry(super().connect, self.disconnect)


class _SSLConnection(SSLConnection):
    def connect(self) -> None:
        _connect_with_retry(super().connect, self.disconnect)


class _UnixConnection(UnixDomainSocketConnection):
    def connect(self) -> None:
        _connect_with_retry(super().connect, self.disconnect)


_CONNECTION_CLASSES: Final[dict[str, type[Connection | UnixDomainSocketConnection]]] = {
    "redis": _Connection,
    "rediss": _SSLConnection,
    "unix": _UnixConnection,
}


def _client_from_url(url: str, cluster: bool | None) -> RedisClient:
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in {*_CONNECTION_CLASSES, *_CLUSTER_SCHEMES}:
        raise ValueError(
            "url must start with redis://, rediss://, unix://, redis+cluster:// or "
            f"rediss+cluster://, got {url!r}"
        )
    if scheme in _CLUSTER_SCHEMES:
        if cluster is False:
            raise ValueError(f"cluster=False contradicts the url scheme {scheme}://")
        scheme, cluster = _CLUSTER_SCHEMES[scheme], True
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "connection_class": _CONNECTION_CLASSES[scheme],
    }
    plain_url = f"{scheme}://{rest}"
    if not cluster:
        return Redis.from_url(plain_url, retry=Retry(NoBackoff(), 0), **options)
    if scheme == "unix":
        raise ValueError("a Redis Cluster is reached over TCP: use redis+cluster://host:port")
    with _unavailable("connect to the Redis Cluster"):
        # retry=0: the cluster client re-reads the topology after a failure but does not
        # re-send the command (see "Failures" above).
        return RedisCluster.from_url(plain_url, retry=Retry(NoBackoff(), 0), **options)


class _AsyncHiredisConnection(AsyncConnection):
    """redis.asyncio's connection with commands packed by hiredis, as the sync client packs
    them: redis.asyncio packs in Python, which costs a few microseconds per argument."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        head = tuple(name.encode().split()) if isinstance(name, str) else (name,)
        try:
            return [hiredis.pack_command((*head, *args[1:]))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def _async_client_from_url(url: str, cluster: bool | None) -> AsyncRedis | AsyncRedisCluster:
    """The asyncio twin of :func:`_client_from_url` (same timeouts, no command retries)."""
    scheme, _, rest = url.partition("://")
    if scheme in _CLUSTER_SCHEMES:
        scheme, cluster = _CLUSTER_SCHEMES[scheme], True
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
    }
    plain_url = f"{scheme}://{rest}"
    if cluster:
        return AsyncRedisCluster.from_url(plain_url, retry=AsyncRetry(NoBackoff(), 0), **options)
    if scheme == "redis":
        options["connection_class"] = _AsyncHiredisConnection
    return AsyncRedis.from_url(plain_url, retry=AsyncRetry(NoBackoff(), 0), **options)


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, RedisClusterException) as exc:
        raise StorageUnavailable(
            f"Redis could not {action}: {type(exc).__name__}: {exc}",
            public=f"the store could not {action}",
        ) from exc


@dataclass(frozen=True, slots=True)
class _Script:
    """A Lua script of ``lua/``, called by its SHA1."""

    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> _Script:
        source = (resources.files("abscope.storage") / "lua" / name).read_text("utf-8")
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hour(at: datetime) -> int:
    """Epoch second of the start of the UTC hour of ``at`` (naive datetimes are UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return math.floor(at.timestamp() / 3600) * 3600


def _float_text(value: float) -> str:
    return repr(float(value))


_Counts = TypeVar("_Counts", VariantCounts, MetricCounts, CovariateCounts, WeightedCounts)


def _per_variant(model: type[_Counts], values: dict[str, dict[str, str]]) -> dict[str, _Counts]:
    """``{variant: model}`` from ``{variant: {counter: text}}``, in variant order: the user
    counters (:data:`_INTEGER_METRICS`) as integers, the sums as floats."""
    return {
        variant: model(
            **{
                counter: int(float(raw)) if counter in _INTEGER_METRICS else float(raw)
                for counter, raw in values[variant].items()
            }
        )
        for variant in sorted(values)
    }


def _metric_counts(
    values: dict[str, dict[str, dict[str, str]]],
) -> dict[str, dict[str, MetricCounts]]:
    """``{metric: {variant: MetricCounts}}`` from ``{metric: {variant: {counter: text}}}``."""
    return {metric: _per_variant(MetricCounts, values[metric]) for metric in sorted(values)}


_RESULTS: Final = tuple(
    EventResult(
        outcome=_OUTCOMES[code & 3] if code & 3 < len(_OUTCOMES) else "counted",
        new_exposure=bool(code & _NEW_EXPOSURE),
        new_conversion=bool(code & _NEW_CONVERSION),
    )
    for code in range(16)
)
"""The result of each code the script returns (outcome + 4 · new exposure + 8 · new
conversion)."""

_Call = tuple[list[int], list[str], list[str | int]]
"""One script call of a batch: the events' indices in the batch, the keys, the arguments."""


def _fill(results: list[EventResult], indices: list[int], codes: Sequence[Any]) -> None:
    for index, code in zip(indices, codes, strict=True):
        results[index] = _result(int(code))


def _no_script(replies: Sequence[Any]) -> bool:
    return any(isinstance(reply, NoScriptError) for reply in replies)


def _apply_replies(
    calls: list[_Call], replies: Sequence[Any], results: list[EventResult]
) -> list[EventResult]:
    """The results of a MULTI/EXEC batch; a call that failed inside leaves its events
    ``unavailable``, and when every call failed, nothing was applied: raise."""
    failed = [reply for reply in replies if isinstance(reply, Exception)]
    if len(failed) == len(replies):
        raise StorageUnavailable(
            f"Redis could not record events: {type(failed[0]).__name__}: {failed[0]}",
            public="the store could not record events",
        )
    if failed:
        _log.warning("a batch was applied in part: %s", failed[0])
    for (indices, _, _), codes in zip(calls, replies, strict=True):
        if not isinstance(codes, Exception):
            _fill(results, indices, codes)
    return results


def _result(code: int) -> EventResult:
    return _RESULTS[code]


class RedisStore(Store):
    """:class:`~abscope.storage.base.Store` on Redis or Redis Cluster.

    Parameters
    ----------
    target
        A URL (see :meth:`from_url`), or a ``redis.Redis`` / ``redis.cluster.RedisCluster``
        client made with ``decode_responses=True``, which the store does not close.
    cluster
        With a URL: ``True`` for a Redis Cluster, ``False`` for one server; ``None`` (the
        default) reads it from the scheme (``redis+cluster://`` means a cluster).
    event_id_window
        How long an applied event id is remembered (7 days by default; see
        :func:`abscope.storage.keys.id_buckets` for the buckets that hold them).
    clock
        The current time (UTC), for the event-id buckets; injected by tests.
    """

    def __init__(
        self,
        target: str | RedisClient,
        *,
        cluster: bool | None = None,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
        clock: Clock = utc_now,
    ) -> None:
        if not event_id_window >= timedelta(seconds=1):
            raise ValueError(f"event_id_window must be at least 1 s, got {event_id_window!r}")
        self._window = math.ceil(event_id_window.total_seconds())
        self._clock = clock
        self._url: str | None = None
        self._cluster: bool | None = cluster
        self._async: AsyncRedis | AsyncRedisCluster | None = None
        if isinstance(target, str):
            self._client: RedisClient = _client_from_url(target, cluster)
            self._owns_client = True
            self._url = target
        else:
            if cluster is not None:
                raise ValueError("cluster applies to a url, not to a ready client")
            if not target.get_encoder().decode_responses:
                raise ValueError("the Redis client must be created with decode_responses=True")
            self._client = target
            self._owns_client = False
        self._record = _Script.load("record_events.lua")
        self._save = _Script.load("save_experiment.lua")
        self._assign = _Script.load("assign_if_absent.lua")
        self._delete_data = _Script.load("delete_data.lua")
        self._acquire = _Script.load("acquire_lease.lua")
        self._release = _Script.load("release_lease.lua")

    @classmethod
    def from_url(
        cls,
        url: str,
        cluster: bool | None = None,
        *,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
        clock: Clock = utc_now,
    ) -> RedisStore:
        """A store on the server or cluster at ``url``.

        ``redis://host:port/db`` (or ``rediss://``, ``unix:///path.sock?db=0``) is one server;
        ``redis+cluster://host:port`` (or ``rediss+cluster://``, or ``cluster=True``) is a
        Redis Cluster reached through one of its nodes.
        """
        return cls(url, cluster=cluster, event_id_window=event_id_window, clock=clock)

    @property
    def client(self) -> RedisClient:
        """The underlying redis-py client."""
        return self._client

    def _run(self, script: _Script, script_keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """EVALSHA; on NOSCRIPT (a server that has not seen the script) EVAL, which caches it.

        EVAL goes to the node that serves the keys. ``register_script`` would answer NOSCRIPT
        with SCRIPT LOAD on every primary of a cluster, which fails while any one node is down.
        """
        try:
            return self._client.evalsha(script.sha, len(script_keys), *script_keys, *args)
        except NoScriptError:
            return self._client.eval(script.source, len(script_keys), *script_keys, *args)

    # --- lifecycle -----------------------------------------------------------------------

    def ping(self) -> None:
        with _unavailable("answer PING"):
            self._client.ping()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # --- experiments ---------------------------------------------------------------------

    def create_experiment(self, experiment: Experiment) -> None:
        with _unavailable(f"create experiment {experiment.id!r}"):
            created = self._client.hsetnx(
                keys.EXPERIMENTS, experiment.id, experiment.model_dump_json()
            )
            if not created:
                raise Conflict(f"experiment {experiment.id!r} already exists")
            self._delete_experiment_data(experiment.id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with _unavailable(f"read experiment {experiment_id!r}"):
            stored = self._client.hget(keys.EXPERIMENTS, experiment_id)
        if stored is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        return Experiment.model_validate_json(stored)

    def list_experiments(self, status: Status | None = None) -> list[Experiment]:
        with _unavailable("list experiments"):
            stored = self._client.hvals(keys.EXPERIMENTS)
        experiments = [Experiment.model_validate_json(raw) for raw in stored]
        if status is not None:
            experiments = [e for e in experiments if e.status == status]
        return sorted(experiments, key=lambda e: (e.created_at, e.id))

    def save_experiment(self, experiment: Experiment) -> None:
        with _unavailable(f"save experiment {experiment.id!r}"):
            saved = self._run(
                self._save,
                [keys.EXPERIMENTS],
                [experiment.id, experiment.version, experiment.model_dump_json()],
            )
        if saved == 0:
            raise NotFound(f"experiment {experiment.id!r} does not exist")
        if saved != 1:
            raise Conflict(
                f"experiment {experiment.id!r} changed since version {experiment.version - 1}: "
                "reload it and apply the change again"
            )

    def delete_experiment(self, experiment_id: str) -> None:
        with _unavailable(f"delete experiment {experiment_id!r}"):
            if not self._client.hdel(keys.EXPERIMENTS, experiment_id):
                raise NotFound(f"experiment {experiment_id!r} does not exist")
            self._delete_experiment_data(experiment_id)

    def _delete_experiment_data(self, experiment_id: str) -> None:
        """Delete every data key of the experiment (call inside ``_unavailable``)."""
        for _ in range(_DELETE_ATTEMPTS):
            phases = sorted(int(p) for p in self._client.smembers(keys.phases(experiment_id)))
            buckets, _ = keys.id_buckets(self._clock().timestamp(), self._window)
            data_keys = keys.experiment_keys(experiment_id, phases, buckets)
            deleted = self._run(self._delete_data, data_keys, phases)
            if deleted == 1:
                return
        raise StorageUnavailable(
            f"Redis could not delete the data of experiment {experiment_id!r}: "
            "events kept arriving for new phases"
        )

    # --- sticky assignments --------------------------------------------------------------

    def get_assignment(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        key = keys.assignments(experiment_id, phase)
        with _unavailable(f"read an assignment of experiment {experiment_id!r}"):
            stored = self._client.hget(key, user_id)
        return None if stored is None else _text(stored)

    def assign_if_absent(self, experiment_id: str, phase: int, user_id: str, variant: str) -> str:
        script_keys = [keys.assignments(experiment_id, phase), keys.phases(experiment_id)]
        with _unavailable(f"store an assignment of experiment {experiment_id!r}"):
            stored = self._run(self._assign, script_keys, [user_id, variant, phase])
        return _text(stored)

    # --- events and counts ---------------------------------------------------------------

    def record_events(self, events: Sequence[Event]) -> list[EventResult]:
        """Apply events in order, one script call per experiment in the batch.

        On one server the calls of a batch that spans experiments run in one MULTI/EXEC
        transaction: the batch applies whole or not at all. On a cluster each experiment is
        its own call (its keys live on its own node); when a call fails after others were
        applied, its events come back ``unavailable`` instead of the whole batch failing, so
        the caller learns exactly what was applied. ``StorageUnavailable`` means nothing was.
        """
        if not events:
            return []
        calls, results = self._calls(events)
        if len(calls) == 1 or isinstance(self._client, RedisCluster):
            applied = False
            for indices, script_keys, args in calls:
                try:
                    with _unavailable(f"record {len(indices)} events"):
                        codes = self._run(self._record, script_keys, args)
                except StorageUnavailable:
                    if not applied:
                        raise
                    _log.warning("a batch was applied in part: the store failed", exc_info=True)
                    continue
                applied = True
                _fill(results, indices, codes)
            return results
        with _unavailable(f"record {len(events)} events"):
            replies = self._transaction(calls)
            if _no_script(replies):  # the server lost its scripts: nothing was applied
                self._client.script_load(self._record.source)
                replies = self._transaction(calls)
        return _apply_replies(calls, replies, results)

    def _transaction(self, calls: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=True)
        for _, script_keys, args in calls:
            pipe.evalsha(self._record.sha, len(script_keys), *script_keys, *args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    def _calls(self, events: Sequence[Event]) -> tuple[list[_Call], list[EventResult]]:
        """The script calls of a batch, one per experiment, and its results so far."""
        by_experiment: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_experiment.setdefault(event.experiment_id, []).append(index)
        buckets, ttl = keys.id_buckets(self._clock().timestamp(), self._window)
        calls = [
            (indices, *self._script_call(experiment_id, [events[i] for i in indices], buckets, ttl))
            for experiment_id, indices in by_experiment.items()
        ]
        return calls, [_UNAVAILABLE] * len(events)

    async def record_events_async(self, events: Sequence[Event]) -> list[EventResult]:
        """:meth:`record_events` on the asyncio client: the same calls and the same
        guarantees, without a thread (routing commits its exposures this way)."""
        client = self._async_client()
        if client is None or not events:
            return await super().record_events_async(events)
        calls, results = self._calls(events)
        if len(calls) == 1 or isinstance(client, AsyncRedisCluster):
            applied = False
            for indices, script_keys, args in calls:
                try:
                    with _unavailable(f"record {len(indices)} events"):
                        codes = await self._run_async(client, script_keys, args)
                except StorageUnavailable:
                    if not applied:
                        raise
                    _log.warning("a batch was applied in part: the store failed", exc_info=True)
                    continue
                applied = True
                _fill(results, indices, codes)
            return results
        with _unavailable(f"record {len(events)} events"):
            replies = await self._transaction_async(client, calls)
            if _no_script(replies):
                await client.script_load(self._record.source)
                replies = await self._transaction_async(client, calls)
        return _apply_replies(calls, replies, results)

    async def _run_async(
        self, client: AsyncRedis | AsyncRedisCluster, script_keys: list[str], args: list[str | int]
    ) -> Any:
        try:
            return await client.evalsha(self._record.sha, len(script_keys), *script_keys, *args)
        except NoScriptError:
            return await client.eval(self._record.source, len(script_keys), *script_keys, *args)

    async def _transaction_async(self, client: AsyncRedis, calls: list[_Call]) -> list[Any]:
        async with client.pipeline(transaction=True) as pipe:
            for _, script_keys, args in calls:
                pipe.evalsha(self._record.sha, len(script_keys), *script_keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    def _async_client(self) -> AsyncRedis | AsyncRedisCluster | None:
        """The asyncio client of this store's URL, made on first use; ``None`` for a store
        made from a ready client (its async twin is unknown)."""
        if self._async is None and self._url is not None:
            self._async = _async_client_from_url(self._url, self._cluster)
        return self._async

    async def aclose(self) -> None:
        client, self._async = self._async, None
        if client is not None:
            await client.aclose()

    def _script_call(
        self, experiment_id: str, events: list[Event], buckets: list[int], ttl: int
    ) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of ``record_events.lua`` for one experiment's events."""
        phases = sorted({event.phase for event in events})
        group = {phase: number for number, phase in enumerate(phases, start=1)}
        if not any(event.event_id for event in events):
            buckets = []  # nothing to look up or remember: routing's exposures carry no ids
        script_keys = [keys.applied_events(experiment_id, b) for b in buckets]
        script_keys.append(keys.phases(experiment_id))
        for phase in phases:
            script_keys.extend(keys.phase_keys(experiment_id, phase))
        args: list[str | int] = [len(buckets), ttl, len(phases), *phases]
        hours: dict[datetime, int] = {}
        probabilities: dict[float, str] = {}  # a few per batch: one per variant, mostly
        named_metrics = False
        for event in events:
            hour = hours.get(event.at)
            if hour is None:
                hour = hours[event.at] = _hour(event.at)
            kind: str = event.kind
            if event.metric is None:
                if event.value is not None:
                    value = _float_text(event.value)
                elif event.covariate is not None:
                    value = _float_text(event.covariate)
                else:
                    value = ""
                if event.metric_covariates:
                    named_metrics = True
                    value += "".join(
                        f";{name},{_float_text(c)}" for name, c in event.metric_covariates.items()
                    )
            else:
                kind, value, named_metrics = _METRIC_KINDS[kind], event.metric, True
                if event.value is not None:
                    dy = 0.0 if event.denominator is None else event.denominator
                    value = f"{event.metric};{_float_text(event.value)};{_float_text(dy)}"
                    if event.quantile_increments is not None:
                        kind = "metric_quantile"
                        value += ";" + ",".join(
                            f"{name},{amount}" for name, amount in event.quantile_increments.items()
                        )
            probability = probabilities.get(event.probability)
            if probability is None:
                probability = probabilities[event.probability] = _float_text(event.probability)
            args += (
                event.user_id,
                f"{group[event.phase]}|{event.variant}|{kind}|{value}"
                f"|{probability}|{hour}|{event.event_id or ''}",
            )
        if named_metrics:
            for phase in phases:
                script_keys.extend(keys.metric_phase_keys(experiment_id, phase))
        return script_keys, args

    def get_exposure(self, experiment_id: str, phase: int, user_id: str) -> str | None:
        key = keys.exposures(experiment_id, phase)
        with _unavailable(f"read an exposure of experiment {experiment_id!r}"):
            stored = self._client.hget(key, user_id)
        return None if stored is None else _text(stored)

    def get_counts(self, experiment_id: str, phase: int) -> dict[str, VariantCounts]:
        return self._per_variant_hash(
            experiment_id, keys.counts(experiment_id, phase), VariantCounts, "counts"
        )

    def get_timeseries(self, experiment_id: str, phase: int) -> list[HourCounts]:
        key = keys.hourly(experiment_id, phase)
        with _unavailable(f"read the time series of experiment {experiment_id!r}"):
            stored = self._client.hgetall(key)
        hours: dict[int, dict[str, dict[str, str]]] = {}
        for field, raw in stored.items():
            hour, variant, metric = keys.parse_hour_field(_text(field))
            hours.setdefault(hour, {}).setdefault(variant, {})[metric] = _text(raw)
        return [
            HourCounts(
                hour=datetime.fromtimestamp(hour, UTC), variants=_per_variant(VariantCounts, values)
            )
            for hour, values in sorted(hours.items())
        ]

    def get_metric_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, MetricCounts]]:
        return self._per_metric_hash(
            experiment_id, keys.metric_counts(experiment_id, phase), MetricCounts, "metric counts"
        )

    def get_metric_timeseries(self, experiment_id: str, phase: int) -> list[MetricHourCounts]:
        key = keys.metric_hourly(experiment_id, phase)
        with _unavailable(f"read the metric time series of experiment {experiment_id!r}"):
            stored = self._client.hgetall(key)
        hours: dict[int, dict[str, dict[str, dict[str, str]]]] = {}
        for field, raw in stored.items():
            hour, metric, variant, counter = keys.parse_metric_hour_field(_text(field))
            per_metric = hours.setdefault(hour, {}).setdefault(metric, {})
            per_metric.setdefault(variant, {})[counter] = _text(raw)
        return [
            MetricHourCounts(hour=datetime.fromtimestamp(hour, UTC), metrics=_metric_counts(values))
            for hour, values in sorted(hours.items())
        ]

    def get_quantile_counters(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, dict[str, int]]]:
        key = keys.quantiles(experiment_id, phase)
        with _unavailable(f"read the quantile counters of experiment {experiment_id!r}"):
            raw = self._client.hgetall(key)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for field, count in raw.items():
            metric, variant, counter = keys.parse_metric_count_field(_text(field))
            out.setdefault(metric, {}).setdefault(variant, {})[counter] = int(count)
        return out

    def record_covariates(
        self, experiment_id: str, phase: int, covariates: Sequence[CovariateItem]
    ) -> list[CovariateOutcome]:
        """Backfill covariates in one ``record_events.lua`` call (kind ``covariate``, or
        ``metric_covariate`` for a named metric's), so
        they are counted atomically with the experiment's events, on its node."""
        if not covariates:
            return []
        script_keys = [keys.phases(experiment_id), *keys.phase_keys(experiment_id, phase)]
        args: list[str | int] = [0, 1, 1, phase]
        named_metrics = False
        for item in covariates:
            user_id, value, metric = covariate_item(item)
            if metric is None:
                args += (user_id, f"1||covariate|{_float_text(value)}|1|0|")
            else:
                named_metrics = True
                args += (user_id, f"1||metric_covariate|{metric};{_float_text(value)}|1|0|")
        if named_metrics:
            script_keys.extend(keys.metric_phase_keys(experiment_id, phase))
        with _unavailable(f"record {len(covariates)} covariates"):
            codes = self._run(self._record, script_keys, args)
        return [_COVARIATE_OUTCOMES[int(code)] for code in codes]

    def get_covariate_counts(self, experiment_id: str, phase: int) -> dict[str, CovariateCounts]:
        return self._per_variant_hash(
            experiment_id,
            keys.covariate_counts(experiment_id, phase),
            CovariateCounts,
            "covariate counts",
        )

    def get_metric_covariate_counts(
        self, experiment_id: str, phase: int
    ) -> dict[str, dict[str, CovariateCounts]]:
        return self._per_metric_hash(
            experiment_id,
            keys.metric_covariate_counts(experiment_id, phase),
            CovariateCounts,
            "metric covariate counts",
        )

    def get_weighted_counts(self, experiment_id: str, phase: int) -> dict[str, WeightedCounts]:
        return self._per_variant_hash(
            experiment_id,
            keys.weighted_counts(experiment_id, phase),
            WeightedCounts,
            "weighted counts",
        )

    def _per_variant_hash(
        self, experiment_id: str, key: str, model: type[_Counts], what: str
    ) -> dict[str, _Counts]:
        """A hash of ``<variant>|<counter>`` fields as ``{variant: model}``."""
        with _unavailable(f"read the {what} of experiment {experiment_id!r}"):
            stored = self._client.hgetall(key)
        values: dict[str, dict[str, str]] = {}
        for field, raw in stored.items():
            variant, counter = keys.parse_count_field(_text(field))
            values.setdefault(variant, {})[counter] = _text(raw)
        return _per_variant(model, values)

    def _per_metric_hash(
        self, experiment_id: str, key: str, model: type[_Counts], what: str
    ) -> dict[str, dict[str, _Counts]]:
        """A hash of ``<metric>|<variant>|<counter>`` fields as ``{metric: {variant: model}}``."""
        with _unavailable(f"read the {what} of experiment {experiment_id!r}"):
            stored = self._client.hgetall(key)
        values: dict[str, dict[str, dict[str, str]]] = {}
        for field, raw in stored.items():
            metric, variant, counter = keys.parse_metric_count_field(_text(field))
            values.setdefault(metric, {}).setdefault(variant, {})[counter] = _text(raw)
        return {metric: _per_variant(model, values[metric]) for metric in sorted(values)}

    # --- leases --------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew the lease in one script call; its expiry is the server's (PX), so
        a holder that stops renewing loses it after ``ttl`` without anyone cleaning up."""
        if not ttl > timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        milliseconds = max(1, math.ceil(ttl / timedelta(milliseconds=1)))
        with _unavailable(f"acquire the lease {name!r}"):
            held = self._run(self._acquire, [keys.lease(name)], [holder, milliseconds])
        return int(held) == 1

    def release_lease(self, name: str, holder: str) -> None:
        with _unavailable(f"release the lease {name!r}"):
            self._run(self._release, [keys.lease(name)], [holder])
