//! A tenant's settings document: one row per tenant (the unique index
//! `tenant_settings_one_per_tenant`), `version` counting its writes. Run in
//! the tenant's own scope; the operations layer validates the document and
//! audits the change in the same transaction.

use crate::Conn;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::TenantId;

use crate::models::TenantSettings;
use crate::schema::tenant_settings;

/// The tenant's settings, `None` before the first write.
pub async fn get(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Option<TenantSettings>> {
    tenant_settings::table
        .filter(tenant_settings::tenant_id.eq(tenant))
        .select(TenantSettings::as_select())
        .first(conn)
        .await
        .optional()
}

/// As [`get`], the row locked until the transaction ends: the version a
/// write compares against cannot move under it.
pub async fn get_for_update(
    conn: &mut Conn<'_>,
    tenant: TenantId,
) -> QueryResult<Option<TenantSettings>> {
    tenant_settings::table
        .filter(tenant_settings::tenant_id.eq(tenant))
        .select(TenantSettings::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Writes the document as `version`: inserts the row (the first write) or
/// updates it. A concurrent first write loses on the unique index
/// (`tenant_settings_one_per_tenant`); a concurrent later one waits on the
/// row lock of [`get_for_update`].
pub async fn put(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    version: i32,
    document: &serde_json::Value,
    updated_by: &str,
) -> QueryResult<TenantSettings> {
    if version == 1 {
        return insert(conn, tenant, version, document, updated_by).await;
    }
    diesel::update(tenant_settings::table.filter(tenant_settings::tenant_id.eq(tenant)))
        .set((
            tenant_settings::version.eq(version),
            tenant_settings::document.eq(document),
            tenant_settings::updated_at.eq(diesel::dsl::now),
            tenant_settings::updated_by.eq(updated_by),
        ))
        .returning(TenantSettings::as_returning())
        .get_result(conn)
        .await
}

/// Inserts the tenant's row as `version` (a first write, or an imported
/// document with its version into a tenant that has none yet).
pub async fn insert(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    version: i32,
    document: &serde_json::Value,
    updated_by: &str,
) -> QueryResult<TenantSettings> {
    diesel::insert_into(tenant_settings::table)
        .values((
            tenant_settings::tenant_id.eq(tenant),
            tenant_settings::id.eq(uuid::Uuid::now_v7()),
            tenant_settings::version.eq(version),
            tenant_settings::document.eq(document),
            tenant_settings::updated_by.eq(updated_by),
        ))
        .returning(TenantSettings::as_returning())
        .get_result(conn)
        .await
}
