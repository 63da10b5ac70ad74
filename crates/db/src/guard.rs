//! The isolation guard (design.md rule 5): reads the catalog as the service's
//! role and names every object that would let tenants see each other.
//! Run at startup (the server refuses to start on any violation) and by
//! `tenantry policies check`.

use std::fmt;

use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{Array, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use scoped_futures::ScopedFutureExt;

use crate::{Db, DbError};

/// One thing wrong, naming the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub object: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

fn violation(object: impl Into<String>, problem: impl Into<String>) -> Violation {
    Violation {
        object: object.into(),
        problem: problem.into(),
    }
}

/// The predicates a permissive policy may use, as PostgreSQL deparses them
/// (whitespace-normalised): the tenant context, or the platform-admin context.
/// Both ask `context_proofs` which context the presented proof's hash
/// names (sql/0005), once per statement (a scalar subquery / EXISTS).
const TENANT_PREDICATE: &str = "(tenant_id = ( select p.tenant from context_proofs p where ((p.proof_hash = context_proof_hash('app.tenant_proof'::text)) and ((p.tenant)::text = current_setting('app.tenant_id'::text, true)))))";
const ADMIN_PREDICATE: &str = "(exists ( select 1 from context_proofs p where ((p.proof_hash = context_proof_hash('app.platform_proof'::text)) and (p.tenant is null))))";

/// The same contexts on Citus, which refuses subqueries in policies: each
/// node checks the proof itself (sql/citus.sql).
const CITUS_TENANT_PREDICATE: &str = "(tenant_id = context_tenant_verified())";
const CITUS_ADMIN_PREDICATE: &str = "context_platform_verified()";
const CITUS_OWN_ROW_PREDICATE: &str = "(id = context_tenant_verified())";

/// The predicates of one database's dialect.
#[derive(Debug, Clone, Copy)]
struct Predicates {
    tenant: &'static str,
    admin: &'static str,
    own_row: &'static str,
}

impl Predicates {
    const PLAIN: Self = Self {
        tenant: TENANT_PREDICATE,
        admin: ADMIN_PREDICATE,
        own_row: OWN_ROW_PREDICATE,
    };
    const CITUS: Self = Self {
        tenant: CITUS_TENANT_PREDICATE,
        admin: CITUS_ADMIN_PREDICATE,
        own_row: CITUS_OWN_ROW_PREDICATE,
    };
}

/// The only SECURITY DEFINER functions allowed: the owner's registration
/// of proofs (they must read the context key the service's role cannot).
const DEFINER_ALLOWED: &[&str] = &["context_register(tenant uuid)", "context_register_tenant()"];
/// On Citus, also the per-node proof checks (sql/citus.sql), which read
/// the context key for the same reason, and dedicated placement, which
/// needs the tables' owner to split and move their shards (it checks the
/// platform-admin proof first).
const DEFINER_ALLOWED_CITUS: &[&str] = &[
    "context_tenant_verified()",
    "context_platform_verified()",
    "tenant_place(tenant uuid, target_name text, target_port integer, OUT outcome text)",
];

/// Schemas the guard inspects: everything but PostgreSQL's own.
const USER_SCHEMAS: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

impl Db {
    /// Runs every check; an empty list means the database is safe to serve.
    pub async fn check_isolation(&self) -> Result<Vec<Violation>, DbError> {
        let mut conn = self.checkout().await?;
        let mut found = check(&mut conn).await?;
        drop(conn);
        found.extend(self.context_key_matches().await?);
        Ok(found)
    }

    /// The database recognises this pool's proofs: the platform context
    /// verifies. Otherwise every request would see nothing (fail closed), so
    /// the server refuses to start instead.
    async fn context_key_matches(&self) -> Result<Vec<Violation>, DbError> {
        async fn ask(conn: &mut crate::Conn<'_>) -> Result<ContextSeen, DbError> {
            Ok(sql_query(
                "SELECT context_tenant_id() AS tenant, context_is_platform_admin() AS admin",
            )
            .get_result(conn)
            .await?)
        }
        // The platform context is registered under every installed key; a
        // tenant's only once it exists, so the platform proof is the probe.
        let admin: ContextSeen = self.platform().run(|conn| ask(conn).scope_boxed()).await?;
        let mut found = Vec::new();
        if !admin.admin || admin.tenant.is_some() {
            found.push(violation(
                format!("context key {}", self.context_key().id()),
                "is not installed in this database: every context would read as none (run `tenantry migrate` with this database.context_key)",
            ));
        }
        Ok(found)
    }
}

/// Every check, on any connection (the service's, in production).
pub async fn check(conn: &mut AsyncPgConnection) -> Result<Vec<Violation>, diesel::result::Error> {
    let citus = crate::migrate::is_citus(&mut &*conn).await?;
    let predicates = if citus {
        Predicates::CITUS
    } else {
        Predicates::PLAIN
    };
    let mut found = Vec::new();
    found.extend(service_role(conn).await?);
    found.extend(service_reach(conn).await?);
    found.extend(definer_functions(conn, citus).await?);
    found.extend(forged_context_is_refused(conn).await?);
    found.extend(tenant_tables(conn, predicates).await?);
    found.extend(other_rls_tables(conn, predicates).await?);
    found.extend(foreign_keys(conn).await?);
    found.extend(views(conn).await?);
    if citus {
        // A later release's migrations may add tables this binary has no
        // placement for; on such a schema they need only be placed. (Whether
        // this binary's own migrations are all there is readiness's
        // question, not the guard's.)
        let newer = crate::migrate::schema_state(conn)
            .await?
            .has_unknown_versions();
        found.extend(crate::citus::placement(conn, newer).await?);
    }
    Ok(found)
}

#[derive(QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    bypassrls: bool,
}

