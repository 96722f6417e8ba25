"""A stand-in for a slow abscope server (served by a real uvicorn in the async tests): every
API answer waits ``SLOW_SECONDS`` first, without blocking its own event loop. ``/health``
answers at once, so the fixture can tell when it is up."""

from __future__ import annotations

import asyncio
import json
from typing import Any

SLOW_SECONDS = 1.0

CONFIG = {
    "format": 1,
    "running": ["hashed", "sticky"],
    "experiments": {
        name: {
            "status": "running", "phase": 0, "mode": mode, "control": "control",
            "variants": [
                {"name": "control", "model_id": "m1", "weight": 0.5},
                {"name": "treatment", "model_id": "m2", "weight": 0.5},
            ],
            "traffic_percentage": 100.0, "gate_seed": 0, "variant_seed": 0, "layer": None,
            "layer_intervals": [], "forced": {}, "serve": None,
        }
        for name, mode in (("hashed", "hash"), ("sticky", "sticky"))
    },
}  # fmt: skip


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = await _body(receive)
    if path != "/health":
        await asyncio.sleep(SLOW_SECONDS)
    if path == "/sdk/config":
        answer: Any = CONFIG
    elif path == "/route":
        request = json.loads(body)
        answer = {
            "experiment_id": request["experiment_id"], "variant_name": "treatment",
            "model_id": "m2", "in_experiment": True, "reason": None,
            "exposure_recorded": True, "exposure_status": "recorded",
            "assignments": [{
                "experiment_id": request["experiment_id"], "variant_name": "treatment",
                "model_id": "m2", "in_experiment": True, "reason": None,
                "exposure_recorded": True, "exposure_status": "recorded",
            }],
        }  # fmt: skip
    elif path == "/events":
        events = json.loads(body)["events"]
        answer = {
            "results": [{"status": "counted"} for _ in events],
            "counted": len(events), "duplicates": 0, "rejected": 0,
        }  # fmt: skip
    else:
        answer = {"status": "ok"}
    payload = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"etag", b'"slow-1"')]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
