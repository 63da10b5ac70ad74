use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::TenantId;
use tenantry_db::models::AuditEntry;

/// Something that happened to a tenant: its own activity or an operator's
/// action on it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: uuid::Uuid,
    /// e.g. `instance.created`, `tenant.suspend`.
    pub kind: String,
    pub actor: String,
    pub subject: Option<uuid::Uuid>,
    /// What changed; its keys depend on `kind`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// One entry of the audit log: who did what to which tenant, with the
/// state before and after.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: uuid::Uuid,
    pub tenant_id: Option<TenantId>,
    /// The token's subject, or `cli:<user>@<host>` for the command line.
    pub actor: String,
    /// e.g. `tenant.created`, `tenant.suspend`, `quota.updated`.
    pub action: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(a: AuditEntry) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            actor: a.actor,
            action: a.action,
            before: a.before,
            after: a.after,
            reason: a.reason,
            at: a.at,
        }
    }
}
