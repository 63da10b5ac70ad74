use crate::Conn;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;

use crate::models::{Page, RetentionRun, Tenant};
use crate::schema::retention_runs;

/// Receipts in id order (platform scope).
pub async fn list(conn: &mut Conn<'_>, page: Page) -> QueryResult<(Vec<RetentionRun>, bool)> {
    list_ordered(conn, false, page).await
}

/// Receipts in id (start) order, oldest or newest first (platform scope).
pub async fn list_ordered(
    conn: &mut Conn<'_>,
    newest_first: bool,
    page: Page,
) -> QueryResult<(Vec<RetentionRun>, bool)> {
    let mut query = retention_runs::table
        .select(RetentionRun::as_select())
        .limit(page.limit + 1)
        .into_boxed();
    query = if newest_first {
        query.order(retention_runs::id.desc())
    } else {
        query.order(retention_runs::id.asc())
    };
    if let Some(after) = page.after {
        query = if newest_first {
            query.filter(retention_runs::id.lt(after))
        } else {
            query.filter(retention_runs::id.gt(after))
        };
    }
    Ok(page.finish(query.load(conn).await?))
}

/// The receipt of the purge started last, if any (platform scope).
pub async fn latest(conn: &mut Conn<'_>) -> QueryResult<Option<RetentionRun>> {
    retention_runs::table
        .select(RetentionRun::as_select())
        .order(retention_runs::id.desc())
        .first(conn)
        .await
        .optional()
}

/// Deleted tenants not yet purged, the first to be purged first (by
/// `deleted_at`, then id; the cursor is the last one's id). `on_hold`:
/// `Some(false)` leaves out those on legal hold (platform scope).
pub async fn deleted(
    conn: &mut Conn<'_>,
    on_hold: Option<bool>,
    page: Page,
) -> QueryResult<(Vec<Tenant>, bool)> {
    let rows: Vec<Tenant> = diesel::sql_query(
        "SELECT t.id, t.slug, t.name, t.status, t.legal_hold, t.created_at, t.updated_at,
                t.deleted_at, t.purged_at, t.account_id
           FROM tenants t
          WHERE t.status = 'deleted' AND t.purged_at IS NULL
            AND ($1::bool IS NULL OR t.legal_hold = $1)
            AND ($2::uuid IS NULL OR (t.deleted_at, t.id) >
                 (SELECT c.deleted_at, c.id FROM tenants c WHERE c.id = $2))
          ORDER BY t.deleted_at, t.id
          LIMIT $3",
    )
    .bind::<Nullable<Bool>, _>(on_hold)
    .bind::<Nullable<SqlUuid>, _>(page.after)
    .bind::<BigInt, _>(page.limit + 1)
    .load(conn)
    .await?;
    Ok(page.finish(rows))
}

/// How many deleted tenants await their purge (`on_hold` as in
/// [`deleted`]).
pub async fn deleted_count(conn: &mut Conn<'_>, on_hold: Option<bool>) -> QueryResult<i64> {
    use crate::schema::tenants;
    let mut query = tenants::table
        .filter(tenants::status.eq("deleted"))
        .filter(tenants::purged_at.is_null())
        .count()
        .into_boxed();
    if let Some(hold) = on_hold {
        query = query.filter(tenants::legal_hold.eq(hold));
    }
    query.get_result(conn).await
}
