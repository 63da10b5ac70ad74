-- tenant_usage: a tenant's own context reads and updates its own row (quota
-- consumption happens in the same transaction as the provisioning write); it
-- can neither insert nor delete usage rows.
ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON tenant_usage;
CREATE POLICY tenant_read_own ON tenant_usage FOR SELECT
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS tenant_update_own ON tenant_usage;
CREATE POLICY tenant_update_own ON tenant_usage FOR UPDATE
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS platform_admin ON tenant_usage;
CREATE POLICY platform_admin ON tenant_usage
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
