//! Custom domains (sql/0012). Tenant-plane queries run in the tenant's
//! context, which RLS confines to its own rows; [`tenant_for_host`] and
//! the admin plane's [`list`] run in the platform context.

use crate::Conn;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{DomainId, TenantId};

use crate::models::{Domain, Page};
use crate::schema::domains;

/// The tenant's domains, by id.
pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<Domain>, bool)> {
    let mut query = domains::table
        .filter(domains::tenant_id.eq(tenant))
        .select(Domain::as_select())
        .order(domains::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(domains::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: DomainId,
) -> QueryResult<Option<Domain>> {
    domains::table
        .filter(domains::tenant_id.eq(tenant).and(domains::id.eq(id)))
        .select(Domain::as_select())
        .first(conn)
        .await
        .optional()
}

/// Fails on `domains_hostname_key` when any tenant holds the name.
pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: DomainId,
    hostname: &str,
    token: &str,
) -> QueryResult<Domain> {
    diesel::insert_into(domains::table)
        .values((
            domains::tenant_id.eq(tenant),
            domains::id.eq(id),
            domains::hostname.eq(hostname),
            domains::token.eq(token),
        ))
        .returning(Domain::as_returning())
        .get_result(conn)
        .await
}

/// Marks a pending domain verified, if its token is still `token`; `None`
/// when there is no such pending domain (gone, verified meanwhile, or
/// re-issued).
pub async fn mark_verified(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: DomainId,
    token: &str,
    method: &str,
) -> QueryResult<Option<Domain>> {
    diesel::update(
        domains::table.filter(
            domains::tenant_id
                .eq(tenant)
                .and(domains::id.eq(id))
                .and(domains::token.eq(token))
                .and(domains::verified_at.is_null()),
        ),
    )
    .set((
        domains::verified_at.eq(Some(Utc::now())),
        domains::verified_by.eq(Some(method)),
    ))
    .returning(Domain::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes a domain; returns it, if there was one.
pub async fn delete(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: DomainId,
) -> QueryResult<Option<Domain>> {
    diesel::delete(domains::table.filter(domains::tenant_id.eq(tenant).and(domains::id.eq(id))))
        .returning(Domain::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The tenant gate's check: is every one of `hosts` a verified domain of
/// `tenant`? (Run in the tenant's own transaction: its context sees only
/// its own domains.)
pub async fn all_verified_for(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    hosts: &[String],
) -> QueryResult<bool> {
    let mut wanted: Vec<&str> = hosts.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let found: i64 = domains::table
        .filter(
            domains::tenant_id
                .eq(tenant)
                .and(domains::verified_at.is_not_null())
                .and(domains::hostname.eq_any(&wanted)),
        )
        .count()
        .get_result(conn)
        .await?;
    Ok(usize::try_from(found).is_ok_and(|n| n == wanted.len()))
}

/// Routing's lookup, in the platform context: the tenant whose VERIFIED
/// domain `hostname` is.
pub async fn tenant_for_host(conn: &mut Conn<'_>, hostname: &str) -> QueryResult<Option<TenantId>> {
    domains::table
        .filter(
            domains::hostname
                .eq(hostname)
                .and(domains::verified_at.is_not_null()),
        )
        .select(domains::tenant_id)
        .first(conn)
        .await
        .optional()
}
