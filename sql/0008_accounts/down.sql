DROP TABLE IF EXISTS account_usage;
DROP TABLE IF EXISTS account_quotas;
ALTER TABLE tenants DROP COLUMN IF EXISTS account_id;
DROP TABLE IF EXISTS accounts;
DROP FUNCTION IF EXISTS public.context_account_id();
