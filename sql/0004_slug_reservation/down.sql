DROP INDEX tenants_slug_unique;
CREATE UNIQUE INDEX tenants_slug_unique ON tenants (slug) WHERE purged_at IS NULL;
ALTER TABLE tenants DROP CONSTRAINT tenants_slug_released_only_when_purged;
ALTER TABLE tenants DROP COLUMN slug_released_at;
