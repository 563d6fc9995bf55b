# sfpd-incidents — the two commands: `make run` and `make test` (`make test-all`: everything).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DBT_DIR := include/dbt
MANIFEST := $(DBT_DIR)/target/manifest.json
DBT_SOURCES := $(shell find $(DBT_DIR)/models $(DBT_DIR)/macros $(DBT_DIR)/tests include/seeds -type f 2>/dev/null) $(DBT_DIR)/dbt_project.yml $(DBT_DIR)/profiles.yml

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/dev

EMULATORS := .venv-emulators

.PHONY: help run airflow airflow-stop test lint manifest venv emulators bundle-composer clean lock bench chromium target-venv target-venvs target-locks target-locks-check test-all

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.synced: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q "$$(grep -E '^uv==' requirements.lock)"
	$(BIN)/uv pip sync -q --python $(BIN)/python --compile-bytecode requirements.lock
	touch $@

venv: $(BIN)/.synced  ## Create .venv from the committed lock

lock:  ## Re-resolve requirements.in (and the emulators' pins) into the lock files
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.lock
	for e in gcs bq; do $(BIN)/uv pip compile --python-version 3.11 tests/emulators/$$e.in -o tests/emulators/$$e.lock; done

# GCS and BigQuery emulators for the tests, each in its own venv (their pins conflict with ours).
$(EMULATORS)/%/.synced: tests/emulators/%.lock $(BIN)/.synced
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) $(EMULATORS)/$*
	$(BIN)/uv pip sync -q --python $(EMULATORS)/$*/bin/python tests/emulators/$*.lock
	if [ $* = bq ]; then $(EMULATORS)/bq/bin/python tests/emulators/install_spatial.py; fi
	touch $@

emulators: $(EMULATORS)/gcs/.synced $(EMULATORS)/bq/.synced  ## Install the GCS and BigQuery emulators

# A deploy target's environment (deploy/targets/<TARGET>/lock.txt, on the image's Python from
# pyenv) plus the test runner, for tests/targets.
TARGET_VENV := .venv-targets/$(TARGET)
target-venv: $(BIN)/.synced  ## The venv of a deploy target: make target-venv TARGET=astro-3.1
	@test -n "$(TARGET)" || { echo "TARGET=<name in deploy/targets>"; exit 1; }
	@test $(TARGET_VENV)/.synced -nt deploy/targets/$(TARGET)/lock.txt || { \
	  $(BIN)/uv venv -q --allow-existing --python "$$($(BIN)/python -m sfpd_dev.targets python $(TARGET))" $(TARGET_VENV) && \
	  $(BIN)/uv pip sync -q --python $(TARGET_VENV)/bin/python deploy/targets/$(TARGET)/lock.txt && \
	  $(BIN)/uv pip install -q --python $(TARGET_VENV)/bin/python $$(grep -E '^(pytest|pytest-timeout|iniconfig|pluggy|sqlglot)==' requirements.lock) && \
	  touch $(TARGET_VENV)/.synced; }

# Composer's dbt virtualenv as Cosmos builds it on a worker (uv venv --seed on the worker's
# python3, then the pinned dbt), from its lock: tests/targets run with the index out of reach.
DBT_VENV := .venv-targets/dbt-virtualenv
$(DBT_VENV)/.synced: deploy/targets/dbt-virtualenv.txt
	$(MAKE) -s target-venv TARGET=composer-3.1
	$(BIN)/uv venv -q --allow-existing --seed --python .venv-targets/composer-3.1/bin/python3 $(DBT_VENV)
	$(BIN)/uv pip install -q --python $(DBT_VENV)/bin/python -r deploy/targets/dbt-virtualenv.txt
	touch $@

target-venvs: $(BIN)/.synced $(DBT_VENV)/.synced  ## The venvs tests/targets runs in (Astro 3.1-1, Composer 3.1.7 and its dbt virtualenv)
	$(MAKE) -s target-venv TARGET=astro-3.1

target-locks: $(BIN)/.synced  ## Re-resolve the deploy targets' locks (deploy/targets)
	$(BIN)/python -m sfpd_dev.targets lock

target-locks-check: $(BIN)/.synced  ## Resolve the targets' locks again against the package index; fail on any difference
	$(BIN)/python -m sfpd_dev.targets check

$(MANIFEST): $(BIN)/.synced $(DBT_SOURCES)
	cd $(DBT_DIR) && ../../$(BIN)/dbt parse --quiet --profiles-dir .
	touch $@

manifest: $(MANIFEST)  ## Build the dbt manifest Cosmos renders from (dbt parse)

$(AIRFLOW_HOME)/airflow.db: $(BIN)/.synced
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)

run: $(MANIFEST) $(AIRFLOW_HOME)/airflow.db  ## Run the daily DAG once (SFPD_SOURCE=replay: offline)
	$(BIN)/python -m sfpd_dev.local

airflow: $(MANIFEST)  ## A local Airflow on 127.0.0.1 (UI, scheduler, triggerer); Ctrl-C stops it (SFPD_SOURCE=replay: offline)
	$(BIN)/python -m sfpd_dev.airflow_local

airflow-stop:  ## Stop the Airflow `make airflow` started (e.g. from another terminal)
	@test -f $(AIRFLOW_HOME)/airflow-local.pid && kill -TERM "$$(cat $(AIRFLOW_HOME)/airflow-local.pid)" || echo "no local Airflow running"

bench: $(MANIFEST)  ## Benchmarks: extract vs pandas, MERGE, DAG parse, daily DAG; writes docs/benchmarks.md
	$(BIN)/python -m sfpd_dev.bench $(BENCH_ARGS)

lint: $(BIN)/.synced  ## ruff (Python), sqlfluff (dbt models, compiled for DuckDB in memory)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SFPD_DUCKDB_PATH=:memory: $(BIN)/sqlfluff lint --disable-progress-bar include/dbt/models

chromium:  ## Debian's chromium for the report's browser test, installed when missing (root)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

PYTEST_REPORT := --durations=40
# Two workers, each given a module (or another work unit: tests/conftest.py) at a time,
# longest first. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS)

test: $(MANIFEST) emulators lint  ## Lint and the everyday tests (minutes): all but the slow ones
	$(BIN)/pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_REPORT)

test-all: $(MANIFEST) emulators chromium target-venvs lint  ## The whole suite: also the scheduler, backfill, browser and deploy-target tests
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_REPORT)

BUNDLE ?= dist/composer

bundle-composer: $(MANIFEST)  ## Lay out dist/composer/{dags,plugins,data} for a Composer bucket
	rm -rf $(BUNDLE)
	mkdir -p $(BUNDLE)/data
	cp -r dags $(BUNDLE)/dags
	cp -r plugins $(BUNDLE)/plugins
	# the dbt project with its manifest, seeds copied in (a bucket has no symlinks)
	cp -rL $(DBT_DIR) $(BUNDLE)/data/dbt
	cd $(BUNDLE)/data/dbt && rm -rf logs .user.yml target/run target/compiled
	find $(BUNDLE) -name __pycache__ -prune -exec rm -rf {} +

clean:  ## Remove local state (Airflow home, lake, warehouse, dbt target)
	rm -rf .airflow data dist $(DBT_DIR)/target $(DBT_DIR)/logs $(EMULATORS) .venv-targets
