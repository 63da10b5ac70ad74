use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::models::{Page, RetentionRun};
use crate::schema::retention_runs;

/// Receipts in id order (platform scope).
pub async fn list(
    conn: &mut AsyncPgConnection,
    page: Page,
) -> QueryResult<(Vec<RetentionRun>, bool)> {
    let mut query = retention_runs::table
        .select(RetentionRun::as_select())
        .order(retention_runs::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(retention_runs::id.gt(after));
    }
    Ok(page.finish(query.load(conn).await?))
}
