#!/usr/bin/env bash
# Manage a project-local PostgreSQL cluster (dev cluster in .tenantry/pg, or a
# throwaway test cluster). Never touches a system-wide server.
#
#   scripts/pg.sh up     DIR PORT        create (initdb) if needed, start, bootstrap roles/db
#   scripts/pg.sh down   DIR             stop it (no error if not running / not created)
#   scripts/pg.sh status DIR             print "running" / "not running"
#   scripts/pg.sh psql   DIR PORT [ARGS] psql as superuser over the cluster's Unix socket
#   scripts/pg.sh citus-up DIR PORT WORKER_PORT...
#                                        a Citus cluster: the coordinator in DIR on PORT, one
#                                        worker per WORKER_PORT in DIR/worker-<port>, the
#                                        database on every node with the citus extension, the
#                                        workers added to the coordinator's metadata
#   scripts/pg.sh down   DIR             also stops the workers in DIR/worker-*
#   scripts/pg.sh remove DIR             stop it and DELETE its data (and DIR's link, below)
#   scripts/pg.sh tune-plan [--memory-mib N] [--cpus N] [--app-connections N]
#                 [--admin-connections N] [--replicas N] [--reserved N] [--profile P]
#                                        print the settings TENANTRY_PG_TUNE=1 writes (this
#                                        machine and config/default.toml's pools unless given)
#
# Layout: DIR/data (PGDATA), DIR/run (Unix socket), DIR/log (initdb.log, postgres.log).
#
# Relocation: as root, when the OS user 'postgres' cannot reach DIR (a checkout
# under /root, or any home directory of mode 0700), `up` and `citus-up` keep
# the cluster in /var/tmp/tenantry-<hash of DIR's path>/<name of DIR> instead
# (owned by postgres, mode 0700) and make DIR a symbolic link to it, so every
# command given DIR (down, status, psql, remove) finds it there. A DIR that
# already holds a cluster is never moved. PG_RELOCATE_BASE: another base than
# /var/tmp (it must be reachable by 'postgres').
#
# Environment:
#   PG_FAST=1                  fsync/synchronous_commit/full_page_writes off (test clusters only)
#   TENANTRY_PG_TUNE=1         (up, citus-up) configure the cluster for this machine: memory
#                              (MemTotal, or the cgroup limit), cores, and [database]'s pool
#                              sizes, in DATA/postgresql.tenantry.conf (included from
#                              postgresql.conf), re-written on every `up` and restarted when
#                              it changed. Only the dev cluster (scripts/run.sh, make db-up);
#                              ignored with PG_FAST=1, so throwaway clusters keep the defaults.
#   TENANTRY_PG_TUNE_MEMORY_MIB, TENANTRY_PG_TUNE_CPUS  instead of what the machine says
#   TENANTRY_PG_TUNE_REPLICAS  serve replicas the connections are sized for (default 2)
#   TENANTRY_PG_TUNE_NODES     nodes sharing the machine's memory (citus-up sets it)
#   TENANTRY_OWNER_PASSWORD    password for tenantry_owner   (default tenantry-owner-dev)
#   TENANTRY_APP_PASSWORD      password for tenantry_app     (default tenantry-app-dev)
#   TENANTRY_DB_NAME           database to create            (default tenantry)
#   PG_CITUS=1                 (up) preload citus and create the extension in the database
#   TENANTRY_SUPERUSER_PASSWORD (citus-up) the superuser's password, which the nodes use to
#                              reach each other (default: random, kept in DIR/superuser-password)
#   PG_BINDIR_GLOB             where to look for server binaries when initdb/pg_ctl are
#                              not on PATH (default /usr/lib/postgresql/*/bin)
#
# When run as root, initdb/pg_ctl/postgres (and psql over the socket) run as the
# OS user "postgres"; otherwise as the current user. The socket is created with
# mode 0700, so only that OS user (and root) can use the trust-authenticated
# local connection; TCP (127.0.0.1 only) requires a scram-sha-256 password.
set -euo pipefail

prog=$(basename "$0")
script_dir=$(cd "$(dirname "$0")" && pwd -P)

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage() {
    cat >&2 <<EOF
usage: $prog up DIR PORT
       $prog down DIR
       $prog remove DIR
       $prog status DIR
       $prog psql DIR PORT [psql args...]
       $prog citus-up DIR PORT WORKER_PORT...
       $prog tune-plan [--memory-mib N] [--cpus N] [--app-connections N] [--admin-connections N]
                       [--replicas N] [--reserved N] [--profile development|production]
EOF
    exit 2
}

# Connection-related libpq variables from the caller's shell must not redirect
# our psql invocations (we always pass host/port/user/db explicitly anyway).
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE \
    PGSERVICEFILE PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS PGDATA 2>/dev/null || true

# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------
PG_BINDIR=""
INITDB="" PG_CTL="" PSQL=""

