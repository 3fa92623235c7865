# One command to run the demo, one to run every test. `.ci/run` calls `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TS_DIR := clients/typescript

.PHONY: run test test-python test-ts lint schemas docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(TS_DIR)/node_modules/.package-lock.json: $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund

## run: start the gateway (memory broker) with the dashboard and simulated events
run: $(STAMP)
	$(PY) -m autosdlc_ws demo

## test: every test (Python and TypeScript)
test: test-python test-ts

test-python: $(STAMP)
	$(PY) -m pytest -q

test-ts: $(TS_DIR)/node_modules/.package-lock.json
	cd $(TS_DIR) && npm test

lint: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check src tests

## schemas: regenerate JSON Schemas and docs/asyncapi.yaml from the models
schemas: $(STAMP)
	$(PY) -m autosdlc_ws.core.schema_export --write

clean:
	rm -rf $(VENV) $(TS_DIR)/node_modules $(TS_DIR)/dist

## docs: regenerate the README configuration table, JSON Schemas and AsyncAPI
docs: $(STAMP)
	$(PY) scripts/update_readme_config.py
	$(PY) -m autosdlc_ws.core.schema_export --write
