-- Back to limits without plans: every tenant keeps the limits it has now.
ALTER TABLE tenant_quotas DROP COLUMN IF EXISTS plan_name;
ALTER TABLE tenant_quotas DROP COLUMN IF EXISTS overrides;
DROP INDEX IF EXISTS tenants_plan;
ALTER TABLE tenants DROP COLUMN IF EXISTS plan_id;
DROP TABLE IF EXISTS plans;
