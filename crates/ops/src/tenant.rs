//! The caller's own tenant, on the tenant plane.

use tenantry_core::TenantId;
use tenantry_db::Conn;
use tenantry_db::queries;

use crate::Error;
use crate::views::{OwnTenantView, QuotasView};

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId) -> Result<OwnTenantView, Error> {
    Ok(queries::tenants::get(conn, tenant).await?.into())
}

/// Limits, usage and what is over its limit.
pub async fn quotas(conn: &mut Conn<'_>, tenant: TenantId) -> Result<QuotasView, Error> {
    let origin = queries::plans::origin(conn, tenant).await?;
    match (
        queries::tenants::limits_and_usage(conn, tenant).await?,
        origin,
    ) {
        ((Some(limits), Some(usage)), Some(origin)) => Ok(QuotasView::new(limits, usage, &origin)),
        _ => Err(Error::NotFound),
    }
}
