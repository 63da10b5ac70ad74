-- An unforgeable tenant context. Until now any SQL running as the service's
-- role (an injected statement, say) could `SET LOCAL app.tenant_id` to any
-- tenant, or `app.platform_admin` to 'on', and read what RLS was meant to
-- hide. From here on a context counts only with its proof:
--
--   app.tenant_proof   = <key id>.<hex HMAC-SHA256(K, 'tenant:' || tenant id)>
--   app.platform_proof = <key id>.<hex HMAC-SHA256(K, 'platform')>
--
-- K is the context key. The service holds it in its configuration; the
-- database holds it in tenantry_private.context_keys, which the service's
-- role can neither read nor reach (no USAGE on the schema).
--
-- The policies do not recompute the HMAC (a SECURITY DEFINER call in every
-- policy of every statement cost 7-50 us a call, measured). Instead the
-- owner registers, for every context, the SHA-256 of its proof in
-- context_proofs, and a policy asks which context the presented proof's
-- hash names — and that it is the tenant app.tenant_id names: one index
-- lookup, once per statement (a scalar subquery, an InitPlan). The service's role may read context_proofs, but RLS shows it
-- only the rows whose hash its own presented proofs produce; what it could
-- learn of other rows (their hashes, say, by counting rows in EXPLAIN
-- ANALYZE) does not help it: presenting a proof means finding a SHA-256
-- preimage of an HMAC output. A context set without its proof, or with
-- another context's proof, is no context: zero rows, nothing written.
--
-- HMAC-SHA256 is computed from the built-in sha256(): the key is stored as
-- its two padded forms, K xor ipad and K xor opad (RFC 2104), so
--   HMAC(K, m) = sha256(outer_pad || sha256(inner_pad || m)).
-- `tenantry migrate` installs the configured key (database.context_key) and
-- registers every context under it; new tenants register themselves (the
-- trigger below).

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

-- The proof of `message` under key `key_id` (owner only).
CREATE FUNCTION tenantry_private.context_proof(key_id text, message text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id || '.' || pg_catalog.encode(pg_catalog.sha256(c.outer_pad || pg_catalog.sha256(
               c.inner_pad || pg_catalog.convert_to(message, 'UTF8'))), 'hex')
      FROM tenantry_private.context_keys c
     WHERE c.id = key_id
$$;
REVOKE ALL ON FUNCTION tenantry_private.context_proof(text, text) FROM PUBLIC;

-- Every context's proof, hashed: `tenant` names the tenant, NULL the
-- platform-admin context. (Not `tenant_id`: this is no tenant table.)
CREATE TABLE context_proofs (
    proof_hash  bytea PRIMARY KEY CHECK (octet_length(proof_hash) = 32),
    key_id      text  NOT NULL REFERENCES tenantry_private.context_keys (id) ON DELETE CASCADE,
    tenant      uuid
);
CREATE UNIQUE INDEX context_proofs_one_per_key ON context_proofs (key_id, tenant) NULLS NOT DISTINCT;
REVOKE ALL ON context_proofs FROM PUBLIC;
GRANT SELECT ON context_proofs TO tenantry_service;

-- The hash a presented proof would be registered under (inlined where it
-- is used: a plain SQL expression, no SECURITY DEFINER).
CREATE FUNCTION public.context_proof_hash(setting text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting(setting, true), 'UTF8'))
$$;
REVOKE ALL ON FUNCTION public.context_proof_hash(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.context_proof_hash(text) TO tenantry_service;

-- The service's role sees only the proofs it presents. Not FORCEd: the
-- owner, which registers proofs, reads and writes the whole table.
ALTER TABLE context_proofs ENABLE ROW LEVEL SECURITY;
CREATE POLICY presented_only ON context_proofs FOR SELECT
    USING (proof_hash = context_proof_hash('app.tenant_proof')
           OR proof_hash = context_proof_hash('app.platform_proof'));

-- The contexts as the policies see them, for diagnostics and the guard's
-- probes (the policies carry the same subqueries inline).
CREATE FUNCTION public.context_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT p.tenant FROM public.context_proofs p
     WHERE p.proof_hash = public.context_proof_hash('app.tenant_proof')
       AND p.tenant::text = pg_catalog.current_setting('app.tenant_id', true)
$$;
CREATE FUNCTION public.context_is_platform_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM public.context_proofs p
                    WHERE p.proof_hash = public.context_proof_hash('app.platform_proof')
                      AND p.tenant IS NULL)
$$;
REVOKE ALL ON FUNCTION public.context_tenant_id() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.context_is_platform_admin() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.context_tenant_id() TO tenantry_service;
GRANT EXECUTE ON FUNCTION public.context_is_platform_admin() TO tenantry_service;

-- Registers `tenant`'s proofs under every installed key (NULL: the
-- platform context). Owner only: the tenants trigger and `tenantry migrate`
-- call it; the service's role can write context_proofs no way at all.
CREATE FUNCTION public.context_register(tenant uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.context_proofs (proof_hash, key_id, tenant)
    SELECT pg_catalog.sha256(pg_catalog.convert_to(tenantry_private.context_proof(
               c.id, CASE WHEN tenant IS NULL THEN 'platform' ELSE 'tenant:' || tenant::text END), 'UTF8')),
           c.id, tenant
      FROM tenantry_private.context_keys c
    ON CONFLICT DO NOTHING
$$;
REVOKE ALL ON FUNCTION public.context_register(uuid) FROM PUBLIC;

-- A new tenant can be reached the moment it exists.
CREATE FUNCTION public.context_register_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM public.context_register(NEW.id);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.context_register_tenant() FROM PUBLIC;
CREATE TRIGGER tenants_register_context AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION public.context_register_tenant();

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
