//! Migrations: embedded, idempotent, reversible, tamper-evident; and the
//! schema follows design.md rule 2 table by table.

use diesel::sql_types::{Bool, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;
use tenantry_db::ScopedFutureExt;
use tenantry_db::migrate::{self, MigrateError};
use tenantry_db::schema::{self, TENANT_TABLES};
use tenantry_tests::{TestDb, context_key, run_tenantry};

#[tokio::test]
async fn migrate_is_idempotent_and_reapplies_the_policies() {
    let test_db = TestDb::new().await;
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["migrate"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("schema is current"), "{stderr}");
    assert!(test_db.db(1).schema_state().await.unwrap().is_current());
}

#[tokio::test]
async fn every_migration_reverts_and_reapplies_cleanly() {
    let test_db = TestDb::new().await;
    let owner = SecretString::from(test_db.owner_url());
    let versions = migrate::embedded_versions();
    if tenantry_tests::citus() {
        // A documented refusal on Citus, changing nothing.
        let (ok, _stdout, stderr) = run_tenantry(&test_db, &["migrate", "--down"]);
        assert!(
            !ok && stderr.contains("not supported on a distributed"),
            "{stderr}"
        );
        assert!(matches!(
            migrate::revert_last(&owner).await,
            Err(MigrateError::RevertOnCitus)
        ));
        assert!(test_db.db(1).schema_state().await.unwrap().is_current());
        assert_eq!(test_db.db(1).check_isolation().await.unwrap(), vec![]);
        return;
    }
    // One revert through the binary (the CLI contract), the rest through the library.
    let (ok, _stdout, stderr) = run_tenantry(&test_db, &["migrate", "--down"]);
    assert!(
        ok && stderr.contains(versions[versions.len() - 1]),
        "{stderr}"
    );
    for expected in versions.iter().rev().skip(1) {
        assert_eq!(migrate::revert_last(&owner).await.unwrap(), *expected);
    }
    assert!(matches!(
        migrate::revert_last(&owner).await,
        Err(MigrateError::NothingToRevert)
    ));
    let mut conn = test_db.owner_conn().await;
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        #[expect(dead_code, reason = "only counted")]
        name: String,
    }
    let left: Vec<Name> = diesel::sql_query(
        "SELECT relname::text AS name FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'tenantry_migrations'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(left.len(), 0, "down migrations left tables behind");

    let report = migrate::run(&owner, &context_key(), &migrate::MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!(report.applied, versions);
    assert_eq!(test_db.db(1).check_isolation().await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute("UPDATE tenantry_migrations SET checksum = 'tampered' WHERE version = (SELECT min(version) FROM tenantry_migrations)")
        .await
        .unwrap();
    let err = migrate::run(
        &SecretString::from(test_db.owner_url()),
        &context_key(),
        &migrate::MigrateOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MigrateError::Edited(_)), "{err}");
}

#[tokio::test]
async fn migrate_refuses_a_database_newer_than_the_binary() {
    // Its policy files would overwrite the later release's. Serving such a
    // schema is another matter (tests/tests/it/rolling.rs).
    let test_db = TestDb::new().await;
    test_db
        .owner_conn()
        .await
        .batch_execute("INSERT INTO tenantry_migrations (version, checksum) VALUES ('9999_from_the_future', 'x')")
        .await
        .unwrap();
    let err = migrate::run(
        &SecretString::from(test_db.owner_url()),
        &context_key(),
        &migrate::MigrateOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, MigrateError::Unknown(ref v) if v == "9999_from_the_future"),
        "{err}"
    );
    let state = test_db.db(1).schema_state().await.unwrap();
    assert!(!state.is_current());
    assert_eq!(
        state.compatibility(),
        tenantry_db::Compatibility::Newer {
            unknown: vec!["9999_from_the_future".to_owned()]
        }
    );
}

#[tokio::test]
async fn migrate_without_an_owner_url_says_what_to_set() {
    let test_db = TestDb::new().await;
    let output = std::process::Command::new(tenantry_tests::tenantry_bin())
        .arg("migrate")
        .env("TENANTRY__DATABASE__URL", test_db.app_url())
        .env("TENANTRY__DATABASE__OWNER_URL", "")
        .output()
        .unwrap();
    // An empty owner URL cannot connect; the error names the owner role.
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("owner"), "{stderr}");
}

