//! The isolation guard: passes on the real schema, and names the object
//! when a table, foreign key, view or role would break isolation — both as
//! `tenantry policies check` and as `tenantry serve` refusing to start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use secrecy::SecretString;
use tenantry_db::Db;
use tenantry_tests::{TestDb, run_tenantry, tenantry_bin};

/// Runs `policies check` after `sabotage` (run as the owner) and returns its
/// stderr, asserting it failed.
async fn check_fails_after(sabotage: &str) -> String {
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute(sabotage)
        .await
        .unwrap();
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(!ok, "policies check passed after: {sabotage}\n{stderr}");
    stderr
}

#[tokio::test]
async fn the_migrated_schema_passes_the_guard() {
    let test_db = TestDb::new().await;
    assert_eq!(test_db.db(1).check_isolation().await.unwrap(), vec![]);
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("policies check: ok"), "{stderr}");
}

#[tokio::test]
async fn a_table_with_tenant_id_and_no_policy_is_named() {
    let stderr =
        check_fails_after("CREATE TABLE rogue_notes (tenant_id uuid NOT NULL, body text)").await;
    assert!(stderr.contains("table rogue_notes"), "{stderr}");
    assert!(stderr.contains("not enabled"), "{stderr}");
    assert!(stderr.contains("no policy on app.tenant_id"), "{stderr}");
}

