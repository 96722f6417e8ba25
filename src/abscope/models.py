"""The domain: experiments, variants, their lifecycle and the events they count.

Every model is a validated pydantic model; invalid values raise ``pydantic.ValidationError``
whose error locations name the field.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Allocation",
    "AuditEntry",
    "BreachAction",
    "CovariateCounts",
    "Event",
    "EventKind",
    "Experiment",
    "DEFAULT_QUANTILES",
    "MAX_METRICS",
    "MAX_QUANTILES",
    "Metric",
    "MetricCorrection",
    "MetricCounts",
    "MetricKind",
    "MetricRole",
    "MetricType",
    "SLUG_PATTERN",
    "Slug",
    "Status",
    "UserId",
    "VALUE_EVENT_ID_SUFFIX",
    "Variant",
    "VariantCounts",
    "WEIGHT_TOLERANCE",
    "WeightedCounts",
    "check_min_lift",
    "check_power",
]

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
WEIGHT_TOLERANCE = 1e-9
MAX_USER_ID_LENGTH = 256
MAX_TEXT_LENGTH = 2000
VALUE_EVENT_ID_SUFFIX = "#value"
"""A ``/log`` call with a value records two events: the value's id is the call's plus this."""

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="Lower-case slug, 1-64 chars")]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_LENGTH)]
MetricType = Literal["binary", "continuous"]
Allocation = Literal["fixed", "epsilon_greedy", "ucb1", "thompson"]
MetricKind = Literal["binary", "mean", "ratio", "quantile"]
MetricRole = Literal["primary", "secondary", "guardrail"]
BreachAction = Literal["pause", "alert"]
MetricCorrection = Literal["holm", "bh"]
"""How the secondary metrics' p-values are corrected across metrics × arms: Holm
(family-wise error) or Benjamini–Hochberg (false discovery rate)."""
MAX_METRICS = 20
"""Metrics per experiment, the primary included."""
DEFAULT_QUANTILES = (0.5, 0.95, 0.99)
"""The quantiles a quantile metric reports when it names none: p50, p95 and p99."""
MAX_QUANTILES = 5
"""Quantiles per quantile metric: each costs the results a bootstrap read of the counters."""
PRIMARY_KINDS: dict[str, MetricKind] = {"binary": "binary", "continuous": "mean"}
"""The primary metric's kind for each ``metric_type``: the primary is counted in the
variant's own counts (conversions or value sums), which the full analysis reads."""
IMPLICIT_PRIMARY_NAMES: dict[str, str] = {"binary": "converted", "continuous": "value"}
"""The name of the primary metric of an experiment that declares no metrics."""


