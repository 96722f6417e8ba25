"""Request and response bodies of the HTTP API (plain pydantic, no FastAPI: the service
uses them too, and must not depend on the API layer).

The compatible endpoints keep their original field names exactly (``control_model_id``,
``treatment_model_id``, ``control_weight``, ``variant_name``, ``converted``, ...); the
general forms (``variants`` lists, event batches) sit beside them.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from abscope.models import (
    MAX_METRICS,
    MAX_TEXT_LENGTH,
    Allocation,
    EventKind,
    Experiment,
    Metric,
    MetricCorrection,
    MetricType,
    Slug,
    Status,
    UserId,
    Variant,
    check_min_lift,
    check_power,
)
from abscope.stats.planner import DurationPlan
from abscope.stats.sequential import DEFAULT_TUNING_N

EVENT_ID_PATTERN = r"^[A-Za-z0-9._:@/+=~-]{1,128}$"
"""Client event ids: 1-128 of these characters. ``#`` is left out on purpose: the service
derives ``<event_id>#value`` for the value part of a ``/log`` call, which can then never
collide with a client's own id."""

__all__ = [
    "CUPED_NOT_APPLICABLE",
    "AdaptiveArm",
    "AdaptiveComparison",
    "AdaptiveEstimates",
    "AdaptiveFigure",
    "AdaptiveMethodName",
    "BatchEvent",
    "BatchRequest",
    "BatchResponse",
    "CalculateRequest",
    "CovariateItem",
    "CovariateRequest",
    "CovariateResponse",
    "CovariateResult",
    "CompleteRequest",
    "CreateExperimentRequest",
    "LogRequest",
    "LogResponse",
    "MetricCupedComparison",
    "MetricCupedView",
    "PatchExperimentRequest",
    "RouteRequest",
    "RouteResponse",
    "Assignment",
    "CalculateResponse",
    "ErrorBody",
    "ExperimentCharts",
    "ExperimentList",
    "ExperimentSummary",
    "ExplainResponse",
    "ExposureStatus",
    "Figure",
    "GateMetric",
    "QuantileArmView",
    "QuantileChangeView",
    "QuantileMetricView",
    "QuantileRowView",
    "GateResponse",
    "Health",
    "PlanCharts",
    "ResultsResponse",
    "SimulationCharts",
    "SummaryLift",
    "SummaryResponse",
    "TimeseriesResponse",
    "ValidationErrorBody",
    "ValidationIssue",
    "NotInExperiment",
    "SIMULATION_BUDGET",
    "SIMULATION_MAX_HORIZON",
    "SimulateRequest",
    "RoutingConfig",
    "SdkExperiment",
    "SdkVariant",
    "ServedAnswer",
]


def _iso_only(value: object) -> object:
    # pydantic reads a number as seconds since the epoch: 0 would be 1970, silently.
    if isinstance(value, (int, float)):
        raise ValueError("give an ISO-8601 string, e.g. 2026-12-01T14:00:00Z")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso_only),
    Field(
        description="When the event happened, as an ISO-8601 string (UTC when it has no"
        " offset); at most the clock skew allowed in the future, not before the experiment"
        " was created. Without it, the time the service receives it.",
        examples=["2026-12-01T14:00:00Z"],
    ),
]
"""An ISO-8601 timestamp; numbers (epoch seconds) are refused, not coerced."""


class _Body(BaseModel):
    """A request body: unknown fields are refused, as are booleans and integers given as
    other JSON types (each such field says ``strict=True``)."""

    model_config = ConfigDict(extra="forbid")


