-- Scenario 1 as the service runs it (GET /v1/instances?limit=20): the
-- tenant context, the tenant gate, the list query, in one transaction.
\set t random(1, :tenants)
BEGIN;
SELECT set_tenant_context(('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid);
SELECT t.status, t.slug, q.requests_per_second, q.burst FROM tenants t LEFT JOIN tenant_quotas q ON q.tenant_id = t.id WHERE t.id = ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid;
SELECT "instances"."id", "instances"."cluster_id", "instances"."name", "instances"."cpu_cores", "instances"."memory_gb", "instances"."storage_gb", "instances"."created_at", "instances"."updated_at" FROM "instances" WHERE ("instances"."tenant_id" = ('00000000-0000-7000-8000-' || lpad(to_hex(:t::int), 12, '0'))::uuid) ORDER BY "instances"."id" ASC LIMIT 21;
COMMIT;
