-- Scenario 1 as the service runs it (GET /v1/instances?limit=20): the
-- tenant context, the tenant gate, the list query, in one read-only
-- transaction.
\set t random(1, :tenants)
\set nokey 1
BEGIN READ ONLY;
SELECT set_tenant_context(('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid, (SELECT k.id || '.' || encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to('tenant:' || ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid::text, 'UTF8'))), 'hex') FROM bench_context k));
SELECT t.status, t.slug, t.updated_at, (:nokey::int = 1 OR EXISTS (SELECT 1 FROM api_keys k WHERE k.tenant_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid AND k.id = NULL AND k.revoked_at IS NULL)) FROM tenants t WHERE t.id = ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid;
SELECT "instances"."id", "instances"."cluster_id", "instances"."name", "instances"."cpu_cores", "instances"."memory_gb", "instances"."storage_gb", "instances"."created_at", "instances"."updated_at" FROM "instances" WHERE ("instances"."tenant_id" = ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid) ORDER BY "instances"."id" ASC LIMIT 21;
COMMIT;
