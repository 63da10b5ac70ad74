-- Citus placement: run by `tenantry migrate`, after the migrations and before
-- the policy files, whenever the database has the citus extension. It is
-- idempotent (every step checks what is already in place) and runs in the
-- migration's transaction, so a schema is never left half-distributed.
--
-- Where each table lives, and why, is in ARCHITECTURE.md ("Citus"):
--   reference (a copy on every node): tenants, context_proofs,
--       tenantry_private.context_keys — read by every request and by the
--       policies on every shard, written rarely;
--   distributed by tenant_id, all co-located (one tenant, one shard):
--       tenant_quotas, tenant_usage, users, api_keys, clusters, instances,
--       events — a tenant's request or provisioning transaction stays on
--       one shard;
--   on the coordinator only (Citus local tables): audit_events and
--       retention_runs — append-mostly control-plane logs read across
--       tenants, with platform entries that have no tenant.
--
-- The shard count of a new co-location group comes from the setting
-- tenantry.shard_count, which migrate sets from database.citus_shard_count.

-- 1. The proven context without a subquery. Citus refuses a policy with a
--    subquery on any of its tables, so the registry lookup of sql/0005
--    cannot run on a shard. Instead each node checks the proof itself: the
--    HMAC of the context under the installed key, which is a reference
--    table (so every node, a worker added later included, has it). These
--    two are SECURITY DEFINER (the key stays out of the service role's
--    reach) with a pinned search_path; the isolation guard allows exactly
--    them. Reading the reference table from inside a query on a shard is a
--    "nested distributed execution", which Citus refuses by default because
--    a distributed table's shard may move mid-query; a reference table is on
--    every node and never moves, so these functions, and only they, allow it.
CREATE OR REPLACE FUNCTION public.context_tenant_verified() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET citus.allow_nested_distributed_execution = on
AS $$
    SELECT pg_catalog.current_setting('app.tenant_id', true)::uuid
      FROM tenantry_private.context_keys c
     WHERE c.id = pg_catalog.split_part(pg_catalog.current_setting('app.tenant_proof', true), '.', 1)
       AND c.id || '.' || pg_catalog.encode(pg_catalog.sha256(c.outer_pad || pg_catalog.sha256(
               c.inner_pad || pg_catalog.convert_to(
                   'tenant:' || pg_catalog.current_setting('app.tenant_id', true), 'UTF8'))), 'hex')
           = pg_catalog.current_setting('app.tenant_proof', true)
$$;
CREATE OR REPLACE FUNCTION public.context_platform_verified() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET citus.allow_nested_distributed_execution = on
AS $$
    SELECT EXISTS (
        SELECT 1 FROM tenantry_private.context_keys c
         WHERE c.id = pg_catalog.split_part(pg_catalog.current_setting('app.platform_proof', true), '.', 1)
           AND c.id || '.' || pg_catalog.encode(pg_catalog.sha256(c.outer_pad || pg_catalog.sha256(
                   c.inner_pad || pg_catalog.convert_to('platform', 'UTF8'))), 'hex')
               = pg_catalog.current_setting('app.platform_proof', true))
$$;
REVOKE ALL ON FUNCTION public.context_tenant_verified() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.context_platform_verified() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.context_tenant_verified() TO tenantry_service;
GRANT EXECUTE ON FUNCTION public.context_platform_verified() TO tenantry_service;

-- The diagnostics of sql/0005 answer as the policies do.
CREATE OR REPLACE FUNCTION public.context_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT public.context_tenant_verified() $$;
CREATE OR REPLACE FUNCTION public.context_is_platform_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT public.context_platform_verified() $$;

-- 2. Citus also refuses a subquery in a policy on a table it converts
--    (distributing a table converts every table its foreign keys reach):
--    drop the plain-PostgreSQL policies first. The policy files put them
--    back right after, in their Citus form, in this same transaction.
--    Registration (context_proofs) is not used on Citus: no trigger.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT policyname, schemaname, tablename FROM pg_catalog.pg_policies
         WHERE schemaname = 'public'
           AND (coalesce(qual, '') ILIKE '%select%' OR coalesce(with_check, '') ILIKE '%select%')
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %I.%I', p.policyname, p.schemaname, p.tablename);
    END LOOP;
    -- (Citus refuses even DROP TRIGGER IF EXISTS on a reference table.)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                WHERE tgrelid = 'public.tenants'::regclass AND tgname = 'tenants_register_context') THEN
        DROP TRIGGER tenants_register_context ON public.tenants;
    END IF;
END
$$;

-- 3. Placement, table by table, skipping what is already placed.
--    A foreign key between two tenant tables (instances -> clusters) cannot
--    exist while one side is distributed and the other not yet: such keys
--    are set aside while the tables are distributed, then put back as they
--    were (they include tenant_id, as Citus requires).
DO $$
DECLARE
    shards integer := coalesce(nullif(pg_catalog.current_setting('tenantry.shard_count', true), '')::integer, 32);
    tenant_tables text[] := ARRAY['public.tenant_quotas', 'public.tenant_usage', 'public.users',
                                  'public.api_keys', 'public.clusters', 'public.instances',
                                  'public.events'];
    t text;
    fk record;
    set_aside text[] := '{}';
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS rel, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
          FROM pg_catalog.pg_constraint c
         WHERE c.contype = 'f'
           AND c.conrelid::regclass::text = ANY (SELECT pg_catalog.split_part(x, '.', 2) FROM unnest(tenant_tables) x)
           AND c.confrelid::regclass::text = ANY (SELECT pg_catalog.split_part(x, '.', 2) FROM unnest(tenant_tables) x)
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d
                            WHERE d.logicalrelid IN (c.conrelid, c.confrelid) AND d.partmethod = 'h')
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
        set_aside := set_aside || pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.rel, fk.conname, fk.def);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['tenantry_private.context_keys', 'public.context_proofs', 'public.tenants'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass
                                                     AND partmethod = 'n' AND repmodel = 't') THEN
            PERFORM create_reference_table(t::regclass);
        END IF;
    END LOOP;
    -- The first distributed table founds the co-location group.
    FOREACH t IN ARRAY tenant_tables LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass
                                                     AND partmethod = 'h') THEN
            IF t = 'public.tenant_quotas' THEN
                PERFORM create_distributed_table(t::regclass, 'tenant_id', shard_count => shards,
                                                 colocate_with => 'none');
            ELSE
                PERFORM create_distributed_table(t::regclass, 'tenant_id',
                                                 colocate_with => 'public.tenant_quotas');
            END IF;
        END IF;
    END LOOP;
    FOREACH t IN ARRAY set_aside LOOP
        EXECUTE t;
    END LOOP;
    -- Also marks an automatic conversion (a foreign key to a reference
    -- table made it) as chosen, which Citus would otherwise undo when the
    -- foreign key went away.
    FOREACH t IN ARRAY ARRAY['public.audit_events', 'public.retention_runs'] LOOP
        PERFORM citus_add_local_table_to_metadata(t::regclass);
    END LOOP;
END
$$;
