//! The service's role: not superuser, not BYPASSRLS, owns nothing, and
//! cannot do what only an owner could (disable RLS, drop policies, TRUNCATE).

use diesel::sql_types::{Bool, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use tenantry_db::schema::TENANT_TABLES;
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::{TestDb, count_as, create_instances, create_tenant, db_message};

#[derive(diesel::QueryableByName, Debug)]
struct RoleFlags {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    bypassrls: bool,
}

#[tokio::test]
async fn the_service_role_is_neither_superuser_nor_bypassrls() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    let flags: RoleFlags = diesel::sql_query(
        "SELECT current_user::text AS role, rolsuper AS superuser, rolbypassrls AS bypassrls
           FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(flags.role, "tenantry_app");
    assert!(!flags.superuser);
    assert!(!flags.bypassrls);
    // ...nor is any role it belongs to.
    let inherited: Vec<RoleFlags> = diesel::sql_query(
        "SELECT rolname::text AS role, rolsuper AS superuser, rolbypassrls AS bypassrls
           FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER') AND (rolsuper OR rolbypassrls)",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(inherited.is_empty(), "{inherited:?}");
}

#[derive(diesel::QueryableByName, Debug)]
struct Owned {
    #[diesel(sql_type = Text)]
    #[expect(dead_code, reason = "read through Debug in assertion messages")]
    object: String,
}

#[tokio::test]
async fn the_service_role_owns_no_table_function_or_schema() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    let owned: Vec<Owned> = diesel::sql_query(
        "SELECT c.oid::regclass::text AS object FROM pg_class c
          WHERE pg_has_role(current_user, c.relowner, 'MEMBER')
            AND c.relnamespace = 'public'::regnamespace
         UNION ALL
         SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE pg_has_role(current_user, p.proowner, 'MEMBER')
            AND p.pronamespace = 'public'::regnamespace
         UNION ALL
         SELECT nspname::text FROM pg_namespace
          WHERE pg_has_role(current_user, nspowner, 'MEMBER') AND nspname = 'public'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(owned.is_empty(), "{owned:?}");
    // The tables exist and belong to the owner role.
    let tables: Vec<Owned> = diesel::sql_query(
        "SELECT c.relname::text AS object FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
            AND pg_get_userbyid(c.relowner) = 'tenantry_owner'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(tables.len() >= TENANT_TABLES.len() + 5, "{tables:?}");
}

#[tokio::test]
async fn truncate_is_refused_on_every_table() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1);
    let a = create_tenant(&db, "acme").await;
    create_instances(&db, a, 2).await;
    let mut conn = test_db.app_conn().await;
    for table in
        TENANT_TABLES
            .iter()
            .chain(&["tenants", "tenant_quotas", "tenant_usage", "audit_events"])
    {
        let err = conn
            .batch_execute(&format!("TRUNCATE {table} CASCADE"))
            .await
            .unwrap_err();
        // On Citus a TRUNCATE that cascades to shards may be refused by a
        // worker first, which Citus reports as a failed remote transaction.
        let message = db_message(&err);
        assert!(
            message.contains("permission denied")
                || (tenantry_tests::citus()
                    && message.starts_with("failure on connection marked as essential")),
            "{table}: {err}"
        );
    }
    let left = count_as(&db, a, "instances").await;
    assert_eq!(left, 2);
}

#[tokio::test]
async fn the_service_role_cannot_disable_rls_drop_policies_or_create_tables() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    for statement in [
        "ALTER TABLE instances DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE instances NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON instances",
        "CREATE POLICY everything ON instances USING (true)",
        "CREATE TABLE smuggled (tenant_id uuid)",
        "CREATE VIEW all_instances AS SELECT * FROM instances",
    ] {
        let err = conn.batch_execute(statement).await.unwrap_err();
        let message = db_message(&err);
        assert!(
            message.contains("must be owner") || message.contains("permission denied"),
            "{statement}: {message}"
        );
    }
}

#[tokio::test]
async fn audit_events_are_append_only_for_the_service() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1);
    let a = create_tenant(&db, "acme").await;
    let insert_then = |statement: &'static str| {
        let db = db.clone();
        async move {
            db.platform()
                .run(|conn| {
                    async move {
                        diesel::sql_query(
                            "INSERT INTO audit_events (id, tenant_id, actor, action) VALUES (gen_random_uuid(), $1, 'test', 'tenant.created')",
                        )
                        .bind::<diesel::sql_types::Uuid, _>(a)
                        .execute(conn)
                        .await?;
                        diesel::sql_query(statement).execute(conn).await?;
                        Ok::<_, DbError>(())
                    }
                    .scope_boxed()
                })
                .await
        }
    };
    for statement in [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ] {
        let err = insert_then(statement).await.unwrap_err();
        assert!(
            matches!(&err, DbError::Query(e) if db_message(e).contains("permission denied")),
            "{statement}: {err}"
        );
    }
}

#[tokio::test]
async fn serve_refuses_to_hold_the_owners_credentials_and_never_listens() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let test_db = TestDb::new().await;
    let dir = tenantry_tests::process::Scratch::new("owner");
    let port = tenantry_tests::free_port();
    let mut child = Command::new(tenantry_tests::tenantry_bin())
        .arg("serve")
        .envs(test_db.binary_env())
        .env("TENANTRY__DATABASE__OWNER_URL", test_db.owner_url())
        .env("TENANTRY__SERVER__PORT", port.to_string())
        .env_remove("TENANTRY_ENV")
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if listening || Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("serve started (listening: {listening}) while holding the owner's URL");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("database.owner_url") && stderr.contains("TENANTRY__DATABASE__OWNER_URL"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&test_db.owner_url()),
        "the refusal must not echo the credentials: {stderr}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