class CreateExperimentRequest(_Body):
    """Either the two-model form (``control_model_id``, ``treatment_model_id``) or a general
    ``variants`` list."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Ranking v2",
                    "control_model_id": "ranker-v1",
                    "treatment_model_id": "ranker-v2",
                }
            ]
        },
    )

    id: Slug | None = Field(default=None, description="The id; made from the name if absent.")
    name: str = Field(min_length=1, max_length=200, description="A name for people.")
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    # The two-model form: two variants named control and treatment.
    control_model_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="The control's model."
    )
    treatment_model_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="The treatment's model."
    )
    control_weight: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="The control's share in the two-model form (0.5 by default).",
    )
    # The general form.
    variants: list[Variant] | None = Field(
        default=None,
        min_length=2,
        max_length=32,
        description="The general form: 2-32 variants whose weights sum to 1, one the control.",
    )
    traffic_percentage: float = Field(
        default=100.0,
        gt=0.0,
        le=100.0,
        allow_inf_nan=False,
        description="Percentage of users who enter the experiment.",
    )
    min_sample_size: int = Field(
        default=0, ge=0, le=10**12, strict=True, description="Users per variant before a decision."
    )
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    metric_type: MetricType = "binary"
    allocation: Allocation = "fixed"
    layer: Slug | None = None
    sticky: bool = Field(
        default=False,
        strict=True,
        description="Keep each user's first variant across weight changes.",
    )
    sequential: bool = Field(
        default=True, strict=True, description="Analyse with always-valid (sequential) inference."
    )
    min_relative_lift: float | None = Field(
        default=None,
        gt=-1.0,
        allow_inf_nan=False,
        description="Pre-registered smallest relative lift worth detecting (0.05 is +5%);"
        " nonzero, above -1. Without it power and the users still needed are not computed.",
    )
    power: float = Field(
        default=0.8,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="Chance of detecting min_relative_lift; above alpha = 1 - confidence_level.",
    )
    forced_variants: dict[str, str] = Field(
        default_factory=dict, max_length=1000, description="User id to variant, forced."
    )
    metrics: list[Metric] | None = Field(
        default=None,
        max_length=MAX_METRICS,
        description="The metrics, at most one primary (binary or mean); without one the"
        " primary is the metric_type's conversion or value.",
    )
    metric_correction: MetricCorrection = Field(
        default="holm",
        description="Correction of the secondary metrics across metrics x arms: holm or bh.",
    )

    @field_validator("min_relative_lift")
    @classmethod
    def _check_min_lift(cls, lift: float | None) -> float | None:
        return check_min_lift(lift)

    @field_validator("power")
    @classmethod
    def _check_power(cls, power: float, info: ValidationInfo) -> float:
        return check_power(power, info.data.get("confidence_level"))

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        seed = self.control_model_id is not None or self.treatment_model_id is not None
        if seed and self.variants is not None:
            raise ValueError("give either control_model_id/treatment_model_id or variants")
        if not seed and self.variants is None:
            raise ValueError("give variants, or control_model_id and treatment_model_id")
        if seed and (self.control_model_id is None or self.treatment_model_id is None):
            raise ValueError("control_model_id and treatment_model_id go together")
        if not seed and self.control_weight is not None:
            raise ValueError("control_weight belongs to the control/treatment form")
        return self

    def variant_specs(self) -> list[Variant]:
        if self.variants is not None:
            return self.variants
        assert self.control_model_id is not None and self.treatment_model_id is not None
        weight = 0.5 if self.control_weight is None else self.control_weight
        return [
            Variant(name="control", model_id=self.control_model_id, weight=weight, is_control=True),
            Variant(name="treatment", model_id=self.treatment_model_id, weight=1.0 - weight),
        ]


class PatchExperimentRequest(_Body):
    """Fields that may change. Weights outside draft open a new phase.

    A draft may change in every field the create form sets: ``variants`` (in full),
    ``metric_type``, ``allocation``, ``layer``, ``sticky``, ``sequential`` and ``metrics``
    change only in draft (a 409 afterwards); the rest as before.

    ``min_relative_lift`` and ``power`` may change while the experiment runs (each change is
    audited); an explicit ``"min_relative_lift": null`` clears the minimum lift.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"weights": {"control": 0.5, "treatment": 0.5}, "min_relative_lift": 0.05}]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    traffic_percentage: float | None = Field(default=None, gt=0.0, le=100.0, allow_inf_nan=False)
    weights: dict[str, Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]] | None = Field(
        default=None, min_length=2, max_length=32
    )
    min_sample_size: int | None = Field(default=None, ge=0, le=10**12, strict=True)
    confidence_level: float | None = Field(default=None, gt=0.5, lt=1.0)
    min_relative_lift: float | None = Field(default=None, gt=-1.0, allow_inf_nan=False)
    power: float | None = Field(default=None, gt=0.0, lt=1.0, allow_inf_nan=False)
    forced_variants: dict[str, str] | None = Field(default=None, max_length=1000)
    # Draft only: the rest of what the create form sets (a 409 once the experiment started).
    variants: list[Variant] | None = Field(
        default=None,
        min_length=2,
        max_length=32,
        description="Draft only: the variants in full (names, models, weights summing to 1).",
    )
    metric_type: MetricType | None = Field(default=None, description="Draft only.")
    allocation: Allocation | None = Field(default=None, description="Draft only.")
    layer: Slug | None = Field(
        default=None, description="Draft only; an explicit null takes the draft out of its layer."
    )
    sticky: bool | None = Field(default=None, strict=True, description="Draft only.")
    sequential: bool | None = Field(default=None, strict=True, description="Draft only.")
    metrics: list[Metric] | None = Field(
        default=None,
        max_length=MAX_METRICS,
        description="Draft only: the declared metrics in full (an empty list removes them).",
    )

    @field_validator("min_relative_lift")
    @classmethod
    def _check_min_lift(cls, lift: float | None) -> float | None:
        return check_min_lift(lift)

    @model_validator(mode="after")
    def _weights_or_variants(self) -> Self:
        if self.weights is not None and self.variants is not None:
            raise ValueError("give either weights or variants (which carry their weights)")
        return self


class CompleteRequest(_Body):
    """The variant everyone is served once the experiment is completed."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"winner": "treatment"}]}
    )
    winner: str | None = Field(
        default=None, description="A variant of the experiment; the control if absent."
    )


class RouteRequest(_Body):
    """A user to route, in one experiment or in every running one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "user-42", "experiment_id": "ranking-v2"}]},
    )
    user_id: UserId = Field(description="The user; the same id always gets the same variant.")
    experiment_id: Slug | None = Field(
        default=None, description="The experiment; every running one if absent."
    )
    expose: bool = Field(
        default=True,
        strict=True,
        description="Record the user's exposure (the default): the user then counts as a"
        " sample of the variant, once per phase. `false` asks for the decision only, e.g. to"
        " precompute assignments; log the exposure later with /log or /events.",
    )


