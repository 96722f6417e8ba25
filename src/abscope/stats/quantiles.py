r"""Quantile metrics (p50, p95, p99 of latency) with intervals that hold when users repeat.

A latency metric counts requests, but the unit of randomisation is the user, and one user's
requests are alike (a slow device, a long prompt). An interval built as if the requests were
independent is too narrow: with 1-20 requests per user and a user effect (ICC 0.5 on the
log scale), a bootstrap over requests covers 59-79% for a nominal 95%
(``benchmarks/quantiles.py``). Here each variant's requests are kept in a
log-bucket sketch (:mod:`abscope.stats.sketch`), and the uncertainty comes from an *online
bootstrap over users*: every user carries ``B`` deterministic replicate weights
``w_{u,b}`` (Poisson(1) by default, see :func:`replicate_weights`), and every request is
also added, with its user's weight ``w_{u,b}``, to ``B`` replicate sketches. A replicate is
then the sketch of one bootstrap resample of *users* (each user drawn ``w_{u,b}`` times with
all their requests), so the dependence within a user is kept, as in the pigeonhole
bootstrap of Owen & Eckles (2012); the Poisson weights make it computable in one pass over a
stream without knowing the number of users (Hanley & MacGibbon 2006; Chamandy et al. 2012).

Counters a store keeps, per (phase, metric, variant)
----------------------------------------------------
All are integers, start at 0 and only grow, so they are kept with ``HINCRBY`` (or an SQL
upsert ``count = count + ?``) and merge across shards, workers and hours by addition. With
the defaults (``accuracy`` 1%, ``replicates`` ``B = 100``, ``coarsening`` ``k = 4``):

==================  =========================================================================
counter             meaning
==================  =========================================================================
``users``           users with at least one request of this metric
``b:<i>``           requests in the fine bucket ``i = ⌈log_γ x⌉`` (``γ = 1.01/0.99``); only
                    occupied indices exist (``<i>`` is a decimal integer, may be negative)
``b:z``             requests with ``x ≤ 0`` (the zero bucket)
``r<b>:<j>``        replicate ``b`` (``0 ≤ b < B``): the sum of the weights ``w_{u,b}`` of the
                    requests in the coarse bucket ``j = ⌈i / k⌉`` (accuracy about 4%)
``r<b>:z``          replicate ``b``: the sum of the weights of the zero bucket's requests
==================  =========================================================================

An event "user ``u``, variant ``v``, value ``x``" updates them as follows
(:func:`request_increments` returns exactly this mapping):

* ``users += 1`` if it is ``u``'s first request of this metric in the phase (the store
  knows from its per-user metric state, as for the other named metrics);
* ``b:<i(x)> += 1`` (or ``b:z``);
* for each ``b`` with ``w_{u,b} > 0``: ``r<b>:<⌈i(x)/k⌉> += w_{u,b}`` (or ``r<b>:z``).

The weights depend on the user id and the salt only, never on the request, so they are
computed by the service (not in Lua) and passed to the store as plain increments; they need
no storage, and the same user gets the same weights on every worker. Keep the salt fixed for
the life of the counters (for example the experiment id and phase).

Cost: one request adds 1 fine counter and, with Poisson(1) weights, about
``B (1 − e^{−1}) ≈ 63`` replicate counters (``B/2 = 50`` with double-or-nothing weights).
The number of counters does not grow with traffic: for latencies between 1 ms and 10 s it is
at most ``⌈ln(10⁴)/ln γ⌉ = 461`` fine buckets plus ``B`` times ``⌈461/4⌉ = 116`` coarse ones,
about 12,000 counters per variant and metric (plus the zero buckets and ``users``), and
the actual figure is the range of latencies really seen. Why these sizes:

* ``B = 100``: the intervals use a bootstrap standard error (of a quantile, of the
  distribution function at it, of a difference); from ``B`` replicates its relative error
  is about ``1/√(2B) = 7%``, and the Student ``t`` critical value with ``B − 1`` degrees of
  freedom accounts for it (1.98 instead of 1.96), so more replicates would make the
  intervals at most about 1% shorter on average. ``B = 50`` halves storage and writes for
  a critical value of 2.01 (intervals about 1.5% longer). Percentile intervals need more
  replicates (their ends are the 2.5% and 97.5% points of ``B`` values) and are offered as
  an option, not the default.
* ``k = 4``: a replicate only has to place a resample's quantile to well within its standard
  error. The coarse counts tell which 4% bucket it falls in and how far into it, and the
  position inside is read off the full-data fine sketch (the weights do not depend on the
  values, so within one coarse bucket a resample has the data's shape); this cuts the
  replicate counters by 4 without a visible effect on coverage (the simulations of the
  test suite and ``benchmarks/quantiles.py``).

Estimators
----------
The point estimate of the ``q``-quantile ``ξ_q`` is read from the fine sketch's bucket that
holds the value of rank ``⌊q (n − 1)⌋`` (the bucket of the DDSketch quantile), placed
log-linearly inside it, so within a factor ``γ`` of the exact sample quantile; see
``_point`` for why not the bucket's representative. Replicate ``b``'s quantile
``ξ*_b`` is the value where the replicate's cumulative weight reaches ``q W_b``
(``W_b = Σ`` of its counters), interpolated as described above and log-linearly inside a
fine bucket. With ``SE = sd_b(ξ*_b)`` (divisor ``B − 1``) and the level ``c``:

* one arm (default, ``"woodruff"``): Woodruff's interval
  ``[F̂⁻¹(q − t SE_F), F̂⁻¹(q + t SE_F)]``, ``t = t_{B−1,(1+c)/2}``, where
  ``SE_F = sd_b F*_b(ξ̂)`` is the bootstrap standard error of the distribution function at
  the estimate (each replicate's share of weight at or below ``ξ̂``) and ``F̂⁻¹`` the fine
  sketch's quantile function; or, on the replicate quantiles, ``"normal"``
  ``ξ̂ ± t · SE`` and ``"percentile"`` (the ``(1 − c)/2`` and ``(1 + c)/2`` quantiles of the
  ``ξ*_b``), which under-cover a tail quantile (91-92% for p99 in the simulations);
* the difference ``ξ_t − ξ_c``: ``ξ̂_t − ξ̂_c ± t · sd_b(d*_b)`` on
  ``d*_b = ξ*_{t,b} − ξ*_{c,b}`` (the arms hold disjoint users, so their replicates are
  independent, and pairing them by ``b`` is a resample of both arms), or the percentile
  interval of the ``d*_b``;
* the relative difference ``ξ_t / ξ_c − 1``: the same on ``log ξ*_{t,b} − log ξ*_{c,b}``
  around ``log(ξ̂_t / ξ̂_c)``, mapped back by ``exp(·) − 1`` (never below −100%).

Simulated coverage of the 95% defaults (``benchmarks/quantiles.py``: lognormal latencies,
a per-user effect, 1-20 requests per user, 400 users per arm; Monte Carlo error ±0.3 points
at 4,000 runs, ±0.7 at 1,000, ±1.0 at 500), the range over p50, p95 and p99 (and both arms):

=============================  ===============  ==========  ==========
run                            arms (Woodruff)  difference  relative
=============================  ===============  ==========  ==========
hashed weights, 4,000 runs     93.8-94.9        94.8-94.9   94.1-94.9
hashed weights, 1,000 runs     92.8-94.8        94.6-95.1   93.6-94.7
A/A, 500 runs                  93.6-96.0        94.6-96.2   94.0-96.2
``B = 50``, 500 runs           93.6-95.8        95.0-95.6   95.0-95.8
1,500 users per arm, 400 runs  94.0-95.3        93.2-94.5   93.0-94.5
=============================  ===============  ==========  ==========

Replicates at the fine accuracy (``k = 1``) do no better (92.6-94.4% for the arms, 500
runs), so the coarse replicates cost nothing visible. A bootstrap over requests covers
59-79%. The replicate quantiles' own normal and percentile intervals cover p99 of one arm
only 89-93%, which is why the arms use Woodruff's. In the 4,000-run hashed run (seed 778)
every default figure is within 2 points of 95%: the lowest, p99 of either arm, covers 93.8%
(about 40 requests above the quantile per arm). The earlier 1,000-run row's 92.8% (the
treatment's p99) is 1.4 Monte Carlo errors below that; the intervals do run about a point
short at p99 with 400 users per arm.

The intervals are for the quantile of the requests' distribution, up to the sketch's
accuracy ``α``: once the standard error falls to about ``α ξ`` (millions of requests per arm
at 1%), the sketch's error is no longer small beside it, and a finer ``accuracy`` is needed.

Reason codes (see :data:`abscope.stats.results.REASONS`): ``no_samples`` (an arm has no
requests), ``insufficient_samples`` (fewer than :data:`MIN_USERS` users, or fewer than
:data:`MIN_TAIL` requests on either side of the quantile: the interval is ``None``, the
estimate is kept), ``zero_variance`` (every replicate gives the same quantile),
``zero_baseline`` / ``zero_treatment`` (a quantile in the zero bucket, so no relative
difference).

References
----------
.. [1] N. Chamandy, O. Muralidharan, A. Najmi and S. Naidu, "Estimating uncertainty for
   massive data streams", Google technical report, 2012.
.. [2] A. B. Owen and D. Eckles, "Bootstrapping data arrays of arbitrary order", Annals of
   Applied Statistics 6(3), 895-927, 2012.
.. [3] J. A. Hanley and B. MacGibbon, "Creating non-parametric bootstrap samples using
   Poisson frequencies", Computer Methods and Programs in Biomedicine 83(1), 57-62, 2006.
.. [4] C. Masson, J. E. Rim and H. K. Lee, "DDSketch: a fast and fully-mergeable quantile
   sketch with relative-error guarantees", PVLDB 12(12), 2019.
.. [5] R. S. Woodruff, "Confidence intervals for medians and other position measures",
   Journal of the American Statistical Association 47(260), 635-646, 1952.
.. [6] R. R. Sitter and C. Wu, "A note on Woodruff confidence intervals for quantiles",
   Statistics & Probability Letters 52(4), 353-358, 2001.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import stats as _sp

from abscope.stats._validate import check_count, check_open_unit
from abscope.stats.results import EffectEstimate, Interval
from abscope.stats.sketch import (
    DEFAULT_ACCURACY,
    LogSketch,
    bucket_index,
    coarse_accuracy,
    coarse_index,
    gamma,
)

__all__ = [
    "ArmMethod",
    "DEFAULT_QUANTILES",
    "MIN_TAIL",
    "MIN_USERS",
    "IntervalMethod",
    "QuantileComparison",
    "QuantileConfig",
    "QuantileCounters",
    "QuantileEstimate",
    "POISSON_THRESHOLDS",
    "ReplicateScheme",
    "compare_quantiles",
    "quantile_comparisons",
    "quantile_estimate",
    "replicate_weights",
    "request_increments",
]

DEFAULT_QUANTILES = (0.5, 0.95, 0.99)
"""The quantiles reported for a latency metric: p50, p95 and p99."""

MIN_USERS = 20
"""Users an arm needs before its bootstrap interval is reported (a bootstrap over fewer
clusters underestimates the spread)."""

MIN_TAIL = 5
"""Requests an arm needs on each side of the ``q``-quantile, ``n · min(q, 1 − q)``, before its
interval is reported: p99 needs 500 requests."""

ReplicateScheme = Literal["poisson", "double_or_nothing"]
"""The replicate weights: Poisson(1) (values 0-12) or double-or-nothing (0 or 2, each with
probability 1/2); both have mean 1 and variance 1."""

IntervalMethod = Literal["normal", "percentile"]
"""For a difference: ``"normal"``, estimate ± ``t_{B−1}`` · bootstrap SE; ``"percentile"``,
the replicates' quantiles."""

