"""Request and response bodies of the HTTP API (plain pydantic, no FastAPI: the service
uses them too, and must not depend on the API layer).

The compatible endpoints keep their original field names exactly (``control_model_id``,
``treatment_model_id``, ``control_weight``, ``variant_name``, ``converted``, ...); the
general forms (``variants`` lists, event batches) sit beside them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from abscope.models import (
    MAX_TEXT_LENGTH,
    Allocation,
    EventKind,
    MetricType,
    Slug,
    Status,
    UserId,
    Variant,
    check_min_lift,
    check_power,
)
from abscope.stats.sequential import DEFAULT_TUNING_N

EVENT_ID_PATTERN = r"^[A-Za-z0-9._:@/+=~-]{1,128}$"
"""Client event ids: 1-128 of these characters. ``#`` is left out on purpose: the service
derives ``<event_id>#value`` for the value part of a ``/log`` call, which can then never
collide with a client's own id."""

__all__ = [
    "BatchEvent",
    "BatchRequest",
    "BatchResponse",
    "CalculateRequest",
    "CompleteRequest",
    "CreateExperimentRequest",
    "LogRequest",
    "LogResponse",
    "PatchExperimentRequest",
    "RouteRequest",
    "RouteResponse",
    "Assignment",
    "ExposureStatus",
    "NotInExperiment",
    "SIMULATION_BUDGET",
    "SIMULATION_MAX_HORIZON",
    "SimulateRequest",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperimentRequest(_Body):
    """Either the two-model form (``control_model_id``, ``treatment_model_id``) or a general
    ``variants`` list."""

    id: Slug | None = None
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    # The two-model form: two variants named control and treatment.
    control_model_id: str | None = Field(default=None, min_length=1, max_length=256)
    treatment_model_id: str | None = Field(default=None, min_length=1, max_length=256)
    control_weight: float | None = Field(default=None, gt=0.0, lt=1.0, allow_inf_nan=False)
    # The general form.
    variants: list[Variant] | None = Field(default=None, min_length=2, max_length=32)
    traffic_percentage: float = Field(default=100.0, gt=0.0, le=100.0, allow_inf_nan=False)
    min_sample_size: int = Field(default=0, ge=0, le=10**12)
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    metric_type: MetricType = "binary"
    allocation: Allocation = "fixed"
    layer: Slug | None = None
    sticky: bool = False
    sequential: bool = True
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
    forced_variants: dict[str, str] = Field(default_factory=dict, max_length=1000)

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

    ``min_relative_lift`` and ``power`` may change while the experiment runs (each change is
    audited); an explicit ``"min_relative_lift": null`` clears the minimum lift.
    """

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    traffic_percentage: float | None = Field(default=None, gt=0.0, le=100.0, allow_inf_nan=False)
    weights: dict[str, Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]] | None = Field(
        default=None, min_length=2, max_length=32
    )
    min_sample_size: int | None = Field(default=None, ge=0, le=10**12)
    confidence_level: float | None = Field(default=None, gt=0.5, lt=1.0)
    min_relative_lift: float | None = Field(default=None, gt=-1.0, allow_inf_nan=False)
    power: float | None = Field(default=None, gt=0.0, lt=1.0, allow_inf_nan=False)
    forced_variants: dict[str, str] | None = Field(default=None, max_length=1000)

    @field_validator("min_relative_lift")
    @classmethod
    def _check_min_lift(cls, lift: float | None) -> float | None:
        return check_min_lift(lift)


class CompleteRequest(_Body):
    winner: str | None = None


class RouteRequest(_Body):
    user_id: UserId
    experiment_id: Slug | None = None
    expose: bool = Field(
        default=True,
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


class LogRequest(_Body):
    experiment_id: Slug
    user_id: UserId
    variant_name: Slug
    converted: bool = False
    value: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    event_id: str | None = Field(default=None, pattern=EVENT_ID_PATTERN)
    timestamp: datetime | None = None


class LogResponse(BaseModel):
    status: Literal["counted", "duplicate"]
    new_exposure: bool
    new_conversion: bool


class BatchEvent(_Body):
    experiment_id: Slug
    user_id: UserId
    variant_name: Slug
    kind: EventKind
    value: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    event_id: str | None = Field(default=None, pattern=EVENT_ID_PATTERN)
    timestamp: datetime | None = None


class BatchRequest(_Body):
    events: list[BatchEvent] = Field(min_length=1)


class BatchResult(BaseModel):
    """One event's outcome. ``unavailable`` happens only on a Redis Cluster, when the
    store failed after the events of other experiments of the batch were applied: the
    answer then says exactly which events were applied (a 503 means none was)."""

    status: Literal["counted", "duplicate", "variant_mismatch", "rejected", "unavailable"]
    new_exposure: bool = False
    new_conversion: bool = False
    error: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchResult]
    counted: int
    duplicates: int
    rejected: int
    unavailable: int = 0


class CalculateRequest(_Body):
    baseline_rate: float
    min_relative_lift: float
    daily_traffic: float
    allocation: float = 1.0
    treatment_share: float = 0.5
    power: float = 0.8
    alpha: float = 0.05
    two_sided: bool = True
    # The test the analysis will run: sequential, as a new experiment is by default, with
    # the analysis' tuning; the plan carries the other mode's figures too.
    sequential: bool = True
    sequential_tuning_n: int = DEFAULT_TUNING_N


class ExperimentList(BaseModel):
    experiments: list[dict[str, Any]]
    status: Status | None = None


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

    true_rates: list[Rate] = Field(min_length=2, max_length=10)
    horizon: int = Field(ge=100, le=SIMULATION_MAX_HORIZON)
    runs: int = Field(default=50, ge=2, le=200)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

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
