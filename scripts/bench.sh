#!/usr/bin/env bash
# `make bench`: the service measured against PostgreSQL's own limit, in one
# run. Starts a throwaway cluster and a release build of the service, seeds
# it, runs each scenario beside pgbench replaying the exact statements the
# service sends, stops everything, and writes bench/results/<date>.{md,json}.
#
# Knobs (env): BENCH_DURATION (s per run, 10), BENCH_TENANTS (1000),
# BENCH_METRICS_ONLY (1: scenarios 1 and 6 only, then the report: a quick
# check of the per-tenant metrics' cost),
# BENCH_SCALE_TENANTS (100000), BENCH_INSTANCES (100), BENCH_PURGE_ROWS (1000000),
# BENCH_PURGE_PAUSE (15ms: retention.batch_pause for the paced purge).
#
# BENCH_CITUS=1: the same scenarios on a throwaway Citus cluster (a
# coordinator and 2 workers on this machine, BENCH_SHARDS shards, 32), the
# service and pgbench both through the coordinator; writes
# bench/results/<date>-citus.{md,json}.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
duration=${BENCH_DURATION:-10}
tenants=${BENCH_TENANTS:-1000}
scale=${BENCH_SCALE_TENANTS:-100000}
per=${BENCH_INSTANCES:-100}
purge_rows=${BENCH_PURGE_ROWS:-1000000}
purge_pause=${BENCH_PURGE_PAUSE:-15ms}
citus=${BENCH_CITUS:-0}
metrics_only=${BENCH_METRICS_ONLY:-0}
shards=${BENCH_SHARDS:-32}
clients=32
threads=2

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# --- Tools ------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "wrk is missing: apt-get install wrk"
    log "installing wrk"
    (apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }) ||
        die "could not install wrk"
fi
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -1 || true)
[[ -x "$pgbench" ]] || die "pgbench is missing: apt-get install postgresql-client"
psql=$(command -v psql) || die "psql is missing: apt-get install postgresql-client"
if [[ "$citus" == 1 ]]; then
    pg_config=$(command -v pg_config || ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1 || true)
    [[ -n "$pg_config" && -f "$("$pg_config" --pkglibdir)/citus.so" ]] ||
        die "BENCH_CITUS=1 needs the citus extension: make test-citus builds it (../shared/citus/build.sh), or install Citus 13 for your PostgreSQL"
fi

log "building the release binary"
cargo build --release -q -p tenantry
bin="$CARGO_TARGET_DIR/release/tenantry"

# --- Cluster ----------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d /tmp/tenantry-bench.XXXXXX)
chmod 755 "$tmp"
[[ $(id -u) -eq 0 ]] && chown postgres: "$tmp"
service_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$service_pid" ]]; then
        if [[ $rc -ne 0 ]] && ! kill -0 "$service_pid" 2>/dev/null; then
            local status=0
            wait "$service_pid" 2>/dev/null || status=$?
            log "the service had stopped (exit status $status; 128+n: signal n): $(tail -5 "$tmp/service.log")"
        fi
        kill "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    scripts/pg.sh down "$tmp" >/dev/null 2>&1 || true
    rm -rf -- "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ports=()