class Status(StrEnum):
    """Lifecycle: draft → running ⇄ paused → completed or stopped."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"


ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.RUNNING}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.COMPLETED, Status.STOPPED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.COMPLETED, Status.STOPPED}),
    Status.COMPLETED: frozenset(),
    Status.STOPPED: frozenset(),
}


class _Model(BaseModel):
    # Nested model instances are validated again, so a copied Variant with a bad weight can
    # never slip into a saved Experiment.
    model_config = ConfigDict(extra="forbid", frozen=True, revalidate_instances="always")


class Variant(_Model):
    """One arm: a name, the model it serves and its share of the traffic."""

    name: Slug
    model_id: str = Field(min_length=1, max_length=256)
    weight: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    is_control: bool = Field(default=False, strict=True)


class AuditEntry(_Model):
    """One change to an experiment: when, what kind, and the fields that changed."""

    at: datetime
    action: str
    changes: dict[str, Any] = Field(default_factory=dict)


class Metric(_Model):
    """One metric of an experiment.

    ``kind``:

    * ``binary``: the user converted at least once (``conversion`` events);
    * ``mean``: the per-user total of a value (``value`` events);
    * ``ratio``: the per-user total of a numerator over the per-user total of a denominator
      (``value`` events carrying ``value``, the numerator's increment, and ``denominator``,
      its increment, 1 by default: one event per request gives "latency per request"),
      analysed by the delta method with the user as the cluster;
    * ``quantile``: quantiles of a per-request value, e.g. latency in ms (``value``
      events, one per request, each ``>= 0``): ``quantiles`` are reported (default p50,
      p95 and p99) with intervals from a bootstrap over users
      (:mod:`abscope.stats.quantiles`). Lower is better unless ``higher_is_better`` says
      otherwise. A quantile guardrail guards ONE quantile, ``guard_quantile`` (one of
      ``quantiles``), whose relative change may not be worse than ``margin``. A quantile
      metric cannot be the primary (the primary is counted in the variant's own counts).

    ``role``: at most one ``primary`` (binary or mean: it drives the decision and gets the
    full analysis; without one, the experiment's implicit primary, ``converted`` or
    ``value``, is); ``secondary`` metrics inform, corrected for multiplicity; ``guardrail``
    metrics must not get worse than ``margin`` (relative: 0.05 allows 5% worse) and take
    ``action`` on a breach (``pause`` sends everyone to the control, ``alert`` only
    reports). ``min_samples`` users per arm are needed before a guardrail acts (``None``:
    the service's default). ``numerator`` and ``denominator`` label a ratio's parts.
    """

    name: Slug
    kind: MetricKind
    role: MetricRole = "secondary"
    higher_is_better: bool = Field(default=True, strict=True)
    margin: float | None = Field(
        default=None, gt=0.0, le=10.0, allow_inf_nan=False, validate_default=True
    )
    action: BreachAction | None = None
    min_samples: int | None = Field(default=None, ge=2, le=10**9, strict=True)
    numerator: str = Field(default="", max_length=64)
    denominator: str = Field(default="", max_length=64)
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    quantiles: list[float] | None = Field(
        default=None, min_length=1, max_length=MAX_QUANTILES, validate_default=True
    )
    guard_quantile: float | None = Field(default=None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _lower_is_better_for_quantiles(cls, data: Any) -> Any:
        # A latency is better when lower: the default of a quantile metric.
        if isinstance(data, dict) and data.get("kind") == "quantile":
            if "higher_is_better" not in data:
                return {**data, "higher_is_better": False}
        return data

    @field_validator("role")
    @classmethod
    def _check_role(cls, role: MetricRole, info: ValidationInfo) -> MetricRole:
        kind = info.data.get("kind")
        if role == "primary" and kind in ("ratio", "quantile"):
            raise ValueError(f"the primary metric must be binary or mean, not {kind}")
        return role

    @field_validator("margin")
    @classmethod
    def _check_margin(cls, margin: float | None, info: ValidationInfo) -> float | None:
        role = info.data.get("role")
        if role == "guardrail":
            if margin is None:
                raise ValueError("a guardrail needs a margin (relative, e.g. 0.05 for 5% worse)")
            if info.data.get("higher_is_better", True) and margin >= 1.0:
                raise ValueError("margin must be below 1 when higher is better")
        elif margin is not None:
            raise ValueError("margin applies to guardrails only")
        return margin

    @field_validator("action", "min_samples")
    @classmethod
    def _guardrails_only(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("role", "guardrail") != "guardrail":
            raise ValueError(f"{info.field_name} applies to guardrails only")
        return value

    @field_validator("numerator", "denominator")
    @classmethod
    def _ratio_only(cls, label: str, info: ValidationInfo) -> str:
        if label and info.data.get("kind", "ratio") != "ratio":
            raise ValueError(f"{info.field_name} labels ratio metrics only")
        return label

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(
        cls, quantiles: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        if info.data.get("kind", "quantile") != "quantile":
            if quantiles is not None:
                raise ValueError("quantiles apply to quantile metrics only")
            return None
        if quantiles is None:
            return list(DEFAULT_QUANTILES)
        for q in quantiles:
            if not (math.isfinite(q) and 0.0 < q < 1.0):
                raise ValueError(f"each quantile must be strictly between 0 and 1, got {q!r}")
        if any(b <= a for a, b in zip(quantiles, quantiles[1:], strict=False)):
            raise ValueError("quantiles must be sorted in increasing order, each once")
        return quantiles

    @field_validator("guard_quantile")
    @classmethod
    def _check_guard_quantile(cls, q: float | None, info: ValidationInfo) -> float | None:
        quantile_guardrail = (
            info.data.get("kind") == "quantile" and info.data.get("role") == "guardrail"
        )
        if not quantile_guardrail:
            if q is not None:
                raise ValueError("guard_quantile applies to quantile guardrails only")
            return None
        if q is None:
            raise ValueError("a quantile guardrail needs guard_quantile (e.g. 0.95 for p95)")
        quantiles = info.data.get("quantiles")
        if quantiles is not None and q not in quantiles:
            listed = ", ".join(f"{x:g}" for x in quantiles)
            raise ValueError(f"guard_quantile must be one of the metric's quantiles ({listed})")
        return q

    @property
    def breach_action(self) -> BreachAction:
        """What a breach does: ``alert`` unless the guardrail says ``pause``."""
        return self.action or "alert"


class Experiment(_Model):
    """An experiment's configuration and lifecycle state.

    ``phase`` counts configuration epochs: changing weights or variants outside draft opens a
    new phase, whose counts are kept apart from the earlier ones (which stay readable).
    ``version`` increases with every saved change, for optimistic concurrency.
    ``min_relative_lift`` and ``power`` are the pre-registered design: the smallest relative
    lift worth detecting (nonzero, above −1; ``None`` until set) and the chance of detecting
    it (``alpha < power < 1`` with ``alpha = 1 − confidence_level``). The analysis sizes the
    users still needed, and calls "no detectable difference", against them only.
    """

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    variants: list[Variant] = Field(min_length=2, max_length=32)
    status: Status = Status.DRAFT
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    traffic_percentage: float = Field(default=100.0, gt=0.0, le=100.0, allow_inf_nan=False)
    min_sample_size: int = Field(default=0, ge=0, le=10**12)
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    metric_type: MetricType = "binary"
    allocation: Allocation = "fixed"
    layer: Slug | None = None
    layer_intervals: list[tuple[float, float]] = Field(default_factory=list, max_length=1024)
    sticky: bool = False
    sequential: bool = True
    min_relative_lift: float | None = Field(default=None, gt=-1.0, allow_inf_nan=False)
    power: float = Field(default=0.8, gt=0.0, lt=1.0, allow_inf_nan=False)
    forced_variants: dict[str, str] = Field(default_factory=dict, max_length=1000)
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_METRICS)
    metric_correction: MetricCorrection = "holm"
    winner: str | None = None
    phase: int = Field(default=0, ge=0)
    version: int = Field(default=0, ge=0)
    audit: list[AuditEntry] = Field(default_factory=list)

    @field_validator("variants")
    @classmethod
    def _check_variants(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        total = math.fsum(v.weight for v in variants)
        if not math.isfinite(total) or abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"weights must sum to 1 (within {WEIGHT_TOLERANCE}), got {total!r}")
        if sum(v.is_control for v in variants) > 1:
            raise ValueError("at most one variant may be flagged is_control")
        return variants

    @field_validator("min_relative_lift")
    @classmethod
    def _check_min_lift(cls, lift: float | None) -> float | None:
        return check_min_lift(lift)

    @field_validator("power")
    @classmethod
    def _power_above_alpha(cls, power: float, info: ValidationInfo) -> float:
        return check_power(power, info.data.get("confidence_level"))

    @field_validator("forced_variants")
    @classmethod
    def _check_forced(cls, forced: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for user in forced:
            if not 0 < len(user) <= MAX_USER_ID_LENGTH:
                raise ValueError(f"user ids must be 1-{MAX_USER_ID_LENGTH} characters")
        names = {v.name for v in info.data.get("variants", [])}
        unknown = sorted({v for v in forced.values() if names and v not in names})
        if unknown:
            raise ValueError(f"unknown variants: {', '.join(unknown)}")
        return forced

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, metrics: list[Metric], info: ValidationInfo) -> list[Metric]:
        if not metrics:
            return metrics
        names = [m.name for m in metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
        primaries = [m for m in metrics if m.role == "primary"]
        if len(primaries) > 1:
            raise ValueError(f"at most one metric may be primary, got {len(primaries)}")
        metric_type = info.data.get("metric_type")
        if metric_type is None:
            return metrics
        if primaries and primaries[0].kind != PRIMARY_KINDS[metric_type]:
            raise ValueError(
                f"the primary metric's kind must be {PRIMARY_KINDS[metric_type]} for "
                f"metric_type {metric_type}, got {primaries[0].kind}"
            )
        implicit = IMPLICIT_PRIMARY_NAMES[metric_type]
        if not primaries and implicit in names:
            raise ValueError(
                f"{implicit!r} names the implicit primary metric; declare it as primary or"
                " choose another name"
            )
        return metrics

    @field_validator("winner")
    @classmethod
    def _check_winner(cls, winner: str | None, info: ValidationInfo) -> str | None:
        names = {v.name for v in info.data.get("variants", [])}
        if winner is not None and names and winner not in names:
            raise ValueError(f"{winner!r} is not a variant")
        return winner

    @property
    def control(self) -> Variant:
        """The flagged control, or the first variant."""
        return next((v for v in self.variants if v.is_control), self.variants[0])

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def primary_metric(self) -> Metric:
        """The declared primary, or the implicit one of an experiment without metrics
        (``converted`` for a binary experiment, ``value`` for a continuous one)."""
        for metric in self.metrics:
            if metric.role == "primary":
                return metric
        return Metric(
            name=IMPLICIT_PRIMARY_NAMES[self.metric_type],
            kind=PRIMARY_KINDS[self.metric_type],
            role="primary",
        )

    @property
    def all_metrics(self) -> list[Metric]:
        """Every metric, the primary first (the implicit one when none is declared)."""
        primary = self.primary_metric
        return [primary, *(m for m in self.metrics if m.role != "primary")]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.all_metrics if m.name == name), None)

    @property
    def guardrails(self) -> list[Metric]:
        return [m for m in self.metrics if m.role == "guardrail"]


EventKind = Literal["exposure", "conversion", "value"]
_MAX_INCREMENT = 2**20
"""A request adds at most a replicate weight (at most 12) to a counter: far below this."""


class Event(_Model):
    """One event to count. ``event_id`` makes a retry idempotent.

    ``exposure``: the user saw ``variant``. ``conversion``: the user converted (counted once
    per user). ``value``: add ``value`` to the user's total of a continuous metric. A
    conversion or value for a user never exposed registers the exposure first.

    ``metric`` names the metric a conversion or value counts for: ``None`` is the primary,
    counted in the variant's own counts; any other name is counted in that metric's
    :class:`MetricCounts` (the service checks that it names a declared metric of a fitting
    kind). ``denominator`` is a ratio metric's denominator increment (value events only).
    ``covariate`` (exposure events only) is the user's pre-exposure covariate for CUPED,
    set once per phase (see :class:`CovariateCounts`); ``metric_covariates`` (exposure
    events only) are the user's pre-exposure covariates of named binary or mean metrics,
    by metric name, each set once per phase and metric. ``quantile_increments`` (value
    events of a named quantile metric only) are the counters this one request adds to the
    metric's sketch and bootstrap replicates (:func:`abscope.stats.quantiles.
    request_increments` without ``users``, which the store adds on the user's first
    request of the metric in the phase); the service computes them, the store adds them in
    the same atomic, idempotent step as the rest of the event.
    """

    experiment_id: Slug
    phase: int = Field(default=0, ge=0)
    user_id: UserId
    variant: Slug
    kind: EventKind
    value: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    probability: float = Field(default=1.0, gt=0.0, le=1.0)
    at: datetime
    # 128 characters as a request gives it, plus the suffix of a /log call's value event.
    event_id: str | None = Field(
        default=None, min_length=1, max_length=128 + len(VALUE_EVENT_ID_SUFFIX)
    )
    metric: Slug | None = None
    denominator: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    covariate: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    quantile_increments: dict[str, int] | None = None
    metric_covariates: (
        dict[Slug, Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]] | None
    ) = None

    @classmethod
    def exposure(
        cls,
        experiment_id: str,
        phase: int,
        user_id: str,
        variant: str,
        probability: float,
        at: datetime,
    ) -> Event:
        """An exposure built from values that are valid already (a compiled experiment's
        id, phase and variant, a validated user id, a probability in (0, 1]), without
        validating them again: routing builds one per request."""
        return cls.trusted(
            experiment_id, phase, user_id, variant, "exposure", None, probability, at
        )

    @classmethod
    def trusted(
        cls,
        experiment_id: str,
        phase: int,
        user_id: str,
        variant: str,
        kind: EventKind,
        value: float | None,
        probability: float,
        at: datetime,
        event_id: str | None = None,
        metric: str | None = None,
        denominator: float | None = None,
        covariate: float | None = None,
        quantile_increments: dict[str, int] | None = None,
        metric_covariates: dict[str, float] | None = None,
    ) -> Event:
        """An event built from values that are valid already, without validating them
        again: the fields of a validated request body (``LogRequest``, ``BatchEvent``), a
        compiled experiment's id, phase and variant, a probability in (0, 1], an aware
        ``at``, and a value given exactly when ``kind`` is ``value``. The hot paths build
        one or more per request. Equal to the validated model of the same fields."""
        event = cls.__new__(cls)
        fields = {
            "experiment_id": experiment_id,
            "phase": phase,
            "user_id": user_id,
            "variant": variant,
            "kind": kind,
            "value": value,
            "probability": probability,
            "at": at,
            "event_id": event_id,
            "metric": metric,
            "denominator": denominator,
            "covariate": covariate,
            "quantile_increments": quantile_increments,
            "metric_covariates": metric_covariates,
        }
        set_attribute = object.__setattr__
        set_attribute(event, "__dict__", fields)
        # Every field is set; one set for all such events (the model is frozen, and a copy
        # gets a copy of it).
        set_attribute(event, "__pydantic_fields_set__", _EVENT_FIELDS)
        set_attribute(event, "__pydantic_extra__", None)
        set_attribute(event, "__pydantic_private__", None)
        return event

    @model_validator(mode="after")
    def _value_matches_kind(self) -> Self:
        if self.kind == "value" and self.value is None:
            raise ValueError("value is required for a value event")
        if self.kind != "value" and self.value is not None:
            raise ValueError(f"value must be empty for a {self.kind} event")
        if self.kind == "exposure" and self.metric is not None:
            raise ValueError("an exposure names no metric")
        if self.denominator is not None and (self.kind != "value" or self.metric is None):
            raise ValueError("denominator belongs to a value event of a named ratio metric")
        if self.covariate is not None and self.kind != "exposure":
            raise ValueError("covariate belongs to an exposure event")
        if self.metric_covariates is not None and self.kind != "exposure":
            raise ValueError("metric_covariates belong to an exposure event")
        if self.quantile_increments is not None:
            if self.kind != "value" or self.metric is None:
                raise ValueError(
                    "quantile_increments belong to a value event of a named quantile metric"
                )
            if "users" in self.quantile_increments:
                raise ValueError("quantile_increments must not hold users: the store counts it")
            if any(not 0 < count <= _MAX_INCREMENT for count in self.quantile_increments.values()):
                raise ValueError(f"quantile_increments must be in 1..{_MAX_INCREMENT}")
        return self


_EVENT_FIELDS = set(Event.model_fields)


class _Sums(_Model):
    """Counters a store keeps: they add field by field (two hours' increments, or a total
    and an hour's increment)."""

    def __add__(self, other: Self) -> Self:
        # Both operands are valid already: sums of valid counts need no validation again.
        fields = type(self).model_fields
        return self.model_copy(
            update={name: getattr(self, name) + getattr(other, name) for name in fields}
        )


class VariantCounts(_Sums):
    """What the store keeps per variant (and per hour): exact counts and per-user sums.

    ``samples`` unique exposed users; ``conversions`` unique exposed users who converted;
    ``value_sum`` and ``value_sum_squares`` over the per-user totals of a continuous metric
    (a user without values counts as 0); ``inverse_probability_sum`` = Σ 1/p and
    ``inverse_probability_square_sum`` = Σ 1/p² over exposures, where p is the probability
    with which the user was assigned the variant: they weight adaptive or ramped traffic and
    test its split (the sample-ratio check of bandit experiments).
    """

    samples: int = 0
    conversions: int = 0
    value_sum: float = 0.0
    value_sum_squares: float = 0.0
    inverse_probability_sum: float = 0.0
    inverse_probability_square_sum: float = 0.0


class MetricCounts(_Sums):
    """What the store keeps per metric other than the primary, per variant (and per hour).

    Sums run over the variant's exposed users (its ``samples``), a user without events
    counting as 0. ``conversions``: users with at least one conversion (binary metrics).
    For value events, with ``x`` a user's numerator total and ``y`` their denominator
    total: ``sum = Σx``, ``sum_squares = Σx²``, ``denominator_sum = Σy``,
    ``denominator_sum_squares = Σy²`` and ``cross_sum = Σxy``. A user with totals
    ``(x, y)`` adding ``(dx, dy)`` adds ``2x·dx + dx²`` to ``Σx²``, ``2y·dy + dy²`` to
    ``Σy²`` and ``x·dy + y·dx + dx·dy`` to ``Σxy``, so the sums stay exact without reading
    every user. ``dx`` is the event's ``value`` and ``dy`` its ``denominator`` (0 when it
    has none: a mean metric's event; the service gives a ratio metric's event 1 when the
    caller gave none).
    """

    conversions: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0
    denominator_sum: float = 0.0
    denominator_sum_squares: float = 0.0
    cross_sum: float = 0.0


class CovariateCounts(_Sums):
    """What the store keeps per variant for CUPED: sums over the users with a covariate.

    Each user has at most one pre-exposure covariate ``c`` per phase (sent with an
    exposure event or backfilled). The store does not know which outcome the primary
    uses, so it keeps both: ``y`` = 1 once the user converted, else 0 (``conversions``,
    ``conversion_cross_sum``), and ``y`` = the user's value total (``value_sum``,
    ``value_cross_sum``). Over the variant's users with a covariate: ``samples`` counts
    them, ``sum = Σc``, ``sum_squares = Σc²``, ``conversions``/``value_sum`` ``= Σy`` and
    the cross sums ``= Σc·y``. The per-user update keeps them exact without reading every
    user: when a user with a covariate adds ``dy`` to an outcome, ``Σy += dy`` and
    ``Σc·y += c·dy``; when the covariate arrives after outcomes totalling ``y``,
    ``samples += 1``, ``sum += c``, ``sum_squares += c²``, ``Σy += y`` and ``Σc·y += c·y``.
    """

    samples: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0
    conversions: int = 0
    conversion_cross_sum: float = 0.0
    value_sum: float = 0.0
    value_cross_sum: float = 0.0


class WeightedCounts(_Sums):
    """What the store keeps per variant for estimates from adaptive (bandit) traffic.

    Each user is weighted by ``p``, the probability of the exposure that registered them
    (kept per user). The store does not know which outcome the primary uses, so it keeps
    both readings of the user's outcome ``y``: converted 0/1 (the ``conversion_`` sums;
    ``y² = y``, so their square sums are the linear ones) and the value total (the
    ``value_`` and ``square_`` sums). Over the variant's users: ``samples`` counts the
    users whose ``p`` was known when they were exposed (fewer than ``VariantCounts.samples``
    when some were exposed before the store kept these sums),
    ``inverse_sqrt_probability_sum = Σ 1/√p`` (added at the exposure), and
    ``Σ y/p``, ``Σ y/p²``, ``Σ y/√p`` for each reading, plus ``Σ y²/p`` and ``Σ y²/p²``
    for the value total. The per-user update keeps them exact: a conversion adds ``1/p``,
    ``1/p²`` and ``1/√p``; a value ``v`` added to a running total ``t`` adds ``v/p``,
    ``v/p²``, ``v/√p``, ``(2tv + v²)/p`` and ``(2tv + v²)/p²``. With the counts of
    :class:`VariantCounts` they make :class:`~abscope.stats.adaptive_estimates.WeightedSums`.
    """

    samples: int = 0
    inverse_sqrt_probability_sum: float = 0.0
    conversion_inverse_probability_sum: float = 0.0
    conversion_inverse_probability_square_sum: float = 0.0
    conversion_inverse_sqrt_probability_sum: float = 0.0
    value_inverse_probability_sum: float = 0.0
    value_inverse_probability_square_sum: float = 0.0
    value_inverse_sqrt_probability_sum: float = 0.0
    square_inverse_probability_sum: float = 0.0
    square_inverse_probability_square_sum: float = 0.0


def check_min_lift(lift: float | None) -> float | None:
    """A pre-registered minimum relative lift: ``None``, or nonzero (the range is checked by
    the field: finite, above −1)."""
    if lift == 0.0:
        raise ValueError("min_relative_lift must be nonzero (e.g. 0.05 for +5%)")
    return lift


def check_power(power: float, confidence_level: float | None) -> float:
    """Power must exceed ``alpha = 1 − confidence_level`` (a test cannot detect an effect
    less often than it rejects a true null)."""
    if confidence_level is not None and not power > 1.0 - confidence_level:
        alpha = 1.0 - confidence_level
        raise ValueError(
            f"power must be greater than alpha = 1 - confidence_level = {alpha:.4g}, got {power}"
        )
    return power


def is_slug(text: str) -> bool:
    """Whether ``text`` is a valid id or variant name."""
    return re.fullmatch(SLUG_PATTERN, text) is not None
