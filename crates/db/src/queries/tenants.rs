use crate::Conn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{AccountId, ApiKeyId, TenantId, TenantStatus};

use crate::models::{Limits, Tenant, Usage};
use crate::schema::{api_keys, tenant_quotas, tenant_usage, tenants};

/// What the tenant gate needs: status, slug, the registry row's last
/// change (so the request-rate cache knows whether the tenant's limits may
/// have changed), and whether the credential behind the token (an API key)
/// is still valid.
#[derive(Debug, Clone)]
pub struct GateRow {
    pub status: TenantStatus,
    pub slug: String,
    /// `tenants.updated_at` in microseconds; [`set_limits`] moves it too.
    pub stamp: i64,
    /// `false` when the token came from an API key that has since been
    /// revoked or deleted; always `true` for tokens not derived from a key.
    pub credential_valid: bool,
}

type GateColumns = (TenantStatus, String, DateTime<Utc>, bool);

/// The tenant gate's read, one cached prepared statement (it runs on every
/// request) on one policy-bearing table: the registry row alone. A writing
/// scope has already taken the tenant's lifecycle lock in the statement
/// before this one, so the status read here is the latest committed one.
/// `api_key`: the key a token was exchanged for, checked in the same
/// statement (revocation reaches derived tokens at once).
///
/// `account`: the account a token is confined to. A tenant of another
/// account reads as no row at all, exactly as a tenant that does not exist
/// (the refusal reveals nothing about it).
pub async fn gate(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    api_key: Option<ApiKeyId>,
    account: Option<AccountId>,
) -> QueryResult<Option<GateRow>> {
    use diesel::dsl::exists;
    let key_is_valid = exists(
        api_keys::table.filter(
            api_keys::tenant_id
                .eq(tenant)
                .and(api_keys::id.nullable().eq(api_key))
                .and(api_keys::revoked_at.is_null()),
        ),
    );
    let no_key = api_key.is_none().into_sql::<diesel::sql_types::Bool>();
    let any_account = account.is_none().into_sql::<diesel::sql_types::Bool>();
    let row: Option<GateColumns> = tenants::table
        .filter(tenants::id.eq(tenant))
        .filter(any_account.or(tenants::account_id.nullable().eq(account)))
        .select((
            tenants::status,
            tenants::slug,
            tenants::updated_at,
            no_key.or(key_is_valid),
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(
        row.map(|(status, slug, updated_at, credential_valid)| GateRow {
            status,
            slug,
            stamp: updated_at.timestamp_micros(),
            credential_valid,
        }),
    )
}

/// The tenant's request rate and burst (its own context may read its quota
/// row), for the gate when its cached limits may be stale.
pub async fn rate_limits(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Option<(i32, i32)>> {
    tenant_quotas::table
        .filter(tenant_quotas::tenant_id.eq(tenant))
        .select((tenant_quotas::requests_per_second, tenant_quotas::burst))
        .first(conn)
        .await
        .optional()
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Tenant> {
    tenants::table
        .filter(tenants::id.eq(tenant))
        .select(Tenant::as_select())
        .first(conn)
        .await
}

pub async fn limits_and_usage(
    conn: &mut Conn<'_>,
    tenant: TenantId,
) -> QueryResult<(Option<Limits>, Option<Usage>)> {
    let limits = tenant_quotas::table
        .filter(tenant_quotas::tenant_id.eq(tenant))
        .select(Limits::as_select())
        .first(conn)
        .await
        .optional()?;
    let usage = tenant_usage::table
        .filter(tenant_usage::tenant_id.eq(tenant))
        .select(Usage::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok((limits, usage))
}

/// Creates a tenant with its quota and usage rows (platform scope), in the
/// default account.
pub async fn create(
    conn: &mut Conn<'_>,
    id: TenantId,
    slug: &str,
    name: &str,
    limits: &Limits,
) -> QueryResult<Tenant> {
    create_in_account(conn, id, slug, name, limits, None).await
}

/// [`create`] in `account` (`None`: the default account, the column's
/// default). Charging the account's tenant count is the caller's
/// (`queries::accounts::take_tenant`).
pub async fn create_in_account(
    conn: &mut Conn<'_>,
    id: TenantId,
    slug: &str,
    name: &str,
    limits: &Limits,
    account: Option<AccountId>,
) -> QueryResult<Tenant> {
    let tenant = diesel::insert_into(tenants::table)
        .values((
            tenants::id.eq(id),
            tenants::slug.eq(slug),
            tenants::name.eq(name),
            account.map(|a| tenants::account_id.eq(a)),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(tenant_quotas::table)
        .values((
            tenant_quotas::tenant_id.eq(id),
            tenant_quotas::max_users.eq(limits.max_users),
            tenant_quotas::max_api_keys.eq(limits.max_api_keys),
            tenant_quotas::max_clusters.eq(limits.max_clusters),
            tenant_quotas::max_instances.eq(limits.max_instances),
            tenant_quotas::max_cpu_cores.eq(limits.max_cpu_cores),
            tenant_quotas::max_memory_gb.eq(limits.max_memory_gb),
            tenant_quotas::max_storage_gb.eq(limits.max_storage_gb),
            tenant_quotas::requests_per_second.eq(limits.requests_per_second),
            tenant_quotas::burst.eq(limits.burst),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(tenant_usage::table)
        .values(tenant_usage::tenant_id.eq(id))
        .execute(conn)
        .await?;
    Ok(tenant)
}

/// Tenants in id order, optionally of one status (platform scope).
pub async fn list(
    conn: &mut Conn<'_>,
    status: Option<TenantStatus>,
    page: crate::models::Page,
) -> QueryResult<(Vec<Tenant>, bool)> {
    list_in_account(conn, status, None, page).await
}

/// [`list`], optionally only the tenants of one account.
pub async fn list_in_account(
    conn: &mut Conn<'_>,
    status: Option<TenantStatus>,
    account: Option<AccountId>,
    page: crate::models::Page,
) -> QueryResult<(Vec<Tenant>, bool)> {
    search(conn, status, account, None, page).await
}

/// `s` as a `LIKE` pattern that matches it literally anywhere (`%`, `_`
/// and the escape character itself escaped with a backslash).
#[must_use]
pub fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// [`list_in_account`], optionally only the tenants whose slug or name
/// contains `q` (case-insensitive, taken literally).
pub async fn search(
    conn: &mut Conn<'_>,
    status: Option<TenantStatus>,
    account: Option<AccountId>,
    q: Option<&str>,
    page: crate::models::Page,
) -> QueryResult<(Vec<Tenant>, bool)> {
    let mut query = tenants::table
        .select(Tenant::as_select())
        .order(tenants::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(tenants::status.eq(status));
    }
    if let Some(account) = account {
        query = query.filter(tenants::account_id.eq(account));
    }
    if let Some(q) = q {
        let pattern = contains_pattern(q);
        query = query.filter(
            tenants::slug
                .ilike(pattern.clone())
                .escape('\\')
                .or(tenants::name.ilike(pattern).escape('\\')),
        );
    }
    if let Some(after) = page.after {
        query = query.filter(tenants::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

/// By slug: the tenant currently holding it (platform scope).
pub async fn find_by_slug(conn: &mut Conn<'_>, slug: &str) -> QueryResult<Tenant> {
    tenants::table
        .filter(
            tenants::slug
                .eq(slug)
                .and(tenants::slug_released_at.is_null()),
        )
        .select(Tenant::as_select())
        .first(conn)
        .await
}

/// Renames and/or sets the legal hold (platform scope).
pub async fn update(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    name: Option<&str>,
    legal_hold: Option<bool>,
) -> QueryResult<Tenant> {
    let current = get(conn, tenant).await?;
    diesel::update(tenants::table.filter(tenants::id.eq(tenant)))
        .set((
            tenants::name.eq(name.unwrap_or(&current.name)),
            tenants::legal_hold.eq(legal_hold.unwrap_or(current.legal_hold)),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

/// Moves a tenant from `from` to `to` only if it is still `from` (and not
/// purged, and — leaving `deleted` — no purge has started): two admins
/// racing get one row and one `None`. `deleted_at` is stamped on delete and
/// cleared on restore. First takes the tenant's lifecycle lock
/// exclusively: the tenant's writes in flight finish first, and no write of
/// the tenant commits after this change does (its gate reads the new
/// status once the lock is released at commit).
pub async fn transition(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    from: TenantStatus,
    to: TenantStatus,
) -> QueryResult<Option<Tenant>> {
    crate::scope::lock_tenant_lifecycle(conn, tenant).await?;
    if from == TenantStatus::Deleted && purge_started(conn, tenant).await? {
        return Ok(None);
    }
    // No subquery on `retention_runs` and no `now()` in a CASE here: on
    // Citus `tenants` is a reference table, a modification of it may not
    // call now() inside a CASE, and one joining the coordinator-only
    // `retention_runs` changed the coordinator's copy alone (the workers
    // kept the old status).
    let deleted_at = if to == TenantStatus::Deleted {
        ", deleted_at = now()"
    } else if from == TenantStatus::Deleted {
        ", deleted_at = NULL"
    } else {
        ""
    };
    diesel::sql_query(format!(
        "UPDATE tenants
            SET status = $3, updated_at = now(){deleted_at}
          WHERE id = $1 AND status = $2 AND purged_at IS NULL
      RETURNING id, slug, name, status, legal_hold, created_at, updated_at, deleted_at, purged_at, account_id"
    ))
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .bind::<diesel::sql_types::Text, _>(from)
    .bind::<diesel::sql_types::Text, _>(to)
    .get_result(conn)
    .await
    .optional()
}

/// Whether the sweeper has begun purging `tenant` (an open receipt). Locks
/// the tenant's row first, as the sweeper does before it opens one, so the
/// answer holds until this transaction ends: a purge that starts later
/// waits, then finds the tenant no longer deleted.
async fn purge_started(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Open {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        open: bool,
    }
    diesel::sql_query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .execute(conn)
        .await?;
    let found: Open = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM retention_runs
                         WHERE tenant_id = $1 AND purged_at IS NULL) AS open",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .get_result(conn)
    .await?;
    Ok(found.open)
}

/// Replaces the tenant's limits (platform scope).
pub async fn set_limits(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    limits: &Limits,
) -> QueryResult<Limits> {
    // The registry row changes with its limits: every replica's gate sees a
    // new stamp and reads the limits again (its rate-limit cache).
    diesel::update(tenants::table.filter(tenants::id.eq(tenant)))
        .set(tenants::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    diesel::update(tenant_quotas::table.filter(tenant_quotas::tenant_id.eq(tenant)))
        .set((
            tenant_quotas::max_users.eq(limits.max_users),
            tenant_quotas::max_api_keys.eq(limits.max_api_keys),
            tenant_quotas::max_clusters.eq(limits.max_clusters),
            tenant_quotas::max_instances.eq(limits.max_instances),
            tenant_quotas::max_cpu_cores.eq(limits.max_cpu_cores),
            tenant_quotas::max_memory_gb.eq(limits.max_memory_gb),
            tenant_quotas::max_storage_gb.eq(limits.max_storage_gb),
            tenant_quotas::requests_per_second.eq(limits.requests_per_second),
            tenant_quotas::burst.eq(limits.burst),
            tenant_quotas::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Limits::as_returning())
        .get_result(conn)
        .await
}

/// Takes the tenant's lifecycle lock exclusively until the transaction
/// ends: no write of the tenant's runs meanwhile (an import into it).
pub async fn lock_lifecycle(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<()> {
    crate::scope::lock_tenant_lifecycle(conn, tenant).await
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn a_search_pattern_matches_its_text_literally() {
        assert_eq!(contains_pattern("acme"), "%acme%");
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }
}
