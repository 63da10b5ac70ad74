//! Clusters: where instances run. Names unique within the tenant; each
//! counts against `max_clusters`.

use diesel::result::DatabaseErrorKind;
use serde_json::json;
use tenantry_core::{ClusterId, Name, Region, Resource, TenantId};
use tenantry_db::Conn;
use tenantry_db::queries::clusters;

use crate::error::on_constraint;
use crate::views::{ClusterView, List};
use crate::{Error, Page, TenantActor, quotas};

/// A cluster to create.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub name: Name,
    pub region: Region,
}

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> Result<List<ClusterView>, Error> {
    let (items, more) = clusters::list(conn, tenant, page).await?;
    Ok(List::new(items, more, |c| *c.id.as_uuid()).map(Into::into))
}

pub async fn get(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: ClusterId,
) -> Result<ClusterView, Error> {
    Ok(clusters::get(conn, tenant, id).await?.into())
}

pub async fn create(
    conn: &mut Conn<'_>,
    who: &TenantActor,
    new: NewCluster,
) -> Result<ClusterView, Error> {
    let tenant = who.tenant;
    let cluster = clusters::create(conn, tenant, new.name.as_str(), new.region.as_str())
        .await
        .map_err(|e| {
            on_constraint(
                e,
                DatabaseErrorKind::UniqueViolation,
                "clusters_tenant_name",
                || Error::conflict("a cluster with this name already exists"),
            )
        })?;
    quotas::charge(conn, tenant, quotas::one(Resource::Clusters)).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "cluster.created",
        who.actor.as_str(),
        Some(*cluster.id.as_uuid()),
        json!({"name": cluster.name}),
    )
    .await?;
    Ok(cluster.into())
}

/// Refused (`409`) while the cluster still has instances.
pub async fn delete(conn: &mut Conn<'_>, who: &TenantActor, id: ClusterId) -> Result<(), Error> {
    let tenant = who.tenant;
    let deleted = clusters::delete(conn, tenant, id).await.map_err(|e| {
        on_constraint(
            e,
            DatabaseErrorKind::ForeignKeyViolation,
            "instances_cluster_fk",
            || Error::conflict("the cluster still has instances; delete them first"),
        )
    })?;
    if !deleted {
        return Err(Error::NotFound);
    }
    quotas::charge(conn, tenant, quotas::one(Resource::Clusters).negated()).await?;
    tenantry_db::queries::events::record(
        conn,
        tenant,
        "cluster.deleted",
        who.actor.as_str(),
        Some(*id.as_uuid()),
        json!({}),
    )
    .await?;
    Ok(())
}
