# baotintuc-pipeline: the two commands on a fresh machine are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BTT := $(VENV)/bin/baotintuc
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run demo test test-fast test-browser lint serve mirror bench-extraction bench-incremental bench-search clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -U pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project

run: setup ## the main job against the live site
	@$(BTT) crawl

demo: setup ## the same job against the bundled offline mirror, then a few SQL results
	@$(BTT) demo

test: setup ## the whole test suite
	$(PY) -m pytest -q

test-browser: setup
	$(PY) -m pytest -q -m browser

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser"

lint: setup
	$(VENV)/bin/ruff check .

serve: setup ## Prefect server on 127.0.0.1 + scheduled deployments
	@$(BTT) serve

mirror: setup ## build and serve the offline mirror on 127.0.0.1:8765
	@$(BTT) mirror serve

bench-extraction: setup ## extraction figures: fixtures + ScrapingHub benchmark
	$(PY) -m bench.extraction --check

bench-incremental: setup
	$(PY) -m bench.incremental

bench-search: setup ## search index at 100k articles (needs data/demo.duckdb: make demo)
	@test -f data/demo.duckdb || $(BTT) demo
	$(PY) -m bench.search

clean:
	rm -rf data/runs data/httpcache data/mirror
