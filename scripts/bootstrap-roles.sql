-- Bootstrap the Tenantry roles and database on a local cluster.
--
-- Run as a superuser by scripts/pg.sh with psql variables:
--   psql -v ON_ERROR_STOP=1 -v owner_password=... -v app_password=... -v dbname=... -f bootstrap-roles.sql
--
-- Idempotent: creates what is missing and re-asserts attributes, passwords,
-- memberships, ownership and grants on every run, so a drifted role is corrected.
--
-- psql variables are NOT interpolated inside DO $$ ... $$ bodies, so statements
-- that need them are either plain SQL (:'var' / :"var") or built with format()
-- and run with \gexec.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- tenantry_owner: owns the schema objects and runs the migrations. Not a
-- superuser and cannot bypass RLS (FORCE ROW LEVEL SECURITY applies to it);
-- on a Citus cluster `pg.sh citus-up` then lets it bypass RLS, which Citus's
-- shard copies need (dedicated placement, sql/citus.sql).
SELECT format('CREATE ROLE tenantry_owner LOGIN PASSWORD %L', :'owner_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_owner')
\gexec
ALTER ROLE tenantry_owner WITH LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEROLE
    NOCREATEDB NOREPLICATION CONNECTION LIMIT -1 PASSWORD :'owner_password';

-- tenantry_service: NOLOGIN group role; the migrations grant table/sequence/
-- function privileges to it (never to tenantry_app directly).
SELECT 'CREATE ROLE tenantry_service NOLOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_service')
\gexec
ALTER ROLE tenantry_service WITH NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE
    NOCREATEDB NOREPLICATION PASSWORD NULL;

-- tenantry_app: what the running service logs in as. Owns nothing; gets its
-- privileges only by (inherited) membership in tenantry_service; subject to RLS.
SELECT format('CREATE ROLE tenantry_app LOGIN PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app')
\gexec
ALTER ROLE tenantry_app WITH LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEROLE
    NOCREATEDB NOREPLICATION CONNECTION LIMIT -1 PASSWORD :'app_password';

-- Memberships: tenantry_app is in tenantry_service and nothing else;
-- tenantry_service is in nothing. Anything else is drift and is revoked.
SELECT format('REVOKE %I FROM %I', g.rolname, m.rolname)
FROM pg_auth_members am
JOIN pg_roles g ON g.oid = am.roleid
JOIN pg_roles m ON m.oid = am.member
WHERE (m.rolname = 'tenantry_app' AND g.rolname <> 'tenantry_service')
   OR m.rolname = 'tenantry_service'
\gexec
SELECT 'GRANT tenantry_service TO tenantry_app'
WHERE NOT EXISTS (
    SELECT 1
    FROM pg_auth_members am
    JOIN pg_roles g ON g.oid = am.roleid
    JOIN pg_roles m ON m.oid = am.member
    WHERE g.rolname = 'tenantry_service' AND m.rolname = 'tenantry_app'
)
\gexec

-- The database, owned by tenantry_owner.
SELECT format('CREATE DATABASE %I OWNER tenantry_owner TEMPLATE template0 ENCODING %L',
              :'dbname', 'UTF8')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
\gexec
ALTER DATABASE :"dbname" OWNER TO tenantry_owner;

-- Database-level privileges: only our roles may connect.
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO tenantry_owner;
GRANT CONNECT ON DATABASE :"dbname" TO tenantry_service;

\connect :"dbname"
SET client_min_messages = warning;

-- Schema public: owned by tenantry_owner (migrations create objects here);
-- tenantry_service may only look up objects in it, not create any.
ALTER SCHEMA public OWNER TO tenantry_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO tenantry_owner;
GRANT USAGE ON SCHEMA public TO tenantry_service;

-- Session-level advisory locks in the two-int4 key space — the tenants'
-- lifecycle locks (sql/0005) — are PostgreSQL's own functions, executable
-- by PUBLIC: SQL running as the service's role could take one and hold it
-- past its transaction, on a pooled connection, to stall a tenant's
-- suspension for good. Only the superuser can take them back; the
-- transaction-level forms, which the service uses, stay. The isolation
-- guard checks this.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(integer, integer),
                          pg_catalog.pg_advisory_lock_shared(integer, integer),
                          pg_catalog.pg_try_advisory_lock(integer, integer),
                          pg_catalog.pg_try_advisory_lock_shared(integer, integer)
    FROM PUBLIC;

-- Bound parameters of the service's statements carry context proofs; keep
-- them out of the server log whatever log_statement says.
ALTER ROLE tenantry_app SET log_parameter_max_length = 0;
ALTER ROLE tenantry_app SET log_parameter_max_length_on_error = 0;
