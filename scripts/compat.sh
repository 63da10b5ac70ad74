#!/usr/bin/env bash
# The previous release's binary against this tree's schema (`make test-compat`;
# `make test` runs it after the suite).
#
# A rolling deploy migrates with the new release first, then replaces the
# replicas one at a time: until the last one is replaced, the previous
# release's binary serves the new schema, beside the new binary. This
# checks that it can (sql/README.md, the expand/contract rule):
#
# 1. finds the most recent tag v* older than HEAD (none: skipped, saying so),
# 2. builds that tag's `tenantry` once: `git archive` into
#    $CARGO_TARGET_DIR/compat/src, its own target dir
#    $CARGO_TARGET_DIR/compat/target (seeded from this tree's dependencies
#    the first time), the binary kept as
#    $CARGO_TARGET_DIR/compat/bin/tenantry-<tag>-<commit>: later runs build nothing,
# 3. starts a throwaway cluster, migrates it with THIS tree's binary, and
#    applies tests/fixtures/later-release-expand.sql (a stand-in for a later
#    expand-only migration: new columns, index, tenant table with its
#    policy, function),
# 4. starts the old binary's `serve` (its isolation guard runs first) and
#    checks /readyz 200 and a walk-through: the admin plane creates a tenant,
#    the tenant creates a cluster and an instance and lists them, health and
#    export; then this tree's binary serves beside it (a half-rolled fleet):
#    each reads what the other wrote and accepts the other's tokens,
# 5. records a migration that neither binary knows (a later release's):
#    this tree's binary stays ready, and so must the old one if it has
#    tolerant readiness; a release from before it (v0.13.0) demands the
#    exact schema, and is checked to answer 503, as it does,
# 6. SIGTERMs both and checks each exits 0.
#
# Needs what `make test` needs (PostgreSQL server binaries, curl, python3).
# Runs its own cluster in /tmp/tenantry-compat.XXXXXX and removes it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
pg="$root/scripts/pg.sh"

