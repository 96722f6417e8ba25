"""Backfilling CUPED covariates: a pre-exposure value per user, set once per phase.

A covariate can come with the user's exposure (``covariate`` on an ``/events`` exposure)
or later, by ``POST /experiments/{id}/covariates``, for users exposed already. Either way
it is set once in the experiment's current phase: the same value again changes nothing and
another value is refused and reported, never silently replaced (the adjusted effect would
otherwise depend on who wrote last).
"""

from __future__ import annotations

from typing import Final

from abscope import schemas
from abscope.config import Settings
from abscope.errors import Conflict, InvalidInput
from abscope.models import Status
from abscope.storage.base import CovariateOutcome, Store

__all__ = ["Covariates"]

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
        the batch size. Each user's outcome is reported; nothing else fails the call.
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
        pairs = [(item.user_id, item.value) for item in request.covariates]
        outcomes = self.store.record_covariates(experiment.id, experiment.phase, pairs)
        results = [
            schemas.CovariateResult(user_id=user, status=outcome, error=_ERRORS.get(outcome))
            for (user, _), outcome in zip(pairs, outcomes, strict=True)
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
