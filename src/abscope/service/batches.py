"""The answer to an ``/events`` batch: which events passed their checks, and each outcome.

:meth:`abscope.service.traffic.Traffic.check_batch` builds a :class:`CheckedBatch`; once the
store applied its events, :meth:`CheckedBatch.response` (or the HTTP layer's byte-for-byte
equivalent, :func:`abscope.api.hot_paths.batch_json`) answers each position of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from abscope import schemas
from abscope.models import Event
from abscope.storage.base import EventResult

__all__ = ["CheckedBatch", "batch_result"]


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A checked ``/events`` batch: the ``events`` that passed, at positions ``slots`` of
    the batch, and the message of each rejected position."""

    size: int
    events: list[Event]
    slots: list[int]
    rejected: dict[int, str]

    def outcomes(self, stored: Sequence[EventResult]) -> list[EventResult | str]:
        """Each position's outcome: the store's result, or the rejection's message."""
        outcomes: list[EventResult | str] = [""] * self.size
        for index, message in self.rejected.items():
            outcomes[index] = message
        for index, result in zip(self.slots, stored, strict=True):
            outcomes[index] = result
        return outcomes

    def response(self, stored: Sequence[EventResult]) -> schemas.BatchResponse:
        """The answer once the store applied ``events`` with ``stored``."""
        results = [
            schemas.BatchResult(status="rejected", error=o)
            if isinstance(o, str)
            else batch_result(o)
            for o in self.outcomes(stored)
        ]
        return schemas.BatchResponse(
            results=results,
            counted=sum(r.status == "counted" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=sum(
                r.status in ("rejected", "variant_mismatch", "covariate_mismatch") for r in results
            ),
            unavailable=sum(r.status == "unavailable" for r in results),
        )


_OUTCOME_ERRORS = {
    "variant_mismatch": "the user was first exposed to another variant",
    "covariate_mismatch": "the user has another covariate in this phase (a covariate is set"
    " once): nothing of this event was applied",
    "unavailable": "not applied: the store failed after other events of the batch were"
    " applied; send this event again (with its event_id, a retry is counted once)",
}


def batch_result(result: EventResult) -> schemas.BatchResult:
    """The answer for one event the store applied with ``result``."""
    return schemas.BatchResult(
        status=result.outcome,
        error=_OUTCOME_ERRORS.get(result.outcome),
        new_exposure=result.new_exposure,
        new_conversion=result.new_conversion,
    )