log() { echo "compat.sh: $*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

# No inherited app config may point the binaries at a real database.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep -E '^TENANTRY__' || true)
unset TENANTRY_ENV TENANTRY_CONFIG_DIR
unset DATABASE_URL PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
    PGSERVICE PGSERVICEFILE PGOPTIONS 2>/dev/null || true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
for tool in curl python3 git; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

# --- 1. The previous release ---------------------------------------------------
if ! git rev-parse --git-dir >/dev/null 2>&1; then
    log "skipped: not a git checkout, so no previous release to run"
    exit 0
fi
head=$(git rev-parse HEAD)
tag=""
while IFS= read -r candidate; do
    if [[ -n "$candidate" && $(git rev-parse "$candidate^{commit}") != "$head" ]]; then
        tag=$candidate
        break
    fi
done < <(git tag --merged HEAD --list 'v*' --sort=-v:refname)
if [[ -z "$tag" ]]; then
    log "skipped: no release tag v* older than HEAD (git tag -a vX.Y.Z marks a release)"
    exit 0
fi
commit=$(git rev-parse "$tag^{commit}")
log "previous release: $tag (${commit:0:12})"

# --- 2. Its binary, built once ----------------------------------------------------
compat="$CARGO_TARGET_DIR/compat"
old_bin="$compat/bin/tenantry-$tag-${commit:0:12}"
mkdir -p "$compat/bin"
exec 9>"$compat/.lock"
flock 9 # one build at a time per target dir
if [[ ! -x "$old_bin" ]]; then
    log "building $tag's tenantry (once; kept as $old_bin)"
    if [[ ! -d "$compat/target/debug/deps" && -d "$CARGO_TARGET_DIR/debug/deps" ]]; then
        # Most dependencies are the same versions: start from this tree's
        # compiled ones (cargo rebuilds whatever differs).
        log "seeding $compat/target from $CARGO_TARGET_DIR/debug"
        mkdir -p "$compat/target/debug"
        for dir in deps build .fingerprint; do
            [[ -d "$CARGO_TARGET_DIR/debug/$dir" ]] && cp -a "$CARGO_TARGET_DIR/debug/$dir" "$compat/target/debug/"
        done
        # Never this tree's own crates: cargo hashes a workspace crate by its
        # path within the workspace, so the old tree's would match them.
        rm -rf "$compat/target/debug/.fingerprint"/tenantry* "$compat/target/debug/build"/tenantry* \
            "$compat/target/debug/deps"/libtenantry* "$compat/target/debug/deps"/tenantry*
    fi
    # A fixed path, so the dependencies stay fresh from one build to the
    # next; extracted with the current time (tar -m): with the commit's
    # times, an older release's sources would look older than the last
    # build's fingerprints, and cargo would reuse that build.
    rm -rf "$compat/src"
    mkdir -p "$compat/src"
    git archive "$commit" | tar -x -m -C "$compat/src"
    (cd "$compat/src" && CARGO_TARGET_DIR="$compat/target" cargo build --locked -p tenantry)
    cp "$compat/target/debug/tenantry" "$old_bin.tmp"
    mv "$old_bin.tmp" "$old_bin"
    rm -rf "$compat/src"
fi
exec 9>&-
# Tolerant readiness (every known migration, unchanged, plus newer ones)
# came with this script; a release before it demands the exact schema.
old_tolerant=0
if git show "$commit:crates/db/src/migrate.rs" 2>/dev/null | grep -q 'Newer {'; then
    old_tolerant=1
fi

new_bin="${TENANTRY_BIN:-$CARGO_TARGET_DIR/debug/tenantry}"
if [[ -z "${TENANTRY_BIN:-}" ]]; then
    log "building this tree's tenantry"
    cargo build -p tenantry
fi
[[ -x "$new_bin" ]] || die "this tree's binary not found: $new_bin"
if cmp -s "$old_bin" "$new_bin"; then
    die "$old_bin is this tree's binary, not $tag's: delete it and run again"
fi

# --- 3. A cluster, migrated by this tree ------------------------------------------
rand_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

tmp=$(mktemp -d /tmp/tenantry-compat.XXXXXX)
pids=()
# shellcheck disable=SC2317 # invoked via trap
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ -f "$tmp/data/PG_VERSION" ]]; then
        "$pg" down "$tmp" >/dev/null 2>&1 || log "warning: could not stop the cluster in $tmp"
    fi
    if [[ $rc -ne 0 ]]; then
        for f in "$tmp"/*.log; do
            [[ -f "$f" ]] && { log "--- $(basename "$f") (last 30 lines)"; tail -30 "$f" >&2; }
        done
    fi
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
log "starting a cluster in $tmp on port $port"
PG_FAST=1 TENANTRY_DB_NAME=tenantry TENANTRY_OWNER_PASSWORD="$owner_pw" TENANTRY_APP_PASSWORD="$app_pw" \
    "$pg" up "$tmp" "$port" >/dev/null

mkdir -p "$tmp/keys"
export TENANTRY__DATABASE__URL="postgres://tenantry_app:${app_pw}@127.0.0.1:${port}/tenantry"
TENANTRY__DATABASE__CONTEXT_KEY=$(rand_hex)$(rand_hex)
export TENANTRY__DATABASE__CONTEXT_KEY
export TENANTRY__AUTH__SIGNING_KEY_FILE="$tmp/keys/signing-key.pem"
export TENANTRY__AUTH__API_KEY_SECRET_FILE="$tmp/keys/api-key-secret"
export TENANTRY__AUTH__GENERATE_MISSING_KEYS=true
export TENANTRY__METRICS__LISTEN=""
export TENANTRY__RETENTION__ENABLED=false
export TENANTRY__QUOTAS__RECONCILE_INTERVAL=0s
export TENANTRY__SERVER__WORKERS=2
export TENANTRY__SERVER__SHUTDOWN_TIMEOUT=10s
export TENANTRY__LOG__LEVEL=warn

log "migrating with this tree's binary"
TENANTRY__DATABASE__OWNER_URL="postgres://tenantry_owner:${owner_pw}@127.0.0.1:${port}/tenantry" \
    "$new_bin" migrate >"$tmp/migrate.log" 2>&1 || die "migrate: $(tail -5 "$tmp/migrate.log")"
as_owner() { # SQL on stdin, as the owner, in one transaction
    { echo "SET ROLE tenantry_owner;"; cat; } |
        "$pg" psql "$tmp" "$port" -d tenantry -q -v ON_ERROR_STOP=1 -1 -f - >/dev/null
}
log "applying tests/fixtures/later-release-expand.sql (a later release's expand-only migration)"
as_owner <tests/fixtures/later-release-expand.sql || die "the expand-only stand-in did not apply"
# Both binaries sign with the same key: make it before either serves.
"$new_bin" token --admin >/dev/null 2>"$tmp/token.log" || die "token: $(cat "$tmp/token.log")"

# --- Helpers ------------------------------------------------------------------------
BODY=""
# call EXPECTED METHOD URL TOKEN [JSON]: the response body in $BODY.
call() {
    local expect=$1 method=$2 url=$3 token=$4 body=${5:-} code
    local args=(-sS -o "$tmp/body" -w '%{http_code}' -X "$method" --max-time 20 "$url")
    [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
    code=$(curl "${args[@]}" 2>>"$tmp/curl.log") || code=000
    BODY=$(cat "$tmp/body" 2>/dev/null || true)
    [[ "$code" == "$expect" ]] || die "$method $url: expected $expect, got $code: ${BODY:0:400}"
}
# field NAME: a top-level field of $BODY.
field() { python3 -c 'import sys,json; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$BODY"; }
# contains TEXT: $BODY has it.
contains() { [[ "$BODY" == *"$1"* ]] || die "expected $1 in: ${BODY:0:400}"; }

# start NAME BINARY [VAR=VALUE...]: `serve` on a free port; its URL in $URL.
URL=""
declare -A PID
start() {
    local name=$1 bin=$2 port
    shift 2
    port=$(free_port)
    env "$@" TENANTRY__SERVER__PORT="$port" "$bin" serve >"$tmp/$name.log" 2>&1 &
    PID[$name]=$!
    pids+=("$!")
    URL="http://127.0.0.1:$port"
    local deadline=$((SECONDS + 30)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/healthz" 2>/dev/null) || code=000
        [[ "$code" == 200 ]] && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited while starting (its isolation guard or settings refused?): $(tail -5 "$tmp/$name.log")"
        ((SECONDS < deadline)) || die "$name did not come up in 30 s"
        sleep 0.1
    done
}
# stop NAME: SIGTERM, and exit 0 within 30 s.
stop() {
    local name=$1 pid=${PID[$1]} rc=0 i
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "$name still running 30 s after SIGTERM"
    wait "$pid" || rc=$?
    [[ $rc -eq 0 ]] || die "$name exited $rc after SIGTERM"
}

# --- 3b. A contract step since that release ----------------------------------------
# A migration with a contract.md (sql/README.md) takes away what the
# previous release needs, or adds what its isolation guard cannot judge:
# that release must not serve past it, so the deploy stops its replicas
# first (README, Rolling deploys). Then what matters is that it REFUSES
# the schema at start, clearly, instead of serving it half-right.
contracts=""
for marker in sql/*/contract.md; do
    git cat-file -e "$commit:$marker" 2>/dev/null || contracts+="$marker "
