-- Seeds tenants :first..:last with :per instances each, set-based, as the
-- superuser (bench tooling only; the service never connects like this), who
-- bypasses RLS (on Citus too: it refuses INSERT ... SELECT only under RLS).
-- With -v citus=1, the instances are generated where their shards are.
-- Tenant g has id 00000000-0000-7000-8000-<g in hex>, its cluster
-- 00000000-0000-7000-9000-<g in hex>; the pgbench scripts compute the same.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO tenants (id, slug, name)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench-' || g, 'Bench ' || g
  FROM generate_series(:first, :last) g;
INSERT INTO tenant_quotas (tenant_id, max_users, max_api_keys, max_clusters, max_instances,
                           max_cpu_cores, max_memory_gb, max_storage_gb, requests_per_second, burst)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
       1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 100000, 100000
  FROM generate_series(:first, :last) g;
INSERT INTO tenant_usage (tenant_id, clusters, instances, cpu_cores, memory_gb)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 1, :per, :per, :per
  FROM generate_series(:first, :last) g;
INSERT INTO clusters (tenant_id, id, name, region)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
       ('00000000-0000-7000-9000-' || lpad(to_hex(g), 12, '0'))::uuid, 'main', 'eu-west'
  FROM generate_series(:first, :last) g;
\if :{?citus}
-- The same rows, but generated on the workers, each shard from its own
-- clusters rows (the plain form goes through the coordinator, about 3x slower).
INSERT INTO instances (tenant_id, id, cluster_id, name, cpu_cores, memory_gb)
SELECT c.tenant_id,
       ('00000000-0000-7' || lpad(to_hex(i), 3, '0') || '-a000-' || right(c.tenant_id::text, 12))::uuid,
       c.id, 'vm-' || i, 1, 1
  FROM clusters c, generate_series(1, :per) i
 WHERE c.id BETWEEN ('00000000-0000-7000-9000-' || lpad(to_hex(:first), 12, '0'))::uuid
                AND ('00000000-0000-7000-9000-' || lpad(to_hex(:last), 12, '0'))::uuid;
\else
INSERT INTO instances (tenant_id, id, cluster_id, name, cpu_cores, memory_gb)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
       ('00000000-0000-7' || lpad(to_hex(i), 3, '0') || '-a000-' || lpad(to_hex(g), 12, '0'))::uuid,
       ('00000000-0000-7000-9000-' || lpad(to_hex(g), 12, '0'))::uuid,
       'vm-' || i, 1, 1
  FROM generate_series(:first, :last) g, generate_series(1, :per) i;
\endif
COMMIT;
ANALYZE;