#[derive(QueryableByName)]
struct OwnedRow {
    #[diesel(sql_type = Text)]
    object: String,
    #[diesel(sql_type = Text)]
    owner: String,
}

/// The service's role (and every role it is a member of) is not superuser,
/// not BYPASSRLS, and owns nothing outside PostgreSQL's own schemas.
async fn service_role(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let roles: Vec<RoleRow> = sql_query(
        "SELECT r.rolname::text AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls
           FROM pg_roles r
          WHERE pg_has_role(current_user, r.oid, 'MEMBER')",
    )
    .load(conn)
    .await?;
    let mut found = Vec::new();
    for r in roles {
        if r.superuser {
            found.push(violation(
                format!("role {}", r.role),
                "the service's role is (or is a member of) a superuser",
            ));
        }
        if r.bypassrls {
            found.push(violation(
                format!("role {}", r.role),
                "the service's role has (or is a member of a role with) BYPASSRLS",
            ));
        }
    }
    let owned: Vec<OwnedRow> = sql_query(format!(
        "SELECT format('%s %s', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                              WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' ELSE 'table' END,
                       c.oid::regclass) AS object,
                pg_get_userbyid(c.relowner)::text AS owner
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_SCHEMAS} AND pg_has_role(current_user, c.relowner, 'MEMBER')
         UNION ALL
         SELECT format('function %s', p.oid::regprocedure), pg_get_userbyid(p.proowner)::text
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE {USER_SCHEMAS} AND pg_has_role(current_user, p.proowner, 'MEMBER')
         UNION ALL
         SELECT format('schema %s', n.nspname), pg_get_userbyid(n.nspowner)::text
           FROM pg_namespace n
          WHERE {USER_SCHEMAS} AND n.nspowner <> 'pg_database_owner'::regrole
            AND pg_has_role(current_user, n.nspowner, 'MEMBER')
         ORDER BY 1"
    ))
    .load(conn)
    .await?;
    found.extend(owned.into_iter().map(|o| {
        violation(
            o.object,
            format!(
                "owned by {}, which the service's role is or is a member of (an owner can disable RLS)",
                o.owner
            ),
        )
    }));
    Ok(found)
}

#[derive(QueryableByName)]
struct ReachRow {
    #[diesel(sql_type = Text)]
    object: String,
    #[diesel(sql_type = Text)]
    problem: String,
}

