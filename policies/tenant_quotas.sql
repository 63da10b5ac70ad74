-- tenant_quotas: limits are set by platform admins; a tenant may only read
-- its own.
ALTER TABLE tenant_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_quotas FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenant_quotas;
CREATE POLICY tenant_read_own ON tenant_quotas FOR SELECT
    USING (tenant_id = (SELECT context_tenant_id()));
DROP POLICY IF EXISTS platform_admin ON tenant_quotas;
CREATE POLICY platform_admin ON tenant_quotas
    USING ((SELECT context_is_platform_admin()))
    WITH CHECK ((SELECT context_is_platform_admin()));
