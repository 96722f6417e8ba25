"""Acceptance tests that run the real service (uvicorn, several workers) under concurrent load."""
