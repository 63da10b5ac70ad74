-- tenant_quotas: limits are set by platform admins; a tenant may only read
-- its own.
ALTER TABLE tenant_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_quotas FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenant_quotas;
CREATE POLICY tenant_read_own ON tenant_quotas FOR SELECT
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS platform_admin ON tenant_quotas;
CREATE POLICY platform_admin ON tenant_quotas
    USING (current_setting('app.platform_admin', true) = 'on')
    WITH CHECK (current_setting('app.platform_admin', true) = 'on');
