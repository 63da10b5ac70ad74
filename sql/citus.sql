-- Citus placement: run by `tenantry migrate`, after the migrations and before
-- the policy files, whenever the database has the citus extension. It is
-- idempotent (every step checks what is already in place) and runs in the
-- migration's transaction, so a schema is never left half-distributed.
--
-- Where each table lives, and why, is in ARCHITECTURE.md ("Citus"):
--   reference (a copy on every node): tenants, context_proofs,
--       tenantry_private.context_keys — read by every request and by the
--       policies on every shard, written rarely; accounts (sql/0008), which
--       tenants references (a reference table may reference only another
--       one), so it is placed before tenants; domains — the global claim
--       on a custom host name (unique across tenants, which a distributed
--       table cannot enforce), read by routing, written rarely; plans, read beside the
--       registry;
--   distributed by tenant_id, all co-located (one tenant, one shard):
--       tenant_quotas, tenant_usage, users, api_keys, clusters, instances,
--       events, members, idempotency_keys, tenant_settings, usage_history (sql/0015),
--       webhook_endpoints, webhook_deliveries (sql/0016) — a tenant's request or provisioning transaction stays on
--       one shard;
--   on the coordinator only (Citus local tables): audit_events,
--       retention_runs, admin_idempotency_keys and console_sessions — append-mostly control-plane logs read across
--       tenants, with platform entries that have no tenant; account_quotas
--       and account_usage (sql/0008) — one row per account, updated by the
--       transactions of all its tenants (whatever their shard), so not
--       distributable by tenant_id, and too hot for a reference table (every
--       charge would be a write on every node). Their tenant policies call
--       context_account_id(), which reads the tenants reference table's
--       placement on the coordinator (below).
--       platform_webhook_endpoints and platform_webhook_deliveries (sql/0016)
--       — the platform webhooks and their outbox, claimed with FOR UPDATE
--       SKIP LOCKED across tenants.
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

-- The account of the proven tenant context (sql/0008), for the account
-- tables' policies: on Citus it reads the registry (a reference table) from
-- inside a query on a Citus local table, a nested execution Citus refuses by
-- default; a reference table never moves, so it is allowed here. Not a
-- definer: it reads under the caller's RLS.
CREATE OR REPLACE FUNCTION public.context_account_id() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET citus.allow_nested_distributed_execution = on
AS $$ SELECT t.account_id FROM public.tenants t WHERE t.id = public.context_tenant_verified() $$;

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
                                  'public.events', 'public.members', 'public.idempotency_keys',
                                  'public.tenant_settings', 'public.webhook_endpoints',
                                  'public.webhook_deliveries', 'public.usage_history'];
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

    FOREACH t IN ARRAY ARRAY['tenantry_private.context_keys', 'public.context_proofs', 'public.accounts',
                             'public.plans', 'public.tenants', 'public.domains'] LOOP
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
    FOREACH t IN ARRAY ARRAY['public.audit_events', 'public.retention_runs',
                             'public.admin_idempotency_keys', 'public.console_sessions',
                             'public.account_quotas',
                             'public.account_usage'] LOOP
        PERFORM citus_add_local_table_to_metadata(t::regclass);
    END LOOP;
    -- The platform webhooks' outbox and its endpoints (sql/0016), joined
    -- by a foreign key: added together.
    PERFORM citus_add_local_table_to_metadata('public.platform_webhook_deliveries'::regclass,
                                              cascade_via_foreign_keys => true);
END
$$;