#[tokio::test]
async fn a_table_whose_rls_is_not_forced_is_named() {
    let stderr = check_fails_after("ALTER TABLE clusters NO FORCE ROW LEVEL SECURITY").await;
    assert!(
        stderr.contains("table clusters") && stderr.contains("not forced"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_permissive_policy_that_ignores_the_tenant_is_named() {
    let stderr = check_fails_after("CREATE POLICY open_door ON users USING (true)").await;
    assert!(
        stderr.contains("table users") && stderr.contains("open_door"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_foreign_key_that_leaves_out_tenant_id_is_named() {
    if tenantry_tests::citus() {
        // Citus itself refuses a unique key or a foreign key between
        // distributed tables that leaves out the distribution column.
        let test_db = TestDb::new().await;
        let err = test_db
            .owner_conn()
            .await
            .batch_execute("ALTER TABLE instances ADD CONSTRAINT instances_id_key UNIQUE (id)")
            .await
            .expect_err("Citus accepted a unique key without tenant_id");
        assert!(
            err.to_string().contains("cannot create constraint"),
            "{err}"
        );
        return;
    }
    let stderr = check_fails_after(
        "ALTER TABLE instances ADD CONSTRAINT instances_id_key UNIQUE (id);
         CREATE TABLE notes (tenant_id uuid NOT NULL, id uuid NOT NULL, instance_id uuid,
                             PRIMARY KEY (tenant_id, id),
                             CONSTRAINT notes_instance_fk FOREIGN KEY (instance_id) REFERENCES instances (id));
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE notes FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant_isolation ON notes
             USING (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)))
             WITH CHECK (tenant_id = (SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true)));",
    )
    .await;
    assert!(
        stderr.contains("foreign key notes_instance_fk on table notes"),
        "{stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("policies check: table notes:")),
        "the table itself is fine: {stderr}"
    );
}

#[tokio::test]
async fn a_view_without_security_invoker_is_named() {
    let stderr = check_fails_after("CREATE VIEW all_users AS SELECT * FROM users").await;
    assert!(
        stderr.contains("view all_users") && stderr.contains("security_invoker"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_security_invoker_view_passes() {
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute("CREATE VIEW my_users WITH (security_invoker = true) AS SELECT * FROM users")
        .await
        .unwrap();
    assert_eq!(test_db.db(1).check_isolation().await.unwrap(), vec![]);
}

/// A role of this test's own (roles are cluster-wide: never alter the shared
/// ones while other tests run).
async fn guard_as_new_role(
    test_db: &TestDb,
    attributes: &str,
    member_of: Option<&str>,
) -> Vec<String> {
    let role = format!("svc_{}", uuid::Uuid::new_v4().simple());
    let mut su =
        AsyncPgConnection::establish(&std::env::var("TENANTRY_TEST_PG_SUPERUSER_URL").unwrap())
            .await
            .unwrap();
    su.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'pw' {attributes}"
    ))
    .await
    .unwrap();
    if let Some(group) = member_of {
        su.batch_execute(&format!("GRANT {group} TO {role}"))
            .await
            .unwrap();
    }
    let mut settings = test_db.settings(1);
    settings.url = SecretString::from(
        test_db
            .app_url()
            .replacen("tenantry_app:", &format!("{role}:"), 1)
            .replacen(
                &format!(":{}@", std::env::var("TENANTRY_TEST_APP_PASSWORD").unwrap()),
                ":pw@",
                1,
            ),
    );
    let violations = Db::new(&settings).unwrap().check_isolation().await.unwrap();
    violations.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn a_service_role_with_bypassrls_is_named() {
    let test_db = TestDb::new().await;
    let found = guard_as_new_role(&test_db, "BYPASSRLS", Some("tenantry_service")).await;
    assert!(found.iter().any(|v| v.contains("BYPASSRLS")), "{found:?}");
}

#[tokio::test]
async fn a_superuser_service_role_is_named() {
    let test_db = TestDb::new().await;
    let found = guard_as_new_role(&test_db, "SUPERUSER", None).await;
    assert!(found.iter().any(|v| v.contains("superuser")), "{found:?}");
}

#[tokio::test]
async fn a_service_role_that_is_a_member_of_the_owner_is_named() {
    let test_db = TestDb::new().await;
    let found = guard_as_new_role(&test_db, "", Some("tenantry_owner")).await;
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("table instances") && v.contains("owned by tenantry_owner")),
        "{found:?}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_naming_the_offending_table() {
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute("ALTER TABLE events DISABLE ROW LEVEL SECURITY")
        .await
        .unwrap();
    let mut child = Command::new(tenantry_bin())
        .arg("serve")
        .envs(test_db.binary_env())
        .env("TENANTRY__SERVER__PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started on a schema with RLS disabled");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("refusing to start") && stderr.contains("table events"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_security_definer_function_is_named() {
    let stderr = check_fails_after(
        "CREATE FUNCTION read_anything() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM users'",
    )
    .await;
    assert!(
        stderr.contains("function read_anything()") && stderr.contains("SECURITY DEFINER"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_proof_registration_without_a_pinned_search_path_is_named() {
    let stderr =
        check_fails_after("ALTER FUNCTION context_register_tenant() RESET search_path").await;
    assert!(
        stderr.contains("function context_register_tenant()") && stderr.contains("search_path"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_service_role_that_may_create_temporary_tables_is_named() {
    let test_db = TestDb::new().await;
    let mut admin =
        AsyncPgConnection::establish(&std::env::var("TENANTRY_TEST_PG_SUPERUSER_URL").unwrap())
            .await
            .unwrap();
    admin
        .batch_execute(&format!(
            "GRANT TEMPORARY ON DATABASE {} TO PUBLIC",
            test_db.name
        ))
        .await
        .unwrap();
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("temporary tables"), "{stderr}");
}

#[tokio::test]
async fn a_service_role_that_can_read_the_context_key_is_named() {
    let stderr = check_fails_after(
        "GRANT USAGE ON SCHEMA tenantry_private TO tenantry_service;
         GRANT SELECT ON tenantry_private.context_keys TO tenantry_service;",
    )
    .await;
    assert!(
        stderr.contains("schema tenantry_private")
            && stderr.contains("table tenantry_private.context_keys"),
        "{stderr}"
    );
}

/// A service configured with another key than the database's would see
/// nothing at all; it refuses to start instead, saying why.
#[tokio::test]
async fn a_context_key_the_database_does_not_know_is_named() {
    let test_db = TestDb::new().await;
    let (ok, _stdout, stderr) = tenantry_tests::run_tenantry_with(
        &test_db,
        &["policies", "check"],
        &[("TENANTRY__DATABASE__CONTEXT_KEY", &"another-key-".repeat(4))],
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("context key") && stderr.contains("not installed"),
        "{stderr}"
    );
}

/// The hash every policy compares (`context_proof_hash`, inlined into each
/// of them), swapped for one that ignores the presented proof and hands out
/// a registered hash: the policies' text is unchanged, so no predicate check
/// sees it; what it does is caught, because a context set without its proof
/// must see nothing. (As an invoker function reading the registry it would
/// recurse into the registry's own policy and fail every statement: closed.)
#[tokio::test]
async fn a_proof_hash_that_ignores_the_presented_proof_is_named() {
    // On Citus the policies call the per-node checks instead (sql/citus.sql):
    // the same sabotage there is a check that believes any context.
    let sabotage = if tenantry_tests::citus() {
        "CREATE OR REPLACE FUNCTION context_platform_verified() RETURNS boolean
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
             AS $$ SELECT true $$"
    } else {
        "CREATE OR REPLACE FUNCTION context_proof_hash(setting text) RETURNS bytea
             LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
             AS $$ SELECT p.proof_hash FROM public.context_proofs p ORDER BY p.tenant NULLS FIRST LIMIT 1 $$"
    };
    let stderr = check_fails_after(sabotage).await;
    assert!(
        stderr.contains("function context_is_platform_admin()")
            && stderr.contains("without its proof"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_registry_policy_that_opens_rows_otherwise_is_named() {
    let stderr = check_fails_after("CREATE POLICY peek ON tenants FOR SELECT USING (true)").await;
    assert!(
        stderr.contains("table tenants") && stderr.contains("peek"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_service_role_that_may_take_session_lifecycle_locks_is_named() {
    let test_db = TestDb::new().await;
    // The superuser, on this test's own database (function privileges are
    // per database).
    let su = std::env::var("TENANTRY_TEST_PG_SUPERUSER_URL").unwrap();
    let su_here = format!("{}/{}", su.rsplit_once('/').unwrap().0, test_db.name);
    AsyncPgConnection::establish(&su_here)
        .await
        .unwrap()
        .batch_execute(
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(integer, integer) TO PUBLIC",
        )
        .await
        .unwrap();
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["policies", "check"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("pg_advisory_lock(integer,integer)"),
        "{stderr}"
    );
}
