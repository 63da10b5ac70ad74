//! A pooled connection never carries one unit of work's tenant into another:
//! not after a commit, an error, a panic, or a future dropped mid-transaction.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;
use tenantry_db::{Db, DbError, ScopedFutureExt};
use tenantry_tests::{
    TestDb, count_as, count_rows, create_instances, create_tenant, visible_tenants,
};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Read, check, commit.
    Commit,
    /// Read, check, write an event, then return an error: must roll back.
    Fail,
    /// Read, check, write an event, then panic: must roll back.
    Panic,
    /// Read, check, write an event, then stall until the caller drops the
    /// future: must roll back.
    Stall,
}

#[derive(Debug, thiserror::Error)]
enum UnitError {
    #[error("deliberate failure")]
    Deliberate,
    #[error("unit for {tenant} saw {seen:?} (expected {expected} rows of its own)")]
    Leak {
        tenant: TenantId,
        seen: Vec<uuid::Uuid>,
        expected: usize,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for UnitError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

async fn tenant_unit(
    db: &Db,
    tenant: TenantId,
    expected: usize,
    outcome: Outcome,
) -> Result<(), UnitError> {
    db.tenant(tenant)
        .run(move |conn| {
            async move {
                let seen = visible_tenants(conn, "instances").await?;
                if seen.len() != expected || seen.iter().any(|t| *t != uuid::Uuid::from(tenant)) {
                    return Err(UnitError::Leak { tenant, seen, expected });
                }
                if outcome == Outcome::Commit {
                    return Ok(());
                }
                diesel::sql_query(
                    "INSERT INTO events (tenant_id, id, kind, actor) VALUES ($1, $2, 'must.roll.back', 'test')",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                .execute(conn)
                .await?;
                match outcome {
                    Outcome::Fail => Err(UnitError::Deliberate),
                    Outcome::Panic => panic!("deliberate panic inside a tenant transaction"),
                    Outcome::Stall => {
                        diesel::sql_query("SELECT pg_sleep(0.5)").execute(conn).await?;
                        Ok(())
                    }
                    Outcome::Commit => Ok(()),
                }
            }
            .scope_boxed()
        })
        .await
}

/// A platform-context unit on a connection that may just have served a
/// tenant: tenant tables must read empty.
async fn platform_unit(db: &Db) -> Result<(), UnitError> {
    let (instances, events) = db
        .platform()
        .run(|conn| {
            async move {
                Ok::<_, DbError>((
                    count_rows(conn, "instances").await?,
                    count_rows(conn, "events").await?,
                ))
            }
            .scope_boxed()
        })
        .await?;
    if instances != 0 || events != 0 {
        return Err(UnitError::Leak {
            tenant: TenantId::from_uuid(uuid::Uuid::nil()),
            seen: Vec::new(),
            expected: 0,
        });
    }
    Ok(())
}

struct Fixture {
    db: Db,
    tenants: [(TenantId, usize); 2],
}

async fn fixture(test_db: &TestDb) -> Fixture {
    let db = test_db.db(2);
    let a = create_tenant(&db, "tenant-a").await;
    let b = create_tenant(&db, "tenant-b").await;
    create_instances(&db, a, 3).await;
    create_instances(&db, b, 5).await;
    Fixture {
        db,
        tenants: [(a, 3), (b, 5)],
    }
}

/// Nothing that failed, panicked or was dropped left a row behind.
async fn assert_nothing_committed_by_failed_units(f: &Fixture) {
    for (tenant, _) in f.tenants {
        let events = count_as(&f.db, tenant, "events").await;
        assert_eq!(events, 0, "a failed unit's write survived for {tenant}");
    }
}

fn silence_deliberate_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("deliberate panic") {
            default(info);
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_units_alternating_tenants_see_only_their_own_rows() {
    let test_db = TestDb::new().await;
    let f = fixture(&test_db).await;
    assert_eq!(f.db.status().max_size, 2);
    for i in 0..1000 {
        let (tenant, expected) = f.tenants[i % 2];
        let outcome = if i % 7 == 0 {
            Outcome::Fail
        } else {
            Outcome::Commit
        };
        match (outcome, tenant_unit(&f.db, tenant, expected, outcome).await) {
            (Outcome::Commit, Ok(())) | (Outcome::Fail, Err(UnitError::Deliberate)) => {}
            (_, other) => panic!("unit {i}: {other:?}"),
        }
        if i % 50 == 0 {
            platform_unit(&f.db).await.unwrap();
        }
    }
    assert_nothing_committed_by_failed_units(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_units_that_fail_panic_or_are_dropped_never_leak_a_tenant() {
    silence_deliberate_panics();
    let test_db = TestDb::new().await;
    let f = Arc::new(fixture(&test_db).await);
    let permits = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::with_capacity(1000);
    for i in 0..1000_usize {
        let f = Arc::clone(&f);
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        let (tenant, expected) = f.tenants[i % 2];
        let kind = i % 10;
        tasks.push((
            kind,
            tokio::spawn(async move {
                let _permit = permit;
                match kind {
                    0 => tenant_unit(&f.db, tenant, expected, Outcome::Fail)
                        .await
                        .map(|()| "ok"),
                    1 => tenant_unit(&f.db, tenant, expected, Outcome::Panic)
                        .await
                        .map(|()| "ok"),
                    2 => match tokio::time::timeout(
                        Duration::from_millis(30),
                        tenant_unit(&f.db, tenant, expected, Outcome::Stall),
                    )
                    .await
                    {
                        Err(_elapsed) => Ok("dropped"),
                        Ok(result) => result.map(|()| "ok"),
                    },
                    3 => platform_unit(&f.db).await.map(|()| "ok"),
                    _ => tenant_unit(&f.db, tenant, expected, Outcome::Commit)
                        .await
                        .map(|()| "ok"),
                }
            }),
        ));
    }
    let (mut panicked, mut dropped, mut failed, mut fine) = (0, 0, 0, 0);
    for (kind, task) in tasks {
        match (kind, task.await) {
            (1, Err(join)) if join.is_panic() => panicked += 1,
            (0, Ok(Err(UnitError::Deliberate))) => failed += 1,
            (2, Ok(Ok("dropped"))) => dropped += 1,
            (k, Ok(Ok("ok"))) if k >= 3 => fine += 1,
            (k, other) => panic!("unit of kind {k}: {other:?}"),
        }
    }
    assert_eq!((failed, panicked, dropped, fine), (100, 100, 100, 700));
    assert!(f.db.status().size <= 2);

    // The pool is still healthy and still clean.
    for i in 0..100 {
        let (tenant, expected) = f.tenants[i % 2];
        tenant_unit(&f.db, tenant, expected, Outcome::Commit)
            .await
            .unwrap();
    }
    platform_unit(&f.db).await.unwrap();
    assert_nothing_committed_by_failed_units(&f).await;
}

#[derive(diesel::QueryableByName)]
struct SessionSettings {
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement_timeout: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    idle_in_transaction_session_timeout: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    application_name: String,
}

#[tokio::test]
async fn every_pooled_connection_carries_the_configured_session_limits() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2);
    let tenant = create_tenant(&db, "acme").await;
    let settings = db
        .tenant(tenant)
        .run(|conn| {
            async move {
                Ok::<_, DbError>(
                    diesel::sql_query(
                        "SELECT current_setting('statement_timeout') AS statement_timeout,
                                current_setting('idle_in_transaction_session_timeout')
                                    AS idle_in_transaction_session_timeout,
                                current_setting('application_name') AS application_name",
                    )
                    .get_result::<SessionSettings>(conn)
                    .await?,
                )
            }
            .scope_boxed()
        })
        .await
        .unwrap();
    // TestDb::settings: 5 s statement timeout, 10 s idle-in-transaction.
    assert_eq!(settings.statement_timeout, "5s");
    assert_eq!(settings.idle_in_transaction_session_timeout, "10s");
    assert_eq!(settings.application_name, "tenantry-test");
}
