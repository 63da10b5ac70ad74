-- Back to the forgeable context of 0001: the one-argument setters and
-- policies on current_setting() alone. The policy files of ../../policies/
-- are the 0005 form, so the policies are rewritten here before the
-- functions they use are dropped.
CREATE OR REPLACE FUNCTION set_tenant_context(tenant uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant context must not be null';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL app.tenant_id = %L', tenant);
END
$$;
CREATE OR REPLACE FUNCTION set_platform_admin_context() RETURNS void
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

DO $$
DECLARE
    p record;
    tenant_pred constant text := '(tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)';
    own_pred constant text := '(id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)';
    admin_pred constant text := '(current_setting(''app.platform_admin'', true) = ''on'')';
    using_pred text;
    check_pred text;
    pred text;
BEGIN
    FOR p IN
        SELECT pol.polname, c.oid::regclass AS tbl, pol.polcmd,
               pg_get_expr(pol.polqual, pol.polrelid) AS qual,
               pg_get_expr(pol.polwithcheck, pol.polrelid) AS chk
          FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
    LOOP
        pred := CASE
            WHEN coalesce(p.qual, p.chk) LIKE '%app.platform_proof%' THEN admin_pred
            WHEN coalesce(p.qual, p.chk) LIKE '%(id = %' THEN own_pred
            ELSE tenant_pred END;
        using_pred := CASE WHEN p.qual IS NULL THEN NULL ELSE pred END;
        check_pred := CASE WHEN p.chk IS NULL THEN NULL WHEN p.chk = 'false' THEN 'false' ELSE pred END;
        IF using_pred IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON %s USING %s', p.polname, p.tbl, using_pred);
        END IF;
        IF check_pred IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON %s WITH CHECK (%s)', p.polname, p.tbl, check_pred);
        END IF;
    END LOOP;
END
$$;

CREATE POLICY tenant_lock_own ON tenants FOR UPDATE
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (false);

DROP FUNCTION lock_tenant_lifecycle(uuid);
DROP FUNCTION set_tenant_write_context(uuid, text);
DROP FUNCTION tenant_lock_key(uuid);
DROP FUNCTION set_tenant_context(uuid, text);
DROP FUNCTION set_platform_admin_context(text);
DROP TRIGGER tenants_register_context ON tenants;
DROP FUNCTION public.context_register_tenant();
DROP FUNCTION public.context_register(uuid);
DROP FUNCTION public.context_tenant_id();
DROP FUNCTION public.context_is_platform_admin();
DROP TABLE context_proofs;
DROP FUNCTION public.context_proof_hash(text);
DROP FUNCTION tenantry_private.context_proof(text, text);
DROP TABLE tenantry_private.context_keys;
DROP SCHEMA tenantry_private;
