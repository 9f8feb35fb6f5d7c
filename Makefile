# Entry points: `make run` (the embedded demo) and `make test` (the suite). See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-n 2 -k seed"
PYTEST_ARGS ?=

.PHONY: run test lint check install messages

## install: create .venv and install the development requirements (no-op when current); compile the portal's translations
install:
	@scripts/ensure-venv dev
	@$(PY) -m tracker.portal.catalogues

## run: migrate, seed the demo and start web + Celery worker + beat on SQLite (Ctrl-C stops all)
run:
	@scripts/ensure-venv runtime
	@$(PY) -m tracker.portal.catalogues
	@scripts/run-demo

## test: the suite; DATABASE_URL / REDIS_URL from the environment choose PostgreSQL and Redis
test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## lint: ruff, as CI runs it
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## check: Django's system checks and no missing migrations
check: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py check
	DEBUG=$${DEBUG:-1} $(PY) manage.py makemigrations --check --dry-run

## messages: refresh the portal's catalogues (locale/*/LC_MESSAGES/django.po) from its templates and code; docs/i18n.md
# Portal only: the clinician admin, the API, tests and benchmarks stay English and are left out.
MESSAGE_LANGUAGES ?= es
messages: install
	DEBUG=1 $(PY) manage.py makemessages $(addprefix -l ,$(MESSAGE_LANGUAGES)) --add-location file \
		-i "node_modules/*" -i "tracker/admin/*" -i "tracker/api/*" -i "templates/admin/*" \
		-i "bench/*" -i "tests/*" -i "var/*" -i "staticfiles/*"
	$(PY) -m tracker.portal.catalogues

# --- Benchmarks (issue 10): PostgreSQL only; databases named tracker_bench* are dropped and rebuilt ---
BENCH_DB ?= postgres://postgres@127.0.0.1:5432/tracker_bench
BENCH_DB_365 ?= postgres://postgres@127.0.0.1:5432/tracker_bench_365
BENCH_ENV := DJANGO_SETTINGS_MODULE=config.settings_test
# Extra bench.sweeps arguments, e.g. BENCH_ARGS="--full-runs 3 --incremental-runs 20"
BENCH_ARGS ?=

.PHONY: bench

## bench: build clinic-10k (90 days) and time the sweeps into docs/benchmarks.md; BENCH_365=1 adds the 365-day history run
bench: install
	$(BENCH_ENV) $(PY) -m bench.generate --patients 10000 --days 90 --database-url $(BENCH_DB)
	@if [ "$(BENCH_365)" = "1" ]; then \
		$(BENCH_ENV) $(PY) -m bench.generate --patients 10000 --days 365 --database-url $(BENCH_DB_365); fi
	$(BENCH_ENV) $(PY) -m bench.sweeps --database-url $(BENCH_DB) \
		$(if $(filter 1,$(BENCH_365)),--history-database-url $(BENCH_DB_365)) $(BENCH_ARGS)

# --- Benchmarks, rest of issue 10 (items 4-7); they reuse $(BENCH_DB) as `make bench` built it ---
BENCH_DB_10K30 ?= postgres://postgres@127.0.0.1:5432/tracker_bench_10k30
BENCH_DB_100K ?= postgres://postgres@127.0.0.1:5432/tracker_bench_100k

.PHONY: bench-web bench-pages bench-rules bench-monitoring bench-reminders bench-memory bench-all

## bench-web: "today" page and dose-log POST under gunicorn, 16 wrk clients, beside a trivial view (apt-get install wrk)
bench-web: install
	$(BENCH_ENV) $(PY) -m bench.web --database-url $(BENCH_DB)

## bench-pages: triage worklist, caseload, patient page and timeline at 10,000 patients: SQL statements, median and p95 render time
bench-pages: install
	$(BENCH_ENV) $(PY) -m bench.pages --database-url $(BENCH_DB)

## bench-rules: the symptom, side-effect and ketamine sweeps at 10,000 patients
bench-rules: install
	$(BENCH_ENV) $(PY) -m bench.rules --database-url $(BENCH_DB)

## bench-monitoring: the overdue-monitoring sweep (issue 18) at 10,000 patients beside its SQL lower bound
bench-monitoring: install
	$(BENCH_ENV) $(PY) -m bench.monitoring --database-url $(BENCH_DB)

## bench-reminders: the dose-reminder sweep (issue 15; plan + send, email to locmem) at 10,000 patients beside its SQL lower bound
bench-reminders: install
	$(BENCH_ENV) $(PY) -m bench.reminders --database-url $(BENCH_DB)

## bench-memory: build 10,000- and 100,000-patient clinics (30 days) and measure each sweep's peak memory
bench-memory: install
	$(BENCH_ENV) $(PY) -m bench.generate --patients 10000 --days 30 --database-url $(BENCH_DB_10K30)
	$(BENCH_ENV) $(PY) -m bench.generate --patients 100000 --days 30 --database-url $(BENCH_DB_100K)
	$(BENCH_ENV) $(PY) -m bench.memory --database-url $(BENCH_DB_10K30) --database-url $(BENCH_DB_100K)

## bench-all: every benchmark of issue 10 (over an hour on 2 CPUs: bench's full sweeps alone take about 45 minutes)
bench-all: bench bench-web bench-pages bench-rules bench-memory
