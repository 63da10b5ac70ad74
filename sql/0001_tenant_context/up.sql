-- The tenant context. Tenant-plane code reaches PostgreSQL only inside a
-- transaction whose first statement is `SELECT set_tenant_context($1)`: the id
-- travels as a bind parameter and the setting dies with the transaction
-- (SET LOCAL). Every RLS policy reads it back with
--   NULLIF(current_setting('app.tenant_id', true), '')::uuid
-- (after a transaction that set it ends, the setting reads '' rather than
-- NULL, hence the NULLIF: no context means no rows, never an error).
--
-- SET LOCAL rather than set_config(..., true): on Citus only SET LOCAL is
-- propagated to the workers (citus.propagate_set_commands = 'local').

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_service') THEN
        RAISE EXCEPTION 'role tenantry_service does not exist; create it first (scripts/bootstrap-roles.sql)';
    END IF;
END
$$;

CREATE FUNCTION set_tenant_context(tenant uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant context must not be null';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL app.tenant_id = %L', tenant);
END
$$;

-- The platform-admin context: lets control-plane code (which requires a
-- platform-admin principal in the service) read and write control-plane
-- tables across tenants. It opens nothing on tenant-scoped tables.
CREATE FUNCTION set_platform_admin_context() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    SET LOCAL app.platform_admin = 'on';
END
$$;

REVOKE ALL ON FUNCTION set_tenant_context(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_platform_admin_context() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_tenant_context(uuid) TO tenantry_service;
GRANT EXECUTE ON FUNCTION set_platform_admin_context() TO tenantry_service;