while ((${#ports[@]} < 5)); do
    p=$(free_port)
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
pg_port=${ports[0]} app_port=${ports[1]} metrics_port=${ports[2]} workers=("${ports[@]:3}")
owner_pw=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
app_pw=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
su_pw=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
db=tenantry_bench
if [[ "$citus" == 1 ]]; then
    log "starting Citus: coordinator on port $pg_port, workers on ${workers[*]}"
    TENANTRY_DB_NAME=$db TENANTRY_OWNER_PASSWORD=$owner_pw TENANTRY_APP_PASSWORD=$app_pw \
        TENANTRY_SUPERUSER_PASSWORD=$su_pw scripts/pg.sh citus-up "$tmp" "$pg_port" "${workers[@]}" >/dev/null
    export TENANTRY__DATABASE__CITUS__SHARD_COUNT=$shards
    # As in the tests: a tenant-plane statement that would fan out to every
    # shard is refused, so it would show as non-2xx (or a failed pgbench).
    export TENANTRY__DATABASE__CITUS__TENANT_MULTI_SHARD=error
else
    log "starting PostgreSQL on port $pg_port"
    TENANTRY_DB_NAME=$db TENANTRY_OWNER_PASSWORD=$owner_pw TENANTRY_APP_PASSWORD=$app_pw \
        scripts/pg.sh up "$tmp" "$pg_port" >/dev/null
    scripts/pg.sh psql "$tmp" "$pg_port" -q -c "ALTER ROLE postgres PASSWORD '$su_pw'" >/dev/null
fi
app_url="postgres://tenantry_app:$app_pw@127.0.0.1:$pg_port/$db"
su_url="postgres://postgres:$su_pw@127.0.0.1:$pg_port/$db"
export TENANTRY__DATABASE__URL="$app_url"
owner_url="postgres://tenantry_owner:$owner_pw@127.0.0.1:$pg_port/$db"
export TENANTRY__DATABASE__MAX_CONNECTIONS=$clients
export TENANTRY__SERVER__PORT=$app_port
export TENANTRY__METRICS__LISTEN=127.0.0.1:$metrics_port
export TENANTRY__SERVER__WORKERS=$threads
export TENANTRY__LOG__LEVEL=warn
export TENANTRY__AUTH__SIGNING_KEY_FILE="$tmp/signing-key.pem"
export TENANTRY__AUTH__API_KEY_SECRET_FILE="$tmp/api-key-secret"
export TENANTRY__RETENTION__ENABLED=false
# A throwaway service: stopped at once, no drain for load balancers.
export TENANTRY__SERVER__SHUTDOWN_DRAIN=0s
export TENANTRY__QUOTAS__RECONCILE_INTERVAL=0s
export TENANTRY__DATABASE__CONTEXT_KEY_FILE="$tmp/context-key"
# The owner's URL for the migration only: `serve` refuses to hold it.
TENANTRY__DATABASE__OWNER_URL="$owner_url" "$bin" migrate 2>/dev/null
# pgbench replays the service's statements, proofs included: it computes
# each proof in SQL from the installed key's pads, copied here for it (a
# throwaway bench database only: this hands the service role the key).
if [[ "$citus" == 1 ]]; then
    # On Citus the isolation guard refuses to serve a table it has no
    # placement for; a view (security_invoker, as the guard wants) of the
    # same copied values leaves the pgbench scripts unchanged.
    "$psql" "$su_url" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$
BEGIN
    EXECUTE (SELECT format('CREATE VIEW bench_context WITH (security_invoker = true) AS '
                           'SELECT * FROM (VALUES %s) k(id, inner_pad, outer_pad)',
                           string_agg(format('(%L, %L::bytea, %L::bytea)', id, inner_pad, outer_pad), ', '))
               FROM tenantry_private.context_keys);
END
$$;
GRANT SELECT ON bench_context TO tenantry_service;
SQL
else
    "$psql" "$su_url" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE bench_context AS SELECT id, inner_pad, outer_pad FROM tenantry_private.context_keys;
GRANT SELECT ON bench_context TO tenantry_service;
SQL
fi
# pgbench's connections on Citus: SET LOCAL (how set_tenant_context places
# the context) reaches the workers only with propagate_set_commands =
# 'local', which the service's pool sets on its own connections; and, as
# for the service, a statement that would fan out to every shard is an error.
citus_options="-c citus.propagate_set_commands=local -c citus.multi_task_query_log_level=error"
pgbench_env() { # [more PGOPTIONS on Citus] — the env(1) arguments for pgbench's connections
    [[ "$citus" != 1 ]] || echo "PGOPTIONS=$citus_options${1:+ $1}"
}

seed() { # first last per
    local args=()
    [[ "$citus" == 1 ]] && args=(-v citus=1)
    "$psql" "$su_url" -q -v first="$1" -v last="$2" -v per="$3" "${args[@]}" -f bench/seed.sql >/dev/null
}
tokens_for() { # first last sample out — tokens (and cluster ids) for a sample of tenants
    python3 - "$1" "$2" "$3" >"$tmp/ids" <<'PY'
import random, sys
first, last, sample = map(int, sys.argv[1:])
ids = range(first, last + 1)
pick = ids if sample >= len(ids) else sorted(random.sample(ids, sample))
for g in pick:
    print(f"00000000-0000-7000-8000-{g:012x}")
PY
    "$bin" token --tenants-file "$tmp/ids" --ttl 2h >"$tmp/tok"
    sed 's/-8000-/-9000-/' "$tmp/ids" | paste -d' ' "$tmp/tok" - >"$4"
}
results="$tmp/results.jsonl"
: >"$results"
record() { echo "{\"key\":\"$1\",\"value\":$2}" >>"$results"; }
wrk_run() { # key lua tokens [duration]
    BENCH_TOKENS="$3" BENCH_THREADS=$threads wrk -t$threads -c$clients -d"${4:-$duration}s" --latency \
        -s "bench/$2" "http://127.0.0.1:$app_port" 2>"$tmp/wrk.err" | sed -n 's/^BENCH //p' | tail -1 >"$tmp/wrk.json" ||
        die "wrk $2 failed: $(tail -3 "$tmp/wrk.err")"
    record "$1" "$(cat "$tmp/wrk.json")"
    log "$1: $(cat "$tmp/wrk.json")"
}
pgbench_run() { # key script url mode tenants [more PGOPTIONS on Citus]
    local tps opts
    opts=$(pgbench_env "${6:-}")
    tps=$(env ${opts:+"$opts"} "$pgbench" -n -c $clients -j $threads -T "$duration" -M "$4" -D tenants="$5" -f "bench/$2" "$3" 2>"$tmp/pgbench.err" |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1) || die "pgbench $2 ($4) failed: $(grep -m3 error "$tmp/pgbench.err")"
    record "$1" "{\"tps\":${tps:-0}}"
    log "$1: ${tps:-0} tx/s"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$service_pid/status"; }
start_service() {
    "$bin" serve >"$tmp/service.log" 2>&1 &
    service_pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$app_port/readyz" >/dev/null && return 0
        sleep 0.1
    done
    die "the service did not start: $(tail -5 "$tmp/service.log")"
}
warm_up() { # tokens
    log "warm-up"
    BENCH_TOKENS="$1" wrk -t$threads -c$clients -d5s -s bench/read.lua "http://127.0.0.1:$app_port" >"$tmp/warm-up.out" 2>&1 ||
        die "the warm-up failed: $(tail -3 "$tmp/warm-up.out")"
}
limiter_tenants() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '/^tenantry_rate_limiter_tenants / {print $2}'; }
stop_service() {
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    service_pid=""
}
# Distinct `tenant` values of the request counter (the bound: tenant_series + allow list + 2).
tenant_series() { curl -s "http://127.0.0.1:$metrics_port/metrics" | sed -n 's/^tenantry_http_requests_total{tenant="\([^"]*\)".*/\1/p' | sort -u | wc -l; }

# --- Scenario 1 and 4: tenant reads; RLS overhead -----------------------------
log "seeding $tenants tenants x $per instances"
seed 1 "$tenants" "$per"
if [[ "$citus" == 1 ]]; then
    # A context that does not reach the workers reads nothing (it fails
    # closed), which would flatter pgbench: replay each script once for
    # tenant 1, as the service's role through the coordinator, and look.
    replay_once() { # script
        sed -e '/^\\set/d' -e 's/:t::int/1/g' -e 's/:nokey::int/1/g' "bench/$1" >"$tmp/replay.sql"
        env "$(pgbench_env)" "$psql" "$app_url" -X -At -v ON_ERROR_STOP=1 -f "$tmp/replay.sql"
    }
    want=$((per < 21 ? per : 21))
    got=$(replay_once read.sql | grep -c '^00000000-0000-7[0-9a-f]\{3\}-a000-' || true)
    [[ "$got" == "$want" ]] || die "bench/read.sql read $got of tenant 1's instances on Citus, not $want"
    out=$(replay_once write.sql)
    grep -qx '00000000-0000-7000-8000-000000000001' <<<"$out" || die "bench/write.sql did not charge tenant 1's usage on Citus: $out"
fi
tokens_for 1 "$tenants" "$tenants" "$tmp/tokens-1k"
start_service
warm_up "$tmp/tokens-1k"
wrk_run read_service read.lua "$tmp/tokens-1k"
pgbench_run read_pgbench_simple read.sql "$app_url" simple "$tenants"
pgbench_run read_pgbench_prepared read.sql "$app_url" prepared "$tenants"
pgbench_run read_pgbench_rls_off read.sql "$su_url" simple "$tenants"
pgbench_run read_pgbench_rls_off_prepared read.sql "$su_url" prepared "$tenants"

# --- Scenario 6: per-tenant metrics on vs off -------------------------------------
# The same reads against a fresh service with [metrics] per_tenant = false
# (every tenant is tenant="other": no ranking, no tracked set), then against
# a fresh one with it on (the default: the $tenants tenants compete for
# tenant_series = 50 series, so the Space-Saving table and the tracked set
# churn as they would in production), each after its own warm-up. The ratio
# is what the bounded per-tenant series cost on the hot path.
stop_service
export TENANTRY__METRICS__PER_TENANT=false
start_service
warm_up "$tmp/tokens-1k"
wrk_run read_metrics_off read.lua "$tmp/tokens-1k"
stop_service
unset TENANTRY__METRICS__PER_TENANT
start_service
warm_up "$tmp/tokens-1k"
wrk_run read_metrics_on read.lua "$tmp/tokens-1k"
record metrics_series "{\"tenant_values\":$(tenant_series)}"
log "metrics_series: $(tenant_series) tenant values in tenantry_http_requests_total"
if [[ "$metrics_only" == 1 ]]; then
    python3 bench/report.py "$results" "$tenants" "$scale" "$per" "$clients" "$duration" metrics "BENCH_METRICS_ONLY=1: scenarios 1 and 6 only."
    exit 0
fi

# --- Scenario 2: provisioning writes ---------------------------------------------
wrk_run write_service write.lua "$tmp/tokens-1k"
pgbench_run write_pgbench_simple write.sql "$app_url" simple "$tenants"
# On Citus, PostgreSQL's one try of a generic plan for the quota UPDATE ...
# FROM (after five executions) cannot be pruned to a shard and fans out,
# which is refused; custom plans, as the service's one-off statement gets.
pgbench_run write_pgbench_prepared write.sql "$app_url" prepared "$tenants" "-c plan_cache_mode=force_custom_plan"

# --- Scenario 3: 100,000 tenants; memory per tenant --------------------------------
log "seeding up to $scale tenants"
seed $((tenants + 1)) "$scale" "$per"
tokens_for 1 "$scale" 2000 "$tmp/tokens-sample"
warm_up "$tmp/tokens-sample"
wrk_run read_service_scaled read.lua "$tmp/tokens-sample"
pgbench_run read_pgbench_simple_scaled read.sql "$app_url" simple "$scale"
before_kb=$(rss_kb)
before_tenants=$(limiter_tenants)
tokens_for 1 "$scale" "$scale" "$tmp/tokens-all"
touch_s=$(python3 -c "import json; r=json.load(open('$tmp/wrk.json'))['rps']; print(min(180, int($scale / max(r * 0.6, 1)) + 5))")
log "touching every tenant ($touch_s s)"
BENCH_TOKENS="$tmp/tokens-all" BENCH_THREADS=$threads wrk -t$threads -c$clients -d"${touch_s}s" \
    -s bench/touch.lua "http://127.0.0.1:$app_port" >/dev/null 2>&1
after_kb=$(rss_kb)
after_tenants=$(limiter_tenants)
record memory "{\"rss_before_kb\":$before_kb,\"rss_after_kb\":$after_kb,\"tenants_before\":${before_tenants:-0},\"tenants_after\":${after_tenants:-0}}"

# --- Scenario 5: purge under load ---------------------------------------------------
# Once at full speed, once paced by retention.batch_pause; reads run against
# other tenants meanwhile. Each purge is a fresh deleted tenant of its own.
# Who writes dirty buffers out while the purge runs: the checkpointer, the
# background writer, or backends (including the readers) themselves. On
# Citus the rows are on the workers: there, summed, and every node checkpoints.
checkpoint_sql="CHECKPOINT"
bgwriter_sql="SELECT json_build_object('backend', buffers_backend, 'clean', buffers_clean, 'checkpoint', buffers_checkpoint) FROM pg_stat_bgwriter"
if [[ "$citus" == 1 ]]; then
    checkpoint_sql="SELECT run_command_on_all_nodes('CHECKPOINT')"
    bgwriter_sql="SELECT json_build_object('backend', sum((r->>'backend')::bigint), 'clean', sum((r->>'clean')::bigint),
                                           'checkpoint', sum((r->>'checkpoint')::bigint))
                    FROM (SELECT result::json AS r FROM run_command_on_workers(\$q\$$bgwriter_sql\$q\$)) w"
fi
bgwriter() { "$psql" "$su_url" -At -c "$bgwriter_sql"; }
purge_once() { # key tenant-suffix pause
    log "seeding a deleted tenant with $purge_rows rows"
    "$psql" "$su_url" -q -v rows="$purge_rows" -v id="00000000-0000-7000-8000-$2" -v slug="bench-purge-$2" >/dev/null <<'SQL'
\set ON_ERROR_STOP on
INSERT INTO tenants (id, slug, name, status, deleted_at)
VALUES (:'id', :'slug', 'Purge me', 'deleted', now() - interval '1 day');
INSERT INTO events (tenant_id, id, kind, actor)
SELECT :'id', gen_random_uuid(), 'bulk', 'bench' FROM generate_series(1, :rows);
SQL
    # Settle the seeding's after-effects (autovacuum, a checkpoint) before
    # any figure is taken, then the baseline on the same tenants, right before.
    "$psql" "$su_url" -q -c "VACUUM (ANALYZE) events" -c "$checkpoint_sql" >/dev/null
    wrk_run "read_before_$1" read.lua "$tmp/tokens-sample"
    local before_writes
    before_writes=$(bgwriter)
    (
        start=$(date +%s.%N)
        TENANTRY__RETENTION__PERIOD=1s TENANTRY__RETENTION__BATCH_PAUSE="$3" \
            "$bin" sweep --once >"$tmp/sweep.json" 2>/dev/null
        end=$(date +%s.%N)
        echo "$start $end" >"$tmp/sweep.time"
    ) &
    local sweep_pid=$!
    sleep 0.5
    wrk_run "read_during_$1" read.lua "$tmp/tokens-sample"
    wait "$sweep_pid"
    local start end removed
    read -r start end <"$tmp/sweep.time"
    removed=$(python3 -c "import json; r=json.load(open('$tmp/sweep.json')); print(r['rows_removed'])")
    record "$1" "{\"rows\":$removed,\"seconds\":$(python3 -c "print($end - $start)"),\"batch_pause\":\"$3\",\"buffers_before\":$before_writes,\"buffers_after\":$(bgwriter)}"
}
purge_once purge ffffffffffff 0s
purge_once paced_purge fffffffffffe "$purge_pause"

# --- Report ---------------------------------------------------------------------------
mode=()
if [[ "$citus" == 1 ]]; then
    version=$("$psql" "$su_url" -At -c "SELECT split_part(citus_version(), ' ', 2)")
    mode=(citus "Citus $version on PostgreSQL $("$psql" "$su_url" -At -c "SELECT split_part(current_setting('server_version'), ' ', 1)"): a coordinator and ${#workers[@]} workers on this machine, $shards shards; the service and pgbench both through the coordinator.")
fi
python3 bench/report.py "$results" "$tenants" "$scale" "$per" "$clients" "$duration" "${mode[@]}"