NotInExperiment = Literal[
    "paused", "completed", "stopped", "draft", "not_in_traffic", "not_in_layer_slice"
]
"""Why a user is served a variant outside the experiment: it is paused (everyone gets the
control), completed (everyone gets the winner, or the control when none was chosen),
stopped (the control) or still a draft (the control); or the user falls outside its traffic
or its slice of the layer (the control)."""

ExposureStatus = Literal["recorded", "not_requested", "not_in_experiment", "store_unavailable"]
"""What happened to the exposure: ``recorded`` (now, or at the user's first exposure in this
phase: a user is counted once), ``not_requested`` (``expose: false``), ``not_in_experiment``
(nothing to count), ``store_unavailable`` (the store could not be reached: the user was
served, from the last known configuration, but is not counted; see the README's "When the
store is down")."""


class Assignment(BaseModel):
    """One experiment's answer for the user: the variant and model to serve, and why."""

    experiment_id: str
    variant_name: str
    model_id: str
    in_experiment: bool = True
    reason: NotInExperiment | None = None
    exposure_recorded: bool = False
    exposure_status: ExposureStatus = "not_requested"


class RouteResponse(BaseModel):
    """The compatible fields from one assignment, plus every assignment of the user.

    With ``experiment_id`` there is always an answer for a known experiment: a variant and
    a model to serve, even when the experiment is not running (``in_experiment`` is then
    false and ``reason`` says why). Without ``experiment_id`` the compatible fields come
    from the user's assignment in the running experiment created first (ties by id), and
    ``assignments`` lists every running experiment the user is in; a user in none gets
    nulls and an empty list.
    """

    experiment_id: str | None
    variant_name: str | None
    model_id: str | None
    in_experiment: bool = False
    reason: NotInExperiment | None = None
    exposure_recorded: bool = False
    exposure_status: ExposureStatus = "not_in_experiment"
    assignments: list[Assignment]


_METRIC_DESCRIPTION = (
    "The declared metric this outcome counts for (a conversion for a binary metric, a value"
    " for a mean or ratio one); without it, or naming the primary, the primary metric's."
)
_DENOMINATOR_DESCRIPTION = (
    "A ratio metric's denominator increment for this value (1 when absent: one more request,"
    " say, for latency per request); refused for any other metric."
)


class LogRequest(_Body):
    """One outcome of a user in an experiment: a conversion, a value, or an exposure."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": "ranking-v2",
                    "user_id": "user-42",
                    "variant_name": "treatment",
                    "converted": True,
                    "event_id": "order-1001",
                }
            ]
        },
    )
    experiment_id: Slug = Field(description="The experiment.")
    user_id: UserId = Field(description="The user.")
    variant_name: Slug = Field(description="The variant the user was served.")
    converted: bool = Field(default=False, strict=True, description="The user converted.")
    value: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-1e12,
        le=1e12,
        description="A value for a continuous metric (added to the user's total).",
    )
    event_id: str | None = Field(
        default=None,
        pattern=EVENT_ID_PATTERN,
        description="Idempotency key: a retry with the same id is counted once.",
    )
    timestamp: Timestamp | None = None
    metric: Slug | None = Field(default=None, description=_METRIC_DESCRIPTION)
    denominator: float | None = Field(
        default=None, allow_inf_nan=False, ge=-1e12, le=1e12, description=_DENOMINATOR_DESCRIPTION
    )


class LogResponse(BaseModel):
    status: Literal["counted", "duplicate"]
    new_exposure: bool
    new_conversion: bool


class BatchEvent(_Body):
    """One event of a batch."""

    experiment_id: Slug = Field(description="The experiment.")
    user_id: UserId = Field(description="The user.")
    variant_name: Slug = Field(description="The variant the user was served.")
    kind: EventKind = Field(description="exposure, conversion or value.")
    value: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-1e12,
        le=1e12,
        description="Required for a value event, refused for the other kinds.",
    )
    event_id: str | None = Field(
        default=None,
        pattern=EVENT_ID_PATTERN,
        description="Idempotency key: a retry with the same id is counted once.",
    )
    timestamp: Timestamp | None = None
    metric: Slug | None = Field(default=None, description=_METRIC_DESCRIPTION)
    denominator: float | None = Field(
        default=None, allow_inf_nan=False, ge=-1e12, le=1e12, description=_DENOMINATOR_DESCRIPTION
    )
    covariate: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-1e12,
        le=1e12,
        description="Exposure events only: the user's pre-exposure covariate for CUPED (the"
        " primary metric's value before the experiment, say), set once per phase; another"
        " value later is refused (covariate_mismatch).",
    )
    covariates: dict[Slug, Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]] = Field(
        default_factory=dict,
        description="Exposure events only: the user's pre-exposure covariates of named"
        " binary or mean metrics, by metric name (CUPED for that metric), each set once per"
        " phase and metric; a conflicting value makes the whole exposure"
        " covariate_mismatch. Ratio and quantile metrics are refused (422).",
    )


class BatchRequest(_Body):
    """Events to record, each checked as ``/log`` checks its call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "experiment_id": "ranking-v2",
                            "user_id": "user-42",
                            "variant_name": "treatment",
                            "kind": "conversion",
                            "event_id": "order-1001",
                            "timestamp": "2026-12-01T14:00:00Z",
                        }
                    ]
                }
            ]
        },
    )
    events: list[BatchEvent] = Field(
        min_length=1, description="At least one event; at most the configured batch size."
    )