/// What SQL running as the service's role must not reach: the context key
/// (it would let such SQL forge any context), and any place to create
/// objects (a temporary table or view shadowing one the service queries
/// could capture other tenants' proofs).
async fn service_reach(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let rows: Vec<ReachRow> = sql_query(format!(
        "SELECT 'schema tenantry_private' AS object,
                'the service''s role can use the schema that holds the context key' AS problem
          WHERE has_schema_privilege(current_user, 'tenantry_private', 'USAGE')
         UNION ALL
         SELECT format('table %s', c.oid::regclass),
                'the service''s role can read the context key'
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'tenantry_private' AND c.relname = 'context_keys'
            AND has_table_privilege(current_user, c.oid, 'SELECT')
         UNION ALL
         SELECT format('database %s', current_database()),
                'the service''s role may create temporary tables (REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC)'
          WHERE has_database_privilege(current_user, current_database(), 'TEMPORARY')
         UNION ALL
         SELECT format('function %s', f),
                'the service''s role may take session-level advisory locks in the lifecycle-lock key space (REVOKE EXECUTE ... FROM PUBLIC, scripts/bootstrap-roles.sql)'
           FROM unnest(ARRAY['pg_advisory_lock(integer,integer)', 'pg_advisory_lock_shared(integer,integer)',
                             'pg_try_advisory_lock(integer,integer)', 'pg_try_advisory_lock_shared(integer,integer)']) f
          WHERE has_function_privilege(current_user, 'pg_catalog.' || f, 'EXECUTE')
         UNION ALL
         SELECT format('schema %s', n.nspname),
                'the service''s role may create objects in it'
           FROM pg_namespace n
          WHERE {USER_SCHEMAS} AND has_schema_privilege(current_user, n.oid, 'CREATE')
         ORDER BY 1"
    ))
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| violation(r.object, r.problem))
        .collect())
}

#[derive(QueryableByName)]
struct ContextSeen {
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    tenant: Option<uuid::Uuid>,
    #[diesel(sql_type = Bool)]
    admin: bool,
}

/// What the policies see when SQL sets a context by hand, without the
/// proofs: nothing. This catches a proof hash (`context_proof_hash`, which
/// every policy inlines) replaced by one that ignores the presented proof,
/// whatever its text or attributes.
async fn forged_context_is_refused(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let seen: ContextSeen = conn
        .build_transaction()
        .read_only()
        .run(async |conn| {
            sql_query(
                "SELECT set_config('app.tenant_id', gen_random_uuid()::text, true),
                        set_config('app.tenant_proof', 'forged', true),
                        set_config('app.platform_admin', 'on', true),
                        set_config('app.platform_proof', 'forged', true)",
            )
            .execute(conn)
            .await?;
            sql_query("SELECT context_tenant_id() AS tenant, context_is_platform_admin() AS admin")
                .get_result(conn)
                .await
        })
        .await?;
    let mut found = Vec::new();
    if seen.tenant.is_some() {
        found.push(violation(
            "function context_tenant_id()",
            "accepts a tenant context set without its proof",
        ));
    }
    if seen.admin {
        found.push(violation(
            "function context_is_platform_admin()",
            "accepts a platform context set without its proof",
        ));
    }
    Ok(found)
}

#[derive(QueryableByName)]
struct DefinerRow {
    #[diesel(sql_type = Text)]
    function: String,
    #[diesel(sql_type = Text)]
    signature: String,
    #[diesel(sql_type = Bool)]
    pinned_path: bool,
}

/// SECURITY DEFINER functions run with their owner's rights, whatever role
/// calls them: only the owner's proof registration may be one, with a
/// pinned search_path.
async fn definer_functions(
    conn: &mut AsyncPgConnection,
    citus: bool,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let rows: Vec<DefinerRow> = sql_query(format!(
        "SELECT p.oid::regprocedure::text AS function,
                format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)) AS signature,
                EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{{}}')) c
                         WHERE c LIKE 'search_path=%') AS pinned_path
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prosecdef AND {USER_SCHEMAS}
          ORDER BY 1"
    ))
    .load(conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|row| judge_definer(row, citus))
        .collect())
}

