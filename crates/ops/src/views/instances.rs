use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::{ClusterId, InstanceId};
use tenantry_db::models::Instance;

/// Compute in a cluster; its size is charged to the tenant's quota.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: InstanceId,
    pub cluster_id: ClusterId,
    /// Unique within the tenant.
    pub name: String,
    pub cpu_cores: i32,
    pub memory_gb: i32,
    pub storage_gb: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Instance> for InstanceView {
    fn from(i: Instance) -> Self {
        Self {
            id: i.id,
            cluster_id: i.cluster_id,
            name: i.name,
            cpu_cores: i.cpu_cores,
            memory_gb: i.memory_gb,
            storage_gb: i.storage_gb,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}
