-- Per-tenant settings (issue #15): one JSON document per tenant (branding,
-- feature flags, module switches), validated by the service against the
-- operator's JSON Schema (`tenancy.settings_schema_file`), read by the
-- tenant, written by its admins and by platform admins. `version` counts
-- the writes (1 on the first); every write is audited as `settings.updated`
-- with the document before and after, so the history lives in the audit
-- log. Tenant-scoped like every tenant table (design.md rule 2): PK
-- (tenant_id, id), RLS from ../policies/tenant_settings.sql; one row per
-- tenant by the unique index led by tenant_id (the distribution column on
-- Citus). Expand-only: a new table.
CREATE TABLE tenant_settings (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL,
    version     integer     NOT NULL CONSTRAINT tenant_settings_version CHECK (version > 0),
    document    jsonb       NOT NULL CONSTRAINT tenant_settings_document_object
                                CHECK (jsonb_typeof(document) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX tenant_settings_one_per_tenant ON tenant_settings (tenant_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_settings TO tenantry_service;
