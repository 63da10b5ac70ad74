-- tenants: the registry (control plane). A tenant's own context may read its
-- own row (the tenant gate and GET /v1/tenant); everything else needs the
-- platform-admin context.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenants;
CREATE POLICY tenant_read_own ON tenants FOR SELECT
    USING (id = (SELECT context_tenant_id()));
DROP POLICY IF EXISTS platform_admin ON tenants;
CREATE POLICY platform_admin ON tenants
    USING ((SELECT context_is_platform_admin()))
    WITH CHECK ((SELECT context_is_platform_admin()));
-- Until #12 the tenant gate share-locked this row (which needed an UPDATE
-- policy); the gate now takes a transaction-level advisory lock instead, so
-- the tenant's context has no UPDATE policy on its registry row at all.
DROP POLICY IF EXISTS tenant_lock_own ON tenants;
