#!/usr/bin/env bash
# Run the test suite against a throwaway PostgreSQL cluster (`make test`).
#
#   scripts/test.sh [nextest args...]     e.g. scripts/test.sh -E 'test(tenant_isolation)'
#   TEST_CITUS=1 scripts/test.sh [...]    the same suite on a Citus cluster (`make test-citus`):
#                                         a coordinator and 2 workers; Citus is built and
#                                         installed first if missing (../shared/citus/build.sh)
#
# 1. builds the tenantry binary and the test binaries (outside the cluster's lifetime),
# 2. starts a fresh cluster in /tmp/tenantry-test.XXXXXX on a free port,
# 3. migrates the template database tenantry_template with the real binary,
# 4. runs `cargo nextest run --workspace` with TENANTRY_TEST_* pointing at it,
#    then type-checks the TypeScript types of crates/client/openapi.json
#    (scripts/ts-client.sh), fuzzes every route of /openapi.json
#    (scripts/api-fuzz.sh), checks the deployment files
#    (scripts/deploy-check.sh) and the dev-cluster scripts as root from a
#    checkout 'postgres' cannot reach (scripts/pg-check.sh), then runs the
#    previous release's binary against this schema (scripts/compat.sh, on a
#    cluster of its own),
# 5. always stops the cluster and deletes the directory, keeping the tests' exit code.
#
# The console's browser tests (tests/tests/it/console_browser*.rs) drive a
# real headless Chromium: before the tests, scripts/browser-setup.sh installs
# Debian's chromium and chromium-driver (apt-get) when /usr/bin/chromedriver
# is missing and axe-core (npm ci, pinned by tests/browser/package-lock.json,
# kept in $CARGO_TARGET_DIR/browser-tests) and exports TENANTRY_CHROMEDRIVER,
# TENANTRY_CHROMIUM, TENANTRY_AXE_JS and TENANTRY_SCREENSHOTS
# ($CARGO_TARGET_DIR/console-screenshots: each test's last page as a PNG).
#   BROWSER=0 scripts/test.sh [...]       installs nothing and runs the suite
#                                         WITHOUT the browser tests (nextest
#                                         profile no-browser: they are counted
#                                         as skipped, and this script says so).
#                                         Run outside this script, without the
#                                         variables, a browser test fails and
#                                         says why: it never passes unrun.
#
# The Grafana dashboard's and the alert rules' checks need promtool: before
# the tests, scripts/promtool.sh installs it (Debian's prometheus package,
# apt-get, its service neither started nor enabled) when /usr/bin/promtool is
# missing and exports TENANTRY_PROMTOOL for tests/tests/it/dashboard.rs; after
# them it runs `promtool check rules` and `promtool test rules` on
# deploy/prometheus/ (skipped like the fuzzing for a narrowed run).
#   PROMTOOL=0 scripts/test.sh [...]      installs nothing, runs neither, and
#                                         leaves out the test that needs it
#                                         (dashboard::promtool_*; nextest
#                                         profile no-promtool, or
#                                         no-browser-no-promtool with BROWSER=0).
#
# It never touches the dev cluster in .tenantry/ and ignores the caller's
# TENANTRY__* / PG* connection settings.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
pg="$root/scripts/pg.sh"

log() { echo "test.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# --- Isolate from the caller's environment ---------------------------------
# No inherited app config may point the tests (or the migrate step) at a real DB.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep -E '^(TENANTRY__|TENANTRY_TEST_)' || true)
# TENANTRY_ENV / TENANTRY_CONFIG_DIR would make the binary load a developer's
# config/<env>.toml on top of the defaults.
unset TENANTRY_ENV TENANTRY_CONFIG_DIR
unset DATABASE_URL PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
    PGSERVICE PGSERVICEFILE PGOPTIONS 2>/dev/null || true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! cargo nextest --version >/dev/null 2>&1; then
    die "cargo-nextest is not installed. Install it with: cargo install --locked cargo-nextest"
fi

# --- Build first --------------------------------------------------------------
log "building"
cargo build -p tenantry
cargo nextest run --workspace --no-run
TENANTRY_BIN="$CARGO_TARGET_DIR/debug/tenantry"
[[ -x "$TENANTRY_BIN" ]] || die "expected binary not found: $TENANTRY_BIN"
export TENANTRY_BIN

# --- Throwaway cluster --------------------------------------------------------
rand_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return
    fi
    local p _
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40001))
        # Connection refused => nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "could not find a free TCP port"
}

citus=${TEST_CITUS:-0}
if [[ "$citus" == 1 ]]; then
    pg_config=$(command -v pg_config || ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1 || true)
    libdir=$([[ -n "$pg_config" ]] && "$pg_config" --pkglibdir || echo /usr/lib/postgresql/15/lib)
    if [[ ! -f "$libdir/citus.so" ]]; then
        if [[ -x "$root/../shared/citus/build.sh" ]]; then
            log "citus is not installed; building it (../shared/citus/build.sh, a few minutes)"
            "$root/../shared/citus/build.sh"
        else
            die "TEST_CITUS=1 needs the citus extension: install Citus 13 for your PostgreSQL (https://docs.citusdata.com/en/stable/installation/), or put its source and build.sh in ../shared/citus"
        fi
    fi
