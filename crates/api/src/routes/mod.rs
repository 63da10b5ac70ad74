//! One module per resource; handlers are named after what they do.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod clusters;
pub mod events;
pub mod health;
pub mod instances;
pub mod tenant;
pub mod users;

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use tenantry_db::models::Page;

use crate::ApiError;

/// Anything no route matches: a problem+json 404, like every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn new(limit: Option<i64>, cursor: Option<String>) -> Self {
        Self { limit, cursor }
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::validation("limit", "must be between 1 and 100"));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(
                tenantry_core::Cursor::parse(cursor)
                    .ok_or_else(|| {
                        ApiError::validation("cursor", "is not a cursor this API returned")
                    })?
                    .id(),
            ),
        };
        Ok(Page { limit, after })
    }
}

/// A page of a list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `{"items": [...], "next_cursor": ...}`; the cursor encodes the last id.
pub fn list<T: Serialize>(
    items: Vec<T>,
    more: bool,
    id: impl Fn(&T) -> uuid::Uuid,
) -> HttpResponse {
    let next_cursor = more
        .then(|| {
            items
                .last()
                .map(|last| tenantry_core::Cursor::after(id(last)).encode())
        })
        .flatten();
    HttpResponse::Ok().json(List { items, next_cursor })
}

/// `201 Created` with `Location`.
pub fn created<T: Serialize>(location: String, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header(("Location", location))
        .json(body)
}

/// `?dry_run=true` on creates: validate, check uniqueness and quota, write
/// nothing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    /// Rehearse: answer 200 with what would be created and used.
    dry_run: Option<bool>,
}

impl DryRun {
    pub fn wanted(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

/// A create that honours `?dry_run=true`. `work` inserts, charges the
/// quota and records the event in one unit of work; for real it commits and
/// `respond` answers (201); rehearsed, it runs to the end, reads the usage
/// it would leave, rolls back, and answers 200 with both.
pub async fn create_or_rehearse<'a, T, F>(
    who: &crate::auth::TenantPrincipal,
    state: &crate::AppState,
    dry: &DryRun,
    work: F,
    respond: impl FnOnce(T) -> HttpResponse,
) -> Result<HttpResponse, ApiError>
where
    F: for<'r> FnOnce(
            &'r mut tenantry_db::AsyncPgConnection,
        ) -> tenantry_db::ScopedBoxFuture<'a, 'r, Result<T, ApiError>>
        + Send
        + 'a,
    T: Serialize + Send + 'a,
{
    use tenantry_db::ScopedFutureExt as _;
    let (tenant, dry_run) = (who.tenant_id, dry.wanted());
    let (item, usage_after) = who
        .write_or_rehearse(state, dry_run, move |conn| {
            async move {
                let item = work(conn).await?;
                let usage = if dry_run {
                    tenantry_db::queries::tenants::limits_and_usage(conn, tenant)
                        .await?
                        .1
                } else {
                    None
                };
                Ok((item, usage))
            }
            .scope_boxed()
        })
        .await?;
    if !dry_run {
        return Ok(respond(item));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "dry_run": true,
        "would_create": item,
        "usage_after": usage_after,
    })))
}

/// Takes `delta` from the tenant's quota in the current transaction, or
/// refuses with `quota_exceeded` (the transaction then rolls back).
pub async fn charge(
    conn: &mut tenantry_db::AsyncPgConnection,
    tenant: tenantry_core::TenantId,
    delta: tenantry_core::Amounts,
) -> Result<(), ApiError> {
    tenantry_db::queries::quotas::consume(conn, tenant, delta)
        .await?
        .map_err(ApiError::QuotaExceeded)
}

/// One of `resource`.
pub fn one(resource: tenantry_core::Resource) -> tenantry_core::Amounts {
    tenantry_core::Amounts::default().with(resource, 1)
}

/// Maps a parse failure of a body field to a 422 naming it.
pub fn field<T>(name: &'static str, parsed: Result<T, String>) -> Result<T, ApiError> {
    parsed.map_err(|detail| ApiError::validation(name, detail))
}
