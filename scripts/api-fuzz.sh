#!/usr/bin/env bash
# Schema-driven fuzzing of every route in /openapi.json with schemathesis
# (from PyPI, pinned in scripts/api-fuzz-requirements.txt), against the real
# binary on a fresh database of the test cluster. Run by scripts/test.sh
# (bounded: `make test`) and by `make fuzz` (API_FUZZ_EXAMPLES=...).
#
# Checks: no 5xx, every response conforms to the documented schema, status
# code, content type and headers; negative (schema-violating) data is
# rejected with a 4xx.
#
# Needs the environment scripts/test.sh exports (TENANTRY_TEST_*, TENANTRY_BIN).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
log() { echo "api-fuzz: $*" >&2; }
die() { log "$*"; exit 1; }

examples=${API_FUZZ_EXAMPLES:-15}
seed=${API_FUZZ_SEED:-20261124}
: "${TENANTRY_TEST_DIR:?run through scripts/test.sh}" "${TENANTRY_BIN:?}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# --- schemathesis in a venv of its own -----------------------------------------
venv="$CARGO_TARGET_DIR/api-fuzz-venv"
requirements="$root/scripts/api-fuzz-requirements.txt"
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    log "installing schemathesis into $venv"
    rm -rf -- "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 ]] || die "python3 -m venv failed: apt-get install python3-venv"
        apt-get install -y -qq python3-venv >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null; }
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

