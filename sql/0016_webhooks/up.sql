-- Webhooks (issue #17): endpoints that hear what happened without polling,
-- and a durable outbox of deliveries written in the same transaction as the
-- event each one carries (a rolled-back change leaves no delivery; a
-- committed one always has it). The delivery worker of `tenantry serve`
-- claims due rows (FOR UPDATE SKIP LOCKED), POSTs them signed with the
-- endpoint's secret, and records every attempt on the row.
--
-- Two planes, two pairs of tables:
--   webhook_endpoints / webhook_deliveries: tenant-scoped (a tenant admin's
--     endpoints for its own tenant's events), PK (tenant_id, id), forced RLS
--     (../policies/webhook_endpoints.sql, webhook_deliveries.sql). The
--     platform context may only READ deliveries (the worker finds which
--     tenants have due ones); it claims and records them in the tenant's own
--     context. On Citus distributed by tenant_id, co-located.
--   platform_webhook_endpoints / platform_webhook_deliveries: control plane
--     (a platform admin's endpoints for lifecycle, quota and purge events),
--     platform-admin context only; Citus local tables on the coordinator.
--
-- The secret is stored as it is (the worker signs with it, so a hash will
-- not do); RLS confines it to its tenant's context, no API answer shows it
-- after creation or rotation, and the export leaves it out. README
-- ("Webhooks") and RELIABILITY.md say what that costs.
--
-- `event_types` NULL: every event type. `attempt_log`: one JSON object per
-- attempt ({at, status | error, duration_ms}), newest last, bounded by the
-- service. Expand-only: new tables.
CREATE TABLE webhook_endpoints (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL,
    url          text        NOT NULL CONSTRAINT webhook_endpoints_url CHECK (char_length(url) BETWEEN 10 AND 2000),
    event_types  text[],
    description  text        NOT NULL DEFAULT '' CONSTRAINT webhook_endpoints_description CHECK (char_length(description) <= 500),
    enabled      boolean     NOT NULL DEFAULT true,
    secret       text        NOT NULL CONSTRAINT webhook_endpoints_secret CHECK (char_length(secret) BETWEEN 32 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO tenantry_service;

CREATE TABLE webhook_deliveries (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    endpoint_id      uuid        NOT NULL,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CONSTRAINT webhook_deliveries_status CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0 CONSTRAINT webhook_deliveries_attempts CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    attempt_log      jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT webhook_deliveries_endpoint FOREIGN KEY (tenant_id, endpoint_id)
        REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (tenant_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO tenantry_service;

CREATE TABLE platform_webhook_endpoints (
    id           uuid        PRIMARY KEY,
    url          text        NOT NULL CONSTRAINT platform_webhook_endpoints_url CHECK (char_length(url) BETWEEN 10 AND 2000),
    event_types  text[],
    description  text        NOT NULL DEFAULT '' CONSTRAINT platform_webhook_endpoints_description CHECK (char_length(description) <= 500),
    enabled      boolean     NOT NULL DEFAULT true,
    secret       text        NOT NULL CONSTRAINT platform_webhook_endpoints_secret CHECK (char_length(secret) BETWEEN 32 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON platform_webhook_endpoints TO tenantry_service;

-- `about_tenant`: the tenant the event concerns (no foreign key: the
-- record of a purge outlives the tenant's data).
CREATE TABLE platform_webhook_deliveries (
    id               uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES platform_webhook_endpoints (id) ON DELETE CASCADE,
    about_tenant     uuid,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CONSTRAINT platform_webhook_deliveries_status CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0 CONSTRAINT platform_webhook_deliveries_attempts CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    attempt_log      jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX platform_webhook_deliveries_due ON platform_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX platform_webhook_deliveries_by_endpoint ON platform_webhook_deliveries (endpoint_id, id);
GRANT SELECT, INSERT, UPDATE, DELETE ON platform_webhook_deliveries TO tenantry_service;
