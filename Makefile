# One command to run the demo, one to run every test. `.ci/run` calls `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TS_DIR := clients/typescript
DASH_DIR := dashboard
DASH_INDEX := src/autosdlc_ws/static/index.html
ASYNCAPI_DIR := tools/asyncapi-check

.PHONY: bench bench-peers soak dist run test test-python test-asyncapi test-ts test-dashboard dashboard dashboard-if-missing lint schemas docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'  # bench: the harness's own tests use its peers
	touch $(STAMP)

$(TS_DIR)/node_modules/.package-lock.json: $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund

$(DASH_DIR)/node_modules/.package-lock.json: $(DASH_DIR)/package-lock.json
	cd $(DASH_DIR) && npm ci --no-audit --no-fund

$(ASYNCAPI_DIR)/node_modules/.package-lock.json: $(ASYNCAPI_DIR)/package-lock.json
	cd $(ASYNCAPI_DIR) && npm ci --no-audit --no-fund

## dashboard: build the web dashboard (dashboard/, Vite) into src/autosdlc_ws/static/, served at /
dashboard:
	cd $(DASH_DIR) && npm ci --no-audit --no-fund && npm run build

# `make run` builds the dashboard when it is missing; without npm (or when the
# build fails) the gateway still runs and / shows a fallback page.
dashboard-if-missing:
	@if [ -f $(DASH_INDEX) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory dashboard || echo "make: the dashboard did not build; / shows a fallback page"; \
	else echo "make: npm not found, so the dashboard is not built; / shows a fallback page"; fi

## run: start the gateway (memory broker) with the dashboard and simulated events
run: $(STAMP) dashboard-if-missing
	$(PY) -m autosdlc_ws demo

## test: every test (Python, AsyncAPI document, TypeScript client, dashboard end to end in headless Chromium)
test: lint test-python test-asyncapi test-ts test-dashboard

test-python: $(STAMP)
	$(PY) -m pytest -q

# docs/asyncapi.yaml through the official parser (@asyncapi/parser): errors fail, warnings are printed.
# That the document matches the models is tests/unit/test_schemas_current.py's job.
test-asyncapi: $(ASYNCAPI_DIR)/node_modules/.package-lock.json
	cd $(ASYNCAPI_DIR) && npm test

test-ts: $(STAMP) $(TS_DIR)/node_modules/.package-lock.json
	cd $(TS_DIR) && npm test

# Type check, build, unit tests, then the browser tests against a real gateway
# (needs the venv and /usr/bin/chromium; the browser tests are skipped without them).
test-dashboard: $(STAMP) $(DASH_DIR)/node_modules/.package-lock.json
	cd $(DASH_DIR) && npm test

## lint: mypy --strict on the package, ruff on code and tests (part of `make test`)
lint: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check src tests benchmarks setup.py build_dashboard.py

## schemas: regenerate JSON Schemas and docs/asyncapi.yaml from the models
schemas: $(STAMP)
	$(PY) -m autosdlc_ws.tools.schemas --write

## dist: release artefacts in dist/: sdist and wheel (both carry the dashboard, built fresh by
## setup.py's hook; the wheel is built from the sdist) and the npm client's tarball (its prepack builds it)
dist: $(STAMP) $(TS_DIR)/node_modules/.package-lock.json
	rm -rf dist
	$(PY) -m build --outdir dist .
	cd $(TS_DIR) && npm pack --pack-destination ../../dist
	@ls -l dist

clean:
	rm -rf $(VENV) $(TS_DIR)/node_modules $(NODE_SIO_DIR)/node_modules $(TS_DIR)/dist $(ASYNCAPI_DIR)/node_modules dist build

## docs: regenerate the README configuration table, JSON Schemas and AsyncAPI
docs: $(STAMP)
	$(PY) scripts/update_readme_config.py
	$(PY) -m autosdlc_ws.tools.schemas --write

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

NODE_SIO_DIR := benchmarks/peers/node-socketio

$(NODE_SIO_DIR)/node_modules/.package-lock.json: $(NODE_SIO_DIR)/package-lock.json
	cd $(NODE_SIO_DIR) && npm ci --no-audit --no-fund

# The Node.js Socket.IO peer (npm `socket.io`); without npm the suite runs without it.
bench-peers:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(NODE_SIO_DIR)/node_modules/.package-lock.json; \
	else echo "make: npm not found, so the suite runs without the node-socketio peer"; fi

## bench: the benchmark suite of docs/benchmarks.md, about 15 minutes (not part of `make test`)
bench: $(BENCH_STAMP) bench-peers
	$(PY) -m autosdlc_ws bench --suite

## soak: endurance run, 30 minutes of mixed load with faults and a pass/fail verdict (not part of
## `make test`; needs redis-server). `make soak SOAK_ARGS=--quick` is a 2-minute smoke run.
SOAK_ARGS ?=
soak: $(BENCH_STAMP)
	$(PY) -m autosdlc_ws.bench.soak $(SOAK_ARGS)
