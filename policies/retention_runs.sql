-- retention_runs: purge receipts, written by the sweeper in the platform-admin
-- context. A tenant's own context may read its own receipts.
ALTER TABLE retention_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_runs FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON retention_runs;
CREATE POLICY tenant_read_own ON retention_runs FOR SELECT
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS platform_admin ON retention_runs;
CREATE POLICY platform_admin ON retention_runs
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
