-- Tenant-scoped tables (design.md rule 2): tenant_id on every row, primary
-- key (tenant_id, id), foreign keys that carry tenant_id so a row can never
-- point at another tenant's row, indexes led by tenant_id, and RLS from
-- ../policies/<table>.sql. tenant_id is the Citus distribution column.

CREATE TABLE users (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    email       text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320),
    name        text        NOT NULL DEFAULT '' CHECK (char_length(name) <= 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE api_keys (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    id            uuid        NOT NULL,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    prefix        text        NOT NULL,
    secret_hash   bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_tenant_prefix ON api_keys (tenant_id, prefix);

CREATE TABLE clusters (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    region      text        NOT NULL CHECK (char_length(region) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX clusters_tenant_name ON clusters (tenant_id, name);

CREATE TABLE instances (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    cluster_id  uuid        NOT NULL,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    cpu_cores   integer     NOT NULL CHECK (cpu_cores > 0),
    memory_gb   integer     NOT NULL CHECK (memory_gb > 0),
    storage_gb  integer     NOT NULL DEFAULT 0 CHECK (storage_gb >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT instances_cluster_fk FOREIGN KEY (tenant_id, cluster_id)
        REFERENCES clusters (tenant_id, id)
);
CREATE UNIQUE INDEX instances_tenant_name ON instances (tenant_id, name);
CREATE INDEX instances_tenant_cluster ON instances (tenant_id, cluster_id);

CREATE TABLE events (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    kind       text        NOT NULL,
    actor      text        NOT NULL,
    subject    uuid,
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_tenant_at ON events (tenant_id, at, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON users, api_keys, clusters, instances, events
    TO tenantry_service;
