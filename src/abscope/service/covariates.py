"""Backfilling CUPED covariates: a pre-exposure value per user, set once per phase.

A covariate can come with the user's exposure (``covariate`` on an ``/events`` exposure)
or later, by ``POST /experiments/{id}/covariates``, for users exposed already. Either way
it is set once in the experiment's current phase: the same value again changes nothing and
another value is refused and reported, never silently replaced (the adjusted effect would
otherwise depend on who wrote last).

A named metric of kind binary or mean may have its own covariate per user: in
``covariates`` (``{"<metric>": value}``) on an ``/events`` exposure, or as a backfill item
naming ``metric``. Naming the primary there means the primary's covariate. Ratio and
quantile metrics are refused (CUPED for a ratio needs a covariate for its numerator and
one for its denominator, and a quantile is not a mean: neither is built).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput
from abscope.models import Experiment, Metric, Status
from abscope.storage.base import CovariateItem, CovariateOutcome, Store

__all__ = ["Covariates", "covariate_metric", "split_covariates"]

_NOT_ADJUSTABLE: Final = {
    "ratio": "CUPED for a ratio metric needs a covariate for its numerator and one for its"
    " denominator (not built); send covariates for binary or mean metrics",
    "quantile": "CUPED adjusts means: a quantile metric has no adjusted estimator here; send"
    " covariates for binary or mean metrics",
}


def covariate_metric(
    metrics: Mapping[str, Metric], experiment_id: str, name: str, field: str
) -> str | None:
    """The named metric a covariate is for (``None``: the primary, also when ``name``
    names it); ``InvalidInput`` on ``field`` for an undeclared metric or one of kind ratio
    or quantile (CUPED is built for binary and mean metrics)."""
    metric = metrics.get(name)
    if metric is None:
        names = ", ".join(sorted(metrics))
        raise InvalidInput(
            field, f"{name!r} is not a metric of {experiment_id} (its metrics: {names})"
        )
    if metric.role == "primary":
        return None
    reason = _NOT_ADJUSTABLE.get(metric.kind)
    if reason is not None:
        raise InvalidInput(field, f"metric {name!r} is {metric.kind}: {reason}")
    return metric.name


def split_covariates(
    metrics: Mapping[str, Metric],
    experiment_id: str,
    primary: float | None,
    covariates: Mapping[str, float],
    prefix: str,
) -> tuple[float | None, dict[str, float] | None]:
    """An exposure's covariates checked: ``(the primary's, {named metric: value} or None)``.

    ``prefix`` is the event's position (``events.3.``); errors name
    ``<prefix>covariates.<metric>``.
    """
    named: dict[str, float] = {}
    for name, value in covariates.items():
        field = f"{prefix}covariates.{name}"
        metric = covariate_metric(metrics, experiment_id, name, field)
        if metric is not None:
            named[metric] = value
        elif primary is not None and primary != value:
            raise InvalidInput(
                field,
                f"{name!r} is the primary metric, whose covariate is given in covariate as"
                f" {primary:g}: send it once",
            )
        else:
            primary = value
    return primary, named or None


_ACCEPTING: Final = frozenset({Status.RUNNING, Status.PAUSED})
_ERRORS: Final[dict[CovariateOutcome, str]] = {
    "conflict": "the user has another covariate in this phase; it is kept (a covariate is"
    " set once)",
    "not_exposed": "the user has no exposure in the experiment's current phase: send the"
    " covariate with the exposure, or backfill it after",
}


class Covariates:
    """The covariate backfill over one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def backfill(
        self, experiment_id: str, request: schemas.CovariateRequest
    ) -> schemas.CovariateResponse:
        """Set the covariates of users exposed in the experiment's current phase.

        ``NotFound`` for an unknown experiment, ``Conflict`` unless it is running or paused
        (the data of an ended experiment stay as they were), ``InvalidInput`` for more than
        the batch size or an item whose ``metric`` is undeclared or not binary or mean
        (nothing is stored then). Each user's outcome is reported; nothing else fails the
        call.
        """
        if len(request.covariates) > self.settings.max_batch_size:
            raise InvalidInput(
                "covariates", f"at most {self.settings.max_batch_size} covariates per call"
            )
        experiment = self.store.get_experiment(experiment_id)
        if experiment.status not in _ACCEPTING:
            raise Conflict(
                f"experiment {experiment_id} is {experiment.status.value}; covariates are"
                " accepted only while it is running or paused"
            )
        pairs = _items(experiment, request)
        outcomes = self.store.record_covariates(experiment.id, experiment.phase, pairs)
        results = [
            schemas.CovariateResult(user_id=user, status=outcome, error=_ERRORS.get(outcome))
            for (user, *_), outcome in zip(pairs, outcomes, strict=True)
        ]
        return schemas.CovariateResponse(
            experiment_id=experiment.id,
            phase=experiment.phase,
            results=results,
            set=outcomes.count("set"),
            unchanged=outcomes.count("unchanged"),
            conflicts=outcomes.count("conflict"),
            not_exposed=outcomes.count("not_exposed"),
        )


def _items(experiment: Experiment, request: schemas.CovariateRequest) -> list[CovariateItem]:
    """The store's items of a backfill, every metric checked before anything is stored."""
    metrics = {metric.name: metric for metric in experiment.all_metrics}
    items: list[CovariateItem] = []
    for index, item in enumerate(request.covariates):
        if item.metric is None:
            items.append((item.user_id, item.value))
            continue
        metric = covariate_metric(metrics, experiment.id, item.metric, f"covariates.{index}.metric")
        items.append((item.user_id, item.value, metric))
    return items
