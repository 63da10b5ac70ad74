DROP FUNCTION IF EXISTS set_platform_admin_context();
DROP FUNCTION IF EXISTS set_tenant_context(uuid);
