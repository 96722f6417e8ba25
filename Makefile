# abscope developer commands. `make test` is the one test command; CI runs exactly it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck unit install system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'  # dev includes the server extra
	touch $(STAMP)

install: $(STAMP)

# The service with its dashboard on the embedded store (./abscope.db); set ABSCOPE_REDIS_URL for Redis.
serve: $(STAMP)
	$(BIN)/abscope serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

system-deps:
	bash scripts/install-system-deps.sh

unit: $(STAMP) system-deps
	$(BIN)/pytest -n 2

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
