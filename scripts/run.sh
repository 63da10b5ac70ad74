#!/usr/bin/env bash
# Run Tenantry locally (`make run`).
#
#   scripts/run.sh            build, migrate, serve
#   scripts/run.sh migrate    build, migrate, exit (`make migrate`)
#
# Database:
#   - If TENANTRY__DATABASE__URL is set, that server is used as-is (no local
#     cluster is started); TENANTRY__DATABASE__OWNER_URL must then be set too,
#     because migrations run as the owner role.
#   - Otherwise the dev cluster in .tenantry/pg is started on port
#     ${TENANTRY_PG_PORT:-54329} and both URLs are pointed at its "tenantry" db.
#   - The dev cluster is configured for this machine (memory, cores, the
#     pools of [database]; scripts/pg.sh, TENANTRY_PG_TUNE=1) on every start;
#     TENANTRY_PG_TUNE=0 keeps PostgreSQL's defaults.
#   - With CITUS=1 (`make run CITUS=1`), a local Citus cluster instead:
#     .tenantry/citus, the coordinator on the same port (so the CLI's default
#     configuration reaches it) and two workers on the next two ports;
#     `migrate` distributes the schema. Only one of the two dev clusters runs
#     at a time. Citus must be installed (../shared/citus/build.sh builds it
#     when present).
#
# The owner's URL goes to `tenantry migrate` only: it is removed from the
# environment before `tenantry serve`, which refuses to start holding it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"

mode=${1:-serve}
case "$mode" in
serve | migrate) ;;
*)
    echo "usage: $0 [serve|migrate]" >&2
    exit 2
    ;;
esac

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# Percent-encode a URL userinfo component (passwords may contain anything).
urlencode() {
    local LC_ALL=C s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
        [A-Za-z0-9._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

if [[ -n "${TENANTRY__DATABASE__URL:-}" ]]; then
    [[ -n "${TENANTRY__DATABASE__OWNER_URL:-}" ]] ||
        die "TENANTRY__DATABASE__URL is set, so no local cluster is used, but TENANTRY__DATABASE__OWNER_URL is not: migrations need the owner role's URL (postgres://tenantry_owner:PASSWORD@HOST:PORT/DB). Set it, or unset TENANTRY__DATABASE__URL to use the local dev cluster."
    echo "run.sh: using the database server from TENANTRY__DATABASE__URL; no local cluster started"
    owner_url=$TENANTRY__DATABASE__OWNER_URL
else
    db=${TENANTRY_DB_NAME:-tenantry}
    owner_pw=${TENANTRY_OWNER_PASSWORD:-tenantry-owner-dev}
    app_pw=${TENANTRY_APP_PASSWORD:-tenantry-app-dev}
    port=${TENANTRY_PG_PORT:-54329}
    if [[ "${CITUS:-0}" == 1 ]]; then
        [[ "$("$root/scripts/pg.sh" status "$root/.tenantry/pg")" != running* ]] ||
            die "the plain dev cluster (.tenantry/pg) is running on port $port; stop it first (make db-down), then make run CITUS=1"
        libdir=$( (pg_config --pkglibdir || /usr/lib/postgresql/15/bin/pg_config --pkglibdir) 2>/dev/null || true)
        if [[ ! -f "$libdir/citus.so" ]]; then
            [[ -x "$root/../shared/citus/build.sh" ]] ||
                die "CITUS=1 needs the citus extension: install Citus 13 for your PostgreSQL (https://docs.citusdata.com/en/stable/installation/)"
            "$root/../shared/citus/build.sh"
        fi
        TENANTRY_PG_TUNE=${TENANTRY_PG_TUNE:-1} \
            "$root/scripts/pg.sh" citus-up "$root/.tenantry/citus" "$port" $((port + 1)) $((port + 2))
    else
        [[ "$("$root/scripts/pg.sh" status "$root/.tenantry/citus")" != running* ]] ||
            die "the Citus dev cluster (.tenantry/citus) is running on port $port; stop it first (make db-down), or make run CITUS=1"
        TENANTRY_PG_TUNE=${TENANTRY_PG_TUNE:-1} "$root/scripts/pg.sh" up "$root/.tenantry/pg" "$port"
    fi
    TENANTRY__DATABASE__URL="postgres://tenantry_app:$(urlencode "$app_pw")@127.0.0.1:${port}/${db}"
    export TENANTRY__DATABASE__URL
    owner_url="postgres://tenantry_owner:$(urlencode "$owner_pw")@127.0.0.1:${port}/${db}"
fi
unset TENANTRY__DATABASE__OWNER_URL

cargo build -p tenantry
bin="${CARGO_TARGET_DIR:-$root/target}/debug/tenantry"
[[ -x "$bin" ]] || die "expected binary not found: $bin"

TENANTRY__DATABASE__OWNER_URL="$owner_url" "$bin" migrate

if [[ "$mode" == migrate ]]; then
    exit 0
fi

# A platform-admin token to sign in to the console with (12 h); the
# development keys are generated on first use, by this or by serve.
sign_in=$("$bin" token --admin --sub "${USER:-operator}@localhost" --ttl 12h 2>/dev/null || true)
cat <<EOF
Tenantry: http://127.0.0.1:${TENANTRY__SERVER__PORT:-8080}  (OpenAPI at /openapi.json)
  console:           http://127.0.0.1:${TENANTRY__SERVER__PORT:-8080}/console
  console sign-in:   ${sign_in:-(run: $bin token --admin --sub you@example.com --ttl 12h)}
  metrics:           http://${TENANTRY__METRICS__LISTEN:-127.0.0.1:9464}/metrics
  admin token:       $bin token --admin
  create a tenant:   $bin tenants create --slug acme --name "Acme Corp"
  tenant token:      $bin token --tenant <tenant id>
EOF
exec "$bin" serve
