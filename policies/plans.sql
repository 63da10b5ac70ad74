-- plans: quota templates, defined and read by platform admins only. A
-- tenant sees its plan's name through its own quota row (tenant_quotas).
ALTER TABLE plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE plans FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS platform_admin ON plans;
CREATE POLICY platform_admin ON plans
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