class BatchResult(BaseModel):
    """One event's outcome. ``unavailable`` happens only on a Redis Cluster, when the
    store failed after the events of other experiments of the batch were applied: the
    answer then says exactly which events were applied (a 503 means none was)."""

    status: Literal[
        "counted", "duplicate", "variant_mismatch", "covariate_mismatch", "rejected", "unavailable"
    ]
    new_exposure: bool = False
    new_conversion: bool = False
    error: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchResult]
    counted: int
    duplicates: int
    rejected: int
    unavailable: int = 0


class CovariateItem(_Body):
    """One user's pre-exposure covariate."""

    user_id: UserId = Field(description="A user exposed in the experiment's current phase.")
    value: float = Field(
        allow_inf_nan=False, ge=-1e12, le=1e12, description="The covariate (finite)."
    )
    metric: Slug | None = Field(
        default=None,
        description="The named binary or mean metric this covariate adjusts; absent (or the"
        " primary's name): the primary.",
    )


class CovariateRequest(_Body):
    """Covariates to backfill for users exposed already (CUPED)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "covariates": [
                        {"user_id": "user-42", "value": 17.5},
                        {"user_id": "user-43", "value": 0.0},
                    ]
                }
            ]
        },
    )
    covariates: list[CovariateItem] = Field(
        min_length=1, description="At least one; at most the configured batch size."
    )


class CovariateResult(BaseModel):
    """``set`` (counted), ``unchanged`` (the user has this value already), ``conflict``
    (the user has another value, which is kept) or ``not_exposed`` (no exposure in the
    current phase: nothing stored; send the covariate with the exposure instead)."""

    user_id: str
    status: Literal["set", "unchanged", "conflict", "not_exposed"]
    error: str | None = None


class CovariateResponse(BaseModel):
    experiment_id: str
    phase: int
    results: list[CovariateResult]
    set: int
    unchanged: int
    conflicts: int
    not_exposed: int


class CalculateRequest(_Body):
    """A duration plan's inputs: the metric and its baseline, the effect to detect, the arms,
    the traffic and the test.

    Rates, shares and probabilities are fractions (``0.1`` is 10%), as they always were: the
    planner page shows percent and sends fractions. A binary metric needs ``baseline_rate``, a
    continuous one ``baseline_mean`` and ``standard_deviation``; the effect is exactly one of
    ``min_relative_lift`` and ``min_absolute_effect``. With more than two arms each comparison
    is sized at ``alpha / (arms − 1)``, which keeps its power under the analysis' Holm
    correction (:mod:`abscope.stats.planner`). ``covariate_correlation`` (ρ) plans the
    CUPED-adjusted test, whose variance is ``1 − ρ²`` times smaller.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"baseline_rate": 0.1, "min_relative_lift": 0.05, "daily_traffic": 5000},
                {
                    "metric_type": "continuous",
                    "baseline_mean": 42.0,
                    "standard_deviation": 30.0,
                    "min_absolute_effect": 1.5,
                    "daily_traffic": 5000,
                    "arms": 3,
                },
                {
                    "baseline_rate": 0.1,
                    "min_relative_lift": 0.05,
                    "daily_traffic": 5000,
                    "covariate_correlation": 0.7,
                },
            ]
        },
    )

    metric_type: Literal["binary", "continuous"] = Field(
        default="binary", description="A conversion rate (binary) or a mean (continuous)."
    )
    baseline_rate: float | None = Field(
        default=None, description="Binary: the control's conversion rate, a fraction in (0, 1)."
    )
    baseline_mean: float | None = Field(
        default=None, description="Continuous: the control's mean, in the metric's unit."
    )
    standard_deviation: float | None = Field(
        default=None,
        description="Continuous: the standard deviation of one user's value (every arm).",
    )
    min_relative_lift: float | None = Field(
        default=None,
        description="Relative effect to detect, a fraction (0.05 is +5%). This or"
        " min_absolute_effect.",
    )
    min_absolute_effect: float | None = Field(
        default=None,
        description="Absolute effect to detect: a difference of rates (0.01 is one percentage"
        " point) or of means. This or min_relative_lift.",
    )
    daily_traffic: float = Field(description="Users a day who could enter the experiment.")
    allocation: float = Field(
        default=1.0,
        description="Traffic in the experiment: the fraction of daily_traffic that enters it.",
    )
    arms: int = Field(default=2, strict=True, description="Control plus treatments, 2 to 26.")
    treatment_share: float | None = Field(
        default=None,
        description="Fraction of the experiment's users in each treatment arm (the control gets"
        " the rest); an equal split (1/arms) when left out.",
    )
    power: float = Field(default=0.8, description="Chance of detecting the effect, a fraction.")
    alpha: float = Field(default=0.05, description="False-positive rate across all comparisons.")
    two_sided: bool = Field(default=True, strict=True, description="A two-sided test.")
    # The test the analysis will run: sequential, as a new experiment is by default, with
    # the analysis' tuning; the plan carries the other mode's figures too.
    sequential: bool = Field(
        default=True, strict=True, description="Plan for the sequential (always-valid) test."
    )
    sequential_tuning_n: int = Field(
        default=DEFAULT_TUNING_N,
        strict=True,
        description="Sample size the sequential test is tuned for.",
    )
    max_days: int | None = Field(
        default=None,
        strict=True,
        description="The longest the experiment can run; a longer plan carries a"
        " traffic_cannot_reach warning.",
    )
    covariate_correlation: float | None = Field(
        default=None,
        description="CUPED: the expected correlation, in [0, 1), of the metric with a"
        " pre-exposure covariate sent with the exposures (typically the same metric over a"
        " pre-period). Each user's outcome variance is multiplied by 1 - rho^2; the plan is"
        " for the adjusted test and `unadjusted` keeps the figures without it. 0 or left"
        " out: no CUPED.",
    )


