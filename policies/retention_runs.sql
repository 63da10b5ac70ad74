-- retention_runs: purge receipts, written by the sweeper in the platform-admin
-- context. A tenant's own context may read its own receipts.
ALTER TABLE retention_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_runs FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON retention_runs;
CREATE POLICY tenant_read_own ON retention_runs FOR SELECT
    USING (tenant_id = (SELECT context_tenant_id()));
DROP POLICY IF EXISTS platform_admin ON retention_runs;
CREATE POLICY platform_admin ON retention_runs
    USING ((SELECT context_is_platform_admin()))
    WITH CHECK ((SELECT context_is_platform_admin()));
