-- account_usage: a tenant's context reads and updates its own account's row
-- (the account is charged in the same transaction as the tenant's own usage
-- row); it can neither insert nor delete usage rows, nor see another
-- account's.
ALTER TABLE account_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_usage FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own_account ON account_usage;
CREATE POLICY tenant_read_own_account ON account_usage FOR SELECT
    USING (account_id = context_account_id());
DROP POLICY IF EXISTS tenant_update_own_account ON account_usage;
CREATE POLICY tenant_update_own_account ON account_usage FOR UPDATE
    USING (account_id = context_account_id())
    WITH CHECK (account_id = context_account_id());
DROP POLICY IF EXISTS platform_admin ON account_usage;
CREATE POLICY platform_admin ON account_usage
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
