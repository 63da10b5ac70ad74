#!/usr/bin/env bash
# The Tenantry roles and database on a fresh postgres container: run once by
# the official image's entrypoint from /docker-entrypoint-initdb.d/ (as the
# superuser over the local socket), with scripts/bootstrap-roles.sql mounted
# at /tenantry/bootstrap-roles.sql. compose.yaml mounts both.
#
#   TENANTRY_OWNER_PASSWORD  tenantry_owner's password (runs `tenantry migrate`)
#   TENANTRY_APP_PASSWORD    tenantry_app's password (the service)
#   TENANTRY_DB_NAME         the database (default tenantry)
#   TENANTRY_BOOTSTRAP_SQL   the SQL file (default /tenantry/bootstrap-roles.sql)
#
# libpq's PGHOST/PGPORT/PGUSER say where (the image's entrypoint sets PGUSER
# and the socket is its default); scripts/deploy-check.sh runs this very
# file against the test cluster.
set -euo pipefail
: "${TENANTRY_OWNER_PASSWORD:?set TENANTRY_OWNER_PASSWORD}" "${TENANTRY_APP_PASSWORD:?set TENANTRY_APP_PASSWORD}"
psql -X -q -v ON_ERROR_STOP=1 --dbname postgres \
    -v owner_password="$TENANTRY_OWNER_PASSWORD" \
    -v app_password="$TENANTRY_APP_PASSWORD" \
    -v dbname="${TENANTRY_DB_NAME:-tenantry}" \
    -f "${TENANTRY_BOOTSTRAP_SQL:-/tenantry/bootstrap-roles.sql}"
echo "tenantry: roles and database ${TENANTRY_DB_NAME:-tenantry} ready"
