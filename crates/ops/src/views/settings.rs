use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_db::models::TenantSettings;

/// A tenant's settings: the document and how many times it was written
/// (`version` 0 and `{}` before the first write). The version is also the
/// `ETag`; send it back as `If-Match` (or `version`) to write only over it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub version: i32,
    /// A JSON object, valid against the operator's schema when it was
    /// written.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    pub updated_at: Option<DateTime<Utc>>,
    /// Who wrote this version.
    pub updated_by: Option<String>,
}

impl SettingsView {
    /// Before the first write.
    #[must_use]
    pub fn unset() -> Self {
        Self {
            version: 0,
            document: serde_json::Value::Object(serde_json::Map::new()),
            updated_at: None,
            updated_by: None,
        }
    }
}

impl From<Option<TenantSettings>> for SettingsView {
    fn from(row: Option<TenantSettings>) -> Self {
        row.map_or_else(Self::unset, |s| Self {
            version: s.version,
            document: s.document,
            updated_at: Some(s.updated_at),
            updated_by: Some(s.updated_by),
        })
    }
}
