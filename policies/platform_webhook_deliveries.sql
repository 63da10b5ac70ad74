-- platform_webhook_deliveries: control plane (platform webhooks). Only the platform-admin
-- context reads or writes it.
ALTER TABLE platform_webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_webhook_deliveries FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS platform_admin ON platform_webhook_deliveries;
CREATE POLICY platform_admin ON platform_webhook_deliveries
    USING (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL))
    WITH CHECK (EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL));