-- 4. Dedicated placement (POST /v1/admin/tenants/{id}/placement): isolate a
--    tenant to a shard group of its own and, when asked, put that group on
--    a named worker. Citus lets only a table's owner split or move its
--    shards, and the service never connects as the owner, so this one
--    function (SECURITY DEFINER, pinned search_path, the guard allows it
--    on Citus only) does it for the platform-admin context alone.
--
--    Citus copies the rows in sessions of its own on the nodes, as this
--    function's owner. An owner subject to FORCE ROW LEVEL SECURITY there
--    sees no rows and copies nothing, silently: the tenant's data (and its
--    shard neighbours') would be gone. So the function refuses unless the
--    owner bypasses RLS on every node (ALTER ROLE tenantry_owner BYPASSRLS,
--    a superuser's step; README, Citus).
--
--    Always shard_transfer_mode 'block_writes': the shard group's writes
--    wait for the copy, its reads go on. Citus's logical replication cannot
--    serve here: its apply workers run as a role it creates without
--    BYPASSRLS, which PostgreSQL refuses to let replicate into a table with
--    forced RLS ("cannot replicate into relation with row-level security
--    enabled"), so a move during which anyone writes never catches up.
--
--    One split does both steps: the tenant's own hash value becomes a shard
--    group of its own, created on the target node, its neighbours' ranges
--    stay where they were. An isolated tenant on another node is moved
--    whole.
--
--    Outcomes: isolated, moved, isolated_and_moved, unchanged (nothing to
--    do), or a refusal before any work: unknown_tenant, unknown_node, busy
--    (another placement is running), replicated, owner_subject_to_rls,
--    node_unreachable.
CREATE OR REPLACE FUNCTION public.tenant_place(tenant uuid, target_name text, target_port integer,
                                               OUT outcome text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    anchor constant regclass := 'public.tenant_quotas'::regclass;
    h integer;
    shard bigint;
    lo integer;
    hi integer;
    source_id integer;
    target_id integer;
    placements integer;
    points text[];
    nodes integer[];
    w record;
BEGIN
    IF NOT public.context_platform_verified() THEN
        RAISE EXCEPTION 'tenant placement needs the platform-admin context'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF tenant IS NULL OR (target_name IS NULL) <> (target_port IS NULL) THEN
        RAISE EXCEPTION 'tenant_place: invalid arguments' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = tenant) THEN
        outcome := 'unknown_tenant';
        RETURN;
    END IF;
    -- One placement at a time, never waiting: a second one is told to retry.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(8100956909264006772) THEN  -- 'placemnt'
        outcome := 'busy';
        RETURN;
    END IF;

    IF NOT coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
                      WHERE r.rolname = current_user), false) THEN
        outcome := 'owner_subject_to_rls';
        RETURN;
    END IF;
    FOR w IN
        SELECT r.success, r.result FROM pg_catalog.run_command_on_workers($cmd$
            SELECT (r.rolsuper OR r.rolbypassrls)::text FROM pg_catalog.pg_roles r
             WHERE r.rolname = current_user$cmd$) r
    LOOP
        IF NOT w.success THEN
            outcome := 'node_unreachable';
            RETURN;
        END IF;
        IF w.result <> 'true' THEN
            outcome := 'owner_subject_to_rls';
            RETURN;
        END IF;
    END LOOP;

    shard := pg_catalog.get_shard_id_for_distribution_column(anchor, tenant);
    SELECT s.shardminvalue::integer, s.shardmaxvalue::integer INTO lo, hi
      FROM pg_catalog.pg_dist_shard s WHERE s.shardid = shard;
    SELECT count(*), min(n.nodeid) INTO placements, source_id
      FROM pg_catalog.pg_dist_placement p JOIN pg_catalog.pg_dist_node n ON n.groupid = p.groupid
     WHERE p.shardid = shard;
    IF placements <> 1 THEN
        outcome := 'replicated';
        RETURN;
    END IF;
    IF target_name IS NULL THEN
        target_id := source_id;
    ELSE
        SELECT n.nodeid INTO target_id FROM pg_catalog.pg_dist_node n
         WHERE n.nodename = target_name AND n.nodeport = target_port
           AND n.isactive AND n.noderole = 'primary' AND n.shouldhaveshards;
        IF target_id IS NULL THEN
            outcome := 'unknown_node';
            RETURN;
        END IF;
    END IF;

    -- The mode is given as a literal: the owner may not name Citus's schema
    -- (citus.shard_transfer_mode), and a literal takes the parameter's type.
    h := pg_catalog.worker_hash(tenant);
    IF lo = hi THEN
        IF source_id = target_id THEN
            outcome := 'unchanged';
            RETURN;
        END IF;
        PERFORM pg_catalog.citus_move_shard_placement(shard, source_id, target_id, 'block_writes');
        outcome := 'moved';
    ELSE
        -- As isolate_tenant_to_new_shard splits: around the tenant's hash.
        IF h = lo THEN
            points := ARRAY[h::text];
            nodes := ARRAY[target_id, source_id];
        ELSIF h = hi THEN
            points := ARRAY[(h - 1)::text];
            nodes := ARRAY[source_id, target_id];
        ELSE
            points := ARRAY[(h - 1)::text, h::text];
            nodes := ARRAY[source_id, target_id, source_id];
        END IF;
        PERFORM pg_catalog.citus_split_shard_by_split_points(shard, points, nodes, 'block_writes');
        outcome := CASE WHEN source_id = target_id THEN 'isolated' ELSE 'isolated_and_moved' END;
    END IF;

    -- Where it landed, or nothing happened at all.
    shard := pg_catalog.get_shard_id_for_distribution_column(anchor, tenant);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_shard s
                     JOIN pg_catalog.pg_dist_placement p ON p.shardid = s.shardid
                     JOIN pg_catalog.pg_dist_node n ON n.groupid = p.groupid
                    WHERE s.shardid = shard AND s.shardminvalue::integer = h
                      AND s.shardmaxvalue::integer = h AND n.nodeid = target_id) THEN
        RAISE EXCEPTION 'tenant_place: the tenant''s shard group is not where it was placed';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.tenant_place(uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.tenant_place(uuid, text, integer) TO tenantry_service;