class ExperimentList(BaseModel):
    """Experiments (those in the ``status`` asked for, if one was)."""

    experiments: list[Experiment]


class SummaryLift(BaseModel):
    """The best treatment against the control, in the experiment's inference mode."""

    variant: str = Field(description="The treatment with the best difference from the control.")
    relative_lift: float | None = Field(description="treatment / control - 1 (0.05 is +5%).")
    relative_lift_reason: str | None = Field(description="Why the lift is null, if it is.")
    interval: list[float] | None = Field(
        description="[lower, upper] of the relative lift from the mode in force: the"
        " confidence sequence when sequential, else the fixed-horizon CI."
    )
    interval_reason: str | None = Field(description="Why the interval is null, if it is.")
    absolute_difference: float | None
    absolute_difference_reason: str | None
    p_value: float | None = Field(description="Adjusted across arms, in the mode in force.")
    p_value_reason: str | None
    significant: bool
    basis: Literal["sequential", "fixed_horizon"] = Field(description="The mode of the figures.")
    level: float = Field(description="The interval's confidence level.")


class ExperimentSummary(BaseModel):
    """One experiment's line in the list: its configuration's headline, its users, the best
    lift and the flags, each figure as its results give it (same mode, same counts).
    Undefined values (and a draft's figures) are null, with the reason in ``null_reasons``."""

    id: str
    name: str
    status: Status
    phase: int = Field(ge=0)
    variants: list[str]
    control: str
    metric_type: MetricType
    primary_metric: str
    higher_is_better: bool
    inference: Literal["sequential", "fixed_horizon"]
    confidence_level: float
    allocation: Allocation
    traffic_percentage: float
    min_relative_lift: float | None
    power: float
    guardrails: list[str] = Field(description="The guardrail metrics' names.")
    winner: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    users: int = Field(ge=0, description="Users in the current phase, every variant.")
    best: SummaryLift | None
    significant: bool | None = Field(description="Any treatment significant (mode in force).")
    srm: bool | None = Field(description="A sample-ratio mismatch was detected.")
    srm_p_value: float | None
    underpowered: bool | None = Field(
        description="Still running with less than the target power for the minimum lift."
    )
    verdict: Literal["winner", "no_difference", "keep_running", "invalid"] | None
    guardrail_status: Literal["passing", "failing", "inconclusive"] | None = Field(
        description="As the results' guardrail_status (inconclusive without guardrails)."
    )
    null_reasons: dict[str, str] = Field(description="Why each null top-level field is null.")


class SummaryResponse(BaseModel):
    """Every experiment (or those in ``status``), summarised for the list."""

    experiments: list[ExperimentSummary]


Rate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


SIMULATION_MAX_HORIZON = 3_000
"""The longest simulated experiment, in requests per run."""

SIMULATION_BUDGET = 1_000_000
"""The most ``horizon × runs × arms`` one simulation may cost.

A simulation steps through the horizon in Python (every run and arm at once in numpy, for
each of four policies), so a step costs a fixed part (about 0.25 ms of one core) beside the
part that grows with ``runs × arms``: the horizon bounds the cost as much as the product
does, hence :data:`SIMULATION_MAX_HORIZON` beside the budget. CPU time measured on the
development machine (2 shared cores, busy with other work):

=======  =====  ====  ========  ========
horizon  arms   runs  product   CPU
=======  =====  ====  ========  ========
3,000    10     33    990,000   1.8 s
3,000    2      166   996,000   1.75 s
1,000    10     100   1,000,000 0.5 s
3,000    2      2     12,000    0.8 s
2,000    2      50    200,000   0.6 s (the simulator page's default)
=======  =====  ====  ========  ========
"""


