use crate::Conn;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{Amounts, ClusterId, InstanceId, Resource, TenantId};

use crate::models::{Instance, Page};
use crate::schema::instances;

/// What an instance asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
}

impl Size {
    /// What one instance of this size counts against the quotas.
    #[must_use]
    pub fn footprint(&self) -> Amounts {
        Amounts::default()
            .with(Resource::Instances, 1)
            .with(Resource::CpuCores, self.cpu_cores.into())
            .with(Resource::MemoryGb, self.memory_gb.into())
            .with(Resource::StorageGb, self.storage_gb.into())
    }
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<Instance>, bool)> {
    let mut query = instances::table
        .filter(instances::tenant_id.eq(tenant))
        .select(Instance::as_select())
        .order(instances::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(instances::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: InstanceId) -> QueryResult<Instance> {
    instances::table
        .filter(instances::tenant_id.eq(tenant).and(instances::id.eq(id)))
        .select(Instance::as_select())
        .first(conn)
        .await
}

/// The instance, row-locked until the transaction ends: a resize computes
/// its quota delta from a size no concurrent resize can change meanwhile.
pub async fn get_for_update(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: InstanceId,
) -> QueryResult<Instance> {
    instances::table
        .filter(instances::tenant_id.eq(tenant).and(instances::id.eq(id)))
        .select(Instance::as_select())
        .for_update()
        .first(conn)
        .await
}

pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    cluster: ClusterId,
    name: &str,
    size: Size,
) -> QueryResult<Instance> {
    create_with_id(conn, tenant, InstanceId::new(), cluster, name, size).await
}

/// [`create`] with the id chosen by the caller (so statements that name the
/// new instance can be sent with it, in one flight).
pub async fn create_with_id(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: InstanceId,
    cluster: ClusterId,
    name: &str,
    size: Size,
) -> QueryResult<Instance> {
    diesel::insert_into(instances::table)
        .values((
            instances::tenant_id.eq(tenant),
            instances::id.eq(id),
            instances::cluster_id.eq(cluster),
            instances::name.eq(name),
            instances::cpu_cores.eq(size.cpu_cores),
            instances::memory_gb.eq(size.memory_gb),
            instances::storage_gb.eq(size.storage_gb),
        ))
        .returning(Instance::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: InstanceId,
    name: &str,
    size: Size,
) -> QueryResult<Instance> {
    diesel::update(
        instances::table.filter(instances::tenant_id.eq(tenant).and(instances::id.eq(id))),
    )
    .set((
        instances::name.eq(name),
        instances::cpu_cores.eq(size.cpu_cores),
        instances::memory_gb.eq(size.memory_gb),
        instances::storage_gb.eq(size.storage_gb),
        instances::updated_at.eq(Utc::now()),
    ))
    .returning(Instance::as_returning())
    .get_result(conn)
    .await
}

pub async fn delete(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: InstanceId,
) -> QueryResult<Option<Instance>> {
    diesel::delete(
        instances::table.filter(instances::tenant_id.eq(tenant).and(instances::id.eq(id))),
    )
    .returning(Instance::as_returning())
    .get_result(conn)
    .await
    .optional()
}
