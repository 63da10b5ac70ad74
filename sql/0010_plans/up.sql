-- Plans (issue #15): named quota templates a platform admin defines. A
-- tenant on a plan takes its limits from it, except the limits an admin set
-- for that tenant (its overrides). The effective limits stay in
-- tenant_quotas, so the quota check remains one conditional UPDATE
-- (queries::quotas::consume); a plan change rewrites the non-overridden
-- limits of every tenant on it in one transaction.
CREATE TABLE plans (
    id                   uuid        PRIMARY KEY,
    name                 text        NOT NULL
                                     CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$'),
    max_users            integer     NOT NULL CHECK (max_users >= 0),
    max_api_keys         integer     NOT NULL CHECK (max_api_keys >= 0),
    max_clusters         integer     NOT NULL CHECK (max_clusters >= 0),
    max_instances        integer     NOT NULL CHECK (max_instances >= 0),
    max_cpu_cores        integer     NOT NULL CHECK (max_cpu_cores >= 0),
    max_memory_gb        integer     NOT NULL CHECK (max_memory_gb >= 0),
    max_storage_gb       integer     NOT NULL CHECK (max_storage_gb >= 0),
    requests_per_second  integer     NOT NULL CHECK (requests_per_second >= 0),
    burst                integer     NOT NULL CHECK (burst >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plans_name_unique UNIQUE (name)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON plans TO tenantry_service;

-- The tenant's plan. No foreign key, on purpose: on Citus both tables are
-- reference tables, and Citus serialises every write to a reference table
-- with writes to the reference tables it references (shard-level locks), so
-- a key from the registry to plans would make every registry write (a
-- lifecycle step, a limit's change) wait on plan changes, in an order that
-- deadlocks against them. The service keeps the reference whole instead
-- (ops::plans): a tenant is put on a plan only while that plan's row is
-- locked, and a plan is deleted only under an exclusive lock once no tenant
-- that is not purged is on it (a purged tenant's tombstone may keep the id
-- of a plan deleted since).
ALTER TABLE tenants ADD COLUMN plan_id uuid;
CREATE INDEX tenants_plan ON tenants (plan_id) WHERE plan_id IS NOT NULL;

-- Which limits an admin set for this tenant (limit names, e.g.
-- 'max_users'): a plan change leaves them alone. The plan's name is kept
-- beside the limits it gave, for the tenant's own quota view (its context
-- cannot read plans). Rows from before this migration override nothing.
ALTER TABLE tenant_quotas
    ADD COLUMN overrides text[] NOT NULL DEFAULT '{}'
        CONSTRAINT tenant_quotas_overrides_known CHECK (overrides <@ ARRAY[
            'max_users', 'max_api_keys', 'max_clusters', 'max_instances', 'max_cpu_cores',
            'max_memory_gb', 'max_storage_gb', 'requests_per_second', 'burst']::text[]);
ALTER TABLE tenant_quotas ADD COLUMN plan_name text;
