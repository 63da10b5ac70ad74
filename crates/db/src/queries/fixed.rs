//! Hand-written SQL that is prepared once per connection and cached, like
//! any diesel query — unlike `sql_query`, which diesel never caches (every
//! call is a parse and plan round trip before the execute). For the
//! statements on the request path that the query builder cannot express.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Untyped, Uuid as SqlUuid};

/// Whether this process talks to Citus: a generic plan of a multi-table
/// statement (the quota charge's `UPDATE … FROM`) cannot be routed to one
/// shard there, so these statements are then prepared afresh for their
/// parameters each time, as `sql_query` would be.
static ON_CITUS: AtomicBool = AtomicBool::new(false);

/// Set by the pool when a connection finds the citus extension.
pub(crate) fn on_citus() {
    ON_CITUS.store(true, Ordering::Relaxed);
}

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Uuid(uuid::Uuid),
    BigInt(i64),
    Int(i32),
}

/// A fixed SQL text whose `$n` placeholders take `binds[n - 1]`. `K`, a
/// type named for the statement, is its key in the statement cache: one
/// `K` per SQL text.
pub(crate) struct Fixed<K> {
    sql: &'static str,
    binds: Vec<Bind>,
    key: PhantomData<fn() -> K>,
}

impl<K> Fixed<K> {
    pub(crate) fn new(sql: &'static str, binds: Vec<Bind>) -> Self {
        Self {
            sql,
            binds,
            key: PhantomData,
        }
    }
}

impl<K: 'static> QueryId for Fixed<K> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K> Query for Fixed<K> {
    type SqlType = Untyped;
}

impl<K> QueryFragment<Pg> for Fixed<K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if ON_CITUS.load(Ordering::Relaxed) {
            out.unsafe_to_cache_prepared();
        }
        // Each `$n` becomes the next placeholder, bound to `binds[n - 1]`
        // (a value used twice is bound twice).
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len() - at - 1, |n| n);
            let n: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| {
                diesel::result::Error::QueryBuilderError("a `$` without a number".into())
            })?;
            match n.checked_sub(1).and_then(|i| self.binds.get(i)) {
                Some(Bind::Uuid(v)) => out.push_bind_param::<SqlUuid, _>(v)?,
                Some(Bind::BigInt(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Some(Bind::Int(v)) => out.push_bind_param::<Integer, _>(v)?,
                None => {
                    return Err(diesel::result::Error::QueryBuilderError(
                        format!("no value for ${n}").into(),
                    ));
                }
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Key;

    #[test]
    fn each_placeholder_is_bound_to_its_numbered_value_in_text_order() {
        let q = Fixed::<Key>::new(
            "SELECT $2 + $1, $2 > $10",
            (1..=10).map(|n| Bind::BigInt(n * 100)).collect(),
        );
        let shown = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(shown.starts_with("SELECT $1 + $2, $3 > $4"), "{shown}");
        assert!(shown.contains("[200, 100, 200, 1000]"), "{shown}");
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        let q = Fixed::<Key>::new("SELECT $3", vec![Bind::Int(1)]);
        let mut sql = String::new();
        let mut builder = diesel::pg::PgQueryBuilder::default();
        let built = q.to_sql(&mut builder, &Pg);
        sql.push_str(&diesel::query_builder::QueryBuilder::finish(builder));
        assert!(built.is_err(), "{sql}");
        let q = Fixed::<Key>::new("SELECT $x", vec![]);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        assert!(q.to_sql(&mut builder, &Pg).is_err());
    }
}
