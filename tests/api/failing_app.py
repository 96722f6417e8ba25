"""``uvicorn tests.api.failing_app:create_app --factory``: abscope's app (settings from the
``ABSCOPE_*`` environment) with one more route, ``GET /boom``, that raises, for the test of
what an unhandled error logs (``tests/api/test_json_logs.py``)."""

from __future__ import annotations

from fastapi import FastAPI

from abscope.api.app import create_app as create_abscope_app

__all__ = ["create_app"]


def create_app() -> FastAPI:
    app = create_abscope_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom: a bug")

    return app
