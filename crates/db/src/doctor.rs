//! What `tenantry doctor` reads from a server: the settings that matter
//! to the service (`pg_settings`), the version, the extensions and the
//! bgwriter's counters. Everything here is readable by the service's role
//! (no superuser, no `pg_read_all_settings`); the judging is
//! `tenantry_ops::doctor`'s.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{Db, DbError};

/// The settings doctor reads (those a server lacks, e.g. PostgreSQL 16's
/// `reserved_connections` on 15, or Citus's without Citus, are absent).
pub const SETTINGS: &[&str] = &[
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "bgwriter_delay",
    "bgwriter_lru_maxpages",
    "bgwriter_lru_multiplier",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "wal_compression",
    "random_page_cost",
    "effective_io_concurrency",
    "idle_in_transaction_session_timeout",
    "statement_timeout",
    "track_io_timing",
    "fsync",
    "full_page_writes",
    "synchronous_commit",
    "autovacuum",
    "block_size",
    "max_prepared_transactions",
    "citus.max_shared_pool_size",
    "citus.max_adaptive_executor_pool_size",
    "citus.shard_count",
];

/// One row of `pg_settings`.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Setting {
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The value a new session of the service's role starts with
    /// (`reset_val`: the server's, the database's or the role's setting —
    /// not what this session's pool hook SET).
    #[diesel(sql_type = Text)]
    pub value: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub unit: Option<String>,
    /// Where the server's value comes from (`default`, `configuration
    /// file`, `command line`, ...).
    #[diesel(sql_type = Text)]
    pub source: String,
    /// `postmaster`: a change needs a restart; `sighup`: a reload.
    #[diesel(sql_type = Text)]
    pub context: String,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub enumvals: Option<Vec<String>>,
    /// Changed in the configuration, waiting for a restart.
    #[diesel(sql_type = Bool)]
    pub pending_restart: bool,
}

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// `server_version`, e.g. `15.10 (Debian 15.10-0+deb12u1)`.
    pub version: String,
    /// `server_version_num`, e.g. 150010.
    pub version_num: i32,
    pub settings: BTreeMap<String, Setting>,
    /// Extensions of this database: name → version.
    pub extensions: BTreeMap<String, String>,
    /// Buffers written by backends themselves, and by the bgwriter, since
    /// the statistics were reset (`pg_stat_bgwriter`; PostgreSQL 16+:
    /// client backends' writes from `pg_stat_io`).
    pub backend_writes: Option<i64>,
    pub bgwriter_writes: Option<i64>,
    /// Rounds the bgwriter stopped because it hit `bgwriter_lru_maxpages`.
    pub bgwriter_maxwritten: Option<i64>,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Integer)]
    version_num: i32,
}

#[derive(QueryableByName)]
struct ExtensionRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct WritesRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    backend: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    clean: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    maxwritten: Option<i64>,
}

impl Db {
    /// Reads [`ServerFacts`] on one pooled connection of the service's role.
    pub async fn server_facts(&self) -> Result<ServerFacts, DbError> {
        let mut conn = self.checkout().await?;
        Ok(server_facts(&mut conn).await?)
    }
}

/// [`Db::server_facts`] on any connection.
pub async fn server_facts(
    conn: &mut AsyncPgConnection,
) -> Result<ServerFacts, diesel::result::Error> {
    let version: VersionRow = sql_query(
        "SELECT current_setting('server_version') AS version,
                current_setting('server_version_num')::int AS version_num",
    )
    .get_result(conn)
    .await?;
    let names: Vec<String> = SETTINGS.iter().map(|s| (*s).to_owned()).collect();
    let settings: Vec<Setting> = sql_query(
        "SELECT name::text, reset_val::text AS value, unit::text, source::text, context::text,
                enumvals::text[] AS enumvals, pending_restart
           FROM pg_settings
          WHERE name = ANY($1)",
    )
    .bind::<Array<Text>, _>(&names)
    .load(conn)
    .await?;
    let extensions: Vec<ExtensionRow> =
        sql_query("SELECT extname::text AS name, extversion::text AS version FROM pg_extension")
            .load(conn)
            .await?;
    // Who writes dirty buffers: PostgreSQL 15 counts it in pg_stat_bgwriter;
    // 16 adds pg_stat_io and 17 drops buffers_backend.
    let writes: WritesRow = if version.version_num >= 160_000 {
        sql_query(
            "SELECT (SELECT sum(writes)::bigint FROM pg_stat_io
                      WHERE backend_type = 'client backend') AS backend,
                    buffers_clean AS clean, maxwritten_clean AS maxwritten
               FROM pg_stat_bgwriter",
        )
        .get_result(conn)
        .await?
    } else {
        sql_query(
            "SELECT buffers_backend AS backend, buffers_clean AS clean,
                    maxwritten_clean AS maxwritten
               FROM pg_stat_bgwriter",
        )
        .get_result(conn)
        .await?
    };
    Ok(ServerFacts {
        version: version.version,
        version_num: version.version_num,
        settings: settings.into_iter().map(|s| (s.name.clone(), s)).collect(),
        extensions: extensions
            .into_iter()
            .map(|e| (e.name, e.version))
            .collect(),
        backend_writes: writes.backend,
        bgwriter_writes: writes.clean,
        bgwriter_maxwritten: writes.maxwritten,
    })
}
