#!/usr/bin/env bash
# `make profile`: where the CPU goes per request, on the release build under
# wrk. Sets up exactly as `make bench` does (scripts/bench-lib.sh: the
# release binary, a throwaway cluster on PostgreSQL's defaults, a small
# seeded bench database, the service), then for the read scenario (GET
# /v1/instances) and the write scenario (POST /v1/instances) samples the
# service and every PostgreSQL process with `perf record` (the cpu-clock
# software event, DWARF call graphs: the release build keeps line tables and
# its unwind tables, but no frame pointers) while wrk runs, and writes
# bench/results/<date>-profile.md: CPU µs per request of the service,
# PostgreSQL and wrk; the service's samples by category (HTTP/actix,
# auth/JWT, pool, database client, serialization, tracing/metrics, async
# runtime, app code, other) and PostgreSQL's (executor, parse/plan,
# locking, transaction/WAL, catalog caches, network I/O, other), each with
# its top symbols. Folded stacks (flamegraph input) go next to it, gzipped;
# an SVG too when `inferno-flamegraph` is installed (cargo install inferno).
#
# Knobs (env): PROFILE_TENANTS (200), PROFILE_INSTANCES (100),
# PROFILE_DURATION (s per scenario, 15), PROFILE_FREQ (Hz, 499),
# PROFILE_SCENARIOS ("read write"), PROFILE_SAMPLER (perf; gdb: the
# fallback used where perf cannot record), PROFILE_NOTE (a line for the report,
# e.g. what else ran on the machine).
set -euo pipefail
unset TENANTRY_PG_TUNE BENCH_PG_SETTINGS

log_prefix=profile
export BENCH_TENANTS=${PROFILE_TENANTS:-200}
export BENCH_INSTANCES=${PROFILE_INSTANCES:-100}
export BENCH_DURATION=${PROFILE_DURATION:-15}
export BENCH_CITUS=0
freq=${PROFILE_FREQ:-499}
scenarios=${PROFILE_SCENARIOS:-read write}

# --- perf: installed, and able to record here? ------------------------------
if ! command -v perf >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "profile: perf is missing: apt-get install linux-perf" >&2; exit 1; }
    echo "profile: installing linux-perf" >&2
    apt-get install -y -qq linux-perf >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq linux-perf >/dev/null; } || true
fi
sampler=${PROFILE_SAMPLER:-perf}
if [[ "$sampler" == perf ]] && { ! command -v perf >/dev/null || ! perf record -q -e cpu-clock -o /tmp/profile-check.$$ -- true >/dev/null 2>&1; }; then
    # perf_event_open refused (a container without CAP_PERFMON, or
    # kernel.perf_event_paranoid > 2): gdb stack samples instead, coarser.
    command -v gdb >/dev/null || { echo "profile: perf cannot record here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)) and gdb is missing" >&2; exit 1; }
    sampler=gdb
fi
rm -f /tmp/profile-check.$$

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
[[ "$sampler" == perf ]] || log "sampling with gdb, not perf (PROFILE_SAMPLER=${PROFILE_SAMPLER:-perf}; perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid))"

log "seeding $tenants tenants x $per instances"
seed 1 "$tenants" "$per"
tokens_for 1 "$tenants" "$tenants" "$tmp/tokens"
start_service
warm_up "$tmp/tokens"

postmaster=$(head -1 "$tmp/data/postmaster.pid")
# shellcheck disable=SC2046 # one pid a word
pg_pids() { echo "$postmaster" $(ps -o pid= --ppid "$postmaster"); }
ticks() { # pids... — their utime + stime, in clock ticks
    local total=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")))
    done
    echo "$total"
}
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; } # busy idle
hz=$(getconf CLK_TCK)
children_seconds() { # user + system CPU of this shell's finished children (bash `times`, run here, not in a subshell)
    times >"$tmp/times"
    tail -1 "$tmp/times" | python3 -c 'import re, sys; print(sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read())))'
}