/// Inserts a tenant row with `slug` straight through the platform scope,
/// past `Slug::parse`: what only the database's own CHECK can refuse.
async fn insert_raw_tenant(db: &tenantry_db::Db, slug: &str) -> Result<(), tenantry_db::DbError> {
    let slug = slug.to_owned();
    db.platform()
        .run(|conn| {
            async move {
                diesel::sql_query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'raw')")
                    .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::now_v7())
                    .bind::<Text, _>(&slug)
                    .execute(conn)
                    .await?;
                Ok::<_, tenantry_db::DbError>(())
            }
            .scope_boxed()
        })
        .await
}

#[tokio::test]
async fn the_database_refuses_new_uuid_slugs_keeps_old_ones_and_ids_still_win() {
    let test_db = TestDb::new().await;
    let owner = SecretString::from(test_db.owner_url());
    let citus = tenantry_tests::citus();
    if citus {
        // No reverting on Citus: the constraint goes by hand, and the
        // migration's own text puts it back below.
        test_db
            .owner_conn()
            .await
            .batch_execute("ALTER TABLE tenants DROP CONSTRAINT tenants_slug_not_uuid")
            .await
            .unwrap();
    }
    // Back to the schema before 0007 (and whatever came after it).
    let mut reverted = Vec::new();
    while !citus && reverted.last().map(String::as_str) != Some("0007_slug_not_uuid") {
        reverted.push(migrate::revert_last(&owner).await.unwrap());
    }
    reverted.reverse();
    let db = test_db.db(2);
    let a = tenantry_tests::create_tenant(&db, "tenant-a").await;
    // A deployment from before the rule may already hold such a slug: the
    // migration must not fail on it (NOT VALID), and it must not shadow `a`.
    let legacy_slug = a.as_uuid().simple().to_string();
    let legacy = tenantry_tests::create_tenant(&db, &legacy_slug).await;
    if citus {
        test_db
            .owner_conn()
            .await
            .batch_execute(include_str!("../../../sql/0007_slug_not_uuid/up.sql"))
            .await
            .unwrap();
    } else {
        let report = migrate::run(&owner, &context_key(), &migrate::MigrateOptions::default())
            .await
            .unwrap();
        assert_eq!(report.applied, reverted);
    }
    for slug in [
        uuid::Uuid::now_v7().hyphenated().to_string(),
        uuid::Uuid::now_v7().simple().to_string(),
    ] {
        let err = insert_raw_tenant(&db, &slug).await.unwrap_err();
        let tenantry_db::DbError::Query(err) = err else {
            panic!("{slug}: {err}");
        };
        assert!(
            tenantry_tests::db_message(&err).contains("tenants_slug_not_uuid"),
            "{slug}: {err}"
        );
    }
    insert_raw_tenant(&db, "an-ordinary-slug").await.unwrap();

    let app = tenantry_tests::TestApp::spawn_on(test_db).await;
    let admin = app.admin_token();
    let (status, got) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/v1/admin/tenants/{legacy_slug}"),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(got["id"], a.to_string(), "a UUID-shaped key is only an id");
    let (status, got) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/v1/admin/tenants/{legacy}"),
            None,
        )
        .await;
    assert_eq!(
        (status, got["slug"].as_str()),
        (reqwest::StatusCode::OK, Some(legacy_slug.as_str()))
    );
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Column names of a diesel table, read from the SQL diesel renders for
/// `SELECT <all columns>`.
fn diesel_columns<T>(table: T) -> Vec<String>
where
    T: diesel::Table + diesel::query_dsl::methods::SelectDsl<T::AllColumns>,
    <T as diesel::query_dsl::methods::SelectDsl<T::AllColumns>>::Output:
        diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    let sql = diesel::debug_query::<diesel::pg::Pg, _>(&table.select(T::all_columns())).to_string();
    let select_list = sql
        .trim_start_matches("SELECT ")
        .split(" FROM ")
        .next()
        .unwrap()
        .to_owned();
    select_list
        .split(", ")
        .map(|c| c.rsplit('.').next().unwrap().trim_matches('"').to_owned())
        .collect()
}

