//! `/v1/admin/...`: the platform-admin plane. Every handler takes a
//! `PlatformAdmin`; control-plane work runs in the platform scope, work on
//! one tenant's data in that tenant's own scope.

pub mod audit;
pub mod placement;
pub mod quotas;
pub mod retention;
pub mod tenants;

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::{TenantId, TenantStatus};
use tenantry_db::models::Tenant;
use tenantry_db::{AsyncPgConnection, queries};

use crate::ApiError;

/// The tenant resource of the admin API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub legal_hold: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the sweeper may purge this deleted tenant's data (none while on
    /// legal hold).
    pub purge_after: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
}

impl TenantView {
    pub fn new(tenant: Tenant, retention: std::time::Duration) -> Self {
        let purge_after = match (tenant.deleted_at, tenant.purged_at, tenant.legal_hold) {
            (Some(deleted), None, false) => chrono::Duration::from_std(retention)
                .ok()
                .and_then(|period| deleted.checked_add_signed(period)),
            _ => None,
        };
        Self {
            id: tenant.id,
            slug: tenant.slug,
            name: tenant.name,
            status: tenant.status,
            legal_hold: tenant.legal_hold,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            deleted_at: tenant.deleted_at,
            purge_after,
            purged_at: tenant.purged_at,
        }
    }
}

/// `{id_or_slug}`: a key that parses as a UUID, in any form, is only ever
/// an id; anything else only ever a slug. Unambiguous because no slug
/// parses as a UUID (`Slug::parse`, and the `tenants_slug_not_uuid` CHECK).
pub async fn resolve(conn: &mut AsyncPgConnection, key: &str) -> Result<Tenant, ApiError> {
    match key.parse::<TenantId>() {
        Ok(id) => Ok(queries::tenants::get(conn, id).await?),
        Err(_) => Ok(queries::tenants::find_by_slug(conn, key).await?),
    }
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
