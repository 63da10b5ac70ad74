DROP FUNCTION IF EXISTS public.context_account_id();
ALTER TABLE tenants DROP COLUMN IF EXISTS account_id;
DROP TABLE IF EXISTS account_usage;
DROP TABLE IF EXISTS account_quotas;
DROP TABLE IF EXISTS accounts;
