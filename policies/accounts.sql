-- accounts: the registry of accounts (control plane, sql/0008). Only the
-- platform-admin context sees or writes it; a tenant's context sees no
-- account at all (not even its own: what it needs, its account's limits and
-- usage, it reads from account_quotas and account_usage).
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS platform_admin ON accounts;
CREATE POLICY platform_admin ON accounts
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
