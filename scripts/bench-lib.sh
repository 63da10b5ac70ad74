# shellcheck shell=bash
# Sourced by scripts/bench.sh (`make bench`) and scripts/profile.sh
# (`make profile`): the tools, the release build, a throwaway cluster with
# the service's roles, the service's environment, the migration, and the
# helpers both use (seed, tokens_for, start_service, warm_up, wrk_run,
# pgbench_run, record, ...). Removes the cluster on exit.
#
# Knobs (env): BENCH_DURATION (s per run, 10), BENCH_TENANTS (1000),
# BENCH_INSTANCES (100), BENCH_CITUS (0), BENCH_SHARDS (32),
# BENCH_PG_SETTINGS ("name=value ...": server settings on top of the
# defaults, e.g. "shared_buffers=4GB"; PostgreSQL only, not Citus; an
# experiment, not the cluster the targets are defined on).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root" || exit 1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
duration=${BENCH_DURATION:-10}
# shellcheck disable=SC2034 # tenants and per: used by the scripts that source this
tenants=${BENCH_TENANTS:-1000}
# shellcheck disable=SC2034
per=${BENCH_INSTANCES:-100}
citus=${BENCH_CITUS:-0}
shards=${BENCH_SHARDS:-32}
read -r -a pg_settings <<<"${BENCH_PG_SETTINGS:-}"
for setting in "${pg_settings[@]}"; do
    [[ "$setting" =~ ^[a-z_]+=[A-Za-z0-9._]+$ ]] || { echo "bench: BENCH_PG_SETTINGS: not name=value: $setting" >&2; exit 2; }
done
[[ ${#pg_settings[@]} -eq 0 || "$citus" != 1 ]] || { echo "bench: BENCH_PG_SETTINGS is for PostgreSQL, not BENCH_CITUS=1" >&2; exit 2; }
clients=32
threads=2

log() { echo "${log_prefix:-bench}: $*" >&2; }
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
    [[ -z "${sampler_pid:-}" ]] || kill "$sampler_pid" 2>/dev/null || true
    [[ -z "${beside_wrk_pid:-}" ]] || kill "$beside_wrk_pid" 2>/dev/null || true
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
    pg_up() {
        TENANTRY_DB_NAME=$db TENANTRY_OWNER_PASSWORD=$owner_pw TENANTRY_APP_PASSWORD=$app_pw \
            scripts/pg.sh up "$tmp" "$pg_port" >/dev/null
    }
    pg_up
    if ((${#pg_settings[@]})); then
        log "server settings on top of the defaults: ${pg_settings[*]}"
        for setting in "${pg_settings[@]}"; do
            scripts/pg.sh psql "$tmp" "$pg_port" -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET ${setting%%=*} = '${setting#*=}'" >/dev/null ||
                die "BENCH_PG_SETTINGS: PostgreSQL refused $setting"
        done
        scripts/pg.sh down "$tmp" >/dev/null
        pg_up
        # pg.sh's own command-line settings (max_connections, PG_FAST's)
        # would win over ALTER SYSTEM: refuse a setting that did not take.
        for setting in "${pg_settings[@]}"; do
            source_now=$(scripts/pg.sh psql "$tmp" "$pg_port" -At -c "SELECT source FROM pg_settings WHERE name = '${setting%%=*}'")
            [[ "$source_now" == "configuration file" ]] ||
                die "BENCH_PG_SETTINGS: ${setting%%=*} did not take (its value comes from: ${source_now:-nowhere: unknown setting})"
            log "  ${setting%%=*} is now $(scripts/pg.sh psql "$tmp" "$pg_port" -At -c "SHOW ${setting%%=*}")"
        done
    fi
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
median_of_rounds() { # key — records key: each figure the median of key_r1, key_r2, ... (and the rounds)
    local value
    value=$(python3 - "$results" "$1" <<'PY'
import json, re, statistics, sys
path, key = sys.argv[1:]
records = [json.loads(line) for line in open(path) if line.strip()]
runs = [rec["value"] for rec in records if re.fullmatch(re.escape(key) + r"_r[0-9]", rec["key"])]
median = {f: round(statistics.median(run[f] for run in runs), 3) for f in runs[0] if all(isinstance(run.get(f), (int, float)) for run in runs)}
# Errors are counted over every round, never hidden by a median.
for f in ("non2xx", "socket_errors"):
    if f in median:
        median[f] = sum(run[f] for run in runs)
median["rounds"] = runs
print(json.dumps(median))
PY
    ) || die "no rounds of $1 to take the median of"
    record "$1" "$value"
}
wrk_run() { # key lua tokens [duration]
    BENCH_TOKENS="$3" BENCH_THREADS=$threads wrk -t$threads -c$clients -d"${4:-$duration}s" --latency \
        -s "bench/$2" "http://127.0.0.1:$app_port" 2>"$tmp/wrk.err" | sed -n 's/^BENCH //p' | tail -1 >"$tmp/wrk.json" ||
        die "wrk $2 failed: $(tail -3 "$tmp/wrk.err")"
    record "$1" "$(cat "$tmp/wrk.json")"
    log "$1: $(cat "$tmp/wrk.json")"
}
pgbench_run() { # key script url mode tenants [more PGOPTIONS on Citus]
    # script: a file under bench/, or an absolute path (a generated one).
    # Every transaction is logged (--log: its latency in µs), so the p50
    # and p99 are exact percentiles, as wrk's --latency are, not averages.
    local tps opts script=$2 lat
    [[ "$script" == /* ]] || script="bench/$script"
    opts=$(pgbench_env "${6:-}")
    rm -f "$tmp"/pgblog.*
    tps=$(env ${opts:+"$opts"} "$pgbench" -n -c $clients -j $threads -T "$duration" -M "$4" -D tenants="$5" \
        --log --log-prefix="$tmp/pgblog" -f "$script" "$3" 2>"$tmp/pgbench.err" |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1) ||
        die "pgbench $(basename "$script") ($4) failed: $(grep -m3 -i 'error\|abort' "$tmp/pgbench.err")"
    lat=$(cat "$tmp"/pgblog.* | python3 -c '
import sys
v = sorted(int(line.split()[2]) for line in sys.stdin if line.strip())
pct = lambda p: v[min(len(v) - 1, int(len(v) * p / 100))] / 1000 if v else 0
print("\"transactions\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f" % (len(v), pct(50), pct(99)))')
    rm -f "$tmp"/pgblog.*
    record "$1" "{\"tps\":${tps:-0},$lat}"
    log "$1: ${tps:-0} tx/s, $lat"
}
pipelined() { # script out — the same statements in one pipeline (pgbench 15: \startpipeline)
    # pgbench aborts the client on an error inside a pipeline and allows no
    # \gset there; the scripts have neither (every statement always succeeds).
    ! grep -q '\\[ag]set' "bench/$1" || die "bench/$1 uses \\gset/\\aset, which a pipeline cannot"
    awk '/^BEGIN( READ ONLY)?;/ {print "\\startpipeline"} {print} /^COMMIT;/ {print "\\endpipeline"}' "bench/$1" >"$2"
    [[ $(grep -c '^\\startpipeline' "$2") == 1 && $(grep -c '^\\endpipeline' "$2") == 1 ]] ||
        die "bench/$1: no single BEGIN; ... COMMIT; to pipeline"
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

