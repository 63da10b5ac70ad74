#!/usr/bin/env bash
# `make bench`: the service measured against PostgreSQL's own limit, in one
# run. Starts a throwaway cluster and a release build of the service, seeds
# it, runs each scenario beside pgbench replaying the exact statements the
# service sends, stops everything, and writes bench/results/<date>.{md,json}.
#
# Knobs (env): BENCH_DURATION (s per run, 10), BENCH_TENANTS (1000),
# BENCH_ROUNDS (3: scenarios 1 and 2, and scenario 3's settled reads, run
# in this many interleaved rounds, each figure the median of its rounds),
# BENCH_METRICS_ONLY (1: scenarios 1 and 6 only, then the report: a quick
# check of the per-tenant metrics' cost),
# BENCH_SCALE_TENANTS (100000), BENCH_INSTANCES (100), BENCH_PURGE_ROWS (1000000:
# rows per purged tenant; scenario 5 purges 2 or 3), BENCH_PURGE_FIXED (1: also
# the fixed-pace purge, info; 0 skips it), BENCH_PURGE_PAUSE (15ms:
# retention.batch_pause of that fixed-pace purge), BENCH_PURGE_TARGET (unset:
# e.g. 20ms, also an adaptive purge with this target_batch_latency under
# reads, info), BENCH_PG_SETTINGS ("name=value ...": server settings on
# top of PostgreSQL's defaults, an experiment; the report is then
# bench/results/<date>-settings.{md,json}).
# Time: about 30-40 min on the 2-core machine with the defaults (most of it
# seeding 100,000 tenants and touching each); BENCH_DURATION=5
# BENCH_SCALE_TENANTS=2000 BENCH_PURGE_ROWS=100000 runs every scenario in a
# few minutes (the figures then only prove the script).
#
# BENCH_CITUS=1: the same scenarios on a throwaway Citus cluster (a
# coordinator and 2 workers on this machine, BENCH_SHARDS shards, 32), the
# service and pgbench both through the coordinator; writes
# bench/results/<date>-citus.{md,json}.
set -euo pipefail
# The bench cluster runs PostgreSQL's defaults (the targets are defined on
# them), whatever the caller's shell exports.
unset TENANTRY_PG_TUNE