find_server_bins() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        INITDB=$(command -v initdb)
        PG_CTL=$(command -v pg_ctl)
        PG_BINDIR=$(dirname "$(readlink -f "$PG_CTL")")
    else
        local glob=${PG_BINDIR_GLOB:-/usr/lib/postgresql/*/bin}
        local d best=""
        # shellcheck disable=SC2086 # the glob must expand
        best=$(for d in $glob; do
            if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then printf '%s\n' "$d"; fi
        done | sort -V | tail -n 1)
        if [[ -z "$best" ]]; then
            echo "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. Install them, e.g. on Debian/Ubuntu: apt-get install postgresql (or postgresql-15)." >&2
            exit 1
        fi
        PG_BINDIR=$best
        INITDB=$best/initdb
        PG_CTL=$best/pg_ctl
    fi
    find_psql
}

find_psql() {
    if command -v psql >/dev/null 2>&1; then
        PSQL=$(command -v psql)
    elif [[ -n "$PG_BINDIR" && -x "$PG_BINDIR/psql" ]]; then
        PSQL=$PG_BINDIR/psql
    else
        # psql-only commands (e.g. "psql") may not have looked for a bindir yet.
        local glob=${PG_BINDIR_GLOB:-/usr/lib/postgresql/*/bin} d
        # shellcheck disable=SC2086
        PSQL=$(for d in $glob; do
            if [[ -x "$d/psql" ]]; then printf '%s\n' "$d/psql"; fi
        done | sort -V | tail -n 1)
        [[ -n "$PSQL" ]] || die "psql not found. Install it, e.g. on Debian/Ubuntu: apt-get install postgresql-client"
    fi
}

# ---------------------------------------------------------------------------
# Running things as the cluster's OS user
# ---------------------------------------------------------------------------
if [[ $(id -u) -eq 0 ]]; then
    IS_ROOT=1
else
    IS_ROOT=0
fi

require_pg_user() {
    if [[ $IS_ROOT -eq 1 ]] && ! id -u postgres >/dev/null 2>&1; then
        die "running as root, but PostgreSQL refuses to run as root and there is no 'postgres' OS user to run it as. Create one (useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres) or run this as an unprivileged user."
    fi
}

