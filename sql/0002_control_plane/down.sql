DROP TABLE IF EXISTS retention_runs;
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS tenant_usage;
DROP TABLE IF EXISTS tenant_quotas;
DROP TABLE IF EXISTS tenants;
