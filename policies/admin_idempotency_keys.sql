-- admin_idempotency_keys: the admin plane's idempotency keys (control plane,
-- no tenant). Only the platform-admin context sees or writes them.
ALTER TABLE admin_idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_idempotency_keys FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS platform_admin ON admin_idempotency_keys;
CREATE POLICY platform_admin ON admin_idempotency_keys
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