fn judge_definer(row: &DefinerRow, citus: bool) -> Option<Violation> {
    let name = format!("function {}", row.function);
    let allowed = DEFINER_ALLOWED.contains(&row.signature.as_str())
        || (citus && DEFINER_ALLOWED_CITUS.contains(&row.signature.as_str()));
    if !allowed {
        return Some(violation(
            name,
            "is SECURITY DEFINER: it runs with its owner's rights for any caller",
        ));
    }
    (!row.pinned_path).then(|| {
        violation(
            name,
            "is SECURITY DEFINER without a pinned search_path (SET search_path = pg_catalog, pg_temp)",
        )
    })
}

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Bool)]
    forced: bool,
}

#[derive(QueryableByName)]
struct PolicyRow {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    policy: String,
    #[diesel(sql_type = Bool)]
    permissive: bool,
    #[diesel(sql_type = Nullable<Text>)]
    using_expr: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    check_expr: Option<String>,
}

/// Every table with a `tenant_id` column has RLS enabled AND forced, a policy
/// keyed on `app.tenant_id`, and no permissive policy that opens it any other
/// way (a permissive `USING (true)` would be OR-ed with the tenant policy).
async fn tenant_tables(
    conn: &mut AsyncPgConnection,
    predicates: Predicates,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let tables: Vec<TableRow> = sql_query(format!(
        "SELECT c.oid::regclass::text AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
          WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}
          ORDER BY 1"
    ))
    .load(conn)
    .await?;
    let policies: Vec<PolicyRow> = sql_query(format!(
        "SELECT c.oid::regclass::text AS table, p.polname::text AS policy, p.polpermissive AS permissive,
                pg_get_expr(p.polqual, p.polrelid) AS using_expr,
                pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
           FROM pg_policy p
           JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_SCHEMAS}
          ORDER BY 1, 2"
    ))
    .load(conn)
    .await?;
    let mut found = Vec::new();
    for table in &tables {
        found.extend(judge_table(
            table,
            policies.iter().filter(|p| p.table == table.table),
            predicates,
        ));
    }
    // A view over a tenant table could also leak; views() covers that.
    Ok(found)
}

/// The registry's own-row predicate (`tenants` has `id`, not `tenant_id`).
const OWN_ROW_PREDICATE: &str = "(id = ( select p.tenant from context_proofs p where ((p.proof_hash = context_proof_hash('app.tenant_proof'::text)) and ((p.tenant)::text = current_setting('app.tenant_id'::text, true)))))";
/// The account tables' own-account predicate (sql/0008): the account of the
/// proven tenant context, the same in both dialects (the function reads the
/// registry row under the caller's RLS; sql/citus.sql gives its Citus form).
const OWN_ACCOUNT_PREDICATE: &str = "(account_id = context_account_id())";
/// `context_proofs` shows the service's role the proofs it presents.
const PRESENTED_PREDICATE: &str = "((proof_hash = context_proof_hash('app.tenant_proof'::text)) or (proof_hash = context_proof_hash('app.platform_proof'::text)))";

/// Tables under RLS without a `tenant_id` column (the registry): every
/// permissive policy opens rows only by a proven context.
async fn other_rls_tables(
    conn: &mut AsyncPgConnection,
    predicates: Predicates,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let policies: Vec<PolicyRow> = sql_query(format!(
        "SELECT c.oid::regclass::text AS table, p.polname::text AS policy, p.polpermissive AS permissive,
                pg_get_expr(p.polqual, p.polrelid) AS using_expr,
                pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
           FROM pg_policy p
           JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_SCHEMAS}
            AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                               AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY 1, 2"
    ))
    .load(conn)
    .await?;
    Ok(policies
        .iter()
        .flat_map(|p| judge_other_policy(p, predicates))
        .collect())
}

fn judge_other_policy(p: &PolicyRow, predicates: Predicates) -> Vec<Violation> {
    if !p.permissive {
        return Vec::new();
    }
    [p.using_expr.as_deref(), p.check_expr.as_deref()]
        .into_iter()
        .flatten()
        .filter(|e| {
            let e = normalise(e);
            e != predicates.own_row
                && e != OWN_ACCOUNT_PREDICATE
                && e != predicates.admin
                && e != PRESENTED_PREDICATE
                && e != "false"
        })
        .map(|e| {
            violation(
                format!("table {}", p.table),
                format!(
                    "permissive policy {} opens rows by ({e}), not by a proven context",
                    p.policy
                ),
            )
        })
        .collect()
}

