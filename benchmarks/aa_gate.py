"""The A/A gate, larger than the test suite's: figures, not speed.

The same seeded A/A traffic as ``tests/api/test_aa_gate.py`` (:mod:`tests.fixtures.aa_gate`:
every user routed by ``POST /route``, conversions through ``POST /events``, every
experiment's results read through the API after every simulated day), on a real
``abscope serve`` over a fresh SQLite file, with more experiments and more users a day,
so the realised error rates carry a smaller Monte Carlo error than the test's 40 runs.

Run alone: ``python -m benchmarks.aa_gate``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.fixtures.aa_gate import AAGate, AAOutcome, run_aa_gate
from tests.fixtures.uvicorn_server import AbscopeServer

__all__ = ["GATE", "run"]

GATE = AAGate(experiments=200, days=14, users_per_day=300)


def run(gate: AAGate = GATE) -> tuple[AAOutcome, float]:
    """The outcome of ``gate`` on a fresh server, and the seconds it took."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="abscope-aa-gate-") as directory:
        workdir = Path(directory)
        env = {"ABSCOPE_MONITOR": "false", "ABSCOPE_DB_PATH": str(workdir / "aa.db")}
        with AbscopeServer(workdir / "server.log", env=env, health_path="/health") as server:
            with server.client() as api:
                outcome = run_aa_gate(api, gate)
    return outcome, time.perf_counter() - started


def main() -> None:
    outcome, seconds = run()
    print(outcome.summary())
    print(f"measured in {seconds:.0f} s")


if __name__ == "__main__":
    main()
