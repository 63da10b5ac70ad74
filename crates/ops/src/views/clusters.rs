use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::ClusterId;
use tenantry_db::models::Cluster;

/// Where instances run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub id: ClusterId,
    /// Unique within the tenant.
    pub name: String,
    pub region: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Cluster> for ClusterView {
    fn from(c: Cluster) -> Self {
        Self {
            id: c.id,
            name: c.name,
            region: c.region,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}