fn normalise(expr: &str) -> String {
    expr.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn judge_table<'p>(
    table: &TableRow,
    policies: impl Iterator<Item = &'p PolicyRow>,
    predicates: Predicates,
) -> Vec<Violation> {
    let mut found = Vec::new();
    let name = format!("table {}", table.table);
    if !table.enabled {
        found.push(violation(
            &name,
            "has tenant_id but row level security is not enabled",
        ));
    }
    if !table.forced {
        found.push(violation(
            &name,
            "has tenant_id but row level security is not forced (FORCE ROW LEVEL SECURITY)",
        ));
    }
    let mut keyed_on_tenant = false;
    for p in policies {
        let exprs = [p.using_expr.as_deref(), p.check_expr.as_deref()];
        if exprs
            .iter()
            .flatten()
            .any(|e| normalise(e) == predicates.tenant)
        {
            keyed_on_tenant = true;
        }
        if !p.permissive {
            continue; // restrictive policies only ever narrow access
        }
        for expr in exprs.into_iter().flatten() {
            let e = normalise(expr);
            if e != predicates.tenant && e != predicates.admin {
                found.push(violation(
                    &name,
                    format!(
                        "permissive policy {} opens rows by ({expr}), not by the tenant context",
                        p.policy
                    ),
                ));
            }
        }
    }
    if !keyed_on_tenant {
        found.push(violation(
            &name,
            "has tenant_id but no policy on app.tenant_id's proven context (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)))",
        ));
    }
    found
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    constraint: String,
    #[diesel(sql_type = Text)]
    from_table: String,
    #[diesel(sql_type = Text)]
    to_table: String,
    #[diesel(sql_type = Array<Text>)]
    from_columns: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    to_columns: Vec<String>,
}

/// A foreign key between two tables that both have `tenant_id` must map
/// `tenant_id` to `tenant_id`, so a row can never reference another
/// tenant's row.
async fn foreign_keys(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Violation>, diesel::result::Error> {
    let fks: Vec<ForeignKeyRow> = sql_query(format!(
        "SELECT con.conname::text AS constraint,
                con.conrelid::regclass::text AS from_table,
                con.confrelid::regclass::text AS to_table,
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) AS from_columns,
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                       ORDER BY k.ord) AS to_columns
           FROM pg_constraint con
           JOIN pg_class c ON c.oid = con.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE con.contype = 'f' AND {USER_SCHEMAS}
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.conrelid
                           AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.confrelid
                           AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY 1"
    ))
    .load(conn)
    .await?;
    Ok(fks.iter().filter_map(judge_foreign_key).collect())
}

fn judge_foreign_key(fk: &ForeignKeyRow) -> Option<Violation> {
    let maps_tenant = fk
        .from_columns
        .iter()
        .zip(&fk.to_columns)
        .any(|(from, to)| from == "tenant_id" && to == "tenant_id");
    (!maps_tenant).then(|| {
        violation(
            format!("foreign key {} on table {}", fk.constraint, fk.from_table),
            format!(
                "references {} by ({}) -> ({}) without tenant_id = tenant_id: a row could point at another tenant's row",
                fk.to_table,
                fk.from_columns.join(", "),
                fk.to_columns.join(", ")
            ),
        )
    })
}

