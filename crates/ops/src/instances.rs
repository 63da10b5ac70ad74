//! Instances: compute in a cluster. Each counts against `max_instances`,
//! and its size against the CPU, memory and storage quotas; a resize pays
//! (or gives back) only the difference.

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{ClusterId, InstanceId, Name, Resource, TenantId};
use tenantry_db::Conn;
use tenantry_db::queries::instances::{self, Size};

use crate::error::violated_constraint;
use crate::views::{InstanceView, List};
use crate::{Error, Page, TenantActor, quotas};

/// An instance to create.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub name: Name,
    pub cluster: ClusterId,
    pub size: Size,
}

/// Fields to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct InstanceChange {
    pub name: Option<Name>,
    pub cpu_cores: Option<i32>,
    pub memory_gb: Option<i32>,
    pub storage_gb: Option<i32>,
}

fn name_taken(err: diesel::result::Error) -> Error {
    match violated_constraint(&err) {
        Some((DatabaseErrorKind::UniqueViolation, "instances_tenant_name")) => {
            Error::conflict("an instance with this name already exists")
        }
        // Another tenant's cluster and a missing one are the same: absent.
        Some((DatabaseErrorKind::ForeignKeyViolation, "instances_cluster_fk")) => {
            Error::validation("cluster_id", "no such cluster")
        }
        _ => err.into(),
    }
}

fn size_of(i: &tenantry_db::models::Instance) -> Size {
    Size {
        cpu_cores: i.cpu_cores,
        memory_gb: i.memory_gb,
        storage_gb: i.storage_gb,
    }
}

fn size_event(size: Size) -> serde_json::Value {
    json!({"cpu_cores": size.cpu_cores, "memory_gb": size.memory_gb, "storage_gb": size.storage_gb})
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<InstanceView>, Error> {
    let (items, more) = instances::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |i| *i.id.as_uuid()).map(Into::into))
}

pub async fn get(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: InstanceId,
) -> Result<InstanceView, Error> {
    Ok(instances::get(conn, tenant, id).await?.into())
}

pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    new: NewInstance,
) -> Result<InstanceView, Error> {
    let tenant = who.tenant;
    let size = new.size;
    let id = InstanceId::new();
    let mut data = size_event(size);
    data["name"] = json!(new.name.as_str());
    // The row, the quota charge and the activity event do not depend on
    // each other's answers: they are sent together, in this order, and the
    // first error in that order is the answer — after an error the server
    // refuses the rest ("current transaction is aborted"), and the whole
    // rolls back. Every answer is awaited before one is picked: a
    // `try_join` answers with whichever error its polling sees first,
    // which may be a later statement's refusal (a 500) instead of the
    // row's foreign-key violation (a 422) — the likely cause of a 500
    // seen once under the full suite's load.
    let (mut c0, mut c1, mut c2): (Conn<'_>, Conn<'_>, Conn<'_>) = (&**conn, &**conn, &**conn);
    let (instance, charged, recorded) = futures_util::future::join3(
        async {
            instances::create_with_id(&mut c0, tenant, id, new.cluster, new.name.as_str(), size)
                .await
                .map_err(name_taken)
        },
        quotas::charge(&mut c1, tenant, size.footprint()),
        async {
            tenantry_db::queries::events::record(
                &mut c2,
                tenant,
                "instance.created",
                who.actor.as_str(),
                Some(*id.as_uuid()),
                data,
            )
            .await
            .map_err(Error::from)
        },
    )
    .await;
    let instance = instance?;
    charged?;
    recorded?;
    Ok(instance.into())
}

pub async fn update(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    id: InstanceId,
    change: InstanceChange,
) -> Result<InstanceView, Error> {
    let tenant = who.tenant;
    let current = instances::get_for_update(conn, tenant, id).await?;
    let before = size_of(&current);
    let size = Size {
        cpu_cores: change.cpu_cores.unwrap_or(before.cpu_cores),
        memory_gb: change.memory_gb.unwrap_or(before.memory_gb),
        storage_gb: change.storage_gb.unwrap_or(before.storage_gb),
    };
    let name = change
        .name
        .as_ref()
        .map_or(current.name.as_str(), Name::as_str);
    let updated = instances::update(conn, tenant, id, name, size)
        .await
        .map_err(name_taken)?;
    let (mut delta, previous) = (size.footprint(), before.footprint());
    for resource in [Resource::CpuCores, Resource::MemoryGb, Resource::StorageGb] {
        delta = delta.with(resource, delta.get(resource) - previous.get(resource));
    }
    quotas::charge(conn, tenant, delta.with(Resource::Instances, 0)).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "instance.updated",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        size_event(size),
    )
    .await?;
    Ok(updated.into())
}

pub async fn delete(conn: &mut Conn<'_>, who: &TenantActor, id: InstanceId) -> Result<(), Error> {
    let tenant = who.tenant;
    let deleted = instances::delete(conn, tenant, id)
        .await?
        .ok_or(Error::NotFound)?;
    quotas::charge(conn, tenant, size_of(&deleted).footprint().negated()).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "instance.deleted",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        json!({}),
    )
    .await?;
    Ok(())
}