fi

tmp=$(mktemp -d /tmp/tenantry-test.XXXXXX)

# shellcheck disable=SC2317 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -f "$tmp/data/PG_VERSION" ]]; then
        "$pg" down "$tmp" >/dev/null 2>&1 || log "warning: could not stop the test cluster in $tmp"
    fi
    # Clusters of the fault tests (tests/src/process.rs) that a killed test
    # process could not stop itself.
    for cluster in "$tmp"/pg-*; do
        [[ -f "$cluster/data/PG_VERSION" ]] && { "$pg" down "$cluster" >/dev/null 2>&1 || true; }
    done
    # chromedrivers (with their Chromiums, in the same process group) of
    # browser tests that were killed before they could stop them
    # (tests/src/browser.rs writes each one's pid).
    for pidfile in "$tmp"/browser-*/chromedriver.pid; do
        if [[ -f "$pidfile" ]]; then
            kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    rm -rf -- "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 755 "$tmp"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$tmp"
fi

port=$(free_port)
owner_pw=$(rand_hex)
app_pw=$(rand_hex)
su_pw=$(rand_hex)
context_key=$(rand_hex)$(rand_hex)
template_db=tenantry_template

workers=()
if [[ "$citus" == 1 ]]; then
    workers=("$(free_port)" "$(free_port)")
    while [[ "${workers[0]}" == "$port" || "${workers[1]}" == "$port" || "${workers[0]}" == "${workers[1]}" ]]; do
        workers=("$(free_port)" "$(free_port)")
    done
    log "starting a Citus test cluster in $tmp: coordinator on $port, workers on ${workers[*]}"
    PG_FAST=1 TENANTRY_DB_NAME="$template_db" TENANTRY_SUPERUSER_PASSWORD="$su_pw" \
        TENANTRY_OWNER_PASSWORD="$owner_pw" TENANTRY_APP_PASSWORD="$app_pw" \
        "$pg" citus-up "$tmp" "$port" "${workers[@]}"
else
    log "starting test cluster in $tmp on port $port"
    PG_FAST=1 TENANTRY_DB_NAME="$template_db" \
        TENANTRY_OWNER_PASSWORD="$owner_pw" TENANTRY_APP_PASSWORD="$app_pw" \
        "$pg" up "$tmp" "$port"
    # The superuser has no password (socket auth is trust); give it a random one
    # so the tests can connect over TCP (scram-sha-256). Hex only: safe to inline.
    "$pg" psql "$tmp" "$port" -q -v ON_ERROR_STOP=1 -c "ALTER ROLE postgres PASSWORD '$su_pw'" >/dev/null
fi

# --- Migrate the template -----------------------------------------------------
log "migrating $template_db"
TENANTRY__DATABASE__OWNER_URL="postgres://tenantry_owner:${owner_pw}@127.0.0.1:${port}/${template_db}" \
    TENANTRY__DATABASE__URL="postgres://tenantry_app:${app_pw}@127.0.0.1:${port}/${template_db}" \
    TENANTRY__DATABASE__CONTEXT_KEY="$context_key" \
    TENANTRY__DATABASE__CITUS__SHARD_COUNT=8 \
    "$TENANTRY_BIN" migrate

# CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template:
# make sure nothing lingers (the migrate process has exited, but be certain).
# On Citus, every node keeps a maintenance daemon and cached connections in
# the database: the template is closed to new connections on every node first.
nodes=("$port:$tmp")
for w in "${workers[@]}"; do nodes+=("$w:$tmp/worker-$w"); done
for node in "${nodes[@]}"; do
    close=""
    [[ "$citus" == 1 ]] && close="ALTER DATABASE $template_db ALLOW_CONNECTIONS false;"
    lingering=$("$pg" psql "${node#*:}" "${node%%:*}" -q -At -v ON_ERROR_STOP=1 -v db="$template_db" \
        -c "$close" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$template_db' AND pid <> pg_backend_pid()")
    if [[ "$citus" != 1 && "$lingering" != 0 ]]; then
        log "warning: terminated $lingering session(s) still connected to $template_db after migrate"
    fi
done

# --- Chromium, chromedriver and axe-core for the browser tests -----------------
nextest_profile=()
if [[ "${BROWSER:-}" == 0 ]]; then
    log "BROWSER=0: the browser tests (console_browser*) are NOT run (nextest profile no-browser)"
    nextest_profile=(--profile no-browser)
else
    log "browser tests: chromium, chromedriver and axe-core (scripts/browser-setup.sh)"
    browser_env=$(scripts/browser-setup.sh)
    eval "$browser_env"
fi

# --- promtool for the dashboard's and the alerts' checks ----------------------
if [[ "${PROMTOOL:-}" == 0 ]]; then
    log "PROMTOOL=0: the dashboard's PromQL test (dashboard::promtool_*) and the alert rules' checks are NOT run"
    if ((${#nextest_profile[@]})); then
        nextest_profile=(--profile no-browser-no-promtool)
    else
        nextest_profile=(--profile no-promtool)
    fi
else
    log "promtool (scripts/promtool.sh install)"
    promtool_env=$(scripts/promtool.sh install)
    eval "$promtool_env"
fi

# --- Run the tests ------------------------------------------------------------
export TENANTRY_TEST_PG_HOST=127.0.0.1
export TENANTRY_TEST_PG_PORT="$port"
export TENANTRY_TEST_PG_SUPERUSER_URL="postgres://postgres:${su_pw}@127.0.0.1:${port}/postgres"
export TENANTRY_TEST_TEMPLATE_DB="$template_db"
export TENANTRY_TEST_OWNER_PASSWORD="$owner_pw"
export TENANTRY_TEST_APP_PASSWORD="$app_pw"
export TENANTRY_TEST_DIR="$tmp"
export TENANTRY_TEST_CONTEXT_KEY="$context_key"
export TENANTRY_TEST_PG_SUPERUSER_PASSWORD="$su_pw"
if [[ "$citus" == 1 ]]; then
    export TENANTRY_TEST_CITUS=1
    TENANTRY_TEST_CITUS_WORKERS=$(printf '127.0.0.1:%s,' "${workers[@]}")
    export TENANTRY_TEST_CITUS_WORKERS=${TENANTRY_TEST_CITUS_WORKERS%,}
fi

log "running tests"
rc=0
cargo nextest run --workspace --no-fail-fast "${nextest_profile[@]}" "$@" || rc=$?

# --- TypeScript types from the committed OpenAPI document ----------------------
# Skipped like the fuzzing: when the run is narrowed (nextest args given) or
# TS_CLIENT=0 (e.g. offline: it installs openapi-typescript from npm).
if [[ "${TS_CLIENT:-}" != 0 && ($# -eq 0 || "${TS_CLIENT:-}" == 1) ]]; then
    log "type-checking the TypeScript client (scripts/ts-client.sh)"
    scripts/ts-client.sh || rc=1
fi

# --- Fuzz every route from the OpenAPI document (schemathesis) ------------------
# Skipped when the caller narrowed the run to some tests (nextest args given)
# or set API_FUZZ=0 (e.g. offline: it installs schemathesis from PyPI).
if [[ "${API_FUZZ:-}" != 0 && ($# -eq 0 || "${API_FUZZ:-}" == 1) ]]; then
    log "fuzzing the API (scripts/api-fuzz.sh)"
    scripts/api-fuzz.sh || rc=1
fi

# --- The deployment files: Dockerfile, compose.yaml, deploy/kubernetes/ ----------------
# (scripts/deploy-check.sh: static checks, then their commands against this
# cluster). Skipped like the fuzzing above, or DEPLOY_CHECK=0 (it installs its
# checkers from PyPI).
if [[ "${DEPLOY_CHECK:-}" != 0 && ($# -eq 0 || "${DEPLOY_CHECK:-}" == 1) ]]; then
    log "checking the deployment files (scripts/deploy-check.sh)"
    scripts/deploy-check.sh || rc=1
fi

# --- The alert rules: promtool check rules + test rules (scripts/promtool.sh) ---------
# Skipped like the fuzzing above, or PROMTOOL=0.
if [[ "${PROMTOOL:-}" != 0 && ($# -eq 0 || "${PROMTOOL:-}" == 1) ]]; then
    log "checking the alert rules (scripts/promtool.sh)"
    scripts/promtool.sh || rc=1
fi

# --- The dev-cluster scripts as root from a checkout 'postgres' cannot reach ----------
# (scripts/pg-check.sh; a few seconds). Skipped like the fuzzing above, or PG_CHECK=0.
if [[ "${PG_CHECK:-}" != 0 && ($# -eq 0 || "${PG_CHECK:-}" == 1) ]]; then
    log "checking the dev-cluster scripts (scripts/pg-check.sh)"
    scripts/pg-check.sh || rc=1
fi

# --- The previous release against this schema (scripts/compat.sh) ---------------
# Like the fuzz: skipped for a narrowed run or COMPAT=0; on plain PostgreSQL
# only (its own throwaway cluster), so not again in `make test-citus`.
if [[ "${COMPAT:-}" != 0 && ($# -eq 0 || "${COMPAT:-}" == 1) ]]; then
    if [[ "$citus" == 1 ]]; then
        log "compat: skipped on Citus (\`make test\` runs it on plain PostgreSQL)"
    else
        log "the previous release against this schema (scripts/compat.sh)"
        scripts/compat.sh || rc=1
    fi
fi
exit "$rc"
