-- console_sessions: operator console sessions (control plane, no tenant).
-- Only the platform-admin context sees or writes them.
ALTER TABLE console_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sessions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS platform_admin ON console_sessions;
CREATE POLICY platform_admin ON console_sessions
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
