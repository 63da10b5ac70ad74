# Tenantry developer tasks. `make` (or `make help`) lists them.
#
# The dev database is a project-local PostgreSQL cluster in .tenantry/pg,
# listening on 127.0.0.1:$(PG_PORT). As root in a directory the `postgres` OS
# user cannot reach (e.g. /root), .tenantry/pg is a link to
# /var/tmp/tenantry-<hash>/pg, where the cluster then lives (scripts/pg.sh). Set TENANTRY__DATABASE__URL (and
# TENANTRY__DATABASE__OWNER_URL, which only `tenantry migrate` is given) to use
# another server instead.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PG_PORT ?= $(or $(TENANTRY_PG_PORT),54329)
PG_DIR  := .tenantry/pg
CITUS   ?= 0
DB_NAME ?= $(or $(TENANTRY_DB_NAME),tenantry)

export TENANTRY_PG_PORT := $(PG_PORT)

.PHONY: help db-up db-down db-psql migrate run doctor test test-citus deploy-check test-compat fuzz bench profile lint fmt build clean-db

help: ## List the targets
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: PG_PORT=$(PG_PORT) (dev cluster port), DB_NAME=$(DB_NAME)"

db-up: ## Start the dev PostgreSQL cluster (.tenantry/pg), creating it if needed, tuned for this machine (TENANTRY_PG_TUNE=0: defaults)
	@if [[ -n "$${TENANTRY__DATABASE__URL:-}" ]]; then \
		safe=$$(printf '%s' "$$TENANTRY__DATABASE__URL" | sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):.*@#\1:***@#'); \
		echo "db-up: TENANTRY__DATABASE__URL is set; using $$safe's server; no local cluster started"; \
	else \
		TENANTRY_PG_TUNE=$${TENANTRY_PG_TUNE:-1} scripts/pg.sh up $(PG_DIR) $(PG_PORT); \
	fi

db-down: ## Stop the dev cluster
	@scripts/pg.sh down $(PG_DIR)
	@scripts/pg.sh down .tenantry/citus >/dev/null

db-psql: ## Open psql (as superuser) on the dev database
	@scripts/pg.sh psql $(PG_DIR) $(PG_PORT) -d $(DB_NAME)

migrate: ## Build and run `tenantry migrate` against the dev database (CITUS=1: the Citus one)
	@CITUS=$(CITUS) scripts/run.sh migrate

run: ## Start the dev cluster, build, migrate and serve (CITUS=1: on a local Citus cluster)
	@CITUS=$(CITUS) scripts/run.sh

doctor: ## Check the dev database's roles, RLS and server settings (tenantry doctor; ARGS=--strict, --format json, ...)
	@cargo run -q -p tenantry -- doctor $(ARGS)

test: ## Run all tests against a throwaway cluster (extra nextest args: ARGS=...)
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	@scripts/test.sh $(ARGS)

test-citus: ## The whole suite on a throwaway Citus cluster (coordinator + 2 workers)
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	@TEST_CITUS=1 scripts/test.sh $(ARGS)

deploy-check: ## Check Dockerfile, compose.yaml, deploy/kubernetes/, the Grafana dashboard and the alert rules (promtool) on a throwaway cluster
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	@API_FUZZ=0 PG_CHECK=0 DEPLOY_CHECK=1 PROMTOOL=1 scripts/test.sh -E 'test(environment::) | test(dashboard::)'
test-compat: ## The previous release's binary (latest tag v* before HEAD) against this schema; `make test` runs it too
	@scripts/compat.sh

fuzz: ## Longer fuzzing: parsers (proptest) and every API route (schemathesis), with a summary
	@scripts/fuzz.sh

bench: ## Measure the service against pgbench on a throwaway cluster (writes bench/results/; BENCH_CITUS=1: on Citus)
	@scripts/bench.sh

profile: ## perf profile of the release build under wrk (reads, writes): bench/results/<date>-profile.md
	@scripts/profile.sh

lint: ## rustfmt check + clippy (warnings are errors)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format all code
	cargo fmt --all

build: ## Build the workspace
	cargo build --workspace

clean-db: db-down ## Stop the dev clusters and DELETE their data
	@echo "clean-db: deleting the dev clusters in $(PG_DIR) and .tenantry/citus (all local data is lost)"
	@scripts/pg.sh remove $(PG_DIR)
	@scripts/pg.sh remove .tenantry/citus