#[tokio::test]
async fn diesel_schema_matches_the_migrated_catalog() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.owner_conn().await;
    let tables = [
        ("tenants", diesel_columns(schema::tenants::table)),
        (
            "tenant_quotas",
            diesel_columns(schema::tenant_quotas::table),
        ),
        ("tenant_usage", diesel_columns(schema::tenant_usage::table)),
        ("audit_events", diesel_columns(schema::audit_events::table)),
        (
            "retention_runs",
            diesel_columns(schema::retention_runs::table),
        ),
        ("users", diesel_columns(schema::users::table)),
        ("api_keys", diesel_columns(schema::api_keys::table)),
        ("clusters", diesel_columns(schema::clusters::table)),
        ("instances", diesel_columns(schema::instances::table)),
        ("events", diesel_columns(schema::events::table)),
        ("members", diesel_columns(schema::members::table)),
        (
            "idempotency_keys",
            diesel_columns(schema::idempotency_keys::table),
        ),
        (
            "admin_idempotency_keys",
            diesel_columns(schema::admin_idempotency_keys::table),
        ),
        (
            "console_sessions",
            diesel_columns(schema::console_sessions::table),
        ),
        ("domains", diesel_columns(schema::domains::table)),
        (
            "webhook_endpoints",
            diesel_columns(schema::webhook_endpoints::table),
        ),
        (
            "webhook_deliveries",
            diesel_columns(schema::webhook_deliveries::table),
        ),
        (
            "platform_webhook_endpoints",
            diesel_columns(schema::platform_webhook_endpoints::table),
        ),
        (
            "platform_webhook_deliveries",
            diesel_columns(schema::platform_webhook_deliveries::table),
        ),
        (
            "usage_history",
            diesel_columns(schema::usage_history::table),
        ),
    ];
    for (table, expected) in tables {
        let columns: Vec<Column> = diesel::sql_query(
            "SELECT column_name::text AS name FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind::<Text, _>(table)
        .load(&mut conn)
        .await
        .unwrap();
        let actual: Vec<String> = columns.into_iter().map(|c| c.name).collect();
        assert_eq!(actual, expected, "{table}");
    }
}

#[derive(diesel::QueryableByName, Debug)]
struct KeyInfo {
    #[diesel(sql_type = Text)]
    primary_key: String,
    #[diesel(sql_type = Bool)]
    indexes_led_by_tenant: bool,
    #[diesel(sql_type = Bool)]
    tenant_id_is_uuid_not_null: bool,
    #[diesel(sql_type = Bool)]
    id_is_uuid: bool,
    #[diesel(sql_type = Bool)]
    has_isolation_policy: bool,
}

#[tokio::test]
async fn every_tenant_table_follows_rule_two() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.owner_conn().await;
    for table in TENANT_TABLES {
        let info: KeyInfo = diesel::sql_query(
            "SELECT
               (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                  FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = $1::regclass AND a.attnum = k.attnum
                 WHERE i.indrelid = $1::regclass AND i.indisprimary) AS primary_key,
               (SELECT bool_and(a.attname = 'tenant_id')
                  FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = $1::regclass) AS indexes_led_by_tenant,
               (SELECT atttypid = 'uuid'::regtype AND attnotnull FROM pg_attribute
                 WHERE attrelid = $1::regclass AND attname = 'tenant_id') AS tenant_id_is_uuid_not_null,
               (SELECT atttypid = 'uuid'::regtype FROM pg_attribute
                 WHERE attrelid = $1::regclass AND attname = 'id') AS id_is_uuid,
               EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = $1::regclass AND polname = 'tenant_isolation')
                 AS has_isolation_policy",
        )
        .bind::<Text, _>(table)
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(info.primary_key, "tenant_id,id", "{table}");
        assert!(
            info.indexes_led_by_tenant,
            "{table}: an index does not start with tenant_id"
        );
        assert!(info.tenant_id_is_uuid_not_null, "{table}");
        assert!(info.id_is_uuid, "{table}");
        assert!(info.has_isolation_policy, "{table}");
    }
    // And the owner, too, is subject to RLS (FORCE): with no context it sees nothing.
    conn.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        tenantry_tests::count_rows(&mut &conn, "tenants")
            .await
            .unwrap(),
        0
    );
}

#[test]
fn the_binary_embeds_exactly_the_migrations_on_disk() {
    // Guards the build script: a stale embed (e.g. from another checkout
    // sharing the target directory) would ship the wrong schema.
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql");
    let mut on_disk: Vec<String> = std::fs::read_dir(sql)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(migrate::embedded_versions(), on_disk);
}
