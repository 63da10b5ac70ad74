-- audit_events: append-only (the service role has no UPDATE/DELETE grant). A
-- tenant reads and appends its own entries; admins read and append all.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_read_own ON audit_events;
CREATE POLICY tenant_read_own ON audit_events FOR SELECT
    USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS tenant_append_own ON audit_events;
CREATE POLICY tenant_append_own ON audit_events FOR INSERT
    WITH CHECK (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));
DROP POLICY IF EXISTS platform_admin ON audit_events;
CREATE POLICY platform_admin ON audit_events
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