class SimulateRequest(_Body):
    """Arms' true conversion rates and the size of a bandit simulation, bounded by
    :data:`SIMULATION_MAX_HORIZON` and :data:`SIMULATION_BUDGET`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"true_rates": [0.1, 0.12], "horizon": 1000}]},
    )

    true_rates: list[Rate] = Field(
        min_length=2, max_length=10, description="Each arm's true conversion rate."
    )
    horizon: int = Field(
        ge=100, le=SIMULATION_MAX_HORIZON, strict=True, description="Users per simulated run."
    )
    runs: int = Field(default=50, ge=2, le=200, strict=True, description="Simulated runs.")
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, strict=True, description="Seed of the simulation."
    )

    @model_validator(mode="after")
    def _within_budget(self) -> Self:
        cost = self.horizon * self.runs * len(self.true_rates)
        if cost > SIMULATION_BUDGET:
            raise ValueError(
                f"horizon × runs × arms (len(true_rates)) is {self.horizon:,} × {self.runs:,} × "
                f"{len(self.true_rates)} = {cost:,}, over the budget of {SIMULATION_BUDGET:,}: "
                "lower horizon, runs or the number of true_rates"
            )
        return self


# --- error bodies ----------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error but a 422: a message for people (404, 409, 400, 401, 403, 405, 413, 503)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "experiment 'checkout' does not exist"}]}
    )

    detail: str = Field(description="What went wrong, for a person to read.")


class ValidationIssue(BaseModel):
    """One rule a request broke."""

    loc: list[str | int] = Field(
        description="Where: the part of the request (body, query, path, header), then the"
        ' field\'s path, e.g. ["body", "variants", 1, "weight"] or ["query", "phase"].'
    )
    msg: str = Field(description="The rule, for a person to read.")
    type: str = Field(description="A machine-readable kind, e.g. bool_type, value_error.")


class ValidationErrorBody(BaseModel):
    """A 422: every request whose values break a rule, from the schema or from the service."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {"loc": ["query", "phase"], "msg": "must be between 0 and 1",
                         "type": "phase_out_of_range"}
                    ]
                }
            ]
        }
    )  # fmt: skip

    detail: list[ValidationIssue]


# --- analysis responses ------------------------------------------------------------------------
# Large payloads: the top-level fields are typed here; the nested objects are described in
# the README's "Reading the results" and may grow fields (extra fields are allowed).


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


AdaptiveMethodName = Literal["naive", "horvitz_thompson", "hajek", "aipw", "stabilized"]


class AdaptiveFigure(BaseModel):
    """One estimate from bandit traffic (an arm's mean, or a difference), by one method."""

    method: AdaptiveMethodName
    estimate: float | None
    std_error: float | None
    interval: list[float | None] | None = Field(
        description="[lower, upper] at the experiment's confidence level; null when undefined."
    )
    recommended_estimate: bool = Field(description="The unbiased estimate to report (Hájek).")
    recommended_interval: bool = Field(description="The interval to report (stabilized).")
    inference: Literal["fixed_horizon"] = Field(
        description="Fixed-horizon normal intervals: not always-valid."
    )
    reason: str | None = Field(description="Why a null figure is null.")
    reason_text: str | None


class AdaptiveArm(BaseModel):
    """One arm's mean, by every method."""

    variant: str
    users: int = Field(ge=0)
    weighted_users: int = Field(
        ge=0, description="Users whose assignment probability the store kept."
    )
    estimates: dict[AdaptiveMethodName, AdaptiveFigure]


class AdaptiveComparison(BaseModel):
    """One treatment's mean minus the control's, by every method."""

    variant: str
    control: str
    estimates: dict[AdaptiveMethodName, AdaptiveFigure]


class AdaptiveEstimates(BaseModel):
    """Estimates of a bandit experiment's primary metric weighted by the logged assignment
    probabilities (:mod:`abscope.adaptive_reports`)."""

    metric: str
    outcome: Literal["conversion", "value total"]
    allocation: str
    inference: Literal["fixed_horizon"]
    inference_note: str
    confidence_level: float
    users: int = Field(ge=0)
    randomised_users: int | None = Field(
        description="N of Horvitz-Thompson and AIPW; null unless all traffic enters."
    )
    recommended_estimate: AdaptiveMethodName
    recommended_interval: AdaptiveMethodName
    methods: dict[AdaptiveMethodName, str] = Field(description="What each method computes.")
    outcome_model: float | None = Field(description="AIPW's m: the pooled Hájek mean.")
    outcome_model_note: str
    arms: list[AdaptiveArm]
    comparisons: list[AdaptiveComparison]


class ResultsResponse(_Open):
    """A phase's analysis: the compatible two-variant fields, then every variant and
    comparison. Undefined values are null, with the reason in ``null_reasons``."""

    experiment_id: str
    status: Status
    phase: int = Field(ge=0)
    metric_type: MetricType
    control_samples: int
    treatment_samples: int
    control_conversion_rate: float | None
    treatment_conversion_rate: float | None
    absolute_difference: float | None
    confidence_interval: list[float | None] | None
    relative_lift: float | None
    relative_lift_interval: list[float | None] | None
    p_value: float | None
    is_significant: bool
    inference: str = Field(description="The test run: sequential or fixed-horizon.")
    min_relative_lift: float | None
    power: float | None
    null_reasons: dict[str, Any] = Field(description="Why each null value is null.")
    variants: list[dict[str, Any]] = Field(description="Per variant: counts, rate, interval.")
    comparisons: list[dict[str, Any]] = Field(description="Each treatment against the control.")
    srm: dict[str, Any] = Field(description="The sample-ratio-mismatch check.")
    srm_method: str
    adaptive_allocation_note: str | None
    decision: dict[str, Any] = Field(description="What the numbers allow one to decide.")
    metrics: list[dict[str, Any]] = Field(
        description="Every metric, the primary first: per variant its value, per treatment"
        " its comparison (secondaries corrected across metrics x arms, guardrails judged"
        " non-inferior, in breach or inconclusive); a quantile metric's entry is a"
        " QuantileMetricView (quantile_results per quantile and arm). Each entry's cuped is"
        " a MetricCupedView (a binary or mean metric adjusted by its own covariates) or"
        " null with cuped_reason."
    )
    decision_rule: dict[str, Any] = Field(
        description="The risk-aware decision: ship only when the primary wins and no"
        " guardrail is worse than its margin; names the guardrail that blocks."
    )
    guardrail_status: Literal["passing", "failing", "inconclusive"]
    cuped: dict[str, Any] | None = Field(
        default=None,
        description="The primary metric adjusted by the users' pre-exposure covariates"
        " (CUPED): per treatment the adjusted effect, its interval, the variance reduction"
        " and the θ used; null (reason in null_reasons.cuped) without covariates.",
    )
    adaptive_estimates: AdaptiveEstimates | None = Field(
        default=None,
        description="Bandit experiments: each arm's mean and each effect weighted by the"
        " logged assignment probabilities (naive, Horvitz-Thompson, Hájek, AIPW and"
        " square-root-weighted), Hájek recommended as the estimate and the square-root"
        " weighted interval as the interval; null (reason in"
        " null_reasons.adaptive_estimates) for fixed allocation.",
    )


