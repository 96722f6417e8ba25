"""The A/A gate: seeded A/A traffic through a real server, read through the API every day.

The traffic is :mod:`tests.fixtures.aa_gate`'s: many A/A experiments on one uvicorn process,
each day's cohort routed by ``POST /route`` (exposures recorded), conversions sent through
``POST /events``, every experiment's results read after every day. Routing, logging,
counting, analysis and the decision all run for real, end to end.

With sequential (always-valid) inference on, the share of experiments that ever declare a
winner over all daily looks must be at most α plus its Monte Carlo error; and the share
whose always-valid SRM check ever flags a mismatch at most its threshold plus its error.
The daily chi-square SRM check, valid at one look only, is reported beside it (printed,
not asserted). Sized to run within a minute; ``make bench`` runs a larger one
(``benchmarks/aa_gate.py``), and ``AA_GATE_EXPERIMENTS=400 pytest -s
tests/api/test_aa_gate.py`` sizes this one up.
"""

from __future__ import annotations

import os

from tests.api.conftest import MakeServer
from tests.fixtures.aa_gate import AAGate, monte_carlo_bound, run_aa_gate

GATE = AAGate(experiments=int(os.environ.get("AA_GATE_EXPERIMENTS", "40")))


def test_aa_traffic_through_the_real_pipeline_keeps_its_error_rates(
    make_server: MakeServer,
) -> None:
    server = make_server(ABSCOPE_MONITOR="false")
    with server.client() as api:
        outcome = run_aa_gate(api, GATE)
    print(outcome.summary())
    runs = GATE.experiments
    assert outcome.share(outcome.winners) <= monte_carlo_bound(GATE.alpha, runs), outcome.winners
    bound = monte_carlo_bound(outcome.threshold, runs)
    assert outcome.share(outcome.sequential_alarms) <= bound, outcome.sequential_alarms
