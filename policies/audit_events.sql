-- audit_events: append-only (the service role has no UPDATE/DELETE grant). A
-- tenant reads and appends its own entries; admins read and append all.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON audit_events;
CREATE POLICY tenant_read_own ON audit_events FOR SELECT
    USING (tenant_id = (SELECT context_tenant_id()));
DROP POLICY IF EXISTS tenant_append_own ON audit_events;
CREATE POLICY tenant_append_own ON audit_events FOR INSERT
    WITH CHECK (tenant_id = (SELECT context_tenant_id()));
DROP POLICY IF EXISTS platform_admin ON audit_events;
CREATE POLICY platform_admin ON audit_events
    USING ((SELECT context_is_platform_admin()))
    WITH CHECK ((SELECT context_is_platform_admin()));
