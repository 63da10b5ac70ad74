-- tenants: the registry (control plane). A tenant's own context may read its
-- own row (the tenant gate and GET /v1/tenant); everything else needs the
-- platform-admin context.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenants;
CREATE POLICY tenant_read_own ON tenants FOR SELECT
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS platform_admin ON tenants;
CREATE POLICY platform_admin ON tenants
    USING (current_setting('app.platform_admin', true) = 'on')
    WITH CHECK (current_setting('app.platform_admin', true) = 'on');
-- The tenant gate share-locks its own row (SELECT ... FOR SHARE, which needs
-- an UPDATE policy) so a suspension waits for in-flight writes; WITH CHECK
-- (false) means the tenant can lock its row but never change it.
DROP POLICY IF EXISTS tenant_lock_own ON tenants;
CREATE POLICY tenant_lock_own ON tenants FOR UPDATE
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (false);
