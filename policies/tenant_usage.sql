-- tenant_usage: a tenant's own context reads and updates its own row (quota
-- consumption happens in the same transaction as the provisioning write); it
-- can neither insert nor delete usage rows.
ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenant_usage;
CREATE POLICY tenant_read_own ON tenant_usage FOR SELECT
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS tenant_update_own ON tenant_usage;
CREATE POLICY tenant_update_own ON tenant_usage FOR UPDATE
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS platform_admin ON tenant_usage;
CREATE POLICY platform_admin ON tenant_usage
    USING (current_setting('app.platform_admin', true) = 'on')
    WITH CHECK (current_setting('app.platform_admin', true) = 'on');