gdb_sample() { # out seconds pids... — poor man's profiler: all threads' stacks, folded
    local out=$1 seconds=$2
    shift 2
    local end=$((SECONDS + seconds)) pid
    : >"$out.raw"
    while ((SECONDS < end)); do
        for pid in "$@"; do
            timeout 5 gdb -p "$pid" -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' 2>/dev/null |
                awk -v comm="$(cat /proc/"$pid"/comm 2>/dev/null)" '
                    /^Thread / { if (s != "") print comm s; s = "" }
                    /^#/ { f = $0; sub(/^#[0-9]+ +(0x[0-9a-f]+ in )?/, "", f); sub(/ \(.*/, "", f); s = ";" f s }
                    END { if (s != "") print comm s }' >>"$out.raw" || true
        done
    done
    sort "$out.raw" | uniq -c | awk '{c = $1; $1 = ""; sub(/^ /, ""); print $0, c}' >"$out"
}

profile_one() { # scenario lua
    local name=$1 lua=$2 pids perf_pid before after m_before m_after
    pids=$(pg_pids)
    log "$name: sampling the service (pid $service_pid) and PostgreSQL ($(wc -w <<<"$pids") processes) for ${duration}s"
    before="$(ticks "$service_pid") $(ticks $pids)"
    m_before=$(machine_ticks)
    if [[ "$sampler" == perf ]]; then
        perf record -q -e cpu-clock -F "$freq" --call-graph dwarf,16384 \
            -p "$(tr ' ' ',' <<<"$service_pid $pids")" -o "$tmp/perf-$name.data" 2>"$tmp/perf-$name.err" &
        perf_pid=$!
        sleep 0.5
        children_seconds >"$tmp/c_before"
        wrk_run "$name" "$lua" "$tmp/tokens"
        children_seconds >"$tmp/c_after"
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" || true
    else
        # shellcheck disable=SC2046 # one pid a word
        gdb_sample "$tmp/gdb-$name.folded" "$duration" "$service_pid" $(ps -o pid= --ppid "$postmaster") &
        perf_pid=$!
        children_seconds >"$tmp/c_before"
        wrk_run "$name" "$lua" "$tmp/tokens"
        children_seconds >"$tmp/c_after"
        wait "$perf_pid" || true
    fi
    after="$(ticks "$service_pid") $(ticks $pids)"
    m_after=$(machine_ticks)
    record "cpu_$name" "{\"service_ticks\":$(( ${after% *} - ${before% *} )),\"postgres_ticks\":$(( ${after#* } - ${before#* } )),\"machine_busy_ticks\":$(( ${m_after% *} - ${m_before% *} )),\"machine_idle_ticks\":$(( ${m_after#* } - ${m_before#* } )),\"hz\":$hz,\"wrk_seconds\":$(python3 -c "print(round($(cat "$tmp/c_after") - $(cat "$tmp/c_before"), 3))"),\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
    if [[ "$sampler" == perf ]]; then
        log "$name: symbolising $(du -h "$tmp/perf-$name.data" | cut -f1) of samples"
        perf script -i "$tmp/perf-$name.data" -F comm,pid,ip,sym,dso --no-inline 2>/dev/null |
            python3 bench/profile.py fold "$service_pid" >"$tmp/$name.folded"
    else
        python3 bench/profile.py from-gdb "$service_pid" <"$tmp/gdb-$name.folded" >"$tmp/$name.folded"
    fi
}

for s in $scenarios; do
    case $s in
        read) profile_one read read.lua ;;
        write) profile_one write write.lua ;;
        *) die "unknown scenario $s (read, write)" ;;
    esac
done

stamp=$(date -u +%Y-%m-%d-%H%M)
out="bench/results/$stamp-profile"
folded=()
for s in $scenarios; do folded+=("$s=$tmp/$s.folded"); done
PROFILE_SAMPLER=$sampler PROFILE_FREQ=$freq python3 bench/profile.py report "$results" "$out" "$tenants" "$per" "$clients" "$duration" "${folded[@]}"
if command -v inferno-flamegraph >/dev/null; then
    for s in $scenarios; do
        inferno-flamegraph --title "tenantry $s ($stamp)" <"$out-$s.folded" >"$out-$s.svg" 2>/dev/null || true
    done
fi
gzip -f "$out"-*.folded
log "written: $out.md (and $out-*.folded.gz$(command -v inferno-flamegraph >/dev/null && echo ', .svg'))"
