use serde::Serialize;

/// `GET /v1/admin/health`: the service and its database schema.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceHealthView {
    /// `ok`: this build can serve the schema; `degraded`: it cannot (see
    /// `schema.compatibility`).
    #[schema(example = "ok")]
    pub status: &'static str,
    pub schema: SchemaView,
}

/// The database's schema version against this build's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SchemaView {
    /// The newest migration recorded in the database (none on an empty one).
    #[schema(example = "0013_idempotency")]
    pub database_version: Option<String>,
    /// The newest migration this build carries.
    #[schema(example = "0013_idempotency")]
    pub build_version: Option<String>,
    /// `current` (exactly this build's migrations), `newer` (a later
    /// release's expand-only migrations too: servable), `behind` (a
    /// migration of this build is missing: run `tenantry migrate`), `edited`
    /// (a migration of this build was applied with other contents).
    #[schema(example = "current")]
    pub compatibility: &'static str,
    /// This build's migrations the database lacks.
    pub pending: Vec<String>,
    /// Migrations the database has that this build does not know.
    pub unknown: Vec<String>,
    /// This build's migrations applied with other contents.
    pub edited: Vec<String>,
}
