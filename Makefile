# EchoNest Analytics — developer commands. `make run` and `make test` work on a fresh
# machine with only Python 3.11 and make.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install system-packages-test system-packages-run run test lint format migrate seed worker beat web \
        aggregate bench-ingest bench-aggregate bench-usage bench-soak bench-poll bench-broadcast bench-purge bench-clickhouse clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	touch $@

# hls.js for the demo watch page and the player SDK tests, from the npm registry.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	 else echo "npm not found: the demo watch page falls back to native HLS (install Node.js for hls.js)"; fi

install: $(VENV)/.installed node_modules/.installed  ## create .venv, install pinned requirements and npm packages

# Debian packages: the suite needs chromium, ffmpeg and icecast2, the demo ffmpeg. Installed
# with apt-get when running as root, otherwise one line says what to install.
system-packages-test:
	@scripts/system-packages.sh test
system-packages-run:
	@scripts/system-packages.sh run

# The embedded default: SQLite under var/, a private Redis on a socket under var/ shared
# by every process (scripts/run-dev.sh), tasks run eagerly in beat's process.
run: install system-packages-run  ## set up and serve http://127.0.0.1:8000 with demo data and the scheduled jobs
	@HOST=$(HOST) PORT=$(PORT) scripts/run-dev.sh

test: install system-packages-test  ## run the test suite (uses DATABASE_URL / REDIS_URL when set)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install  ## apply database migrations
	$(MANAGE) migrate --noinput

seed: install  ## load demo data
	$(MANAGE) seed_demo

# manage.py defaults to the development settings; the Celery and gunicorn targets say so
# too. Production processes name echonest_analytics.settings (Procfile, Dockerfile).
web worker beat: export DJANGO_SETTINGS_MODULE ?= echonest_analytics.settings_local

web: install  ## production web process (gunicorn)
	$(BIN)/gunicorn echonest_analytics.wsgi:application --config gunicorn.conf.py

worker: install  ## Celery worker (needs REDIS_URL or CELERY_BROKER_URL)
	$(BIN)/celery -A echonest_analytics worker --loglevel=INFO

beat: install  ## Celery beat with the database scheduler (jobs declared in settings)
	$(BIN)/celery -A echonest_analytics beat --loglevel=INFO --pidfile=

# SPEC §11: p50/p95/p99 of /api/analytics/usage?days=30 over 10M seeded product events.
aggregate: install  ## run the stream aggregator once (ARGS=--all rebuilds everything)
	$(MANAGE) aggregate_streams $(ARGS)

# Benchmarks (SPEC §11) run on PostgreSQL; BENCH_DATABASE_URL overrides their database.
bench-ingest: export DEBUG ?= true
bench-ingest: install  ## playback ingestion over HTTP (gunicorn, production settings): events/s, p50/p95/p99
	$(BIN)/python -m benchmarks.ingest $(BENCH_ARGS)

bench-aggregate: export DEBUG ?= true
bench-aggregate: install  ## aggregate 1,000,000 seeded playback events from scratch: seconds, peak memory
	$(BIN)/python -m benchmarks.aggregate $(BENCH_ARGS)

bench-broadcast: export DEBUG ?= true
bench-broadcast: install  ## broadcast staff reads over a busy station's year (5.3M snapshots): p50/p95
	$(BIN)/python -m benchmarks.broadcast $(BENCH_ARGS)

bench-purge: export DEBUG ?= true
bench-purge: install  ## a month of 1,500,000 playback events purged by partition drop vs batched delete: seconds
	$(BIN)/python -m benchmarks.purge $(BENCH_ARGS)

# chdb (ClickHouse's embedded engine, about 0.5 GB with pandas and pyarrow) is installed
# by this target only, never by `make install` or `make test`.
$(VENV)/.bench-clickhouse-installed: $(VENV)/.installed requirements/bench-clickhouse.txt requirements/constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench-clickhouse.txt -c requirements/constraints.txt
	touch $@

bench-clickhouse: export DEBUG ?= true
bench-clickhouse: install $(VENV)/.bench-clickhouse-installed  ## sessions + daily stats on ClickHouse (chdb) beside PostgreSQL, 1M and 10M seeded events: seconds, match
	$(BIN)/python -m benchmarks.clickhouse $(BENCH_ARGS)

bench-soak: install  ## sustained ingestion at half capacity (BENCH_ARGS="--minutes 10"): errors, p95/min, RSS
	$(BIN)/python -m benchmarks.soak $(BENCH_ARGS)

bench-poll: export DEBUG ?= true
bench-poll: install  ## one listener poll round over 200 encoders on a local stand-in, 10 % slow or unreachable: seconds
	$(BIN)/python -m benchmarks.poll $(BENCH_ARGS)

bench-usage: export DEBUG ?= true
bench-usage: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/echonest_bench_usage
bench-usage: install  ## benchmark the usage API over 10M product events (PostgreSQL)
	$(MANAGE) bench_usage $(BENCH_ARGS)

clean:  ## remove the virtualenv and local data
	rm -rf $(VENV) var/*.sqlite3* staticfiles
