ALTER TABLE tenants DROP CONSTRAINT tenants_slug_not_uuid;