class QuantileArmView(BaseModel):
    """One arm's quantile in a quantile metric's results (fixed-horizon interval)."""

    model_config = ConfigDict(extra="forbid")

    estimate: float | None = Field(description="The quantile; null without requests.")
    interval: list[float | None] | None = Field(
        description="Woodruff's interval, from the bootstrap over users."
    )
    std_error: float | None
    reason: str | None = Field(description="Why the interval (or estimate) is null.")
    users: int
    requests: int
    method: str = Field(description="The interval's method: woodruff, normal or percentile.")


class QuantileChangeView(BaseModel):
    """A treatment's quantile against the control's: difference and relative difference."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    difference: float | None = Field(description="treatment − control.")
    difference_interval: list[float | None] | None
    difference_reason: str | None
    relative: float | None = Field(description="treatment / control − 1.")
    relative_interval: list[float | None] | None
    relative_reason: str | None
    inference: Literal["fixed"] = "fixed"


class QuantileRowView(BaseModel):
    """One quantile of a quantile metric: every arm, and each treatment's change."""

    model_config = ConfigDict(extra="forbid")

    q: float
    label: str = Field(description="p50, p95, p99, ...")
    arms: dict[str, QuantileArmView]
    comparisons: list[QuantileChangeView]


CUPED_NOT_APPLICABLE: Final = (
    "CUPED is built for binary and mean metrics: a ratio needs covariates for its numerator"
    " and its denominator, and a quantile is not a mean"
)
"""Why a ratio or quantile metric has no ``cuped`` block (``cuped_reason``
``not_applicable``)."""


class MetricCupedComparison(BaseModel):
    """One treatment of a named metric's CUPED block (see :mod:`abscope.metric_cuped`)."""

    model_config = ConfigDict(extra="forbid")

    variant: str
    theta_method: Literal["pooled", "per_arm"]
    theta_reason: str
    theta_control: float | None
    theta_treatment: float | None
    control_mean: float | None
    treatment_mean: float | None
    difference: float | None = Field(description="The adjusted difference of means.")
    difference_se: float | None
    relative: float | None
    difference_interval: list[float | None] | None = Field(
        description="In the mode named by inference."
    )
    relative_interval: list[float | None] | None
    p_value: float | None = Field(description="Two-sided, in the mode named by inference.")
    adjusted_p_value: float | None = Field(
        description="Secondaries: p_value corrected over the adjusted secondary tests"
        " (p_value_correction says how); guardrails: null (not corrected)."
    )
    p_value_correction: str
    inference: Literal["fixed", "sequential"]
    fixed: dict[str, Any]
    sequential: dict[str, Any]
    unadjusted_difference: float | None
    unadjusted_se: float | None
    variance_reduction: float | None
    covariate_coverage: float
    imputed_value: float | None
    reason: str | None
    reason_text: str | None


class MetricCupedView(BaseModel):
    """A named binary or mean metric adjusted by its own pre-exposure covariates."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    role: Literal["secondary", "guardrail"]
    outcome: Literal["conversion", "value total"]
    users: int
    covariate_users: int
    imputation: str
    method: str
    verdict_basis: str = Field(description="What the adjusted figures decide (or do not).")
    comparisons: list[MetricCupedComparison]


class QuantileMetricView(BaseModel):
    """A quantile (latency) metric's entry in the results' ``metrics``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["quantile"] = "quantile"
    role: str
    higher_is_better: bool
    margin: float | None
    action: str | None
    quantiles: list[float]
    guard_quantile: float | None
    variants: dict[str, dict[str, Any]] = Field(
        description="Per variant: users, requests, value (null: see quantile_results)."
    )
    quantile_results: list[QuantileRowView]
    cuped: MetricCupedView | None = Field(
        default=None,
        description="Always null here: CUPED adjusts means (cuped_reason: not_applicable).",
    )
    cuped_reason: Literal["not_applicable"] = "not_applicable"
    cuped_reason_text: str = CUPED_NOT_APPLICABLE
    quantile_inference: Literal["fixed"] = Field(
        default="fixed", description="The quantile table's intervals are fixed-horizon."
    )
    quantile_method: str
    confidence_level: float
    comparisons: list[dict[str, Any]] = Field(
        description="A guardrail's always-valid verdicts per treatment (empty otherwise)."
    )


