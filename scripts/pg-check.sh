#!/usr/bin/env bash
# Checks that the dev-cluster targets work as root from a checkout the OS
# user 'postgres' cannot reach (a home directory of mode 0700, e.g. /root):
# scripts/pg.sh keeps the cluster in /var/tmp/tenantry-<hash>/pg and makes
# .tenantry/pg a link to it. Run by scripts/test.sh (PG_CHECK=0 skips it);
# a few seconds: one initdb.
#
# A copy of the Makefile and scripts/ in DIR/home/repo, DIR root-owned and
# mode 0700, then: make db-up (over the empty data/run/log an older pg.sh
# left there), status, make db-psql, the roles over TCP, make db-down,
# make db-up again (the same data), make clean-db; and that a cluster out
# of reach is never moved, and `pg.sh remove` deletes only clusters.
# With Citus installed, under `make test-citus` (TEST_CITUS=1) or with
# PG_CHECK_CITUS=1: the same for `pg.sh citus-up` (make run CITUS=1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
log() { echo "pg-check: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "skipped: only root runs the cluster as another OS user (postgres)"
    exit 0
fi
id -u postgres >/dev/null 2>&1 || {
    log "skipped: no 'postgres' OS user"
    exit 0
}

passed=0 failed=0
check() { # name command...
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1))
        log "ok: $name"
    else
        failed=$((failed + 1))
        log "FAIL: $name"
        sed 's/^/    /' "$work/out" >&2
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

relocated() { # the directory pg.sh keeps DIR's cluster in
    printf '/var/tmp/tenantry-%s/%s' "$(printf '%s' "$1" | sha256sum | cut -c1-12)" "$(basename "$1")"
}

work=$(mktemp -d /tmp/tenantry-pgcheck.XXXXXX)
chmod 0700 "$work" # root's, and 'postgres' cannot traverse it
repo=$work/home/repo
mkdir -p "$repo"
chmod 0700 "$work/home"
cp -a "$root/Makefile" "$root/scripts" "$repo/"
pg_dir=$repo/.tenantry/pg
citus_dir=$repo/.tenantry/citus
target=$(relocated "$pg_dir")
citus_target=$(relocated "$citus_dir")
cleanup() {
    local rc=$?
    trap - EXIT
    local d
    for d in "$pg_dir" "$citus_dir" "$repo/.tenantry/held"; do
        "$repo/scripts/pg.sh" down "$d" >/dev/null 2>&1 || true
    done
    rm -rf -- "$target" "$(dirname "$target")" "$citus_target" "$(dirname "$citus_target")" "$work"
    exit "$rc"
}
trap cleanup EXIT
cd "$repo"
port=$(free_port)
export PG_FAST=1
unset TENANTRY__DATABASE__URL TENANTRY__DATABASE__OWNER_URL TENANTRY_DB_NAME TENANTRY_OWNER_PASSWORD \
    TENANTRY_APP_PASSWORD

as_pg_test() { (cd / && runuser -u postgres -- test "$@"); }

# --- Preconditions: the wall this is about -----------------------------------------
check "the checkout is out of reach for 'postgres'" bash -c "! (cd / && runuser -u postgres -- test -x '$repo')"

# What pg.sh before relocation left when it stopped with its hint.
mkdir -p "$pg_dir"/{data,run,log}
: >"$pg_dir/log/pg_ctl.err"

# --- make db-up / status / db-psql / db-down / clean-db ----------------------------
check "make db-up starts the cluster" make -s db-up PG_PORT="$port"
check ".tenantry/pg links to $target" test "$(readlink "$pg_dir")" == "$target"
check "the relocated directory is postgres's, mode 0700" \
    test "$(stat -c '%U %a' "$target")" == "postgres 700"
check "its parent records the checkout's directory" test "$(cat "$(dirname "$target")/origin")" == "$pg_dir"
check "'postgres' reaches the data directory" as_pg_test -O "$target/data/PG_VERSION"
check "pg.sh status: running on the port" bash -c "scripts/pg.sh status .tenantry/pg | grep -q '^running on 127.0.0.1:$port '"
check "make db-psql answers" bash -c "echo 'SELECT 40 + 2 AS answer;' | make -s db-psql PG_PORT=$port | grep -qx ' *42'"
check "the app role logs in over TCP with its password" \
    bash -c "PGPASSWORD=tenantry-app-dev psql -X -At -h 127.0.0.1 -p $port -U tenantry_app -d tenantry -c 'SELECT current_user' | grep -qx tenantry_app"
check "make db-down stops it" make -s db-down
check "pg.sh status: not running" bash -c "scripts/pg.sh status .tenantry/pg | grep -q '^not running'"
check "psql no longer connects" bash -c "! scripts/pg.sh psql .tenantry/pg $port -c 'SELECT 1'"
check "make db-up again starts the same cluster" bash -c "make -s db-up PG_PORT=$port 2>&1 | grep -q 'data $target/data'"
check "the database survived the restart" bash -c "echo 'SELECT datname FROM pg_database WHERE datname = '\''tenantry'\'';' | make -s db-psql PG_PORT=$port | grep -q tenantry"
check "make clean-db removes the cluster and the link" make -s clean-db
check "nothing is left in /var/tmp" bash -c "! test -e '$target' && ! test -e '$(dirname "$target")' && ! test -L '$pg_dir'"

# --- A cluster out of reach is never moved; remove deletes only clusters -----------------
held=$repo/.tenantry/held
mkdir -p "$held/data"
echo 15 >"$held/data/PG_VERSION"
check "a cluster out of reach is refused, not moved" \
    bash -c "! scripts/pg.sh up '$held' $port 2>'$work/held.err' && grep -q 'cannot reach the cluster' '$work/held.err' && test -f '$held/data/PG_VERSION' && ! test -L '$held'"
check "pg.sh remove refuses a directory that is no cluster" \
    bash -c "! scripts/pg.sh remove '$repo/scripts' 2>/dev/null && test -x '$repo/scripts/pg.sh'"

# --- CITUS=1: the Citus dev cluster relocates the same way ---------------------------------
pg_config=$(command -v pg_config || ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1 || true)
libdir=$([[ -n "$pg_config" ]] && "$pg_config" --pkglibdir || echo /usr/lib/postgresql/15/lib)
if [[ "${TEST_CITUS:-}" != 1 && "${PG_CHECK_CITUS:-}" != 1 ]]; then
    log "skipped the Citus part (three more clusters): make test-citus runs it, or PG_CHECK_CITUS=1"
elif [[ -f "$libdir/citus.so" ]]; then
    w1=$(free_port) w2=$(free_port)
    check "pg.sh citus-up (make run CITUS=1) starts the Citus cluster" \
        scripts/pg.sh citus-up .tenantry/citus "$port" "$w1" "$w2"
    check ".tenantry/citus links to $citus_target, workers inside" \
        bash -c "test '$(readlink "$citus_dir" || true)' == '$citus_target' && test -f '$citus_target/worker-$w1/data/PG_VERSION'"
    check "make db-down stops the coordinator and the workers" make -s db-down
    check "make clean-db removes the Citus cluster" bash -c "make -s clean-db && ! test -e '$citus_target'"
else
    log "skipped the Citus part: citus is not installed"
fi

echo "pg-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
