-- tenants: the registry (control plane). A tenant's own context may read its
-- own row (the tenant gate and GET /v1/tenant); everything else needs the
-- platform-admin context.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenants;
CREATE POLICY tenant_read_own ON tenants FOR SELECT
    USING (id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS platform_admin ON tenants;
CREATE POLICY platform_admin ON tenants
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
-- Until #12 the tenant gate share-locked this row (which needed an UPDATE
-- policy); the gate now takes a transaction-level advisory lock instead, so
-- the tenant's context has no UPDATE policy on its registry row at all.
DROP POLICY IF EXISTS tenant_lock_own ON tenants;
