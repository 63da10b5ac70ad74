-- Accounts above tenants (#15): a B2B customer is an account that owns
-- several isolated tenants and is administered as one. Control plane, like
-- the tenant registry: reached through the platform-admin context, except
-- that a tenant's own context reads its account's limits and reads and
-- updates its account's usage (an account's quota is charged in the same
-- transaction as the tenant's own charge).

CREATE TABLE accounts (
    id          uuid        PRIMARY KEY,
    slug        text        NOT NULL
                            CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$')
                            CONSTRAINT accounts_slug_not_uuid
                            CHECK (slug !~ '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_slug_unique ON accounts (slug);

-- The default account: every tenant that names no account, every tenant of
-- an older release (its inserts leave account_id out), and every tenant that
-- existed before this migration. It is unmetered: it has no limits and no
-- usage row, so its tenants' charges touch no shared row.
INSERT INTO accounts (id, slug, name)
VALUES ('00000000-0000-0000-0000-00000000acc0', 'default', 'Default account');

-- An account's limits: the sum over its tenants (those not yet purged).
-- NULL = unlimited.
CREATE TABLE account_quotas (
    account_id      uuid        PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    max_tenants     integer     CHECK (max_tenants >= 0),
    max_users       integer     CHECK (max_users >= 0),
    max_api_keys    integer     CHECK (max_api_keys >= 0),
    max_clusters    integer     CHECK (max_clusters >= 0),
    max_instances   integer     CHECK (max_instances >= 0),
    max_cpu_cores   integer     CHECK (max_cpu_cores >= 0),
    max_memory_gb   integer     CHECK (max_memory_gb >= 0),
    max_storage_gb  integer     CHECK (max_storage_gb >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- What an account's tenants use, summed: charged and given back in the same
-- transaction as each tenant's own usage row, by one conditional UPDATE.
CREATE TABLE account_usage (
    account_id  uuid        PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    tenants     integer     NOT NULL DEFAULT 0 CHECK (tenants >= 0),
    users       integer     NOT NULL DEFAULT 0 CHECK (users >= 0),
    api_keys    integer     NOT NULL DEFAULT 0 CHECK (api_keys >= 0),
    clusters    integer     NOT NULL DEFAULT 0 CHECK (clusters >= 0),
    instances   integer     NOT NULL DEFAULT 0 CHECK (instances >= 0),
    cpu_cores   integer     NOT NULL DEFAULT 0 CHECK (cpu_cores >= 0),
    memory_gb   integer     NOT NULL DEFAULT 0 CHECK (memory_gb >= 0),
    storage_gb  integer     NOT NULL DEFAULT 0 CHECK (storage_gb >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- On a Citus cluster already placed by an earlier release, tenants is a
-- reference table, and a reference table may only reference another one:
-- place accounts first (sql/citus.sql places it on a fresh cluster).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'pg_catalog' AND c.relname = 'pg_dist_partition')
    THEN
        IF EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'public.tenants'::regclass) THEN
            PERFORM create_reference_table('public.accounts'::regclass);
        END IF;
    END IF;
END
$$;

-- Defaulted, so expand-only: an older binary's inserts land in the default
-- account, which always exists; existing tenants move into it.
ALTER TABLE tenants ADD COLUMN account_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-00000000acc0' REFERENCES accounts (id);
CREATE INDEX tenants_account_id ON tenants (account_id, id);

-- The account of the tenant whose proven context this is (NULL in any other
-- context): the key of the account tables' tenant policies. Not a definer:
-- it reads the registry row under the caller's own RLS (a tenant sees only
-- its own row). sql/citus.sql gives it its Citus form.
CREATE FUNCTION public.context_account_id() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.account_id FROM public.tenants t WHERE t.id = public.context_tenant_id() $$;
REVOKE ALL ON FUNCTION public.context_account_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.context_account_id() TO tenantry_service;

-- No DELETE on accounts (a tenant, even purged, keeps its account).
GRANT SELECT, INSERT, UPDATE ON accounts TO tenantry_service;
GRANT SELECT, INSERT, UPDATE ON account_quotas TO tenantry_service;
GRANT SELECT, INSERT, UPDATE ON account_usage TO tenantry_service;
