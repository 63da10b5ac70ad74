-- usage_history: tenant-scoped. A tenant's context reads its own history
-- and, in the transaction of a quota charge, adds to its own period's
-- counters (a context counts only with its proof, sql/0005); with no
-- context, nothing is visible. The platform-admin context, as on
-- tenant_usage, samples every tenant's usage in one statement and reads
-- the history across tenants (the finance export).
ALTER TABLE usage_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_history FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON usage_history;
CREATE POLICY tenant_isolation ON usage_history
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS platform_admin ON usage_history;
CREATE POLICY platform_admin ON usage_history
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
