//! Row-level security: the tenant context, and nothing else, decides what a
//! statement sees and may write.

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use tenantry_core::TenantId;
use tenantry_db::schema::TENANT_TABLES;
use tenantry_db::{DbError, ScopedFutureExt};
use tenantry_tests::{
    TestDb, context_key, count_as, count_as_platform, count_rows, create_instances, create_tenant,
    db_message, visible_tenants,
};

const CONTROL_PLANE: &[&str] = &[
    "tenants",
    "tenant_quotas",
    "tenant_usage",
    "audit_events",
    "retention_runs",
    "admin_idempotency_keys",
    "console_sessions",
    "domains",
];

async fn two_tenants(test_db: &TestDb) -> (tenantry_db::Db, TenantId, TenantId) {
    let db = test_db.db(2);
    let a = create_tenant(&db, "tenant-a").await;
    let b = create_tenant(&db, "tenant-b").await;
    create_instances(&db, a, 3).await;
    create_instances(&db, b, 5).await;
    (db, a, b)
}

#[tokio::test]
async fn a_tenant_scope_sees_only_its_own_rows_with_no_where_clause() {
    let test_db = TestDb::new().await;
    let (db, a, b) = two_tenants(&test_db).await;
    for (tenant, expected) in [(a, 3), (b, 5)] {
        let seen = db
            .tenant(tenant)
            .run(|conn| {
                async move { Ok::<_, DbError>(visible_tenants(conn, "instances").await?) }
                    .scope_boxed()
            })
            .await
            .unwrap();
        assert_eq!(seen.len(), expected);
        assert!(seen.iter().all(|t| *t == uuid::Uuid::from(tenant)));
    }
}

#[tokio::test]
async fn without_a_tenant_context_every_tenant_table_is_empty() {
    let test_db = TestDb::new().await;
    let (_db, _a, _b) = two_tenants(&test_db).await;
    let conn = test_db.app_conn().await;
    for table in TENANT_TABLES.iter().chain(CONTROL_PLANE) {
        assert_eq!(count_rows(&mut &conn, table).await.unwrap(), 0, "{table}");
    }
}

#[tokio::test]
async fn a_connection_that_served_a_tenant_sees_nothing_once_its_transaction_ends() {
    let test_db = TestDb::new().await;
    let (_db, a, _b) = two_tenants(&test_db).await;
    let mut conn = test_db.app_conn().await;

    conn.batch_execute("BEGIN").await.unwrap();
    diesel::sql_query("SELECT set_tenant_context($1, $2)")
        .bind::<SqlUuid, _>(a)
        .bind::<diesel::sql_types::Text, _>(context_key().tenant_proof(a))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(count_rows(&mut &conn, "instances").await.unwrap(), 3);
    conn.batch_execute("COMMIT").await.unwrap();

    // The setting now exists but reads '' (not NULL): the policies' NULLIF
    // turns that into "no tenant", so zero rows and no cast error.
    assert_eq!(count_rows(&mut &conn, "instances").await.unwrap(), 0);
    conn.batch_execute("RESET app.tenant_id").await.unwrap();
    for table in TENANT_TABLES {
        assert_eq!(count_rows(&mut &conn, table).await.unwrap(), 0, "{table}");
    }
}

#[tokio::test]
async fn setting_the_context_outside_a_transaction_lasts_for_no_later_statement() {
    let test_db = TestDb::new().await;
    let (_db, a, _b) = two_tenants(&test_db).await;
    let mut conn = test_db.app_conn().await;
    // Autocommit: the SET LOCAL dies with the statement's implicit transaction.
    diesel::sql_query("SELECT set_tenant_context($1, $2)")
        .bind::<SqlUuid, _>(a)
        .bind::<diesel::sql_types::Text, _>(context_key().tenant_proof(a))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(count_rows(&mut &conn, "instances").await.unwrap(), 0);
}

#[tokio::test]
async fn a_null_tenant_context_is_refused() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    let err = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            diesel::sql_query("SELECT set_tenant_context(NULL, 'x')")
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(db_message(&err).contains("must not be null"), "{err}");
}

