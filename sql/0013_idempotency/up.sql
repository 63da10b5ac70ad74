-- Idempotency keys (issue #15): a create sent with `Idempotency-Key` records
-- the key, the hash of its request and, in the same transaction as the
-- create, the response; a retry with the same key within 24 hours gets that
-- response back instead of provisioning again. The unique index is what
-- makes a concurrent retry (on any replica) wait for the first request to
-- commit or roll back.
--
-- idempotency_keys: tenant-scoped (the tenant plane's creates), RLS from
-- ../policies/idempotency_keys.sql. response_status is NULL only inside the
-- transaction that claimed the key: no other transaction ever sees it so.
CREATE TABLE idempotency_keys (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL,
    key              text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    operation        text        NOT NULL CHECK (char_length(operation) BETWEEN 1 AND 300),
    request_hash     bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    response_status  integer     CHECK (response_status BETWEEN 100 AND 599),
    response_body    jsonb,
    location         text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX idempotency_keys_tenant_key ON idempotency_keys (tenant_id, key);
CREATE INDEX idempotency_keys_tenant_created ON idempotency_keys (tenant_id, created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO tenantry_service;

-- admin_idempotency_keys: the same for the admin plane's creates, which run
-- in the platform-admin context and have no tenant
-- (../policies/admin_idempotency_keys.sql).
CREATE TABLE admin_idempotency_keys (
    id               uuid        PRIMARY KEY,
    key              text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    operation        text        NOT NULL CHECK (char_length(operation) BETWEEN 1 AND 300),
    request_hash     bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    response_status  integer     CHECK (response_status BETWEEN 100 AND 599),
    response_body    jsonb,
    location         text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_idempotency_keys_key ON admin_idempotency_keys (key);
CREATE INDEX admin_idempotency_keys_created ON admin_idempotency_keys (created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON admin_idempotency_keys TO tenantry_service;
