use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::ApiKeyId;
use tenantry_db::models::ApiKey;

/// A long-lived key the tenant exchanges for short-lived tokens. Its
/// secret is never shown again after creation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the tokens it is exchanged for may do (never more than its
    /// creator could).
    pub scopes: Vec<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        let scopes = crate::api_keys::stored_scopes(k.scopes.as_deref())
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        Self {
            scopes,
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub scopes: Vec<String>,
    /// Exchange it at `POST /v1/auth/token`; store it now, it is not shown again.
    pub secret: String,
}
