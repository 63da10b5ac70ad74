use crate::Conn;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{ClusterId, TenantId};

use crate::models::{Cluster, Page};
use crate::schema::clusters;

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<Cluster>, bool)> {
    let mut query = clusters::table
        .filter(clusters::tenant_id.eq(tenant))
        .select(Cluster::as_select())
        .order(clusters::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(clusters::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: ClusterId) -> QueryResult<Cluster> {
    clusters::table
        .filter(clusters::tenant_id.eq(tenant).and(clusters::id.eq(id)))
        .select(Cluster::as_select())
        .first(conn)
        .await
}

pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    name: &str,
    region: &str,
) -> QueryResult<Cluster> {
    diesel::insert_into(clusters::table)
        .values((
            clusters::tenant_id.eq(tenant),
            clusters::id.eq(ClusterId::new()),
            clusters::name.eq(name),
            clusters::region.eq(region),
        ))
        .returning(Cluster::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut Conn<'_>, tenant: TenantId, id: ClusterId) -> QueryResult<bool> {
    let n = diesel::delete(
        clusters::table.filter(clusters::tenant_id.eq(tenant).and(clusters::id.eq(id))),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}