scale=${BENCH_SCALE_TENANTS:-100000}
purge_rows=${BENCH_PURGE_ROWS:-1000000}
purge_pause=${BENCH_PURGE_PAUSE:-15ms}
purge_target=${BENCH_PURGE_TARGET:-}
metrics_only=${BENCH_METRICS_ONLY:-0}
rounds=${BENCH_ROUNDS:-3}
[[ "$rounds" =~ ^[1-9]$ ]] || { echo "bench: BENCH_ROUNDS must be 1-9" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
# The controls' length (scenario 5).
control_s=$((3 * duration))

# --- Scenario 1 and 4: tenant reads; RLS overhead -----------------------------
log "seeding $tenants tenants x $per instances"
seed 1 "$tenants" "$per"
# Vacuumed and analyzed before anything is measured, as the 100,000 are
# before scenario 3's target (the same state on both sides of its ratio).
"$psql" "$su_url" -q -c "VACUUM (ANALYZE)" >/dev/null
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
# Scenarios 1 and 2 run in $rounds interleaved rounds, each figure the
# median of its rounds: this VM's rates drift by tens of percent between
# minutes, and one 10 s run of each side let a ratio land anywhere in
# that drift. The rounds' figures are in the report.
pipelined read.sql "$tmp/read-pipeline.sql"
for round in $(seq 1 "$rounds"); do
    wrk_run "read_service_r$round" read.lua "$tmp/tokens-1k"
    pgbench_run "read_pgbench_simple_r$round" read.sql "$app_url" simple "$tenants"
    pgbench_run "read_pgbench_prepared_r$round" read.sql "$app_url" prepared "$tenants"
    # The new limit (#18): the same statements in one pipeline, one round trip.
    pgbench_run "read_pgbench_pipeline_r$round" "$tmp/read-pipeline.sql" "$app_url" prepared "$tenants"
    pgbench_run "read_pgbench_rls_off_r$round" read.sql "$su_url" simple "$tenants"
    pgbench_run "read_pgbench_rls_off_prepared_r$round" read.sql "$su_url" prepared "$tenants"
done
for key in read_service read_pgbench_simple read_pgbench_prepared read_pgbench_pipeline read_pgbench_rls_off read_pgbench_rls_off_prepared; do
    median_of_rounds "$key"
done

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
    what="BENCH_METRICS_ONLY=1: scenarios 1 and 6 only."
    ((${#pg_settings[@]} == 0)) || what+=" PostgreSQL's defaults but ${pg_settings[*]} (BENCH_PG_SETTINGS)."
    python3 bench/report.py "$results" "$tenants" "$scale" "$per" "$clients" "$duration" metrics "$what"
    exit 0
fi

# --- Scenario 2: provisioning writes ---------------------------------------------
pipelined write.sql "$tmp/write-pipeline.sql"
for round in $(seq 1 "$rounds"); do
    wrk_run "write_service_r$round" write.lua "$tmp/tokens-1k"
    pgbench_run "write_pgbench_simple_r$round" write.sql "$app_url" simple "$tenants"
    # On Citus, PostgreSQL's one try of a generic plan for the quota UPDATE ...
    # FROM (after five executions) cannot be pruned to a shard and fans out,
    # which is refused; custom plans, as the service's one-off statement gets.
    pgbench_run "write_pgbench_prepared_r$round" write.sql "$app_url" prepared "$tenants" "-c plan_cache_mode=force_custom_plan"
    pgbench_run "write_pgbench_pipeline_r$round" "$tmp/write-pipeline.sql" "$app_url" prepared "$tenants" "-c plan_cache_mode=force_custom_plan"
done
for key in write_service write_pgbench_simple write_pgbench_prepared write_pgbench_pipeline; do
    median_of_rounds "$key"
done

# --- Scenario 3: 100,000 tenants; memory per tenant --------------------------------
# (On Citus every node checkpoints.)
checkpoint_sql="CHECKPOINT"
[[ "$citus" != 1 ]] || checkpoint_sql="SELECT run_command_on_all_nodes('CHECKPOINT')"
log "seeding up to $scale tenants"
seed $((tenants + 1)) "$scale" "$per"
tokens_for 1 "$scale" 2000 "$tmp/tokens-sample"
# What autovacuum is doing (on the node connected to; on Citus the shards'
# vacuums run on the workers): workers present, tables being vacuumed, and
# autovacuums and autoanalyzes finished so far.
autovacuum_sql="SELECT json_build_object(
    'workers', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'),
    'vacuuming', (SELECT coalesce(json_agg(relid::regclass::text), '[]') FROM pg_stat_progress_vacuum),
    'done', (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables))::jsonb"
autovacuum() { "$psql" "$su_url" -At -c "$autovacuum_sql"; }
# First as loaded (info): the same reads seconds after the bulk insert of
# the other tenants' rows, never vacuumed yet (no visibility map; hint bits
# still to be set by the first readers), with autovacuum's state recorded.
warm_up "$tmp/tokens-sample"
av_start=$(autovacuum)
wrk_run read_service_scaled_fresh read.lua "$tmp/tokens-sample"
pgbench_run read_pgbench_simple_scaled_fresh read.sql "$app_url" simple "$scale"
av_end=$(autovacuum)
record autovacuum_scaled_fresh "{\"start\":$av_start,\"end\":$av_end}"
log "autovacuum_scaled_fresh: $av_start -> $av_end"
# Then settled, as a database of that size runs (the target): vacuumed and
# analyzed, as the 1,000 tenants were before scenario 1.
log "vacuuming the seeded tables"
"$psql" "$su_url" -q -c "VACUUM (ANALYZE)" -c "$checkpoint_sql" >/dev/null
warm_up "$tmp/tokens-sample"
av_start=$(autovacuum)
# In rounds too, as scenario 1 (the figure is the median of its rounds).
for round in $(seq 1 "$rounds"); do
    wrk_run "read_service_scaled_r$round" read.lua "$tmp/tokens-sample"
    pgbench_run "read_pgbench_simple_scaled_r$round" read.sql "$app_url" simple "$scale"
done
median_of_rounds read_service_scaled
median_of_rounds read_pgbench_simple_scaled
av_end=$(autovacuum)
record autovacuum_scaled "{\"start\":$av_start,\"end\":$av_end}"
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

# --- Scenario 5: purge under load, and idle ----------------------------------------
# `tenantry sweep --once` (as cron runs it: no request-latency signal) purges
# a fresh deleted tenant of $purge_rows rows, each run its own tenant, at
# $scale tenants on the bench cluster's PostgreSQL defaults:
# - purge: with the sweeper's default settings (adaptive pacing, #18, when
#   the binary has it) while reads run against other tenants for exactly as
#   long as the purge (wrk starts first and is stopped when the sweep ends),
#   against the same reads beside a sleep of $control_s s right before it
#   and right after it (the controls: started, sampled and stopped the same
#   way), and, as before #18 measured it, a plain run right before;
#   bench/sampler.py samples each of those windows (wait events, CPU and
#   run-queue time, the service's slow requests by second);
# - idle_purge: the same defaults with no traffic at all;
# - tuned_purge (info; only with BENCH_PURGE_TARGET): the defaults but
#   target_batch_latency = $purge_target, under reads, with its controls;
# - paced_purge (info; BENCH_PURGE_FIXED=0 skips it): the fixed pace,
#   `batch_pause = $purge_pause` (and `adaptive = false`), under reads.
# Who writes dirty buffers out while the purge runs: the checkpointer, the
# background writer, or backends (including the readers) themselves. On
# Citus the rows are on the workers: there, summed, and every node checkpoints.
bgwriter_sql="SELECT json_build_object('backend', buffers_backend, 'clean', buffers_clean, 'checkpoint', buffers_checkpoint) FROM pg_stat_bgwriter"
if [[ "$citus" == 1 ]]; then
    bgwriter_sql="SELECT json_build_object('backend', sum((r->>'backend')::bigint), 'clean', sum((r->>'clean')::bigint),
                                           'checkpoint', sum((r->>'checkpoint')::bigint))
                    FROM (SELECT result::json AS r FROM run_command_on_workers(\$q\$$bgwriter_sql\$q\$)) w"
fi
bgwriter() { "$psql" "$su_url" -At -c "$bgwriter_sql"; }
# A binary from before #18 refuses an unknown [retention] key
# (deny_unknown_fields): `adaptive` is set only where it exists.
adaptive=false
grep -qF target_batch_latency "$bin" && adaptive=true
record purge_binary "{\"adaptive\":$adaptive}"
seed_purge() { # tenant-suffix
    log "seeding a deleted tenant with $purge_rows rows"
    "$psql" "$su_url" -q -v rows="$purge_rows" -v id="00000000-0000-7000-8000-$1" -v slug="bench-purge-$1" >/dev/null <<'SQL'
\set ON_ERROR_STOP on
INSERT INTO tenants (id, slug, name, status, deleted_at)
VALUES (:'id', :'slug', 'Purge me', 'deleted', now() - interval '1 day');
-- Ids ascending with insertion, as the service's own (UUIDv7: time first)
-- are: the purge deletes in id order, and random (v4) ids, which the
-- service never makes, scattered every batch over the tenant's whole heap
-- (results/2026-12-02-0358.md: 690,890 buffers written by backends).
INSERT INTO events (tenant_id, id, kind, actor)
SELECT :'id', ('01900000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bulk', 'bench'
  FROM generate_series(1, :rows) AS g;
SQL
    # Settle the seeding's after-effects (autovacuum, a checkpoint) before
    # any figure is taken.
    "$psql" "$su_url" -q -c "VACUUM (ANALYZE) events" -c "$checkpoint_sql" >/dev/null
}
sweep_timed() { # [VAR=value ...: the sweep's settings] — writes $tmp/sweep.{json,time}
    local start end
    start=$(date +%s.%N)
    # Its own application_name: bench/sampler.py tells its backend apart.
    env TENANTRY__RETENTION__PERIOD=1s TENANTRY__DATABASE__APPLICATION_NAME=tenantry-bench-sweep "$@" \
        "$bin" sweep --once >"$tmp/sweep.json" 2>"$tmp/sweep.err" ||
        die "the sweep failed: $(tail -3 "$tmp/sweep.err")"
    end=$(date +%s.%N)
    echo "$start $end" >"$tmp/sweep.time"
}
sample_start() { # max-seconds
    python3 bench/sampler.py "$psql" "$su_url" "$tmp/waits.json" "$1" "$service_pid" "http://127.0.0.1:$metrics_port/metrics" &
    sampler_pid=$!
}
sample_stop() { # key
    kill -TERM "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" || die "bench/sampler.py failed"
    sampler_pid=""
    record "$1" "$(cat "$tmp/waits.json")"
    log "$1: $(python3 -c "import json, sys; w = json.load(open(sys.argv[1])); print(json.dumps({k: w[k] for k in ('sched', 'cpu_share', 'runnable_mean')}))" "$tmp/waits.json")"
}
reads_beside() { # key command... — reads for exactly as long as the command runs: read_during_<key>
    # wrk stops on SIGINT and still reports (its done() runs); a global
    # pid, so that cleanup stops it if the command fails.
    BENCH_TOKENS="$tmp/tokens-sample" wrk -t$threads -c$clients -d600s --latency -s bench/read.lua \
        "http://127.0.0.1:$app_port" >"$tmp/wrk-during.out" 2>"$tmp/wrk.err" &
    beside_wrk_pid=$!
    sleep 1
    sample_start 600
    "${@:2}"
    sample_stop "waits_during_$1"
    kill -INT "$beside_wrk_pid" 2>/dev/null || true
    wait "$beside_wrk_pid" || die "wrk during the purge failed: $(tail -3 "$tmp/wrk.err")"
    beside_wrk_pid=""
    sed -n 's/^BENCH //p' "$tmp/wrk-during.out" | tail -1 >"$tmp/wrk.json"
    [[ -s "$tmp/wrk.json" ]] || die "wrk during the purge reported nothing: $(tail -3 "$tmp/wrk-during.out")"
    record "read_during_$1" "$(cat "$tmp/wrk.json")"
    log "read_during_$1: $(cat "$tmp/wrk.json")"
}
purge_once() { # key tenant-suffix traffic|idle [VAR=value ...: the sweep's settings]
    local key=$1 suffix=$2 mode=$3
    shift 3
    seed_purge "$suffix"
    local before_writes after_writes="" start end removed
    if [[ "$mode" == traffic ]]; then
        local quiet_writes
        quiet_writes=$(bgwriter)
        wrk_run "read_before_$key" read.lua "$tmp/tokens-sample"
        # The same counters over the reads alone: what backends write out
        # with no purge running (the pacer's backend-write signal's floor).
        record "buffers_read_before_$key" "{\"before\":$quiet_writes,\"after\":$(bgwriter),\"seconds\":$duration}"
        # The baseline the purge is held to: the same reads started,
        # sampled and stopped exactly as those beside it, beside a sleep
        # instead, once before the purge and once after (this VM's rates
        # drift between minutes; the two bracket the purge).
        reads_beside "control_before_$key" sleep "$control_s"
        before_writes=$(bgwriter)
        reads_beside "$key" sweep_timed "$@"
        after_writes=$(bgwriter)
        reads_beside "control_after_$key" sleep "$control_s"
    else
        before_writes=$(bgwriter)
        sweep_timed "$@"
    fi
    read -r start end <"$tmp/sweep.time"
    removed=$(python3 -c "import json; r=json.load(open('$tmp/sweep.json')); print(r['rows_removed'])")
    # How the sweeper paced itself (batches, sizes, pauses, backoffs by
    # cause), from its own report; {} from a binary without pacing.
    pacing=$(python3 -c "import json; print(json.dumps(json.load(open('$tmp/sweep.json')).get('pacing', {})))")
    record "$key" "{\"rows\":$removed,\"seconds\":$(python3 -c "print(round($end - $start, 3))"),\"mode\":\"$mode\",\"settings\":\"${*:-defaults}\",\"buffers_before\":$before_writes,\"buffers_after\":${after_writes:-$(bgwriter)},\"pacing\":$pacing}"
    log "$key ($mode, ${*:-defaults}): $removed rows in $(python3 -c "print(round($end - $start, 1))") s"
}
purge_once purge ffffffffffff traffic
purge_once idle_purge fffffffffffd idle
# The pacer's one knob between rate and tail, set otherwise (info).
if [[ -n "$purge_target" && "$adaptive" == true ]]; then
    purge_once tuned_purge fffffffffffc traffic TENANTRY__RETENTION__TARGET_BATCH_LATENCY="$purge_target"
fi
if [[ "${BENCH_PURGE_FIXED:-1}" == 1 ]]; then
    fixed=(TENANTRY__RETENTION__BATCH_PAUSE="$purge_pause")
    [[ "$adaptive" == true ]] && fixed+=(TENANTRY__RETENTION__ADAPTIVE=false)
    purge_once paced_purge fffffffffffe traffic "${fixed[@]}"
fi

# --- Report ---------------------------------------------------------------------------
mode=()
if [[ "$citus" == 1 ]]; then
    version=$("$psql" "$su_url" -At -c "SELECT split_part(citus_version(), ' ', 2)")
    mode=(citus "Citus $version on PostgreSQL $("$psql" "$su_url" -At -c "SELECT split_part(current_setting('server_version'), ' ', 1)"): a coordinator and ${#workers[@]} workers on this machine, $shards shards; the service and pgbench both through the coordinator.")
elif ((${#pg_settings[@]})); then
    mode=(settings "PostgreSQL's defaults but ${pg_settings[*]} (BENCH_PG_SETTINGS): an experiment, not the defaults the targets are defined on.")
fi
python3 bench/report.py "$results" "$tenants" "$scale" "$per" "$clients" "$duration" "${mode[@]}"
