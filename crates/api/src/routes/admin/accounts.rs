//! `/v1/admin/accounts`: accounts above tenants — the registry, the
//! account's limits over the sum of its tenants, and lifecycle actions
//! applied to every tenant of an account at once.

use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use tenantry_core::{Action, Name, Slug, TenantStatus};
use tenantry_db::ScopedFutureExt as _;
use tenantry_ops::accounts::{self, AccountChange, AccountLimitsPatch, NewAccount};
use tenantry_ops::field;
use tenantry_ops::views::{
    AccountLimitsView, AccountTransitionView, AccountView, List, TenantView,
};

use crate::auth::PlatformAdmin;
use crate::idempotency::{IdempotencyKey, admin_create};
use crate::json::{Json, MaybeJson};
use crate::routes::admin::tenants::Transition;
use crate::routes::{PageQuery, created, list, ok};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Lowercase letters, digits and hyphens; unique among accounts.
    slug: String,
    name: String,
    /// Limits over the sum of the account's tenants; left out = unlimited.
    #[serde(default)]
    limits: Option<AccountLimitsView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    name: Option<String>,
    /// A number sets a limit, `null` lifts it, a limit left out keeps its
    /// value. The default account is unmetered and takes none.
    #[serde(default)]
    limits: Option<AccountLimitsPatch>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountTenantsQuery {
    /// Only tenants with this status.
    status: Option<String>,
    /// 1 to 100; default 20.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn parse_status(status: Option<String>) -> Result<Option<TenantStatus>, ApiError> {
    status
        .map(|s| {
            s.parse::<TenantStatus>().map_err(|_| {
                ApiError::validation("status", "must be active, suspended, archived or deleted")
            })
        })
        .transpose()
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(IdempotencyKey), request_body = CreateAccount, responses((status = 201, body = AccountView), (status = 409, description = "conflict: the slug is taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/accounts")]
pub async fn create_account(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: IdempotencyKey,
    body: Json<CreateAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let new = NewAccount {
        slug: field("slug", Slug::parse(&body.slug).map_err(|e| e.to_string()))?,
        name: field("name", Name::parse(&body.name))?,
        limits: body.limits.unwrap_or_default(),
    };
    let actor = admin.actor();
    admin_create(
        &state,
        &key,
        None,
        move |conn| async move { accounts::create_on(conn, &actor, new).await }.scope_boxed(),
        |view| created(format!("/v1/admin/accounts/{}", view.id), &view),
    )
    .await
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = List<AccountView>)))]
#[get("/accounts")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.into_inner().page()?;
    Ok(list(&accounts::list(&state.ops, page).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Account id or slug: a key that parses as a UUID is only ever an id")), responses((status = 200, body = AccountView)))]
#[get("/accounts/{id_or_slug}")]
pub async fn get_account(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&accounts::get(&state.ops, &key).await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Account id or slug: a key that parses as a UUID is only ever an id")), request_body = UpdateAccount, responses((status = 200, body = AccountView)))]
#[patch("/accounts/{id_or_slug}")]
pub async fn update_account(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    body: Json<UpdateAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let change = AccountChange {
        name: body
            .name
            .as_deref()
            .map(|n| field("name", Name::parse(n)))
            .transpose()?,
        limits: body.limits.unwrap_or_default(),
    };
    Ok(ok(&accounts::update(
        &state.ops,
        &admin.actor(),
        &key,
        change,
    )
    .await?))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Account id or slug: a key that parses as a UUID is only ever an id"), AccountTenantsQuery), responses((status = 200, body = List<TenantView>)))]
#[get("/accounts/{id_or_slug}/tenants")]
pub async fn list_account_tenants(
    state: web::Data<AppState>,
    _admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<AccountTenantsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery::new(query.limit, query.cursor).page()?;
    let status = parse_status(query.status)?;
    Ok(list(
        &accounts::tenants(&state.ops, &key, status, page).await?,
    ))
}

async fn step(
    state: &AppState,
    admin: &PlatformAdmin,
    key: &str,
    action: Action,
    body: MaybeJson<Transition>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.0.and_then(Transition::into_reason);
    let view = accounts::transition_all(&state.ops, &admin.actor(), key, action, reason).await?;
    Ok(ok(&view))
}

macro_rules! account_lifecycle_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Account id or slug: a key that parses as a UUID is only ever an id")), request_body(content = Option<Transition>, description = "Optional reason"), responses((status = 200, body = AccountTransitionView), (status = 409, description = "conflict: some of the account's tenants cannot make the transition (how many, and which); nothing changed", body = crate::error::Problem, content_type = "application/problem+json")))]
        #[post($path)]
        pub async fn $name(
            state: web::Data<AppState>,
            admin: PlatformAdmin,
            key: web::Path<String>,
            body: MaybeJson<Transition>,
        ) -> Result<HttpResponse, ApiError> {
            step(&state, &admin, &key, $action, body).await
        }
    };
}

account_lifecycle_route!(
    suspend_account,
    "/accounts/{id_or_slug}/suspend",
    Action::Suspend,
    "Every tenant of the account: active → suspended (all or nothing)"
);
account_lifecycle_route!(
    activate_account,
    "/accounts/{id_or_slug}/activate",
    Action::Activate,
    "Every tenant of the account: suspended → active (all or nothing)"
);
account_lifecycle_route!(
    archive_account,
    "/accounts/{id_or_slug}/archive",
    Action::Archive,
    "Every tenant of the account: active or suspended → archived (all or nothing)"
);
account_lifecycle_route!(
    delete_account,
    "/accounts/{id_or_slug}/delete",
    Action::Delete,
    "Every tenant of the account → deleted: the sweeper purges each after the retention period"
);
account_lifecycle_route!(
    restore_account,
    "/accounts/{id_or_slug}/restore",
    Action::Restore,
    "Every deleted tenant of the account: deleted → archived, only before its purge starts"
);