done
if [[ -n "$contracts" ]]; then
    log "contract steps since $tag: $contracts"
    port_old=$(free_port)
    rc=0
    timeout 60 env TENANTRY__SERVER__PORT="$port_old" "$old_bin" serve >"$tmp/old.log" 2>&1 || rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || die "$tag did not refuse a schema past its contract step (exit $rc): $(tail -5 "$tmp/old.log")"
    grep -q 'refusing to start' "$tmp/old.log" || die "$tag exited $rc without saying why: $(tail -5 "$tmp/old.log")"
    log "$tag refuses this tree's schema at start, as the contract step says: $(grep -m1 'refusing to start' "$tmp/old.log" | cut -c1-200)"
    start new "$new_bin" TENANTRY__SERVER__SHUTDOWN_DRAIN=1s
    call 200 GET "$URL/readyz" ""
    stop new
    log "ok: this tree serves its schema; $tag is refused past $contracts"
    exit 0
fi

# --- 4. The old binary serves the new schema ----------------------------------------
log "starting $tag's serve against it"
start old "$old_bin"
OLD=$URL
call 200 GET "$OLD/readyz" ""
contains '"ready"'

A=$("$old_bin" token --admin)
call 201 POST "$OLD/v1/admin/tenants" "$A" '{"slug":"acme","name":"Acme Corp","quotas":{"max_instances":50}}'
ACME=$(field id)
T=$("$old_bin" token --tenant "$ACME")
call 201 POST "$OLD/v1/clusters" "$T" '{"name":"main","region":"eu-west-1"}'
CLUSTER=$(field id)
call 201 POST "$OLD/v1/instances" "$T" "{\"name\":\"web-1\",\"cluster_id\":\"$CLUSTER\",\"cpu_cores\":2,\"memory_gb\":4}"
call 200 GET "$OLD/v1/instances" "$T"
contains '"web-1"'
call 200 GET "$OLD/v1/admin/tenants/acme/health" "$A"
call 200 GET "$OLD/v1/admin/tenants/acme/export" "$A"
contains '"end":true'
log "$tag: ready, and the walk-through works on the expanded schema"

log "starting this tree's serve beside it (a half-rolled fleet)"
start new "$new_bin" TENANTRY__SERVER__SHUTDOWN_DRAIN=1s
NEW=$URL
call 200 GET "$NEW/readyz" ""
# Each reads what the other wrote, with the other's tokens.
call 200 GET "$NEW/v1/instances" "$T"
contains '"web-1"'
T_NEW=$("$new_bin" token --tenant "$ACME")
call 201 POST "$NEW/v1/instances" "$T_NEW" "{\"name\":\"web-2\",\"cluster_id\":\"$CLUSTER\",\"cpu_cores\":1,\"memory_gb\":1}"
call 200 GET "$OLD/v1/instances" "$T_NEW"
contains '"web-2"'
call 200 GET "$OLD/v1/quotas" "$T"
contains '"instances":2'

# --- 5. A migration neither knows -------------------------------------------------------
as_owner <<<"INSERT INTO tenantry_migrations (version, checksum) VALUES ('9000_later_release_expand', 'a later release''s');" ||
    die "could not record the later release's migration"
call 200 GET "$NEW/readyz" ""
if [[ $old_tolerant == 1 ]]; then
    call 200 GET "$OLD/readyz" ""
    log "$tag stays ready with a migration it does not know"
else
    call 503 GET "$OLD/readyz" ""
    log "note: $tag predates tolerant readiness: it answers 503 to a migration it does not know (as expected); releases from this one on stay ready"
fi
call 200 GET "$OLD/v1/instances" "$T"

# --- 6. Both stop cleanly ---------------------------------------------------------------
stop old
stop new
log "ok: $tag serves this tree's schema"
