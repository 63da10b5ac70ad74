-- An unforgeable tenant context. Until now any SQL running as the service's
-- role (an injected statement, say) could `SET LOCAL app.tenant_id` to any
-- tenant, or `app.platform_admin` to 'on', and read what RLS was meant to
-- hide. From here on a context counts only with its proof:
--
--   app.tenant_proof   = <key id>.<hex HMAC-SHA256(K, 'tenant:' || app.tenant_id)>
--   app.platform_proof = <key id>.<hex HMAC-SHA256(K, 'platform')>
--
-- K is the context key. The service holds it in its configuration; the
-- database holds it in tenantry_private.context_keys, which the service's
-- role can neither read nor reach (no USAGE on the schema). The policies ask
-- context_tenant_id() / context_is_platform_admin(), two SECURITY DEFINER
-- functions of the owner that recompute the HMAC with K, once per statement
-- (every policy wraps them in a scalar subquery: an InitPlan). A context set
-- without its proof, or with another context's proof, is no context: zero
-- rows, nothing written — the same as no context at all.
--
-- HMAC-SHA256 is computed from the built-in sha256(): the key is stored as
-- its two padded forms, K xor ipad and K xor opad (RFC 2104), so
--   HMAC(K, m) = sha256(outer_pad || sha256(inner_pad || m)).
-- `tenantry migrate` installs the configured key (database.context_key).

CREATE SCHEMA tenantry_private;
REVOKE ALL ON SCHEMA tenantry_private FROM PUBLIC;

CREATE TABLE tenantry_private.context_keys (
    -- A fingerprint of the key, not the key: which key a proof was made with.
    id            text        PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    inner_pad     bytea       NOT NULL CHECK (octet_length(inner_pad) = 64),
    outer_pad     bytea       NOT NULL CHECK (octet_length(outer_pad) = 64),
    installed_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry_private.context_keys FROM PUBLIC;

-- The verified tenant of this transaction, or NULL. PL/pgSQL rather than
-- SQL: a SECURITY DEFINER SQL function is never inlined and is planned
-- afresh in every statement (~50 us a call, measured), while PL/pgSQL keeps
-- its plans for the session (~7 us a call, the key lookup and two sha256).
-- The search_path is pinned and every name qualified: nothing the caller
-- puts on its path changes what this function computes.
CREATE FUNCTION public.context_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant text := NULLIF(pg_catalog.current_setting('app.tenant_id', true), '');
    proof text := pg_catalog.current_setting('app.tenant_proof', true);
    k record;
BEGIN
    IF tenant IS NULL OR proof IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT c.inner_pad, c.outer_pad INTO k
      FROM tenantry_private.context_keys c
     WHERE c.id = pg_catalog.split_part(proof, '.', 1);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.encode(pg_catalog.sha256(k.outer_pad || pg_catalog.sha256(
           k.inner_pad || pg_catalog.convert_to('tenant:' || tenant, 'UTF8'))), 'hex')
       = pg_catalog.split_part(proof, '.', 2) THEN
        RETURN tenant::uuid;
    END IF;
    RETURN NULL;
END
$$;

-- Whether this transaction holds a verified platform-admin context.
CREATE FUNCTION public.context_is_platform_admin() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    proof text := pg_catalog.current_setting('app.platform_proof', true);
    k record;
BEGIN
    IF proof IS NULL THEN
        RETURN false;
    END IF;
    SELECT c.inner_pad, c.outer_pad INTO k
      FROM tenantry_private.context_keys c
     WHERE c.id = pg_catalog.split_part(proof, '.', 1);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN pg_catalog.encode(pg_catalog.sha256(k.outer_pad || pg_catalog.sha256(
               k.inner_pad || pg_catalog.convert_to('platform', 'UTF8'))), 'hex')
           = pg_catalog.split_part(proof, '.', 2);
END
$$;

REVOKE ALL ON FUNCTION public.context_tenant_id() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.context_is_platform_admin() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.context_tenant_id() TO tenantry_service;
GRANT EXECUTE ON FUNCTION public.context_is_platform_admin() TO tenantry_service;

-- The setters now carry the proof. They verify nothing (the policies do, on
-- every statement); they only place both values transaction-locally, with
-- SET LOCAL (which Citus propagates; set_config does not).
DROP FUNCTION set_tenant_context(uuid);
DROP FUNCTION set_platform_admin_context();

CREATE FUNCTION set_tenant_context(tenant uuid, proof text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF tenant IS NULL OR proof IS NULL THEN
        RAISE EXCEPTION 'tenant context and its proof must not be null';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL app.tenant_id = %L', tenant);
    EXECUTE pg_catalog.format('SET LOCAL app.tenant_proof = %L', proof);
END
$$;

CREATE FUNCTION set_platform_admin_context(proof text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF proof IS NULL THEN
        RAISE EXCEPTION 'platform context proof must not be null';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL app.platform_proof = %L', proof);
END
$$;

REVOKE ALL ON FUNCTION set_tenant_context(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_platform_admin_context(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_tenant_context(uuid, text) TO tenantry_service;
GRANT EXECUTE ON FUNCTION set_platform_admin_context(text) TO tenantry_service;

-- The tenant's lifecycle lock (issue #12): writes hold it shared for their
-- whole transaction, a lifecycle change takes it exclusively before its
-- UPDATE. PostgreSQL's lock manager queues fairly — once the lifecycle
-- change waits, new writes queue behind it — so a flood of writes can no
-- longer starve a suspension (a row share lock could: new share lockers of
-- a row never wait for a queued updater). Keyed on all 128 bits of the id,
-- folded to the two int4 halves of an advisory-lock key (the two-int4 form
-- is a key space of its own, apart from the int8 keys of the migrations and
-- the purge).
CREATE FUNCTION tenant_lock_key(tenant uuid, OUT hi integer, OUT lo integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT (('x' || pg_catalog.encode(pg_catalog.substr(b, 1, 4), 'hex'))::bit(32)
            # ('x' || pg_catalog.encode(pg_catalog.substr(b, 9, 4), 'hex'))::bit(32))::integer,
           (('x' || pg_catalog.encode(pg_catalog.substr(b, 5, 4), 'hex'))::bit(32)
            # ('x' || pg_catalog.encode(pg_catalog.substr(b, 13, 4), 'hex'))::bit(32))::integer
      FROM (SELECT pg_catalog.uuid_send(tenant) AS b) s
$$;

-- The context for a unit of tenant work that writes: as set_tenant_context,
-- and the tenant's lifecycle lock, shared, until the transaction ends. The
-- gate's status read comes in the NEXT statement, so it sees any lifecycle
-- change that committed while this waited.
CREATE FUNCTION set_tenant_write_context(tenant uuid, proof text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_tenant_context(tenant, proof);
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(k.hi, k.lo) FROM tenant_lock_key(tenant) k;
END
$$;

-- Taken by a lifecycle change (platform context) before it updates the
-- tenant's status: waits for the writes in flight, holds off new ones.
CREATE FUNCTION lock_tenant_lifecycle(tenant uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(k.hi, k.lo) FROM tenant_lock_key(tenant) k;
END
$$;

REVOKE ALL ON FUNCTION tenant_lock_key(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_tenant_write_context(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION lock_tenant_lifecycle(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lock_key(uuid) TO tenantry_service;
GRANT EXECUTE ON FUNCTION set_tenant_write_context(uuid, text) TO tenantry_service;
GRANT EXECUTE ON FUNCTION lock_tenant_lifecycle(uuid) TO tenantry_service;
