"""Bandit traffic with known true rates through a real store and the results use case: the
``adaptive_estimates`` section equals :func:`adaptive_mean` and :func:`adaptive_difference`
on :meth:`WeightedSums.from_users` of the raw per-user data the test sent.

Traffic is Thompson-sampled in rounds, as the server allocates it (the policy's exact
allocation from the counts so far, floor 0.01), so users are exposed with different
probabilities; their conversions and values arrive later with other probabilities (which
the store must ignore), some twice under one event id. Small and seeded: the 1,000-run
bias and coverage figures are in ``benchmarks/calibration.py``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from abscope.bandits import ThompsonConfig
from abscope.bandits.policies import allocation_probabilities
from abscope.models import Event, Status
from abscope.service.analysis import Analysis
from abscope.stats.adaptive_estimates import WeightedSums, adaptive_difference, adaptive_mean
from abscope.storage.base import Store
from tests.fixtures.factories import T0, experiment

TRUE_RATES = {"control": 0.10, "treatment": 0.16}
ROUNDS, PER_ROUND = 24, 25


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        from abscope.storage.sqlite import SQLiteStore

        opened: Store = SQLiteStore(tmp_path / "abscope.db")
    else:
        from abscope.storage.redis import RedisStore

        opened = RedisStore.from_url(request.getfixturevalue("redis_url"))
    try:
        yield opened
    finally:
        opened.close()


def _traffic(
    exp: str, metric_type: str, seed: int
) -> tuple[list[Event], dict[str, dict[str, list[float]]]]:
    """Thompson-sampled events and the raw per-user ``[outcome, p]`` of each arm."""
    rng = random.Random(seed)
    policy = ThompsonConfig(floor=0.01)
    names = list(TRUE_RATES)
    raw: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    events: list[Event] = []
    for round_ in range(ROUNDS):
        pulls = np.array([len(raw[n]) for n in names], float)
        rewards = np.array([sum(y > 0 for y, _ in raw[n].values()) for n in names], float)
        allocation = [float(a) for a in allocation_probabilities(policy, pulls, rewards)]
        at = T0 + timedelta(minutes=round_)
        for index in range(PER_ROUND):
            user = f"u{round_:02d}-{index:02d}"
            arm = rng.choices(range(len(names)), weights=allocation)[0]
            variant, p = names[arm], allocation[arm]
            base: dict[str, Any] = {
                "experiment_id": exp, "user_id": user, "variant": variant, "at": at,
            }  # fmt: skip
            events.append(Event(kind="exposure", probability=p, **base))
            y = 0.0
            if rng.random() < TRUE_RATES[variant]:
                y = 1.0 if metric_type == "binary" else float(rng.randint(1, 8))
                later = rng.choice([1.0, 0.5, p])  # not the exposure's p: ignored
                if metric_type == "binary":
                    events.append(Event(kind="conversion", probability=later, **base))
                    events.append(Event(kind="conversion", probability=later, **base))
                else:
                    half = y / 2
                    for part in ("a", "b", "b"):  # "b" twice: one retry under its id
                        events.append(Event(
                            kind="value", value=half, probability=later,
                            event_id=f"{user}-{part}", **base,
                        ))  # fmt: skip
            raw[variant][user] = [y, p]
    return events, raw


@pytest.mark.parametrize("metric_type", ["binary", "continuous"])
def test_the_results_equal_the_estimators_on_the_raw_users(store: Store, metric_type: str) -> None:
    exp = f"bandit-{metric_type}-{uuid.uuid4().hex[:8]}"
    store.create_experiment(
        experiment(
            exp, allocation="thompson", metric_type=metric_type, status=Status.RUNNING,
            started_at=T0,
        )
    )  # fmt: skip
    events, raw = _traffic(exp, metric_type, seed=7)
    for start in range(0, len(events), 97):  # batches that cut users' events apart
        store.record_events(events[start : start + 97])
    body = Analysis(store, clock=lambda: T0 + timedelta(days=1)).results(exp)
    section = body["adaptive_estimates"]
    assert section is not None and "adaptive_estimates" not in body["null_reasons"]

    sums = {
        name: WeightedSums.from_users(*zip(*users.values(), strict=True))
        for name, users in raw.items()
    }
    assert len({p for users in raw.values() for _, p in users.values()}) > 10  # adaptive
    total = ROUNDS * PER_ROUND
    pooled = sums["control"] + sums["treatment"]
    model = pooled.value_inverse_probability_sum / pooled.inverse_probability_sum
    assert section["randomised_users"] == total
    assert section["outcome_model"] == pytest.approx(model, rel=1e-9)
    for arm in section["arms"]:
        assert arm["users"] == arm["weighted_users"] == len(raw[arm["variant"]])
        for method, figure in arm["estimates"].items():
            want = adaptive_mean(sums[arm["variant"]], method, total=total, outcome_model=model)
            assert figure["estimate"] == pytest.approx(want.estimate, rel=1e-9), method
            assert figure["std_error"] == pytest.approx(want.std_error, rel=1e-9), method
    [comparison] = section["comparisons"]
    for method, figure in comparison["estimates"].items():
        want = adaptive_difference(
            sums["treatment"], sums["control"], method, total=total, outcome_models=(model, model)
        )
        assert figure["estimate"] == pytest.approx(want.estimate, rel=1e-9), method
        assert figure["interval"] == pytest.approx([want.ci.lower, want.ci.upper], rel=1e-9)  # type: ignore[union-attr]
    # the policy starved the worse arm, so its users came with small probabilities
    control = min(p for _, p in raw["control"].values())
    assert control < 0.5


def test_a_fixed_split_has_no_section_and_says_why(store: Store) -> None:
    exp = f"fixed-split-{uuid.uuid4().hex[:8]}"
    store.create_experiment(experiment(exp, status=Status.RUNNING, started_at=T0))
    store.record_events(
        [Event(experiment_id=exp, user_id="u1", variant="control", kind="exposure", at=T0)]
    )
    body = Analysis(store, clock=lambda: T0 + timedelta(days=1)).results(exp)
    assert body["adaptive_estimates"] is None
    assert body["null_reasons"]["adaptive_estimates"] == "fixed_allocation"
