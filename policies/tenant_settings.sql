-- tenant_settings: tenant-scoped. A row is visible and writable only inside
-- its own tenant's context (a context counts only with its proof, sql/0005);
-- with no context, nothing is visible. Platform admins write a tenant's
-- settings through that tenant's own scope.
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON tenant_settings;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
