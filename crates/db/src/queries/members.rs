//! A tenant's members: people (the identity provider's `sub`) and their
//! roles. Tenant-scoped: every statement runs in the tenant's own context,
//! so RLS shows a member row only to its own tenant.

use crate::Conn;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{MemberId, TenantId};

use crate::models::{Member, Page};
use crate::schema::members;

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<Member>, bool)> {
    let mut query = members::table
        .filter(members::tenant_id.eq(tenant))
        .select(Member::as_select())
        .order(members::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(members::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: MemberId) -> QueryResult<Member> {
    members::table
        .filter(members::tenant_id.eq(tenant).and(members::id.eq(id)))
        .select(Member::as_select())
        .first(conn)
        .await
}

/// The role of `subject` in the tenant, if it is a member: the tenant
/// gate's membership check, in the request's own transaction.
pub async fn role_of(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    subject: &str,
) -> QueryResult<Option<String>> {
    members::table
        .filter(
            members::tenant_id
                .eq(tenant)
                .and(members::subject.eq(subject)),
        )
        .select(members::role)
        .first(conn)
        .await
        .optional()
}

pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    subject: &str,
    role: &str,
) -> QueryResult<Member> {
    diesel::insert_into(members::table)
        .values((
            members::tenant_id.eq(tenant),
            members::id.eq(MemberId::new()),
            members::subject.eq(subject),
            members::role.eq(role),
        ))
        .returning(Member::as_returning())
        .get_result(conn)
        .await
}

pub async fn set_role(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: MemberId,
    role: &str,
) -> QueryResult<Member> {
    diesel::update(members::table.filter(members::tenant_id.eq(tenant).and(members::id.eq(id))))
        .set((members::role.eq(role), members::updated_at.eq(Utc::now())))
        .returning(Member::as_returning())
        .get_result(conn)
        .await
}

/// Removes a member; returns whether one was removed.
pub async fn delete(conn: &mut Conn<'_>, tenant: TenantId, id: MemberId) -> QueryResult<bool> {
    let n = diesel::delete(
        members::table.filter(members::tenant_id.eq(tenant).and(members::id.eq(id))),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Locks the tenant's owner rows until the transaction ends and returns
/// their ids. Every change that could take an owner away takes this lock
/// first, so two of them never both see "another owner remains": the
/// second waits, then (READ COMMITTED re-reads a locked row that changed)
/// no longer counts the owner the first one demoted or removed.
pub async fn lock_owners(conn: &mut Conn<'_>, tenant: TenantId) -> QueryResult<Vec<MemberId>> {
    members::table
        .filter(members::tenant_id.eq(tenant).and(members::role.eq("owner")))
        .select(members::id)
        .order(members::id.asc())
        .for_update()
        .load(conn)
        .await
}