#[derive(QueryableByName)]
struct ViewRow {
    #[diesel(sql_type = Text)]
    view: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

/// Views must be `security_invoker` (else they run as their owner, for whom
/// RLS may not apply); materialized views cannot carry RLS at all, so one
/// with a `tenant_id` column is refused.
async fn views(conn: &mut AsyncPgConnection) -> Result<Vec<Violation>, diesel::result::Error> {
    let rows: Vec<ViewRow> = sql_query(format!(
        "SELECT c.oid::regclass::text AS view, c.relkind::text AS kind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_SCHEMAS}
            -- An extension's own views (Citus's citus_tables, say) are its
            -- business; they expose no tenant rows.
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'e')
            AND ((c.relkind = 'v'
                  AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(c.reloptions, '{{}}')) o
                                   WHERE lower(o) IN ('security_invoker=true', 'security_invoker=on',
                                                      'security_invoker=1', 'security_invoker=yes')))
              OR (c.relkind = 'm'
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                 AND a.attname = 'tenant_id' AND NOT a.attisdropped)))
          ORDER BY 1"
    ))
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            if r.kind == "m" {
                violation(
                    format!("materialized view {}", r.view),
                    "has tenant_id but materialized views bypass row level security",
                )
            } else {
                violation(
                    format!("view {}", r.view),
                    "is not security_invoker: it would read tables with its owner's rights (CREATE VIEW ... WITH (security_invoker = true))",
                )
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(enabled: bool, forced: bool) -> TableRow {
        TableRow {
            table: "t".into(),
            enabled,
            forced,
        }
    }

    fn policy(permissive: bool, using: Option<&str>, check: Option<&str>) -> PolicyRow {
        PolicyRow {
            table: "t".into(),
            policy: "p".into(),
            permissive,
            using_expr: using.map(String::from),
            check_expr: check.map(String::from),
        }
    }

    const TENANT: &str = "(tenant_id = ( SELECT p.tenant
   FROM context_proofs p
  WHERE ((p.proof_hash = context_proof_hash('app.tenant_proof'::text)) AND ((p.tenant)::text = current_setting('app.tenant_id'::text, true)))))";

    #[test]
    fn a_table_with_the_tenant_policy_passes() {
        let p = [policy(true, Some(TENANT), Some(TENANT))];
        assert_eq!(
            judge_table(&table(true, true), p.iter(), Predicates::PLAIN),
            vec![]
        );
    }

    #[test]
    fn rls_must_be_enabled_and_forced() {
        let p = [policy(true, Some(TENANT), None)];
        assert_eq!(
            judge_table(&table(false, true), p.iter(), Predicates::PLAIN).len(),
            1
        );
        assert_eq!(
            judge_table(&table(true, false), p.iter(), Predicates::PLAIN).len(),
            1
        );
    }

    #[test]
    fn a_table_without_any_policy_fails() {
        let v = judge_table(&table(true, true), [].iter(), Predicates::PLAIN);
        assert_eq!(v.len(), 1);
        assert!(v[0].problem.contains("no policy on app.tenant_id"));
    }

    #[test]
    fn a_permissive_policy_that_opens_rows_otherwise_fails() {
        let p = [
            policy(true, Some(TENANT), Some(TENANT)),
            policy(true, Some("true"), None),
        ];
        let v = judge_table(&table(true, true), p.iter(), Predicates::PLAIN);
        assert_eq!(v.len(), 1);
        assert!(v[0].problem.contains("permissive policy"));
    }

    #[test]
    fn a_restrictive_policy_is_allowed() {
        let p = [
            policy(true, Some(TENANT), Some(TENANT)),
            policy(false, Some("(status <> 'hidden'::text)"), None),
        ];
        assert_eq!(
            judge_table(&table(true, true), p.iter(), Predicates::PLAIN),
            vec![]
        );
    }

    #[test]
    fn only_the_proof_registration_may_be_security_definer_and_only_with_a_pinned_path() {
        let row = |signature: &str, pinned_path| DefinerRow {
            function: signature.to_owned(),
            signature: signature.to_owned(),
            pinned_path,
        };
        assert!(judge_definer(&row("context_register(tenant uuid)", true), false).is_none());
        assert!(judge_definer(&row("context_register_tenant()", true), false).is_none());
        assert!(judge_definer(&row("context_register_tenant()", false), false).is_some());
        assert!(judge_definer(&row("read_everything()", true), false).is_some());
    }

    #[test]
    fn the_registry_opens_rows_only_by_a_proven_context() {
        let own = "(id = ( SELECT p.tenant FROM context_proofs p WHERE ((p.proof_hash = context_proof_hash('app.tenant_proof'::text)) AND ((p.tenant)::text = current_setting('app.tenant_id'::text, true)))))";
        let admin = "(EXISTS ( SELECT 1 FROM context_proofs p WHERE ((p.proof_hash = context_proof_hash('app.platform_proof'::text)) AND (p.tenant IS NULL))))";
        assert!(
            judge_other_policy(&policy(true, Some(own), Some("false")), Predicates::PLAIN)
                .is_empty()
        );
        assert!(
            judge_other_policy(&policy(true, Some(admin), Some(admin)), Predicates::PLAIN)
                .is_empty()
        );
        assert_eq!(
            judge_other_policy(&policy(true, Some("true"), None), Predicates::PLAIN).len(),
            1
        );
        let bare = "(id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)";
        assert_eq!(
            judge_other_policy(&policy(true, Some(bare), None), Predicates::PLAIN).len(),
            1
        );
        assert!(
            judge_other_policy(&policy(false, Some("true"), None), Predicates::PLAIN).is_empty()
        );
    }

    #[test]
    fn the_account_tables_open_rows_only_by_the_proven_tenants_account() {
        let own = "(account_id = context_account_id())";
        for predicates in [Predicates::PLAIN, Predicates::CITUS] {
            assert!(judge_other_policy(&policy(true, Some(own), Some(own)), predicates).is_empty());
        }
        // Any other account key opens rows by something else.
        let bare = "(account_id = (current_setting('app.account_id'::text, true))::uuid)";
        assert_eq!(
            judge_other_policy(&policy(true, Some(bare), None), Predicates::PLAIN).len(),
            1
        );
    }

    #[test]
    fn a_policy_on_the_bare_setting_is_no_longer_enough() {
        let forgeable =
            "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)";
        let p = [policy(true, Some(forgeable), Some(forgeable))];
        let v = judge_table(&table(true, true), p.iter(), Predicates::PLAIN);
        assert!(
            v.iter()
                .any(|v| v.problem.contains("no policy on app.tenant_id")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.problem.contains("permissive policy")),
            "{v:?}"
        );
    }

    #[test]
    fn foreign_keys_must_map_tenant_id_to_tenant_id() {
        let fk = |from: &[&str], to: &[&str]| ForeignKeyRow {
            constraint: "fk".into(),
            from_table: "instances".into(),
            to_table: "clusters".into(),
            from_columns: from.iter().map(|s| s.to_string()).collect(),
            to_columns: to.iter().map(|s| s.to_string()).collect(),
        };
        assert!(
            judge_foreign_key(&fk(&["tenant_id", "cluster_id"], &["tenant_id", "id"])).is_none()
        );
        assert!(judge_foreign_key(&fk(&["cluster_id"], &["id"])).is_some());
        assert!(
            judge_foreign_key(&fk(&["tenant_id", "cluster_id"], &["id", "tenant_id"])).is_some()
        );
    }

    #[test]
    fn citus_policies_pass_only_on_citus() {
        let tenant = "(tenant_id = context_tenant_verified())";
        let p = [policy(true, Some(tenant), Some(tenant))];
        assert_eq!(
            judge_table(&table(true, true), p.iter(), Predicates::CITUS),
            vec![]
        );
        assert_eq!(
            judge_table(&table(true, true), p.iter(), Predicates::PLAIN).len(),
            3
        );
        let admin = policy(true, Some("context_platform_verified()"), None);
        assert!(judge_other_policy(&admin, Predicates::CITUS).is_empty());
        assert_eq!(judge_other_policy(&admin, Predicates::PLAIN).len(), 1);
    }

    #[test]
    fn the_citus_proof_checks_are_allowed_definers_only_on_citus() {
        let verified = DefinerRow {
            function: "context_tenant_verified()".to_owned(),
            signature: "context_tenant_verified()".to_owned(),
            pinned_path: true,
        };
        assert!(judge_definer(&verified, true).is_none());
        assert!(judge_definer(&verified, false).is_some());
        let place = DefinerRow {
            function: "tenant_place(uuid,text,integer)".to_owned(),
            signature: DEFINER_ALLOWED_CITUS[2].to_owned(),
            pinned_path: true,
        };
        assert!(judge_definer(&place, true).is_none());
        assert!(judge_definer(&place, false).is_some());
    }
}
