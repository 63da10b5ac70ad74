-- Control plane: the tenant registry, quotas, usage, audit log and retention
-- receipts. Reached by the service through the platform-admin context, except
-- where a policy in ../policies/ lets a tenant see (or, for usage, update) its
-- own row.

CREATE TABLE tenants (
    id          uuid        PRIMARY KEY,
    slug        text        NOT NULL
                            CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$'),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'suspended', 'archived', 'deleted')),
    legal_hold  boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    purged_at   timestamptz,
    CONSTRAINT tenants_deleted_at_iff_deleted CHECK ((status = 'deleted') = (deleted_at IS NOT NULL)),
    CONSTRAINT tenants_purged_only_when_deleted CHECK (purged_at IS NULL OR status = 'deleted')
);
-- A slug names one tenant until that tenant is purged.
CREATE UNIQUE INDEX tenants_slug_unique ON tenants (slug) WHERE purged_at IS NULL;
CREATE INDEX tenants_status_id ON tenants (status, id);

CREATE TABLE tenant_quotas (
    tenant_id            uuid        PRIMARY KEY REFERENCES tenants (id),
    max_users            integer     NOT NULL CHECK (max_users >= 0),
    max_api_keys         integer     NOT NULL CHECK (max_api_keys >= 0),
    max_clusters         integer     NOT NULL CHECK (max_clusters >= 0),
    max_instances        integer     NOT NULL CHECK (max_instances >= 0),
    max_cpu_cores        integer     NOT NULL CHECK (max_cpu_cores >= 0),
    max_memory_gb        integer     NOT NULL CHECK (max_memory_gb >= 0),
    max_storage_gb       integer     NOT NULL CHECK (max_storage_gb >= 0),
    requests_per_second  integer     NOT NULL CHECK (requests_per_second >= 0),
    burst                integer     NOT NULL CHECK (burst >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_usage (
    tenant_id   uuid        PRIMARY KEY REFERENCES tenants (id),
    users       integer     NOT NULL DEFAULT 0 CHECK (users >= 0),
    api_keys    integer     NOT NULL DEFAULT 0 CHECK (api_keys >= 0),
    clusters    integer     NOT NULL DEFAULT 0 CHECK (clusters >= 0),
    instances   integer     NOT NULL DEFAULT 0 CHECK (instances >= 0),
    cpu_cores   integer     NOT NULL DEFAULT 0 CHECK (cpu_cores >= 0),
    memory_gb   integer     NOT NULL DEFAULT 0 CHECK (memory_gb >= 0),
    storage_gb  integer     NOT NULL DEFAULT 0 CHECK (storage_gb >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Append-only for the service: it is granted SELECT and INSERT, nothing else.
CREATE TABLE audit_events (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        REFERENCES tenants (id),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    before     jsonb,
    after      jsonb,
    reason     text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at, id);
CREATE INDEX audit_events_at ON audit_events (at, id);

-- One receipt per purge (written by the retention sweeper).
CREATE TABLE retention_runs (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    slug          text        NOT NULL,
    deleted_at    timestamptz NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    purged_at     timestamptz,
    rows_removed  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    sweeper       text        NOT NULL
);
CREATE INDEX retention_runs_tenant ON retention_runs (tenant_id, started_at);
CREATE UNIQUE INDEX retention_runs_one_open_per_tenant ON retention_runs (tenant_id) WHERE purged_at IS NULL;

-- No DELETE on tenants (a purged tenant keeps its tombstone) and no
-- UPDATE/DELETE on audit_events (append-only). No TRUNCATE anywhere.
GRANT SELECT, INSERT, UPDATE ON tenants TO tenantry_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_quotas TO tenantry_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_usage TO tenantry_service;
GRANT SELECT, INSERT ON audit_events TO tenantry_service;
GRANT SELECT, INSERT, UPDATE ON retention_runs TO tenantry_service;