# --- A database and a server of its own -------------------------------------------
db="fuzz_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
pg_port=$TENANTRY_TEST_PG_PORT
# On Citus (make test-citus) every node clones the template, workers first.
nodes=()
workers=${TENANTRY_TEST_CITUS_WORKERS:-}
for w in ${workers//,/ }; do nodes+=("${w##*:}:$TENANTRY_TEST_DIR/worker-${w##*:}"); done
nodes+=("$pg_port:$TENANTRY_TEST_DIR")
for node in "${nodes[@]}"; do
    scripts/pg.sh psql "${node#*:}" "${node%%:*}" -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $db TEMPLATE $TENANTRY_TEST_TEMPLATE_DB OWNER tenantry_owner" \
        -c "REVOKE ALL ON DATABASE $db FROM PUBLIC" \
        -c "GRANT CONNECT, TEMPORARY ON DATABASE $db TO tenantry_owner" \
        -c "GRANT CONNECT ON DATABASE $db TO tenantry_service" >/dev/null
done
work=$(mktemp -d "$TENANTRY_TEST_DIR/fuzz.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TENANTRY__DATABASE__URL="postgres://tenantry_app:$TENANTRY_TEST_APP_PASSWORD@127.0.0.1:$pg_port/$db"
# The service's role only (the database is a clone of the migrated template;
# `serve` refuses the owner's URL). No metrics listener: its port is fixed by
# default and /metrics is not part of the API.
export TENANTRY__METRICS__LISTEN=
# The template's context key (scripts/test.sh installed it).
export TENANTRY__DATABASE__CONTEXT_KEY="$TENANTRY_TEST_CONTEXT_KEY"
# One client floods here on purpose: no per-address or per-key limits.
export TENANTRY__SERVER__CLIENT_REQUESTS_PER_SECOND=0
export TENANTRY__SERVER__TOKEN_EXCHANGE_PER_SECOND=0
export TENANTRY__SERVER__PORT=$port
export TENANTRY__SERVER__WORKERS=2
export TENANTRY__AUTH__SIGNING_KEY_FILE="$work/signing-key.pem"
export TENANTRY__AUTH__API_KEY_SECRET_FILE="$work/api-key-secret"
export TENANTRY__QUOTAS__DEFAULT__REQUESTS_PER_SECOND=100000
export TENANTRY__QUOTAS__DEFAULT__BURST=100000
export TENANTRY__QUOTAS__RECONCILE_INTERVAL=0s
export TENANTRY__RETENTION__ENABLED=false
export TENANTRY__LOG__LEVEL=warn
# A throwaway server: stopped at once, no drain for load balancers.
export TENANTRY__SERVER__SHUTDOWN_DRAIN=0s
server_pid=""
cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
"$TENANTRY_BIN" serve >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -sf --max-time 10 "$base/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf --max-time 10 "$base/readyz" >/dev/null || die "the server did not start: $(tail -5 "$work/server.log")"

admin=$("$TENANTRY_BIN" token --admin --ttl 2h)
tenant_id=$(curl -sf --max-time 10 -X POST "$base/v1/admin/tenants" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"slug": "fuzz-tenant", "name": "Fuzz"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tenant=$("$TENANTRY_BIN" token --tenant "$tenant_id" --scope "tenant:read tenant:write tenant:admin" --ttl 2h)
curl -sf --max-time 10 "$base/openapi.json" >"$work/openapi.json"
# Real resources, so the fuzzer gets past 404 into each handler's logic.
create() { # path json token -> id
    curl -sf --max-time 10 -X POST "$base$1" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' -d "$2" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
cluster=$(create /v1/clusters '{"name": "fuzz", "region": "eu-west-1"}' "$tenant")
instance=$(create /v1/instances "{\"name\": \"fuzz\", \"cluster_id\": \"$cluster\", \"cpu_cores\": 1, \"memory_gb\": 1}" "$tenant")
user=$(create /v1/users '{"email": "fuzz@example.com"}' "$tenant")
api_key=$(create /v1/api-keys '{"name": "fuzz"}' "$tenant")
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/v1/clusters/"
parameters = { "path.id" = "$cluster" }
[[operations]]
include-path-regex = "^/v1/instances/"
parameters = { "path.id" = "$instance" }
[[operations]]
include-path-regex = "^/v1/users/"
parameters = { "path.id" = "$user" }
[[operations]]
include-path-regex = "^/v1/api-keys/"
parameters = { "path.id" = "$api_key" }
[[operations]]
include-path-regex = "^/v1/admin/tenants/"
parameters = { "path.id_or_slug" = "$tenant_id" }
TOML

# --- Fuzz ---------------------------------------------------------------------------
summary="$work/summary"
: >"$summary"
run() { # name token path-regex
    log "$1: up to $examples examples per operation, seed $seed"
    local rc=0
    (cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$work/openapi.json" --url "$base" \
        -H "Authorization: Bearer $2" --include-path-regex "$3" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
        --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 10 \
        --no-color --suppress-health-check all --report junit \
        --report-junit-path "$work/$1.xml" >"$work/$1.log" 2>&1) || rc=$?
    local cases
    cases=$(grep -Eo '[0-9]+ generated[^|]*' "$work/$1.log" | tail -1 || true)
    python3 - "$1" "$work/$1.xml" "$rc" "${cases:-no cases reported}" >>"$summary" <<'PY'
import sys, xml.etree.ElementTree as ET
name, path, rc, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].strip()
try:
    suites = ET.parse(path).getroot()
    testcases = suites.iter("testcase")
    total = failed = 0
    for case in testcases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    print(f"{name}: {total} operations fuzzed, {failed} with failures; test cases: {cases}; schemathesis exit {rc}")
except Exception as e:  # no report: schemathesis itself failed
    print(f"{name}: no report ({e}), schemathesis exit {rc}")
PY
    if [[ $rc -ne 0 ]]; then
        # The failures with their reproducing curl commands, then the summary.
        sed -n '/= \(ERRORS\|FAILURES\) =/,$p' "$work/$1.log" | cut -c1-400 >&2
        return 1
    fi
}
rc=0
run tenant-plane "$tenant" '^/(v1/(?!admin)|healthz|readyz)' || rc=1
# Not the import: its body is NDJSON, which schemathesis cannot generate
# (tests/it/import_api.rs feeds it real and broken files).
run admin-plane "$admin" '^/v1/admin(?!/tenants/[^/]+/import$)' || rc=1
grep -h "examples\|passed\|failed" "$work"/*.log | grep -i "test cases\|operations\|passed" | tail -6 >&2 || true
cat "$summary" >&2
exit "$rc"
