-- Custom domains (issue #15): a tenant registers a host name, proves control
-- of it (a DNS TXT record or an HTTP well-known file carrying `token`), and
-- from then on requests to that host address the tenant.
--
-- One name belongs to one tenant: the UNIQUE on hostname alone is global,
-- which Citus allows only on a table that is not distributed, so this is a
-- control-plane table (a reference table on Citus, sql/citus.sql) although
-- every row carries its tenant_id: RLS (../policies/domains.sql) shows the
-- tenant context only its own rows, and the platform context (the service's
-- host -> tenant lookup for routing) all of them. A name another tenant
-- holds fails the insert on domains_hostname_key without showing whose it is.
CREATE TABLE domains (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL,
    hostname     text        NOT NULL CHECK (char_length(hostname) BETWEEN 3 AND 253 AND hostname = lower(hostname)),
    token        text        NOT NULL CHECK (char_length(token) BETWEEN 32 AND 128),
    verified_at  timestamptz,
    verified_by  text        CHECK (verified_by IN ('dns', 'http')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT domains_hostname_key UNIQUE (hostname),
    CONSTRAINT domains_verified_by_method CHECK ((verified_at IS NULL) = (verified_by IS NULL))
);
CREATE INDEX domains_tenant_hostname ON domains (tenant_id, hostname);
GRANT SELECT, INSERT, UPDATE, DELETE ON domains TO tenantry_service;
