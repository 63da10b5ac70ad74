-- Usage history for billing (issue #17): per tenant and period (the
-- `[usage] interval`, aligned to UTC boundaries), the usage at the end of
-- the period (the sample columns, NULL until the sampler has closed the
-- period) and the event-exact counters of what was provisioned and
-- released during it (incremented in the same transaction as the quota
-- charge, `queries::quotas::consume`). One row per (tenant, period): the
-- unique index is what the charges' upsert and the samplers of every
-- replica meet on, so a period is sampled once however many replicas try.
--
-- Tenant-scoped like every tenant table (design.md rule 2): PK
-- (tenant_id, id), indexes led by tenant_id, RLS from
-- ../policies/usage_history.sql (the tenant's own rows; platform admins,
-- as on tenant_usage, for the sampler and the finance export). Expand-only:
-- a new table.
CREATE TABLE usage_history (
    tenant_id             uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                    uuid        NOT NULL,
    period_start          timestamptz NOT NULL,
    -- The usage at the end of the period; NULL while it is open.
    users                 integer,
    api_keys              integer,
    clusters              integer,
    instances             integer,
    cpu_cores             integer,
    memory_gb             integer,
    storage_gb            integer,
    sampled_at            timestamptz,
    -- What the period's charges took (provisioned) and gave back (released).
    users_provisioned     integer     NOT NULL DEFAULT 0,
    users_released        integer     NOT NULL DEFAULT 0,
    api_keys_provisioned  integer     NOT NULL DEFAULT 0,
    api_keys_released     integer     NOT NULL DEFAULT 0,
    clusters_provisioned  integer     NOT NULL DEFAULT 0,
    clusters_released     integer     NOT NULL DEFAULT 0,
    instances_provisioned integer     NOT NULL DEFAULT 0,
    instances_released    integer     NOT NULL DEFAULT 0,
    cpu_cores_provisioned integer     NOT NULL DEFAULT 0,
    cpu_cores_released    integer     NOT NULL DEFAULT 0,
    memory_gb_provisioned integer     NOT NULL DEFAULT 0,
    memory_gb_released    integer     NOT NULL DEFAULT 0,
    storage_gb_provisioned integer    NOT NULL DEFAULT 0,
    storage_gb_released   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX usage_history_tenant_period ON usage_history (tenant_id, period_start);

GRANT SELECT, INSERT, UPDATE, DELETE ON usage_history TO tenantry_service;
