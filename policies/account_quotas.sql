-- account_quotas: limits are set by platform admins; a tenant's context may
-- only read its own account's (context_account_id(): the account of the
-- proven tenant context, sql/0008), for the charge's conditional UPDATE.
ALTER TABLE account_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_quotas FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own_account ON account_quotas;
CREATE POLICY tenant_read_own_account ON account_quotas FOR SELECT
    USING (account_id = context_account_id());
DROP POLICY IF EXISTS platform_admin ON account_quotas;
CREATE POLICY platform_admin ON account_quotas
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