# as_pg CMD ARGS... : run CMD as the cluster's OS user (directly when not root).
as_pg() {
    if [[ $IS_ROOT -eq 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        # "--" so the command's own options are not parsed by su.
        su -s /bin/sh -c 'exec "$@"' -- postgres sh "$@"
    fi
}

# Same, but from "/" so the server tools never trip over an unreadable CWD
# (e.g. /root). All paths we pass are absolute.
as_pg_in_root() {
    (cd / && as_pg "$@")
}

# abs_dir DIR : absolute path of DIR without requiring it to exist.
abs_dir() {
    local d=$1
    [[ -n "$d" ]] || die "DIR must not be empty"
    [[ "$d" == /* ]] || d="$PWD/$d"
    # Normalise "." / ".." / duplicate slashes lexically.
    realpath -m -- "$d"
}

# Fail clearly if the cluster's OS user cannot reach PATH (every parent needs +x).
check_traversable() {
    local target=$1
    [[ $IS_ROOT -eq 1 ]] || return 0
    if as_pg_in_root test -x "$target" && as_pg_in_root test -w "$target"; then
        return 0
    fi
    local p="" comp
    local IFS=/
    for comp in $target; do
        [[ -z "$comp" ]] && continue
        p="$p/$comp"
        if ! as_pg_in_root test -x "$p"; then
            die "the OS user 'postgres' cannot traverse '$p' (mode $(stat -c '%A %U:%G' "$p")), so it cannot reach '$target'. Put the cluster elsewhere or grant search permission, e.g.: chmod o+x '$p'"
        fi
    done
    die "the OS user 'postgres' cannot write to '$target' ($(stat -c '%A %U:%G' "$target"))"
}

# The path as given, absolute, symbolic links NOT resolved (abs_dir resolves them).
lexical_dir() {
    local d=$1
    [[ -n "$d" ]] || die "DIR must not be empty"
    [[ "$d" == /* ]] || d="$PWD/$d"
    realpath -m -s -- "$d"
}

relocation_base() {
    realpath -m -- "${PG_RELOCATE_BASE:-/var/tmp}"
}

# Where a cluster for DIR (its lexical path) lives when DIR is out of reach:
# BASE/tenantry-<first 12 hex of sha256(DIR)>/<name of DIR>.
relocated_dir() {
    local hash
    hash=$(printf '%s' "$1" | sha256sum | cut -c1-12)
    printf '%s/tenantry-%s/%s\n' "$(relocation_base)" "$hash" "$(basename -- "$1")"
}

# is_relocated_dir PATH: PATH is one of ours under the relocation base.
is_relocated_dir() {
    [[ "$(dirname -- "$(dirname -- "$1")")" == "$(relocation_base)" &&
        "$(basename -- "$(dirname -- "$1")")" =~ ^tenantry-[0-9a-f]{12}$ ]]
}

# pg_can_reach PATH: the OS user 'postgres' can traverse PATH, or (when it
# does not exist yet) its nearest existing ancestor, which root then extends
# with world-traversable directories.
pg_can_reach() {
    local p=$1
    while [[ ! -e "$p" ]]; do p=$(dirname -- "$p"); done
    as_pg_in_root test -x "$p"
}

# first_blocked PATH: the first directory on PATH that 'postgres' cannot traverse.
first_blocked() {
    local p="" comp
    local IFS=/
    for comp in $1; do
        [[ -z "$comp" ]] && continue
        p="$p/$comp"
        if ! as_pg_in_root test -x "$p"; then
            printf '%s\n' "$p"
            return
        fi
    done
    printf '%s\n' "$1"
}

# make_relocated_dir DIR TARGET: TARGET owned by postgres (0700) under a
# root-owned, world-traversable parent that records DIR in "origin".
make_relocated_dir() {
    local dir=$1 target=$2 parent
    parent=$(dirname -- "$target")
    pg_can_reach "$(relocation_base)" ||
        die "the OS user 'postgres' cannot reach $(relocation_base) either; set PG_RELOCATE_BASE to a directory it can reach"
    (umask 022 && mkdir -p -- "$parent")
    chmod 0755 -- "$parent"
    printf '%s\n' "$dir" >"$parent/origin"
    if [[ ! -d "$target" ]]; then
        mkdir -- "$target"
    fi
    chown postgres: -- "$target"
    chmod 0700 -- "$target"
}

# cluster_dir_for_up DIR: where `up`/`citus-up` keep DIR's cluster: DIR
# itself, or (as root, when 'postgres' cannot reach DIR) a relocated
# directory that DIR then links to. Prints the absolute path to use.
cluster_dir_for_up() {
    local dir resolved target
    dir=$(lexical_dir "$1")
    resolved=$(abs_dir "$1")
    if [[ $IS_ROOT -eq 0 ]]; then
        printf '%s\n' "$resolved"
        return
    fi
    require_pg_user
    # Already relocated: DIR links to its directory (re-created if it was
    # removed, e.g. by a cleaner of /var/tmp).
    if [[ -L "$dir" ]]; then
        if [[ ! -e "$resolved" ]] && is_relocated_dir "$resolved"; then
            make_relocated_dir "$dir" "$resolved"
        fi
        printf '%s\n' "$resolved"
        return
    fi
    if pg_can_reach "$resolved"; then
        printf '%s\n' "$resolved"
        return
    fi
    target=$(relocated_dir "$dir")
    if [[ -e "$dir" ]]; then
        [[ -d "$dir" ]] || die "$dir exists and is not a directory"
        # A cluster is never moved behind its owner's back.
        if [[ -f "$dir/data/PG_VERSION" ]] || compgen -G "$dir/worker-*/data/PG_VERSION" >/dev/null; then
            local blocked
            blocked=$(first_blocked "$dir")
            die "the OS user 'postgres' cannot reach the cluster in $dir (blocked at '$blocked', mode $(stat -c '%A %U:%G' "$blocked")). Grant search permission (chmod o+x '$blocked'), or remove the cluster (make clean-db) and run this again to keep a new one in $target."
        fi
        # What an earlier pg.sh left when it stopped at the same wall: empty
        # data/run and the logs of that attempt. Anything else stays.
        rmdir -- "$dir/data" "$dir/run" 2>/dev/null || true
        rm -f -- "$dir/log/initdb.log" "$dir/log/postgres.log" "$dir/log/pg_ctl.err"
        rmdir -- "$dir/log" 2>/dev/null || true
        rmdir -- "$dir" 2>/dev/null ||
            die "the OS user 'postgres' cannot reach $dir, which is not empty ($(ls -A "$dir" | head -5 | tr '\n' ' ')); move its contents away so it can be replaced by a link to $target"
    fi
    make_relocated_dir "$dir" "$target"
    mkdir -p -- "$(dirname -- "$dir")"
    ln -s -- "$target" "$dir"
    echo "$prog: the OS user 'postgres' cannot reach $dir; the cluster lives in $target ($dir links to it)" >&2
    printf '%s\n' "$target"
}

validate_port() {
    if ! [[ "$1" =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 65535)); then
        die "invalid port: '$1'"
    fi
}

# pg_running DATA : 0 when a postmaster is running for DATA.
pg_running() {
    local data=$1
    [[ -f "$data/PG_VERSION" ]] || return 1
    as_pg_in_root "$PG_CTL" status -D "$data" >/dev/null 2>&1
}

# Port of the running postmaster (line 4 of postmaster.pid).
running_port() {
    sed -n '4p' "$1/postmaster.pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Tuning for the machine (TENANTRY_PG_TUNE=1, and `tune-plan`)
# ---------------------------------------------------------------------------
# The formula is crates/core/src/tuning.rs's (`Plan::new`), line for line
# (tests/tests/it/doctor.rs compares `tune-plan` with it); DEPLOYMENT.md
# explains each value.
TUNE_HEADROOM=10
TUNE_SUMMARY=""

is_count() { [[ "$1" =~ ^[0-9]{1,9}$ ]]; }

# Memory in MiB: MemTotal, or the cgroup's limit when smaller.
machine_memory_mib() {
    if [[ -n "${TENANTRY_PG_TUNE_MEMORY_MIB:-}" ]]; then
        is_count "$TENANTRY_PG_TUNE_MEMORY_MIB" || die "TENANTRY_PG_TUNE_MEMORY_MIB must be a number of MiB"
        printf '%s\n' "$TENANTRY_PG_TUNE_MEMORY_MIB"
        return
    fi
    local kb limit
    kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)
    is_count "${kb:-}" || kb=$((1024 * 1024)) # unknown: assume 1 GiB
    for limit in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
        if [[ -r "$limit" ]]; then
            limit=$(<"$limit")
            if [[ "$limit" =~ ^[0-9]+$ ]] && ((${#limit} <= 18)) && ((limit / 1024 < kb)); then
                kb=$((limit / 1024))
            fi
            break
        fi
    done
    printf '%s\n' $((kb / 1024))
}

# Cores: nproc (the CPU affinity), or the cgroup's CPU quota when smaller.
machine_cpus() {
    if [[ -n "${TENANTRY_PG_TUNE_CPUS:-}" ]]; then
        is_count "$TENANTRY_PG_TUNE_CPUS" || die "TENANTRY_PG_TUNE_CPUS must be a number"
        printf '%s\n' "$TENANTRY_PG_TUNE_CPUS"
        return
    fi
    local cpus quota period
    cpus=$(nproc 2>/dev/null || echo 1)
    if [[ -r /sys/fs/cgroup/cpu.max ]]; then
        read -r quota period </sys/fs/cgroup/cpu.max || true
    elif [[ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        quota=$(</sys/fs/cgroup/cpu/cpu.cfs_quota_us)
        period=$(</sys/fs/cgroup/cpu/cpu.cfs_period_us)
    fi
    if [[ "${quota:-max}" =~ ^[0-9]+$ && "${period:-}" =~ ^[1-9][0-9]*$ ]]; then
        quota=$(((quota + period - 1) / period))
        ((quota >= 1 && quota < cpus)) && cpus=$quota
    fi
    printf '%s\n' "$cpus"
}

# config_database KEY: `[database] KEY` of config/default.toml, or its
# TENANTRY__DATABASE__KEY override.
config_database() {
    local key=$1 env value
    env=TENANTRY__DATABASE__${key^^}
    value=${!env:-}
    if [[ -z "$value" ]]; then
        value=$(awk -v key="$key" '
            /^\[/ { section = $0; next }
            section == "[database]" && $1 == key && $2 == "=" { print $3; exit }
        ' "$script_dir/../config/default.toml" 2>/dev/null || true)
    fi
    is_count "${value:-}" || die "cannot read database.$key (config/default.toml or $env): '${value:-}'"
    printf '%s\n' "$value"
}

clamp() { # clamp V LO HI
    local v=$1
    ((v < $2)) && v=$2
    ((v > $3)) && v=$3
    ((v < $2)) && v=$2
    printf '%s\n' "$v"
}

# tune_plan MEMORY_MIB CPUS APP ADMIN REPLICAS RESERVED PROFILE: the
# settings, one `name = value` a line.
tune_plan() {
    local mem=$1 cpus=$2 app=$3 admin=$4 replicas=$5 reserved=$6 profile=$7
    local sb_cap ecs mwm_cap wal idle
    ((cpus >= 1)) || cpus=1
    ((replicas >= 1)) || replicas=1
    if [[ "$profile" == development ]]; then
        sb_cap=2048 ecs=$((mem / 2)) mwm_cap=512 wal=2048 idle=300
    else
        # shellcheck disable=SC2017 # the same integer steps as tuning.rs
        sb_cap=$((1 << 62)) ecs=$((mem / 4 * 3)) mwm_cap=2048 wal=4096 idle=60
    fi
    ((ecs >= 256)) || ecs=256
    local sb mwm conns wm half
    sb=$(clamp $((mem / 4)) 128 "$sb_cap")
    mwm=$(clamp $((mem / 16)) 64 "$mwm_cap")
    conns=$((replicas * (app + admin) + TUNE_HEADROOM + reserved))
    wm=0
    ((mem > sb)) && wm=$(((mem - sb) / (conns * 4)))
    wm=$(clamp "$wm" 4 64)
    half=$((cpus / 2))
    ((half >= 1)) || half=1
    ((half <= 4)) || half=4
    cat <<PLAN
shared_buffers = ${sb}MB
effective_cache_size = ${ecs}MB
work_mem = ${wm}MB
maintenance_work_mem = ${mwm}MB
max_connections = $conns
bgwriter_delay = 50ms
bgwriter_lru_maxpages = 1000
bgwriter_lru_multiplier = 4.0
max_wal_size = ${wal}MB
min_wal_size = $((wal / 4))MB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
wal_compression = on
random_page_cost = 1.1
effective_io_concurrency = 200
idle_in_transaction_session_timeout = ${idle}s
track_io_timing = on
max_worker_processes = $((cpus > 8 ? cpus : 8))
max_parallel_workers = $cpus
max_parallel_workers_per_gather = $half
max_parallel_maintenance_workers = $half
PLAN
}

# tune_inputs: MEMORY_MIB CPUS APP ADMIN REPLICAS RESERVED of this machine
# and configuration (a Citus cluster's nodes share the machine's memory).
tune_inputs() {
    local mem cpus nodes=${TENANTRY_PG_TUNE_NODES:-1} replicas=${TENANTRY_PG_TUNE_REPLICAS:-2}
    if ! is_count "$nodes" || ((nodes < 1)); then die "TENANTRY_PG_TUNE_NODES must be a number >= 1"; fi
    is_count "$replicas" || die "TENANTRY_PG_TUNE_REPLICAS must be a number"
    mem=$(machine_memory_mib)
    cpus=$(machine_cpus)
    printf '%s %s %s %s %s %s\n' $((mem / nodes)) "$cpus" "$(config_database max_connections)" \
        "$(config_database admin_connections)" "$replicas" 3
}

tune_value() { awk -v n="$1" '$1 == n {print $3}' <<<"$2"; }

# write_tuning DATA: (re)writes DATA/postgresql.tenantry.conf for this
# machine and includes it from postgresql.conf; sets TUNE_SUMMARY. Status 0
# when the file changed.
write_tuning() {
    local data=$1 conf=$1/postgresql.tenantry.conf
    local mem cpus app admin replicas reserved plan
    read -r mem cpus app admin replicas reserved < <(tune_inputs)
    plan=$(tune_plan "$mem" "$cpus" "$app" "$admin" "$replicas" "$reserved" development)
    if [[ "${PG_CITUS:-}" == 1 ]]; then
        # A Citus node's connections and workers are set on its command line.
        plan=$(grep -v -E '^(max_connections|max_worker_processes) ' <<<"$plan")
    fi
    local text
    text="# Written by scripts/pg.sh (TENANTRY_PG_TUNE=1) on every \`up\` for this machine:
# ${mem} MiB of memory for this node, ${cpus} cpu(s), pools ${replicas} x (${app} + ${admin}) + ${TUNE_HEADROOM} headroom + ${reserved} reserved.
# Edits are overwritten; see DEPLOYMENT.md and scripts/pg.sh tune-plan.
$plan"
    local conns
    conns=$(tune_value max_connections "$plan")
    [[ "${PG_CITUS:-}" != 1 ]] || conns="(citus: command line)"
    TUNE_SUMMARY="tuned for ${mem} MiB, ${cpus} cpu(s): shared_buffers=$(tune_value shared_buffers "$plan") effective_cache_size=$(tune_value effective_cache_size "$plan") work_mem=$(tune_value work_mem "$plan") max_connections=$conns bgwriter_delay=50ms bgwriter_lru_maxpages=1000 max_wal_size=$(tune_value max_wal_size "$plan") ($conf)"
    if ! grep -q "^include_if_exists = 'postgresql.tenantry.conf'" "$data/postgresql.conf"; then
        printf "\n# The machine's settings (scripts/pg.sh, TENANTRY_PG_TUNE=1).\ninclude_if_exists = 'postgresql.tenantry.conf'\n" >>"$data/postgresql.conf"
    fi
    if [[ -f "$conf" && "$(<"$conf")" == "$text" ]]; then
        return 1
    fi
    printf '%s\n' "$text" >"$conf"
    [[ $IS_ROOT -eq 0 ]] || chown postgres: -- "$conf"
    return 0
}

cmd_tune_plan() {
    local mem cpus app admin replicas reserved profile=development
    read -r mem cpus app admin replicas reserved < <(tune_inputs)
    while [[ $# -gt 0 ]]; do
        [[ $# -ge 2 ]] || usage
        case "$1" in
        --memory-mib) mem=$2 ;;
        --cpus) cpus=$2 ;;
        --app-connections) app=$2 ;;
        --admin-connections) admin=$2 ;;
        --replicas) replicas=$2 ;;
        --reserved) reserved=$2 ;;
        --profile)
            [[ "$2" == development || "$2" == production ]] || die "--profile: development or production"
            profile=$2
            ;;
        *) usage ;;
        esac
        [[ "$1" == --profile ]] || is_count "$2" || die "$1: not a number: '$2'"
        shift 2
    done
    tune_plan "$mem" "$cpus" "$app" "$admin" "$replicas" "$reserved" "$profile"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
cmd_up() {
    [[ $# -eq 2 ]] || usage
    local dir port
    port=$2
    validate_port "$port"
    find_server_bins
    require_pg_user
    dir=$(cluster_dir_for_up "$1")
    [[ "$dir" != *"'"* ]] || die "DIR must not contain a single quote: $dir"

    local data=$dir/data run=$dir/run log=$dir/log

    # Unix socket paths are limited to 107 bytes (sun_path).
    local sock="$run/.s.PGSQL.$port"
    ((${#sock} <= 107)) || die "socket path '$sock' is too long (${#sock} > 107 bytes); use a shorter DIR"

    # 1. Create directories (world-traversable parents; postgres owns the leaves).
    #    DIR itself is left alone (it may be a shared directory); it only has to
    #    be traversable.
    (umask 022 && mkdir -p -- "$data" "$run" "$log")
    if [[ $IS_ROOT -eq 1 ]]; then
        if [[ -f "$data/PG_VERSION" ]]; then
            local owner
            owner=$(stat -c %U "$data")
            [[ "$owner" == postgres ]] ||
                die "$data belongs to '$owner', but as root this script runs the server as 'postgres'. Run it as '$owner' instead, or remove the cluster."
        else
            chown -R postgres: -- "$data"
        fi
        chown postgres: -- "$run" "$log"
        check_traversable "$data"
        check_traversable "$run"
        check_traversable "$log"
    fi

    # 2. initdb if needed.
    if [[ ! -f "$data/PG_VERSION" ]]; then
        local initlog=$log/initdb.log
        : >"$initlog"
        [[ $IS_ROOT -eq 0 ]] || chown postgres: -- "$initlog"
        local locale ok=0
        for locale in C.UTF-8 C; do
            if as_pg_in_root "$INITDB" -D "$data" -U postgres \
                --auth-local=trust --auth-host=scram-sha-256 \
                --encoding=UTF8 --locale="$locale" >>"$initlog" 2>&1; then
                ok=1
                break
            fi
            echo "--- initdb with --locale=$locale failed" >>"$initlog"
            # initdb removes what it created on failure, but be sure the dir is empty.
            find "$data" -mindepth 1 -delete 2>/dev/null || true
        done
        if [[ $ok -ne 1 ]]; then
            echo "$prog: initdb failed; output ($initlog):" >&2
            cat "$initlog" >&2
            exit 1
        fi
    fi

    # Refuse to start a cluster with binaries of another major version.
    local data_ver bin_ver
    data_ver=$(<"$data/PG_VERSION")
    bin_ver=$("$PG_CTL" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    if [[ "$data_ver" != "$bin_ver" ]]; then
        die "cluster in $data is PostgreSQL $data_ver but the binaries found ($PG_BINDIR) are $bin_ver. Install PostgreSQL $data_ver, or remove $dir to recreate the cluster (dev cluster: make clean-db)."
    fi

    # 3. The machine's settings (TENANTRY_PG_TUNE=1: the dev cluster of
    #    `make run` / `make db-up`), re-written on every `up` so a machine
    #    change is followed. Never for a throwaway cluster (PG_FAST=1).
    local tuned=0 tune_changed=0
    if [[ "${TENANTRY_PG_TUNE:-}" == 1 && "${PG_FAST:-}" != 1 ]]; then
        tuned=1
        write_tuning "$data" && tune_changed=1
    fi

    # 4. Start if needed (restart when running with other tuned settings:
    #    most of them, shared_buffers first, need one).
    local opts="-p $port -k '$run' -c listen_addresses=127.0.0.1"
    # A tuned cluster's max_connections is in its conf include (the command
    # line would win over it).
    [[ $tuned -eq 1 && "${PG_CITUS:-}" != 1 ]] || opts+=" -c max_connections=200"
    opts+=" -c unix_socket_permissions=0700"
    if [[ "${PG_FAST:-}" == 1 ]]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    if [[ "${PG_CITUS:-}" == 1 ]]; then
        # Citus runs a maintenance daemon (a background worker) per
        # database; a test run has many databases at once.
        opts+=" -c shared_preload_libraries=citus -c max_worker_processes=128"
        opts+=" -c max_connections=400 -c max_prepared_transactions=400"
    fi
    if pg_running "$data"; then
        local rport
        rport=$(running_port "$data")
        if [[ "$rport" != "$port" ]]; then
            die "the cluster in $data is already running on port ${rport:-?}, not $port. Stop it first: $prog down $dir"
        fi
        if [[ $tune_changed -eq 1 ]]; then
            echo "postgres: restarting to apply the settings for this machine (postgresql.tenantry.conf)"
            if ! as_pg_in_root "$PG_CTL" -D "$data" -l "$log/postgres.log" -m fast -w -t 60 -o "$opts" \
                restart >/dev/null 2>"$log/pg_ctl.err"; then
                echo "$prog: could not restart PostgreSQL (port $port). pg_ctl said:" >&2
                sed 's/^/  /' "$log/pg_ctl.err" >&2 || true
                tail -n 30 "$log/postgres.log" | sed 's/^/  /' >&2 || true
                exit 1
            fi
        fi
    else
        local pglog=$log/postgres.log
        touch "$pglog"
        [[ $IS_ROOT -eq 0 ]] || chown postgres: -- "$pglog"
        if ! as_pg_in_root "$PG_CTL" -D "$data" -l "$pglog" -w -t 60 -o "$opts" start >/dev/null 2>"$log/pg_ctl.err"; then
            echo "$prog: could not start PostgreSQL (port $port). pg_ctl said:" >&2
            sed 's/^/  /' "$log/pg_ctl.err" >&2 || true
            echo "last lines of $pglog:" >&2
            tail -n 30 "$pglog" | sed 's/^/  /' >&2 || true
            exit 1
        fi
    fi

    # 5. Bootstrap roles and database (idempotent).
    local sql=$script_dir/bootstrap-roles.sql
    [[ -r "$sql" ]] || die "missing $sql"
    # The file is fed on stdin so the cluster's OS user need not be able to read the checkout.
    # On a Citus node, DDL propagation is off for it: each node is
    # bootstrapped itself, and a worker already in the metadata refuses
    # propagated DDL ("operation is not allowed on this node").
    local pgoptions=${PGOPTIONS:-}
    [[ "${PG_CITUS:-}" != 1 ]] || pgoptions+=" -c citus.enable_ddl_propagation=off"
    if ! PGOPTIONS=$pgoptions as_pg_in_root "$PSQL" -X -q -v ON_ERROR_STOP=1 \
        -h "$run" -p "$port" -U postgres -d postgres \
        -v owner_password="${TENANTRY_OWNER_PASSWORD:-tenantry-owner-dev}" \
        -v app_password="${TENANTRY_APP_PASSWORD:-tenantry-app-dev}" \
        -v dbname="${TENANTRY_DB_NAME:-tenantry}" \
        -f - <"$sql" >/dev/null; then
        die "bootstrapping roles/database failed (see the psql error above; server log: $log/postgres.log)"
    fi

    # 6. Citus: the extension in the database (superuser only).
    if [[ "${PG_CITUS:-}" == 1 ]]; then
        as_pg_in_root "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$run" -p "$port" -U postgres \
            -d "${TENANTRY_DB_NAME:-tenantry}" -c "SET client_min_messages = warning" \
            -c "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null ||
            die "CREATE EXTENSION citus failed: is Citus installed? (../shared/citus/build.sh, or the Citus packages)"
    fi

    # 7. Done.
    [[ $tuned -eq 0 ]] || echo "postgres: $TUNE_SUMMARY"
    echo "postgres: up on 127.0.0.1:$port (data $data)"
}

cmd_citus_up() {
    [[ $# -ge 3 ]] || usage
    local dir port wport
    port=$2
    validate_port "$port"
    for wport in "${@:3}"; do validate_port "$wport"; done
    find_server_bins
    require_pg_user
    dir=$(cluster_dir_for_up "$1")
    shift 2
    mkdir -p -- "$dir"

    local pwfile=$dir/superuser-password su_pw
    if [[ -n "${TENANTRY_SUPERUSER_PASSWORD:-}" ]]; then
        su_pw=$TENANTRY_SUPERUSER_PASSWORD
    elif [[ -s "$pwfile" ]]; then
        su_pw=$(<"$pwfile")
    else
        su_pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
        (umask 077 && printf '%s' "$su_pw" >"$pwfile")
    fi

    local db=${TENANTRY_DB_NAME:-tenantry}
    local owner_pw=${TENANTRY_OWNER_PASSWORD:-tenantry-owner-dev}
    local app_pw=${TENANTRY_APP_PASSWORD:-tenantry-app-dev}
    local node
    for node in "$port:$dir" $(for wport in "$@"; do printf '%s:%s\n' "$wport" "$dir/worker-$wport"; done); do
        PG_CITUS=1 TENANTRY_PG_TUNE_NODES=${TENANTRY_PG_TUNE_NODES:-$(($# + 1))} \
            cmd_up "${node#*:}" "${node%%:*}" | sed 's/^postgres:/citus node:/'
        # Every node knows the superuser's password: the coordinator reaches
        # the workers over TCP (scram-sha-256) as the connected role.
        # Dedicated placement: Citus copies a tenant's shards as the tables'
        # owner, in sessions of its own where FORCE RLS would show it no
        # rows, so the owner bypasses RLS on every node (tenant_place in
        # sql/citus.sql refuses otherwise).
        as_pg_in_root "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "${node#*:}/run" -p "${node%%:*}" \
            -U postgres -d postgres -v pw="$su_pw" -f - >/dev/null <<'SQL'
ALTER ROLE postgres PASSWORD :'pw';
ALTER ROLE tenantry_owner BYPASSRLS;
SQL
    done

    # The roles the nodes connect as, with their passwords (Citus's own
    # credential table, per database), then the metadata: the coordinator
    # (which holds no shards) and the workers.
    local args=() w
    for wport in "$@"; do args+=(-c "SELECT citus_add_node('127.0.0.1', $wport) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = $wport)"); done
    for node in "$port:$dir" $(for wport in "$@"; do printf '%s:%s\n' "$wport" "$dir/worker-$wport"; done); do
        as_pg_in_root "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "${node#*:}/run" -p "${node%%:*}" -U postgres -d "$db" \
            -v su_pw="$su_pw" -v owner_pw="$owner_pw" -v app_pw="$app_pw" -f - >/dev/null <<'SQL'
SET client_min_messages = warning;
DELETE FROM pg_dist_authinfo WHERE nodeid = 0;
INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES
    (0, 'postgres', 'password=' || :'su_pw'),
    (0, 'tenantry_owner', 'password=' || :'owner_pw'),
    (0, 'tenantry_app', 'password=' || :'app_pw');
SQL
    done
    as_pg_in_root "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$port" -U postgres -d "$db" \
        -c "SET client_min_messages = warning" \
        -c "SELECT citus_set_coordinator_host('127.0.0.1', $port)" "${args[@]}" >/dev/null ||
        die "adding the workers to the coordinator failed (logs: $dir/log, $dir/worker-*/log)"
    echo "citus: coordinator 127.0.0.1:$port, workers $*, database $db"
}

cmd_down() {
    [[ $# -eq 1 ]] || usage
    local dir data worker
    dir=$(abs_dir "$1")
    data=$dir/data
    for worker in "$dir"/worker-*; do
        [[ -f "$worker/data/PG_VERSION" ]] && cmd_down "$worker" | sed 's/^postgres:/citus worker:/'
    done
    if [[ ! -f "$data/PG_VERSION" ]]; then
        echo "postgres: no cluster in $data (nothing to stop)"
        return 0
    fi
    find_server_bins
    require_pg_user
    if pg_running "$data"; then
        as_pg_in_root "$PG_CTL" stop -D "$data" -m fast -w -t 60 >/dev/null
        echo "postgres: stopped (data $data)"
    else
        echo "postgres: not running (data $data)"
    fi
}

cmd_remove() {
    [[ $# -eq 1 ]] || usage
    local dir resolved
    dir=$(lexical_dir "$1")
    resolved=$(abs_dir "$1")
    # Only what this script makes: DIR's data/run/log, its workers, the
    # Citus superuser's password. Anything else means DIR is no cluster.
    local entry
    if [[ -d "$resolved" ]]; then
        for entry in "$resolved"/* "$resolved"/.[!.]*; do
            [[ -e "$entry" || -L "$entry" ]] || continue
            case "$(basename -- "$entry")" in
            data | run | log | worker-* | superuser-password) ;;
            *) die "$resolved holds $(basename -- "$entry"), so it is not (only) a cluster made by $prog; remove it yourself" ;;
            esac
        done
    fi
    cmd_down "$1"
    if [[ -L "$dir" ]]; then
        # A relocated cluster: its directory (only one of ours), then the link.
        if is_relocated_dir "$resolved"; then
            rm -rf -- "$resolved"
            rm -f -- "$(dirname -- "$resolved")/origin"
            rmdir -- "$(dirname -- "$resolved")" 2>/dev/null || true
        elif [[ -e "$resolved" ]]; then
            echo "postgres: $dir links to $resolved, which is not a relocated cluster; only the link is removed" >&2
        fi
        rm -f -- "$dir"
    else
        rm -rf -- "$dir"
    fi
    echo "postgres: removed $dir"
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    local dir data
    dir=$(abs_dir "$1")
    data=$dir/data
    if [[ ! -f "$data/PG_VERSION" ]]; then
        echo "not running (no cluster in $data)"
        return 0
    fi
    find_server_bins
    require_pg_user
    if pg_running "$data"; then
        echo "running on 127.0.0.1:$(running_port "$data") (data $data)"
    else
        echo "not running (data $data)"
    fi
}

cmd_psql() {
    [[ $# -ge 2 ]] || usage
    local dir port
    dir=$(abs_dir "$1")
    port=$2
    shift 2
    validate_port "$port"
    find_psql
    require_pg_user
    # -d postgres first so a caller's "-d DB" argument wins. From the
    # caller's directory (relative -f paths), unless 'postgres' cannot
    # enter it (a relocated cluster's checkout).
    if [[ $IS_ROOT -eq 1 ]] && ! as_pg_in_root test -x "$PWD"; then
        as_pg_in_root "$PSQL" -X -h "$dir/run" -p "$port" -U postgres -d postgres "$@"
    else
        as_pg "$PSQL" -X -h "$dir/run" -p "$port" -U postgres -d postgres "$@"
    fi
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case "$cmd" in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
remove) cmd_remove "$@" ;;
status) cmd_status "$@" ;;
psql) cmd_psql "$@" ;;
citus-up) cmd_citus_up "$@" ;;
tune-plan) cmd_tune_plan "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