class GateMetric(_Open):
    """One guardrail for one treatment arm, as the gate judged it."""

    name: str = Field(description="The guardrail metric.")
    variant: str = Field(description="The treatment arm, judged against the control.")
    verdict: Literal["non_inferior", "breach", "inconclusive"]
    estimate: float | None = Field(description="Relative change (treatment / control - 1).")
    interval: list[float | None] | None = Field(description="Its always-valid bounds.")
    margin: float = Field(description="The relative non-inferiority margin.")
    reason: str | None = Field(description="A reason code, e.g. too_little_data.")
    reason_text: str = Field(description="The verdict in a sentence.")


class GateResponse(_Open):
    """The deployment gate: pass (200), inconclusive (202) or fail (412)."""

    experiment_id: str
    verdict: Literal["pass", "fail", "inconclusive"]
    status: Status = Field(description="The experiment's status.")
    metrics: list[GateMetric] = Field(description="Each guardrail for each treatment arm.")
    reasons: list[str] = Field(description="Why the verdict is what it is, in sentences.")


class TimeseriesResponse(_Open):
    """Hourly cumulative counts per variant, and the lift over time."""

    hours: list[str] = Field(description="The hours (ISO-8601), oldest first.")
    variants: dict[str, Any] = Field(description="Per variant, the series over ``hours``.")
    min_sample_size: int
    lift: dict[str, Any] = Field(description="Per treatment, the lift and its interval.")


class ExplainResponse(_Open):
    """Why a user gets a variant: the buckets, the ranges and the rules that applied."""

    experiment_id: str
    status: Status
    phase: int = Field(ge=0)
    user_id: str
    variant_name: str | None = Field(description="Null when the user is not in the traffic.")
    reason: str = Field(description="hash, forced, sticky, not_in_traffic, ...")
    probability: float | None = Field(description="Chance of this variant; null outside.")
    traffic_percentage: float
    gate_bucket: float | None = Field(description="The traffic gate's bucket, in [0, 1).")
    variant_bucket: float | None = Field(description="The bucket that picks the variant.")
    layer: str | None
    layer_bucket: float | None
    layer_intervals: list[Any] | None
    ranges: dict[str, list[float]]
    sticky: bool
    forced: bool
    allocation: Allocation


def _plan_fields() -> dict[str, Any]:
    """:class:`~abscope.stats.planner.DurationPlan`'s fields with their types, so the
    response's schema follows the plan instead of repeating it."""
    hints = get_type_hints(DurationPlan)
    return {field.name: (hints[field.name], ...) for field in dataclass_fields(DurationPlan)}


CalculateResponse = create_model(
    "CalculateResponse",
    __base__=_Open,
    __doc__="The duration plan, :class:`abscope.stats.planner.DurationPlan` as JSON (the"
    " request's inputs after validation, then the plan and its warnings), with the numbers"
    " behind the planner's two charts, ``sensitivity`` and ``power_grid``.",
    **_plan_fields(),
    sensitivity=(dict[str, Any], ...),
    power_grid=(dict[str, Any], ...),
)


class Figure(_Open):
    """A plotly figure: ``Plotly.newPlot(element, figure.data, figure.layout)``."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]


class ExperimentCharts(BaseModel):
    """The detail page's four figures, and one per declared metric other than the primary
    (its relative effect by hour with its interval; a guardrail's margin as a line)."""

    conversion: Figure
    lift: Figure
    samples: Figure
    posterior: Figure
    metrics: dict[str, Figure] = Field(default_factory=dict)


class PlanCharts(BaseModel):
    """The plan (as ``POST /calculate`` gives it) and its two figures."""

    plan: CalculateResponse
    sensitivity: Figure
    power: Figure


class SimulationCharts(BaseModel):
    """The regret of each policy over the horizon, and at its end."""

    regret: Figure
    final_regret: dict[str, float] = Field(description="Mean final regret per policy.")
    final_regret_se: dict[str, float] = Field(description="Its standard error per policy.")


class Health(BaseModel):
    status: Literal["ok", "ready"]


class ServedAnswer(BaseModel):
    """What everyone gets from an experiment that is not running."""

    variant_name: str
    model_id: str
    reason: NotInExperiment | None


class SdkVariant(BaseModel):
    name: str
    model_id: str
    weight: float


class SdkExperiment(BaseModel):
    """One experiment as the SDK routes it; see :mod:`abscope.sdk_config`. Draft,
    completed and stopped experiments carry only ``status`` and ``serve``."""

    status: Status
    serve: ServedAnswer | None = Field(
        description="The answer everyone gets while the experiment is not running."
    )
    phase: int | None = None
    mode: Literal["hash", "sticky", "bandit"] | None = Field(
        default=None,
        description="`hash` experiments are routed in-process; `sticky` and `bandit` ones"
        " need the store, so the SDK asks /route.",
    )
    variants: list[SdkVariant] | None = None
    control: str | None = None
    traffic_percentage: float | None = None
    gate_seed: int | None = None
    variant_seed: int | None = None
    layer: str | None = None
    layer_intervals: list[tuple[float, float]] | None = None
    forced: dict[str, str] | None = None


class RoutingConfig(BaseModel):
    """The routing configuration of every experiment, for evaluation in the SDK."""

    format: Literal[1]
    running: list[str] = Field(description="Running experiments in /route's order.")
    experiments: dict[str, SdkExperiment]