ArmMethod = Literal["woodruff", "normal", "percentile"]
"""For one arm's quantile: Woodruff's inversion of the distribution function (the default,
see :func:`quantile_estimate`), or one of :data:`IntervalMethod` on the replicate quantiles."""

_PERSON = b"abscope-quantile"  # blake2b personalisation: 16 bytes
_WORDS_PER_BLOCK = 16  # 32-bit words in a 64-byte digest
_BITS_PER_BLOCK = 512
_NOISE = 1e-12  # a bootstrap SE below this share of the estimate is rounding: zero variance


def _poisson_thresholds() -> tuple[int, ...]:
    """``T_k = round(2³² · P(Poisson(1) ≤ k))`` for ``k = 0..11``; ``P(X ≥ 13) < 2⁻³²``."""
    terms = [math.exp(-1.0) / math.factorial(j) for j in range(12)]
    return tuple(round(math.fsum(terms[: k + 1]) * 2**32) for k in range(12))


POISSON_THRESHOLDS = _poisson_thresholds()
"""The integer thresholds of the Poisson(1) inverse CDF on 32-bit words (see
:func:`replicate_weights`)."""
_THRESHOLDS = np.array(POISSON_THRESHOLDS, dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class QuantileConfig:
    """How a quantile metric is counted: fixed for the life of its counters.

    Attributes
    ----------
    accuracy : float
        The fine sketch's relative accuracy ``α`` (default 1%).
    replicates : int
        The number ``B`` of bootstrap replicates (default 100, at least 2).
    coarsening : int
        A replicate bucket is ``k`` fine buckets wide (default 4: accuracy about 4%).
    scheme : ReplicateScheme
        The replicate weights' distribution.
    salt : str
        Mixed into the weights' hash; the same salt must be used for the whole phase.
    """

    accuracy: float = DEFAULT_ACCURACY
    replicates: int = 100
    coarsening: int = 4
    scheme: ReplicateScheme = "poisson"
    salt: str = ""

    def __post_init__(self) -> None:
        check_open_unit("accuracy", self.accuracy)
        if check_count("replicates", self.replicates) < 2:
            raise ValueError(f"replicates must be at least 2, got {self.replicates!r}")
        if check_count("coarsening", self.coarsening) < 1:
            raise ValueError(f"coarsening must be at least 1, got {self.coarsening!r}")
        if self.scheme not in get_args(ReplicateScheme):
            choices = ", ".join(get_args(ReplicateScheme))
            raise ValueError(f"scheme must be one of {choices}; got {self.scheme!r}")
        if not isinstance(self.salt, str):
            raise ValueError(f"salt must be a string, got {self.salt!r}")

    @property
    def replicate_accuracy(self) -> float:
        """The replicates' accuracy ``(γ^k − 1)/(γ^k + 1)``."""
        return coarse_accuracy(self.accuracy, self.coarsening)


def replicate_weights(user_id: str, config: QuantileConfig = QuantileConfig()) -> tuple[int, ...]:
    """The user's ``B`` bootstrap weights: deterministic, mean 1, variance 1.

    Notes
    -----
    Block ``m = 0, 1, …`` is the 64-byte BLAKE2b digest (personalisation
    ``b"abscope-quantile"``) of the UTF-8 bytes of ``f"{salt}\x1f{user_id}\x1f{m}"``.

    * ``"poisson"``: replicate ``b`` reads the big-endian 32-bit word ``h`` number
      ``b mod 16`` of block ``⌊b/16⌋`` and returns the number of thresholds
      ``T_k = round(2³² F(k)) ≤ h``, ``F`` the Poisson(1) distribution function
      (:data:`POISSON_THRESHOLDS`): inverse-CDF sampling, exact to ``2⁻³²`` per
      probability, so ``P(w = k) = e⁻¹/k!`` for ``k ≤ 11`` and the rest at 12.
    * ``"double_or_nothing"``: replicate ``b`` reads bit ``b mod 512`` (most significant
      first) of block ``⌊b/512⌋`` and returns twice it.

    A good hash makes the weights of different users, and of different replicates of one
    user, independent; they do not depend on any request.

    Examples
    --------
    >>> w = replicate_weights("alice", QuantileConfig(replicates=8, salt="exp-1"))
    >>> w
    (1, 1, 2, 1, 3, 0, 3, 2)
    >>> w == replicate_weights("alice", QuantileConfig(replicates=8, salt="exp-1"))
    True
    """
    return _weights(user_id, config.salt, config.replicates, config.scheme)


@functools.lru_cache(maxsize=8192)
def _weights(user_id: str, salt: str, replicates: int, scheme: str) -> tuple[int, ...]:
    per_block = _WORDS_PER_BLOCK if scheme == "poisson" else _BITS_PER_BLOCK
    digest = b"".join(
        [
            hashlib.blake2b(
                f"{salt}\x1f{user_id}\x1f{m}".encode(), digest_size=64, person=_PERSON
            ).digest()
            for m in range(-(-replicates // per_block))
        ]
    )
    if scheme == "poisson":
        words = np.frombuffer(digest, dtype=">u4")[:replicates]
        return tuple(np.searchsorted(_THRESHOLDS, words, side="right").tolist())
    bits = np.unpackbits(np.frombuffer(digest, dtype=np.uint8))[:replicates]
    return tuple(2 * bit for bit in bits.tolist())


def request_increments(
    value: float,
    user_id: str,
    config: QuantileConfig = QuantileConfig(),
    *,
    first_request: bool,
) -> dict[str, int]:
    """The counters one request adds to (see the module docstring's table), and by how much.

    Examples
    --------
    >>> config = QuantileConfig(replicates=4, salt="exp-1")
    >>> inc = request_increments(250.0, "alice", config, first_request=True)
    >>> inc["users"], inc["b:277"], [inc[f"r{b}:70"] for b in range(4)]
    (1, 1, [1, 1, 2, 1])
    >>> request_increments(0.0, "alice", config, first_request=False)["b:z"]
    1
    """
    fine = bucket_index(value, config.accuracy)
    coarse = coarse_index(fine, config.coarsening)
    increments: dict[str, int] = {"users": 1} if first_request else {}
    increments["b:z" if fine is None else f"b:{fine}"] = 1
    suffix = "z" if coarse is None else str(coarse)
    for b, weight in enumerate(replicate_weights(user_id, config)):
        if weight:
            increments[f"r{b}:{suffix}"] = weight
    return increments


@dataclass(frozen=True, slots=True)
class QuantileCounters:
    """One variant's counters of a quantile metric, read back from a store.

    ``sketch`` is the fine sketch (counters ``b:*``), ``replicates`` the ``B`` coarse
    replicate sketches (``r<b>:*``, their indices coarse ones), ``users`` the ``users``
    counter. Counters of disjoint users add (``a + b``). Build them with
    :meth:`from_counters` (a store's mapping) or :meth:`from_requests` (raw data).

    Examples
    --------
    >>> config = QuantileConfig(replicates=4, salt="exp-1")
    >>> c = QuantileCounters.from_requests([10.0, 12.0, 250.0], ["a", "a", "b"], config)
    >>> c.users, c.requests, len(c.replicates)
    (2, 3, 4)
    >>> QuantileCounters.from_counters(c.to_counters(), config) == c
    True
    """

    config: QuantileConfig
    users: int
    sketch: LogSketch
    replicates: tuple[LogSketch, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", check_count("users", self.users))
        if self.sketch.accuracy != self.config.accuracy:
            raise ValueError("sketch must have the config's accuracy")
        if len(self.replicates) != self.config.replicates:
            raise ValueError(f"replicates must hold {self.config.replicates} sketches")
        if any(r.accuracy != self.config.replicate_accuracy for r in self.replicates):
            raise ValueError("replicates must have the config's replicate accuracy")
        if self.users > self.sketch.count:
            raise ValueError("users must not exceed the number of requests")

    @classmethod
    def empty(cls, config: QuantileConfig = QuantileConfig()) -> QuantileCounters:
        """No requests yet."""
        replicate = LogSketch(config.replicate_accuracy)
        return cls(config, 0, LogSketch(config.accuracy), (replicate,) * config.replicates)

    @classmethod
    def from_counters(
        cls, counters: Mapping[str, int], config: QuantileConfig = QuantileConfig()
    ) -> QuantileCounters:
        """Parse a store's counters (names as in the module docstring); unknown names raise."""
        fine: dict[int, int] = {}
        fine_zero = 0
        coarse: list[dict[int, int]] = [{} for _ in range(config.replicates)]
        coarse_zero = [0] * config.replicates
        users = 0
        for name, raw in counters.items():
            count = check_count(name, raw)
            head, _, index = name.partition(":")
            if name == "users":
                users = count
            elif head == "b" and index:
                if index == "z":
                    fine_zero = count
                else:
                    fine[_index(name, index)] = count
            elif head.startswith("r") and head[1:].isdigit() and index:
                b = int(head[1:])
                if b >= config.replicates:
                    raise ValueError(f"{name}: replicate {b} is beyond the config's replicates")
                if index == "z":
                    coarse_zero[b] = count
                else:
                    coarse[b][_index(name, index)] = count
            else:
                raise ValueError(f"{name}: not a quantile counter")
        sketch = LogSketch.from_counts(fine, fine_zero, config.accuracy)
        accuracy = config.replicate_accuracy
        replicates = tuple(
            LogSketch.from_counts(counts, zero, accuracy)
            for counts, zero in zip(coarse, coarse_zero, strict=True)
        )
        return cls(config, users, sketch, replicates)

    @classmethod
    def from_requests(
        cls,
        values: Iterable[float],
        user_ids: Iterable[str],
        config: QuantileConfig = QuantileConfig(),
    ) -> QuantileCounters:
        """The counters a store holds after these requests (:func:`request_increments` each)."""
        totals: dict[str, int] = {}
        seen: set[str] = set()
        for value, user in zip(values, user_ids, strict=True):
            first = user not in seen
            seen.add(user)
            for name, amount in request_increments(
                value, user, config, first_request=first
            ).items():
                totals[name] = totals.get(name, 0) + amount
        return cls.from_counters(totals, config)

    def to_counters(self) -> dict[str, int]:
        """The counters by name, as a store keeps them (zero counters left out)."""
        out: dict[str, int] = {"users": self.users} if self.users else {}
        if self.sketch.zero:
            out["b:z"] = self.sketch.zero
        out.update({f"b:{i}": c for i, c in self.sketch.buckets})
        for b, replicate in enumerate(self.replicates):
            if replicate.zero:
                out[f"r{b}:z"] = replicate.zero
            out.update({f"r{b}:{j}": c for j, c in replicate.buckets})
        return out

    def __add__(self, other: QuantileCounters) -> QuantileCounters:
        if not isinstance(other, QuantileCounters):
            return NotImplemented
        if other.config != self.config:
            raise ValueError("counters of different configs cannot be merged")
        replicates = tuple(a + b for a, b in zip(self.replicates, other.replicates, strict=True))
        return QuantileCounters(
            self.config, self.users + other.users, self.sketch + other.sketch, replicates
        )

    @property
    def requests(self) -> int:
        """The number of requests counted."""
        return self.sketch.count


def _index(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}: the bucket index must be an integer") from None


# --- estimators ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuantileEstimate:
    """One arm's ``q``-quantile, a standard error and an interval.

    ``estimate`` is ``None`` without requests (``reason`` ``"no_samples"``); ``std_error``
    and ``ci`` are ``None`` when the interval is not reported (``reason`` says why). With
    ``method="woodruff"`` the interval is asymmetric and ``std_error`` is its half-width over
    the critical value (the usual Woodruff standard error). ``replicates`` is the number of
    bootstrap replicates used (those with a positive total weight).
    """

    q: float
    estimate: float | None
    std_error: float | None
    ci: Interval | None
    users: int
    requests: int
    replicates: int
    method: ArmMethod
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class QuantileComparison:
    """Both arms' ``q``-quantiles, their difference ``ξ_t − ξ_c`` and ``ξ_t / ξ_c − 1``.

    ``relative.log_std_error`` is the bootstrap standard error of ``log(ξ_t / ξ_c)``, the
    scale its interval is built on.
    """

    q: float
    control: QuantileEstimate
    treatment: QuantileEstimate
    difference: EffectEstimate
    relative: EffectEstimate


Array = npt.NDArray[np.float64]


def _check_q(q: float) -> float:
    return check_open_unit("q", q)


def _check_method(method: str) -> IntervalMethod:
    if method == "normal":
        return "normal"
    if method == "percentile":
        return "percentile"
    choices = ", ".join(get_args(IntervalMethod))
    raise ValueError(f"method must be one of {choices}; got {method!r}")


def _check_arm_method(method: str) -> ArmMethod:
    if method == "woodruff":
        return "woodruff"
    if method in get_args(IntervalMethod):
        return _check_method(method)
    choices = ", ".join(get_args(ArmMethod))
    raise ValueError(f"arm_method must be one of {choices}; got {method!r}")


@dataclass(frozen=True)
class _Layout:
    """One arm's counters as arrays: the fine sketch and the ``B × J`` replicate matrix."""

    fine_index: npt.NDArray[np.int64]
    fine_count: Array
    fine_cumulative: Array  # running count over the fine buckets (zero bucket excluded)
    fine_zero: float
    columns: npt.NDArray[np.int64]  # the occupied coarse indices
    before: Array  # fine requests below each coarse column (zero bucket excluded)
    inside: Array  # fine requests in each coarse column
    matrix: Array  # B × J replicate weights
    cumulative: Array  # B × J running replicate weight, the zero bucket included
    zero: Array  # B replicate zero-bucket weights
    total: Array  # B total replicate weights
    coarsening: int
    log_gamma: float


def _layout(counters: QuantileCounters) -> _Layout:
    k = counters.config.coarsening
    sketch = counters.sketch
    fine_index = np.fromiter((i for i, _ in sketch.buckets), np.int64, len(sketch.buckets))
    fine_count = np.fromiter((c for _, c in sketch.buckets), np.float64, len(sketch.buckets))
    fine_coarse = -((-fine_index) // k)
    columns = np.unique(fine_coarse)
    width = columns.size
    matrix = np.zeros((len(counters.replicates), width))
    zero = np.array([r.zero for r in counters.replicates], dtype=np.float64)
    for b, replicate in enumerate(counters.replicates):
        if not replicate.buckets:
            continue
        index = np.fromiter((j for j, _ in replicate.buckets), np.int64, len(replicate.buckets))
        where = np.searchsorted(columns, index)
        if np.any(where >= width) or np.any(columns[np.minimum(where, width - 1)] != index):
            raise ValueError(f"replicate {b} counts a bucket that the sketch does not hold")
        matrix[b, where] = [c for _, c in replicate.buckets]
    fine_cumulative = np.cumsum(fine_count)
    start = np.searchsorted(fine_coarse, columns)
    end = np.searchsorted(fine_coarse, columns, side="right")
    before = np.where(start > 0, fine_cumulative[np.maximum(start - 1, 0)], 0.0)
    cumulative = np.cumsum(matrix, axis=1) + zero[:, None]
    return _Layout(
        fine_index=fine_index,
        fine_count=fine_count,
        fine_cumulative=fine_cumulative,
        fine_zero=float(sketch.zero),
        columns=columns,
        before=before,
        inside=fine_cumulative[end - 1] - before if width else before,
        matrix=matrix,
        cumulative=cumulative,
        zero=zero,
        total=cumulative[:, -1] if width else zero,
        coarsening=k,
        log_gamma=math.log(gamma(counters.config.accuracy)),
    )


def _fine_value(layout: _Layout, position: Array) -> Array:
    """The value at which the fine sketch's running count (zero bucket excluded) reaches
    ``position``, log-linear inside a fine bucket."""
    fine = layout.fine_cumulative
    p = np.minimum(np.searchsorted(fine, position), fine.size - 1)
    below = np.where(p > 0, fine[np.maximum(p - 1, 0)], 0.0)
    g = np.clip((position - below) / layout.fine_count[p], 0.0, 1.0)
    values: Array = np.exp((layout.fine_index[p] - 1 + g) * layout.log_gamma)
    return values


def _replicate_quantiles(layout: _Layout, q: float) -> Array:
    """``ξ*_b`` for every replicate (``nan`` for one of total weight 0); see the module notes."""
    zero, total = layout.zero, layout.total
    target = q * total
    out = np.full(total.shape, np.nan)
    in_zero = (zero > 0) & (target <= zero) & (total > 0)
    out[in_zero] = 0.0
    rest = (total > 0) & ~in_zero
    if not np.any(rest):
        return out
    cumulative, t = layout.cumulative[rest], target[rest]
    col = np.argmax(cumulative >= t[:, None], axis=1)
    rows = np.arange(col.size)
    mass = layout.matrix[rest][rows, col]
    share = (t - (cumulative[rows, col] - mass)) / mass
    # Inside coarse bucket `col`, place the share of its mass on the fine sketch.
    out[rest] = _fine_value(layout, layout.before[col] + share * layout.inside[col])
    return out


def _fine_below(layout: _Layout, x: float) -> tuple[float, int]:
    """The fine sketch's requests ``≤ x`` (zero bucket excluded, interpolated), and ``i(x)``."""
    position = math.log(x) / layout.log_gamma
    i = math.ceil(position)
    p = int(np.searchsorted(layout.fine_index, i))
    below = float(layout.fine_cumulative[p - 1]) if p > 0 else 0.0
    if p < layout.fine_index.size and layout.fine_index[p] == i:
        below += (position - (i - 1)) * float(layout.fine_count[p])
    return below, i


def _replicate_cdf(layout: _Layout, x: float) -> Array:
    """``F*_b(x)``: each replicate's share of weight at or below ``x`` (coarse counts, the
    position inside a coarse bucket read off the fine sketch)."""
    if x <= 0.0:
        return layout.zero / layout.total
    below, i = _fine_below(layout, x)
    c = int(np.searchsorted(layout.columns, -((-i) // layout.coarsening)))
    weight = layout.cumulative[:, c - 1] if c > 0 else layout.zero
    if c < layout.columns.size and layout.columns[c] == -((-i) // layout.coarsening):
        share = (below - layout.before[c]) / layout.inside[c]
        weight = weight + share * layout.matrix[:, c]
    return weight / layout.total


def _point(layout: _Layout, q: float) -> float:
    """The estimate: the fine sketch's value of rank ``r = ⌊q (n − 1)⌋``, interpolated.

    The position ``r + ½`` lies in the bucket that :meth:`LogSketch.quantile` reads, and is
    placed log-linearly inside it, so the estimate is in the same bucket as the exact lower
    sample quantile (relative error below ``γ − 1 = 2α/(1 − α)``), but its error is no
    longer the same deterministic offset for every sample whose quantile falls in a bucket:
    that offset, up to ``α`` in each arm, would bias a difference once its standard error
    is a few ``α`` (1,500 users per arm at 1% in the simulations).
    """
    fine = float(layout.fine_cumulative[-1]) if layout.fine_index.size else 0.0
    n = layout.fine_zero + fine
    rank = math.floor(q * (n - 1.0))
    if rank < layout.fine_zero:
        return 0.0
    return float(_fine_value(layout, np.array([rank + 0.5 - layout.fine_zero]))[0])


def _inverse(layout: _Layout, share: float) -> float:
    """The fine sketch's (interpolated) ``share``-quantile."""
    target = share * (layout.fine_zero + float(layout.fine_cumulative[-1]))
    if target <= layout.fine_zero:
        return 0.0
    return float(_fine_value(layout, np.array([target - layout.fine_zero]))[0])


class _Arm:
    """An arm's counters, with its array layout built once, on first use."""

    def __init__(self, counters: QuantileCounters) -> None:
        self.counters = counters
        self._layout: _Layout | None = None

    @property
    def layout(self) -> _Layout:
        if self._layout is None:
            self._layout = _layout(self.counters)
        return self._layout


def _arm_reason(counters: QuantileCounters, q: float) -> str | None:
    if counters.requests == 0:
        return "no_samples"
    if counters.users < MIN_USERS or counters.requests * min(q, 1.0 - q) < MIN_TAIL:
        return "insufficient_samples"
    return None


@functools.lru_cache(maxsize=256)
def _t_critical(confidence: float, df: int) -> float:
    return float(_sp.t.ppf(0.5 + confidence / 2.0, df))


def _interval(
    centre: float, draws: Array, confidence: float, method: IntervalMethod
) -> tuple[float, Interval | None]:
    """The bootstrap SE of ``draws`` and the interval around ``centre`` (``None`` if SE is 0)."""
    se = float(np.std(draws, ddof=1))
    if se <= _NOISE * abs(centre):  # e.g. every request in one fine bucket
        return 0.0, None
    if method == "normal":
        half = _t_critical(confidence, draws.size - 1) * se
        return se, Interval(centre - half, centre + half, confidence)
    low, high = np.quantile(draws, [0.5 - confidence / 2.0, 0.5 + confidence / 2.0])
    return se, Interval(float(low), float(high), confidence)


def _woodruff(
    layout: _Layout, estimate: float, q: float, confidence: float
) -> tuple[float, Interval | None]:
    """Woodruff's interval ``[F̂⁻¹(q − t SE_F), F̂⁻¹(q + t SE_F)]``, ``SE_F = sd_b F*_b(ξ̂)``."""
    used = layout.total > 0
    shares = _replicate_cdf(layout, estimate)[used]
    se_share = float(np.std(shares, ddof=1))
    if se_share <= _NOISE:
        return 0.0, None
    t = _t_critical(confidence, int(shares.size) - 1)
    low = _inverse(layout, max(q - t * se_share, 0.0))
    high = _inverse(layout, min(q + t * se_share, 1.0))
    return (high - low) / (2.0 * t), Interval(low, high, confidence)


def _estimate(
    arm: _Arm, q: float, confidence: float, method: ArmMethod
) -> tuple[QuantileEstimate, Array]:
    """The arm's estimate and its replicate quantiles (empty when undefined)."""
    counters = arm.counters
    reason = _arm_reason(counters, q)
    estimate = None if counters.requests == 0 else _point(arm.layout, q)
    base = (q, estimate)
    tail = (counters.users, counters.requests)
    if reason is not None:
        return QuantileEstimate(*base, None, None, *tail, 0, method, reason), np.empty(0)
    assert estimate is not None
    draws = _replicate_quantiles(arm.layout, q)
    finite = draws[np.isfinite(draws)]
    if finite.size < 2:
        code = "insufficient_samples"
        return QuantileEstimate(*base, None, None, *tail, finite.size, method, code), draws
    if method == "woodruff":
        se, ci = _woodruff(arm.layout, estimate, q, confidence)
    else:
        se, ci = _interval(estimate, finite, confidence, method)
    reason = None if ci is not None else "zero_variance"
    return QuantileEstimate(*base, se, ci, *tail, finite.size, method, reason), draws


def quantile_estimate(
    counters: QuantileCounters,
    q: float,
    *,
    confidence: float = 0.95,
    method: ArmMethod = "woodruff",
) -> QuantileEstimate:
    """One arm's ``q``-quantile with an interval from the bootstrap over users.

    Parameters
    ----------
    counters : QuantileCounters
        The arm's counters.
    q : float
        The quantile, in (0, 1): 0.5, 0.95, 0.99.
    confidence : float
        The interval's level ``c``.
    method : ArmMethod
        ``"woodruff"`` (default), ``"normal"`` or ``"percentile"``.

    Returns
    -------
    QuantileEstimate
        See the module docstring for the reason codes.

    Notes
    -----
    ``ξ̂`` is read from the bucket of :meth:`LogSketch.quantile` (module notes). Woodruff's
    interval inverts the distribution function: with ``F*_b(ξ̂)`` the share of replicate
    ``b``'s weight at or below ``ξ̂`` and ``SE_F = sd_b F*_b(ξ̂)``, it is

    ``[F̂⁻¹(q − t SE_F), F̂⁻¹(q + t SE_F)]``, ``t = t_{B−1,(1+c)/2}``,

    with ``F̂⁻¹`` the fine sketch's quantile function, log-linear inside a bucket. ``F̂(ξ)`` at a
    fixed ``ξ`` is a ratio of two sums over users, so its bootstrap standard error is
    reliable, while the bootstrap distribution of a tail quantile is lumpy and skewed: in the
    simulations the Woodruff interval of p99 keeps 95% where ``ξ̂ ± t sd_b(ξ*_b)``
    (``"normal"``) or the percentile interval cover about 91-92%. ``std_error`` is
    ``(upper − lower) / (2t)``.

    References
    ----------
    R. S. Woodruff, "Confidence intervals for medians and other position measures", JASA
    47(260), 635-646, 1952; R. R. Sitter and C. Wu, "A note on Woodruff confidence intervals
    for quantiles", Statistics & Probability Letters 52(4), 353-358, 2001; Chamandy et al.
    (2012); Owen & Eckles (2012); Masson, Rim & Lee (2019).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> users = [f"u{i}" for i in range(200) for _ in range(5)]
    >>> values = rng.lognormal(5.0, 0.5, size=1000)
    >>> c = QuantileCounters.from_requests(values, users, QuantileConfig(salt="doc"))
    >>> e = quantile_estimate(c, 0.5)
    >>> round(e.estimate, 1), e.ci.lower < e.estimate < e.ci.upper, e.reason
    (146.2, True, None)
    >>> quantile_estimate(QuantileCounters.empty(), 0.5).reason
    'no_samples'
    """
    level = _check_q(q)
    check_open_unit("confidence", confidence)
    return _estimate(_Arm(counters), level, confidence, _check_arm_method(method))[0]


def compare_quantiles(
    control: QuantileCounters,
    treatment: QuantileCounters,
    q: float,
    *,
    confidence: float = 0.95,
    method: IntervalMethod = "normal",
    arm_method: ArmMethod = "woodruff",
) -> QuantileComparison:
    """Both arms' ``q``-quantiles, ``ξ_t − ξ_c`` and ``ξ_t / ξ_c − 1``, with intervals.

    Notes
    -----
    Replicate ``b`` of each arm resamples that arm's users; the arms' users are disjoint, so
    ``d*_b = ξ*_{t,b} − ξ*_{c,b}`` is a bootstrap draw of the difference. ``"normal"``:
    ``ξ̂_t − ξ̂_c ± t_{B−1} sd_b(d*_b)``; ``"percentile"``: the quantiles of the ``d*_b``.
    The relative difference is built the same way on ``log ξ*_{t,b} − log ξ*_{c,b}`` around
    ``log(ξ̂_t / ξ̂_c)`` and mapped back by ``exp(·) − 1``. A difference of two quantiles is
    much closer to normal than one tail quantile, and these intervals keep their level in
    the simulations. Each arm's own interval is :func:`quantile_estimate`'s with
    ``arm_method``. Both arms must be counted with the same :class:`QuantileConfig`.

    References
    ----------
    Chamandy et al. (2012); Owen & Eckles (2012).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> config = QuantileConfig(salt="doc")
    >>> def arm(name, scale):
    ...     users = [f"{name}{i}" for i in range(300) for _ in range(4)]
    ...     latencies = scale * rng.lognormal(5, 0.5, 1200)
    ...     return QuantileCounters.from_requests(latencies, users, config)
    >>> r = compare_quantiles(arm("c", 1.0), arm("t", 1.3), 0.95)
    >>> round(r.relative.estimate, 2), r.relative.ci.lower > 0
    (0.28, True)
    """
    return quantile_comparisons(
        control, treatment, (q,), confidence=confidence, method=method, arm_method=arm_method
    )[0]


def quantile_comparisons(
    control: QuantileCounters,
    treatment: QuantileCounters,
    quantiles: Iterable[float] = DEFAULT_QUANTILES,
    *,
    confidence: float = 0.95,
    method: IntervalMethod = "normal",
    arm_method: ArmMethod = "woodruff",
) -> tuple[QuantileComparison, ...]:
    """:func:`compare_quantiles` at several quantiles, reading each arm's counters once.

    Examples
    --------
    >>> empty = QuantileCounters.empty()
    >>> [r.difference.reason for r in quantile_comparisons(empty, empty)]
    ['no_samples', 'no_samples', 'no_samples']
    """
    levels = tuple(_check_q(q) for q in quantiles)
    check_open_unit("confidence", confidence)
    how, per_arm = _check_method(method), _check_arm_method(arm_method)
    if control.config != treatment.config:
        raise ValueError("treatment must be counted with the control's config")
    arms = (_Arm(control), _Arm(treatment))
    return tuple(_compare(*arms, level, confidence, how, per_arm) for level in levels)


def _compare(
    control: _Arm,
    treatment: _Arm,
    level: float,
    confidence: float,
    how: IntervalMethod,
    per_arm: ArmMethod,
) -> QuantileComparison:
    arm_c, draws_c = _estimate(control, level, confidence, per_arm)
    arm_t, draws_t = _estimate(treatment, level, confidence, per_arm)
    if arm_c.estimate is None or arm_t.estimate is None:
        empty = EffectEstimate.undefined("no_samples")
        return QuantileComparison(level, arm_c, arm_t, empty, empty)
    xc, xt = arm_c.estimate, arm_t.estimate
    if draws_c.size == 0 or draws_t.size == 0:
        code = "insufficient_samples"
        relative = (
            EffectEstimate(xt / xc - 1.0, None, None, code)
            if xc > 0
            else EffectEstimate.undefined("zero_baseline")
        )
        difference = EffectEstimate(xt - xc, None, None, code)
        return QuantileComparison(level, arm_c, arm_t, difference, relative)
    paired = np.isfinite(draws_c) & np.isfinite(draws_t)
    dc, dt = draws_c[paired], draws_t[paired]
    if dc.size < 2:
        difference = EffectEstimate(xt - xc, None, None, "insufficient_samples")
    else:
        se, ci = _interval(xt - xc, dt - dc, confidence, how)
        difference = EffectEstimate(xt - xc, se, ci, None if ci else "zero_variance")
    relative = _relative(xc, xt, dc, dt, confidence, how)
    return QuantileComparison(level, arm_c, arm_t, difference, relative)


def _relative(
    xc: float, xt: float, dc: Array, dt: Array, confidence: float, method: IntervalMethod
) -> EffectEstimate:
    if xc <= 0.0:
        return EffectEstimate.undefined("zero_baseline")
    lift = xt / xc - 1.0
    if xt <= 0.0:
        return EffectEstimate(lift, None, None, "zero_treatment")
    if dc.size < 2:
        return EffectEstimate(lift, None, None, "insufficient_samples")
    if np.any(dc <= 0.0):
        return EffectEstimate(lift, None, None, "zero_baseline")
    if np.any(dt <= 0.0):
        return EffectEstimate(lift, None, None, "zero_treatment")
    log_draws = np.log(dt) - np.log(dc)
    log_se, log_ci = _interval(math.log(xt) - math.log(xc), log_draws, confidence, method)
    se = float(np.std(np.exp(log_draws), ddof=1))
    if log_ci is None:
        return EffectEstimate(lift, 0.0, None, "zero_variance", 0.0)
    ci = Interval(math.expm1(log_ci.lower), math.expm1(log_ci.upper), confidence)
    return EffectEstimate(lift, se, ci, None, log_se)
