# baotintuc-pipeline: the two commands on a fresh machine are `make run` and `make test`.
# `make run` installs the runtime dependencies only (requirements/runtime.lock); `make test`
# adds the dev tools (requirements/dev.lock: pytest, ruff, playwright). Both locks pin the
# whole tree with hashes, so every clone gets the same versions. `make lock` refreshes them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BTT := $(VENV)/bin/baotintuc
PIP := $(PY) -m pip install -q --disable-pip-version-check
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
LOCK := uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q

.PHONY: setup setup-dev run demo test test-fast test-browser lint serve server-stop mirror lock \
	bench-extraction bench-incremental bench-mirror bench-pipeline bench-prefect bench-search clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The pinned pip (see requirements/pip.in), the locked tree (hash-checked), then the
# project itself without resolving anything.
$(RUNTIME): requirements/pip.lock requirements/runtime.lock pyproject.toml | $(PY)
	$(PIP) -r requirements/pip.lock
	$(PIP) -r requirements/runtime.lock
	$(PIP) --no-deps -e .
	@touch $@

$(DEV): requirements/dev.lock pyproject.toml $(RUNTIME)
	$(PIP) -r requirements/dev.lock
	@touch $@

setup: $(RUNTIME) ## .venv with the runtime dependencies and the project
setup-dev: $(DEV) ## ... plus pytest, ruff, playwright

run: setup ## the main job against the live site
	@$(BTT) crawl

demo: setup ## the same job against the bundled offline mirror, then a few SQL results
	@$(BTT) demo

test: setup-dev ## the whole test suite
	$(PY) -m pytest -q

test-browser: setup-dev
	$(PY) -m pytest -q -m browser

test-fast: setup-dev
	$(PY) -m pytest -q -m "not slow and not browser"

lint: setup-dev
	$(VENV)/bin/ruff check .

serve: setup ## register prefect.yaml's schedules, run a worker (the Prefect server outlives it)
	@$(BTT) serve

server-stop: setup ## stop the local background Prefect server
	@$(BTT) server stop

mirror: setup ## build (when needed) and serve the demo mirror on 127.0.0.1:8765
	@$(BTT) mirror serve

lock: setup-dev ## re-resolve requirements/*.lock from pyproject.toml (needs PyPI)
	$(PIP) uv
	$(VENV)/bin/uv pip compile requirements/pip.in --generate-hashes -q -o requirements/pip.lock
	$(VENV)/bin/$(LOCK) -o requirements/runtime.lock
	$(VENV)/bin/$(LOCK) --extra dev -c requirements/runtime.lock -o requirements/dev.lock

bench-extraction: setup-dev ## extraction figures: fixtures + ScrapingHub benchmark
	$(PY) -m bench.extraction --check

bench-incremental: setup-dev
	$(PY) -m bench.incremental

bench-mirror: setup-dev ## build a 100,000-article mirror, measure its size and serving cost
	$(PY) -m bench.mirror

bench-pipeline: setup-dev ## the whole pipeline at 1k/10k/100k articles vs bare trafilatura (about an hour)
	$(PY) -m bench.pipeline --json data/bench/pipeline.json

bench-prefect: setup-dev ## CLI overhead: background Prefect server vs a temporary one
	$(PY) -m bench.prefect_overhead

bench-search: setup-dev ## search latency at 100k articles (needs data/demo.duckdb: make demo)
	@test -f data/demo.duckdb || $(BTT) demo
	$(PY) -m bench.search

clean:
	rm -rf data/runs data/httpcache data/mirror
