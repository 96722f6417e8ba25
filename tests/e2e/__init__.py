"""Browser tests of the dashboard: Debian's Chromium, driven by Playwright, against a real
uvicorn process on a temporary SQLite file."""