#[tokio::test]
async fn inserting_a_row_for_another_tenant_is_refused() {
    let test_db = TestDb::new().await;
    let (db, a, b) = two_tenants(&test_db).await;
    let err = db
        .tenant(a)
        .run(|conn| {
            async move {
                diesel::sql_query(
                    "INSERT INTO users (tenant_id, id, email) VALUES ($1, $2, 'x@b.test')",
                )
                .bind::<SqlUuid, _>(b)
                .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::Query(e) if db_message(e).contains("row-level security")),
        "{err}"
    );
    let in_b = count_as(&db, b, "users").await;
    assert_eq!(in_b, 0);
}

#[tokio::test]
async fn moving_a_row_to_another_tenant_is_refused() {
    let test_db = TestDb::new().await;
    let (db, a, b) = two_tenants(&test_db).await;
    let err = db
        .tenant(a)
        .run(|conn| {
            async move {
                diesel::sql_query("UPDATE clusters SET tenant_id = $1")
                    .bind::<SqlUuid, _>(b)
                    .execute(conn)
                    .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap_err();
    // Citus refuses the change of a distribution column before RLS is asked.
    assert!(
        matches!(&err, DbError::Query(e) if db_message(e).contains("row-level security")
            || (tenantry_tests::citus() && db_message(e).contains("modifying the partition value"))),
        "{err}"
    );
    let clusters_of_a = count_as(&db, a, "clusters").await;
    assert_eq!(clusters_of_a, 1);
}

#[tokio::test]
async fn an_instance_cannot_point_at_another_tenants_cluster() {
    let test_db = TestDb::new().await;
    let (db, a, b) = two_tenants(&test_db).await;
    let cluster_of_b = db
        .tenant(b)
        .run(|conn| {
            async move {
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                }
                let row: Id = diesel::sql_query("SELECT id FROM clusters")
                    .get_result(conn)
                    .await?;
                Ok::<_, DbError>(row.id)
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let err = db
        .tenant(a)
        .run(|conn| {
            async move {
                diesel::sql_query(
                    "INSERT INTO instances (tenant_id, id, cluster_id, name, cpu_cores, memory_gb)
                     VALUES ($1, $2, $3, 'sneaky', 1, 1)",
                )
                .bind::<SqlUuid, _>(a)
                .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                .bind::<SqlUuid, _>(cluster_of_b)
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::Query(e) if db_message(e).contains("foreign key")),
        "{err}"
    );
}

#[tokio::test]
async fn an_unfiltered_delete_in_one_tenant_leaves_every_other_tenant_untouched() {
    let test_db = TestDb::new().await;
    let (db, a, b) = two_tenants(&test_db).await;
    let deleted = db
        .tenant(a)
        .run(|conn| {
            async move {
                Ok::<_, DbError>(
                    diesel::sql_query("DELETE FROM instances")
                        .execute(conn)
                        .await?,
                )
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    let left_in_b = count_as(&db, b, "instances").await;
    assert_eq!(left_in_b, 5);
}

#[tokio::test]
async fn a_tenant_reads_its_own_registry_row_and_no_other() {
    let test_db = TestDb::new().await;
    let (db, a, _b) = two_tenants(&test_db).await;
    let seen = db
        .tenant(a)
        .run(|conn| {
            async move {
                #[derive(diesel::QueryableByName)]
                struct Id {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                }
                let rows: Vec<Id> = diesel::sql_query("SELECT id FROM tenants")
                    .load(conn)
                    .await?;
                Ok::<_, DbError>(rows.into_iter().map(|r| r.id).collect::<Vec<_>>())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(seen, vec![uuid::Uuid::from(a)]);
}

#[tokio::test]
async fn the_platform_context_opens_the_registry_but_no_tenant_rows() {
    let test_db = TestDb::new().await;
    let (db, _a, _b) = two_tenants(&test_db).await;
    let tenants = count_as_platform(&db, "tenants").await;
    let instances = count_as_platform(&db, "instances").await;
    assert_eq!((tenants, instances), (2, 0));
}

#[tokio::test]
async fn a_tenant_cannot_change_its_own_quota() {
    let test_db = TestDb::new().await;
    let (db, a, _b) = two_tenants(&test_db).await;
    db.platform()
        .run(|conn| {
            async move {
                diesel::sql_query(
                    "INSERT INTO tenant_quotas (tenant_id, max_users, max_api_keys, max_clusters, max_instances,
                         max_cpu_cores, max_memory_gb, max_storage_gb, requests_per_second, burst)
                     VALUES ($1, 1, 1, 1, 1, 1, 1, 1, 1, 1)",
                )
                .bind::<SqlUuid, _>(a)
                .execute(conn)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    let updated = db
        .tenant(a)
        .run(|conn| {
            async move {
                Ok::<_, DbError>(
                    diesel::sql_query("UPDATE tenant_quotas SET max_users = 1000")
                        .execute(conn)
                        .await?,
                )
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    assert_eq!(updated, 0, "the tenant's policy is read-only on quotas");
}
