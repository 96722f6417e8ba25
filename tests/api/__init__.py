"""The HTTP API, in process (TestClient) and as a real uvicorn process."""
