-- A slug stays taken by its tenant through deletion and purge, until the
-- sweeper releases it after a cooling-off period (so a new tenant cannot
-- pick up a just-deleted tenant's slug, links and DNS).
ALTER TABLE tenants ADD COLUMN slug_released_at timestamptz;
ALTER TABLE tenants ADD CONSTRAINT tenants_slug_released_only_when_purged
    CHECK (slug_released_at IS NULL OR purged_at IS NOT NULL);
DROP INDEX tenants_slug_unique;
CREATE UNIQUE INDEX tenants_slug_unique ON tenants (slug) WHERE slug_released_at IS NULL;
