//! Quota reconciliation: recompute usage from the rows and report (or fix)
//! drift. Each tenant is checked in its own scope with its usage row locked
//! first: writers insert, then lock that row to pay, so a write in flight
//! is neither double-counted nor lost.

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use scoped_futures::ScopedFutureExt;
use tenantry_core::TenantId;
use tenantry_core::quota::{Amounts, Resource};

use crate::models::{Page, Usage};
use crate::queries;
use crate::{Db, DbError};

/// One resource of one tenant whose recorded usage differs from its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub tenant: TenantId,
    pub slug: String,
    pub resource: &'static str,
    pub recorded: i64,
    pub actual: i64,
}

#[derive(QueryableByName)]
struct Actual {
    #[diesel(sql_type = BigInt)]
    users: i64,
    #[diesel(sql_type = BigInt)]
    api_keys: i64,
    #[diesel(sql_type = BigInt)]
    clusters: i64,
    #[diesel(sql_type = BigInt)]
    instances: i64,
    #[diesel(sql_type = BigInt)]
    cpu_cores: i64,
    #[diesel(sql_type = BigInt)]
    memory_gb: i64,
    #[diesel(sql_type = BigInt)]
    storage_gb: i64,
}

/// Checks every tenant that still has data; with `fix`, sets each drifting
/// usage row to what its rows add up to, audited as `quota.reconciled` by
/// `actor` with the recorded and the actual usage.
pub async fn reconcile(db: &Db, fix: bool, actor: &str) -> Result<Vec<Drift>, DbError> {
    let mut drifts = Vec::new();
    let mut after = None;
    loop {
        let page = Page { limit: 100, after };
        let (tenants, more) = db
            .platform()
            .run(|conn| {
                async move { Ok::<_, DbError>(queries::tenants::list(conn, None, page).await?) }
                    .scope_boxed()
            })
            .await?;
        for tenant in &tenants {
            if tenant.purged_at.is_some() {
                continue;
            }
            let (id, slug, actor) = (tenant.id, tenant.slug.clone(), actor.to_owned());
            let found = db
                .tenant(id)
                .run(|conn| {
                    async move {
                        let recorded: Option<Usage> = sql_query(
                            "SELECT users, api_keys, clusters, instances, cpu_cores, memory_gb, storage_gb
                               FROM tenant_usage WHERE tenant_id = $1 FOR UPDATE",
                        )
                        .bind::<SqlUuid, _>(id)
                        .get_result::<Usage>(conn)
                        .await
                        .optional()?;
                        let Some(recorded) = recorded else {
                            return Ok::<_, DbError>(Vec::new());
                        };
                        let actual: Actual = sql_query(
                            "SELECT (SELECT count(*) FROM users WHERE tenant_id = $1) AS users,
                                    (SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL) AS api_keys,
                                    (SELECT count(*) FROM clusters WHERE tenant_id = $1) AS clusters,
                                    (SELECT count(*) FROM instances WHERE tenant_id = $1) AS instances,
                                    (SELECT coalesce(sum(cpu_cores), 0)::bigint FROM instances WHERE tenant_id = $1) AS cpu_cores,
                                    (SELECT coalesce(sum(memory_gb), 0)::bigint FROM instances WHERE tenant_id = $1) AS memory_gb,
                                    (SELECT coalesce(sum(storage_gb), 0)::bigint FROM instances WHERE tenant_id = $1) AS storage_gb",
                        )
                        .bind::<SqlUuid, _>(id)
                        .get_result(conn)
                        .await?;
                        let actual = Amounts::default()
                            .with(Resource::Users, actual.users)
                            .with(Resource::ApiKeys, actual.api_keys)
                            .with(Resource::Clusters, actual.clusters)
                            .with(Resource::Instances, actual.instances)
                            .with(Resource::CpuCores, actual.cpu_cores)
                            .with(Resource::MemoryGb, actual.memory_gb)
                            .with(Resource::StorageGb, actual.storage_gb);
                        let recorded = recorded.amounts();
                        let found: Vec<Drift> = Resource::ALL
                            .into_iter()
                            .filter(|r| recorded.get(*r) != actual.get(*r))
                            .map(|r| Drift {
                                tenant: id,
                                slug: slug.clone(),
                                resource: r.as_str(),
                                recorded: recorded.get(r),
                                actual: actual.get(r),
                            })
                            .collect();
                        if fix && !found.is_empty() {
                            queries::export::recompute_usage(conn, id).await?;
                            // The account's sum moves by the same amounts.
                            let delta = Resource::ALL.into_iter().fold(Amounts::default(), |d, r| {
                                d.with(r, actual.get(r) - recorded.get(r))
                            });
                            queries::accounts::adjust(conn, id, delta).await?;
                            // Audited in the same transaction, as every change is.
                            let side = |value: fn(&Drift) -> i64| {
                                found
                                    .iter()
                                    .map(|d| (d.resource.to_owned(), serde_json::json!(value(d))))
                                    .collect::<serde_json::Map<_, _>>()
                            };
                            queries::audit::record(
                                conn,
                                Some(id),
                                &actor,
                                "quota.reconciled",
                                Some(serde_json::Value::Object(side(|d| d.recorded))),
                                Some(serde_json::Value::Object(side(|d| d.actual))),
                                None,
                            )
                            .await?;
                        }
                        Ok(found)
                    }
                    .scope_boxed()
                })
                .await?;
            drifts.extend(found);
        }
        match (more, tenants.last()) {
            (true, Some(last)) => after = Some(*last.id.as_uuid()),
            _ => break,
        }
    }
    Ok(drifts)
}
