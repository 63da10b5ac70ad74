//! Quota accounting: usage changes in the SAME transaction as the write it
//! pays for, checked and applied by ONE conditional UPDATE, so concurrent
//! requests on any number of replicas serialise on the tenant's usage row
//! and N racers against a limit of L yield exactly L successes. The
//! tenant's account is charged right after, on its own usage row, in the
//! same transaction (`accounts::consume`), and the charge is added to the
//! usage history's counters of its period (`usage::record`).

use super::fixed::{Bind, Fixed};
use crate::Conn;
use diesel::sql_types::Uuid as SqlUuid;
use diesel::{OptionalExtension, QueryResult, QueryableByName};
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;
use tenantry_core::quota::{Amounts, Exceeded, Resource, fits};

use crate::models::{Limits, Usage};

impl Limits {
    #[must_use]
    pub fn amounts(&self) -> Amounts {
        Amounts::default()
            .with(Resource::Users, self.max_users.into())
            .with(Resource::ApiKeys, self.max_api_keys.into())
            .with(Resource::Clusters, self.max_clusters.into())
            .with(Resource::Instances, self.max_instances.into())
            .with(Resource::CpuCores, self.max_cpu_cores.into())
            .with(Resource::MemoryGb, self.max_memory_gb.into())
            .with(Resource::StorageGb, self.max_storage_gb.into())
    }
}

impl Usage {
    #[must_use]
    pub fn amounts(&self) -> Amounts {
        Amounts::default()
            .with(Resource::Users, self.users.into())
            .with(Resource::ApiKeys, self.api_keys.into())
            .with(Resource::Clusters, self.clusters.into())
            .with(Resource::Instances, self.instances.into())
            .with(Resource::CpuCores, self.cpu_cores.into())
            .with(Resource::MemoryGb, self.memory_gb.into())
            .with(Resource::StorageGb, self.storage_gb.into())
    }
}

#[derive(QueryableByName)]
struct Touched {
    #[diesel(sql_type = SqlUuid)]
    #[expect(dead_code, reason = "only its presence matters")]
    tenant_id: uuid::Uuid,
}

/// `first`, then the seven deltas in `Resource::ALL`'s column order.
pub(crate) fn deltas(first: Bind, delta: &Amounts) -> Vec<Bind> {
    let mut binds = vec![first];
    binds.extend(Resource::ALL.map(|r| Bind::BigInt(delta.get(r))));
    binds
}

/// Takes `delta` from the tenant's quota (negative amounts give back).
/// Growth beyond a limit is refused and changes nothing; giving back always
/// succeeds (and never takes usage below zero).
pub async fn consume(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    delta: Amounts,
) -> QueryResult<Result<(), Exceeded>> {
    if delta.is_zero() {
        return Ok(Ok(()));
    }
    /// The charge's statement-cache key.
    struct ConsumeTenant;
    let touched: Option<Touched> = Fixed::<ConsumeTenant>::new(
        "UPDATE tenant_usage u SET
             users      = GREATEST(u.users + $2, 0),
             api_keys   = GREATEST(u.api_keys + $3, 0),
             clusters   = GREATEST(u.clusters + $4, 0),
             instances  = GREATEST(u.instances + $5, 0),
             cpu_cores  = GREATEST(u.cpu_cores + $6, 0),
             memory_gb  = GREATEST(u.memory_gb + $7, 0),
             storage_gb = GREATEST(u.storage_gb + $8, 0),
             updated_at = now()
           FROM tenant_quotas q
          WHERE u.tenant_id = $1 AND q.tenant_id = u.tenant_id
            AND ($2 <= 0 OR u.users + $2 <= q.max_users)
            AND ($3 <= 0 OR u.api_keys + $3 <= q.max_api_keys)
            AND ($4 <= 0 OR u.clusters + $4 <= q.max_clusters)
            AND ($5 <= 0 OR u.instances + $5 <= q.max_instances)
            AND ($6 <= 0 OR u.cpu_cores + $6 <= q.max_cpu_cores)
            AND ($7 <= 0 OR u.memory_gb + $7 <= q.max_memory_gb)
            AND ($8 <= 0 OR u.storage_gb + $8 <= q.max_storage_gb)
      RETURNING u.tenant_id",
        deltas(Bind::Uuid(tenant.into()), &delta),
    )
    .get_result(conn)
    .await
    .optional()?;
    if touched.is_some() {
        // The account's quota, in the same transaction: refused there, the
        // caller rolls back (as on a refusal here), the tenant's charge
        // with it.
        let charged = super::accounts::consume(conn, tenant, delta).await?;
        if charged.is_ok() {
            // The usage history's counters of this period, in the same
            // transaction (sql/0015): what billing reconciles with.
            super::usage::record(conn, tenant, delta).await?;
        }
        return Ok(charged);
    }
    // Refused: say which resource, from the row as it stands now.
    let (limits, usage) = super::tenants::limits_and_usage(conn, tenant).await?;
    let (limits, usage) = match (limits, usage) {
        (Some(l), Some(u)) => (l.amounts(), u.amounts()),
        _ => (Amounts::default(), Amounts::default()),
    };
    Ok(Err(fits(&limits, &usage, &delta).err().unwrap_or_else(
        || {
            // Usage moved between the UPDATE and this read; report the first
            // resource asked for.
            let resource = tenantry_core::Resource::ALL
                .into_iter()
                .find(|r| delta.get(*r) > 0)
                .unwrap_or(Resource::Users);
            Exceeded {
                resource,
                limit: limits.get(resource),
                used: usage.get(resource),
                requested: delta.get(resource),
            }
        },
    )))
}
