use crate::Conn;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tenantry_core::{TenantId, UserId};

use crate::models::{Page, User};
use crate::schema::users;

pub async fn list(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    page: Page,
) -> QueryResult<(Vec<User>, bool)> {
    let mut query = users::table
        .filter(users::tenant_id.eq(tenant))
        .select(User::as_select())
        .order(users::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(users::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}

pub async fn get(conn: &mut Conn<'_>, tenant: TenantId, id: UserId) -> QueryResult<User> {
    users::table
        .filter(users::tenant_id.eq(tenant).and(users::id.eq(id)))
        .select(User::as_select())
        .first(conn)
        .await
}

pub async fn create(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    email: &str,
    name: &str,
) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values((
            users::tenant_id.eq(tenant),
            users::id.eq(UserId::new()),
            users::email.eq(email),
            users::name.eq(name),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    id: UserId,
    email: Option<&str>,
    name: Option<&str>,
) -> QueryResult<User> {
    let current = get(conn, tenant, id).await?;
    diesel::update(users::table.filter(users::tenant_id.eq(tenant).and(users::id.eq(id))))
        .set((
            users::email.eq(email.unwrap_or(&current.email)),
            users::name.eq(name.unwrap_or(&current.name)),
            users::updated_at.eq(Utc::now()),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Returns whether a row was deleted.
pub async fn delete(conn: &mut Conn<'_>, tenant: TenantId, id: UserId) -> QueryResult<bool> {
    let n = diesel::delete(users::table.filter(users::tenant_id.eq(tenant).and(users::id.eq(id))))
        .execute(conn)
        .await?;
    Ok(n > 0)
}
