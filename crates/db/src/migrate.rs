//! The embedded migration runner behind `tenantry migrate`.
//!
//! Runs as the owner role, in ONE transaction under an advisory lock (so two
//! replicas starting together cannot interleave): pending migrations from
//! `sql/` in name order, then every file in `policies/` (idempotent), then the
//! record in `tenantry_migrations`. An applied migration whose text changed,
//! or a database that has migrations this binary does not know, is refused.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub(crate) struct Migration {
    pub(crate) version: &'static str,
    pub(crate) up: &'static str,
    pub(crate) down: &'static str,
}

pub(crate) struct Policy {
    pub(crate) file: &'static str,
    pub(crate) sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Run after the migrations when the database has the citus extension:
/// places every table (reference, distributed by `tenant_id`, or on the
/// coordinator) and defines the subquery-free context checks.
const CITUS_PLACEMENT: &str = include_str!("../../../sql/citus.sql");

/// The proven-context subqueries of the policy files, as written there, and
/// what they become on Citus, which refuses subqueries in policies.
const TENANT_CONTEXT_SQL: &str = "(SELECT p.tenant FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.tenant_proof') AND p.tenant::text = current_setting('app.tenant_id', true))";
const PLATFORM_CONTEXT_SQL: &str = "EXISTS (SELECT 1 FROM context_proofs p WHERE p.proof_hash = context_proof_hash('app.platform_proof') AND p.tenant IS NULL)";

/// A policy file in its Citus form: the same policies, each proof checked by
/// `context_tenant_verified()` / `context_platform_verified()` (sql/citus.sql).
pub(crate) fn citus_policy(sql: &str) -> String {
    sql.replace(TENANT_CONTEXT_SQL, "context_tenant_verified()")
        .replace(PLATFORM_CONTEXT_SQL, "context_platform_verified()")
}

/// A script cut into its statements, each with its `;` (and the comments
/// before it). Citus propagates some DDL to the shards as the text it was
/// sent and refuses a text of several statements, so on Citus every script
/// (migrations, policy files) runs one statement at a time. Knows what can
/// hide a `;`: comments (`--`, nested `/* */`), quoted strings and
/// identifiers, and dollar-quoted bodies (`$$ … $$`, `$tag$ … $tag$`).
pub(crate) fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0_usize;
                while i < bytes.len() {
                    if sql[i..].starts_with("/*") {
                        depth += 1;
                        i += 2;
                    } else if sql[i..].starts_with("*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // $tag$ where tag is empty or an identifier (not $1).
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(end)
                        if bytes[end] == b'$'
                            && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
                    {
                        let tag = &sql[i..=end];
                        i = sql[end + 1..]
                            .find(tag)
                            .map_or(bytes.len(), |n| end + 1 + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                i += 1;
                out.push(&sql[start..i]);
                start = i;
            }
            _ => i += 1,
        }
    }
    if !sql[start..].trim().is_empty() {
        out.push(&sql[start..]);
    }
    out
}

/// How `run` migrates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Remove every context key but the configured one.
    pub retire_other_keys: bool,
    /// On Citus: shards of the tenant tables' co-location group when it is
    /// created (changing it later is a rebalance, not a migration).
    pub citus_shard_count: u32,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            retire_other_keys: false,
            citus_shard_count: 32,
        }
    }
}

/// Whether the database has the citus extension (then `migrate` distributes
/// the schema, and the guard checks the distribution).
pub async fn is_citus(conn: &mut crate::Conn<'_>) -> Result<bool, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        citus: bool,
    }
    let row: Row =
        sql_query("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus")
            .get_result(conn)
            .await?;
    Ok(row.citus)
}

/// Any 64-bit constant unique to this purpose: serializes migrators.
const MIGRATION_LOCK: i64 = 0x7465_6e61_6e74_7279; // "tenantry"

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect as the owner role: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration {version}: {source}")]
    Apply {
        version: String,
        #[source]
        source: diesel::result::Error,
    },
    #[error("policy file {file}: {source}")]
    Policy {
        file: String,
        #[source]
        source: diesel::result::Error,
    },
    #[error(
        "migration {0} was edited after it was applied (checksum differs); add a new migration instead"
    )]
    Edited(String),
    #[error(
        "the database has migration {0}, which this binary does not know: it is newer than this build"
    )]
    Unknown(String),
    #[error("Citus placement (sql/citus.sql): {0}")]
    Citus(#[source] diesel::result::Error),
    #[error(
        "reverting a migration is not supported on a distributed (Citus) schema: restore a backup taken before the migration instead"
    )]
    RevertOnCitus,
    #[error("nothing to revert")]
    NothingToRevert,
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub policies: usize,
    /// The configured context key was new to the database and is now
    /// installed (`false`: it was already there).
    pub context_key_installed: bool,
    /// Other context keys removed (`--retire-other-context-keys`).
    pub context_keys_retired: usize,
    /// The database has Citus, and every table is placed (sql/citus.sql).
    pub distributed: bool,
}

/// Where a database stands against this binary's migrations: the applied
/// versions and the checksums they were applied with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaState {
    /// version -> checksum (SHA-256 of its `up.sql`), as recorded in
    /// `tenantry_migrations`.
    pub applied: BTreeMap<String, String>,
}

/// What a schema means for this binary (readiness, and the start of `serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    /// Exactly this binary's migrations.
    Current,
    /// Every migration of this binary, unchanged, plus versions it does not
    /// know: a later release's `migrate` ran. Under the expand/contract rule
    /// (sql/README.md) those only expanded the schema, so this binary can
    /// serve it (a rolling deploy's old replicas).
    Newer { unknown: Vec<String> },
    /// A migration this binary needs is not applied (run this release's
    /// `tenantry migrate`).
    Behind { missing: Vec<String> },
    /// A migration this binary knows was applied with other contents (its
    /// checksum differs): not the schema this binary was built for.
    Edited { versions: Vec<String> },
}

impl Compatibility {
    /// Whether this binary may serve the schema.
    #[must_use]
    pub const fn is_servable(&self) -> bool {
        matches!(self, Self::Current | Self::Newer { .. })
    }
}

impl SchemaState {
    /// Every embedded migration is applied, unchanged, and nothing else.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.compatibility() == Compatibility::Current
    }

    /// Versions this binary does not know were recorded: a later release's
    /// `migrate` ran.
    #[must_use]
    pub fn has_unknown_versions(&self) -> bool {
        let known = embedded_versions();
        self.applied.keys().any(|v| !known.contains(&v.as_str()))
    }

    /// Judges the schema against this binary's migrations: an edited one
    /// outweighs a missing one, which outweighs newer ones.
    #[must_use]
    pub fn compatibility(&self) -> Compatibility {
        let known: Vec<(&str, String)> = MIGRATIONS
            .iter()
            .map(|m| (m.version, checksum(m.up)))
            .collect();
        judge(&known, &self.applied)
    }
}

/// The judgement behind `SchemaState::compatibility`, on any list of known
/// migrations (the unit tests give it their own).
fn judge(known: &[(&str, String)], applied: &BTreeMap<String, String>) -> Compatibility {
    let edited: Vec<String> = known
        .iter()
        .filter(|(v, sum)| applied.get(*v).is_some_and(|a| a != sum))
        .map(|(v, _)| (*v).to_owned())
        .collect();
    if !edited.is_empty() {
        return Compatibility::Edited { versions: edited };
    }
    let missing: Vec<String> = known
        .iter()
        .filter(|(v, _)| !applied.contains_key(*v))
        .map(|(v, _)| (*v).to_owned())
        .collect();
    if !missing.is_empty() {
        return Compatibility::Behind { missing };
    }
    let unknown: Vec<String> = applied
        .keys()
        .filter(|a| !known.iter().any(|(v, _)| v == a))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Compatibility::Current
    } else {
        Compatibility::Newer { unknown }
    }
}

/// The versions this binary carries, in order.
#[must_use]
pub fn embedded_versions() -> Vec<&'static str> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

#[derive(QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    checksum: String,
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn connect_owner(owner_url: &SecretString) -> Result<AsyncPgConnection, MigrateError> {
    Ok(AsyncPgConnection::establish(owner_url.expose_secret()).await?)
}

async fn lock_and_read(
    conn: &mut AsyncPgConnection,
) -> Result<BTreeMap<String, String>, MigrateError> {
    sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)
        .await?;
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS tenantry_migrations (
             version    text        PRIMARY KEY,
             checksum   text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         GRANT SELECT ON tenantry_migrations TO tenantry_service;",
    )
    .await?;
    let rows: Vec<AppliedRow> =
        sql_query("SELECT version, checksum FROM tenantry_migrations ORDER BY version")
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|r| (r.version, r.checksum)).collect())
}

/// Applies pending migrations, then every policy file, then installs the
/// context `key` (sql/0005) — and with `retire_other_keys`, removes every
/// other key, so proofs made with them stop counting (finish a key rotation
/// once every replica runs with the new key). Idempotent.
pub async fn run(
    owner_url: &SecretString,
    key: &crate::ContextKey,
    options: &MigrateOptions,
) -> Result<MigrationReport, MigrateError> {
    let retire_other_keys = options.retire_other_keys;
    let mut conn = connect_owner(owner_url).await?;
    let citus = is_citus(&mut &conn).await?;
    conn.transaction(async |conn| {
        let applied = lock_and_read(conn).await?;
        for version in applied.keys() {
            if !MIGRATIONS.iter().any(|m| m.version == version.as_str()) {
                return Err(MigrateError::Unknown(version.clone()));
            }
        }
        let mut report = MigrationReport {
            applied: Vec::new(),
            policies: 0,
            context_key_installed: false,
            context_keys_retired: 0,
            distributed: citus,
        };
        for migration in MIGRATIONS {
            let sum = checksum(migration.up);
            match applied.get(migration.version) {
                Some(recorded) if *recorded == sum => continue,
                Some(_) => return Err(MigrateError::Edited(migration.version.to_owned())),
                None => {}
            }
            let pieces = if citus {
                statements(migration.up)
            } else {
                vec![migration.up]
            };
            for piece in pieces {
                conn.batch_execute(piece)
                    .await
                    .map_err(|source| MigrateError::Apply {
                        version: migration.version.to_owned(),
                        source,
                    })?;
            }
            sql_query("INSERT INTO tenantry_migrations (version, checksum) VALUES ($1, $2)")
                .bind::<Text, _>(migration.version)
                .bind::<Text, _>(&sum)
                .execute(conn)
                .await?;
            report.applied.push(migration.version.to_owned());
        }
        if citus {
            // DDL on distributed and reference tables in one transaction
            // (a migration, the policy files) needs Citus's sequential mode.
            conn.batch_execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
                .await
                .map_err(MigrateError::Citus)?;
            sql_query("SELECT set_config('tenantry.shard_count', $1, true)")
                .bind::<Text, _>(options.citus_shard_count.to_string())
                .execute(conn)
                .await
                .map_err(MigrateError::Citus)?;
            conn.batch_execute(CITUS_PLACEMENT)
                .await
                .map_err(MigrateError::Citus)?;
        }
        for policy in POLICIES {
            let sql = if citus {
                std::borrow::Cow::Owned(citus_policy(policy.sql))
            } else {
                std::borrow::Cow::Borrowed(policy.sql)
            };
            // One statement at a time: Citus propagates some DDL to the
            // shards as the text it was sent, and refuses a text of several.
            for statement in statements(&sql) {
                conn.batch_execute(statement)
                    .await
                    .map_err(|source| MigrateError::Policy {
                        file: policy.file.to_owned(),
                        source,
                    })?;
            }
            report.policies += 1;
        }
        // New databases let PUBLIC create temporary objects; a temporary
        // table shadowing one the service queries could capture other
        // tenants' proofs. Re-asserted on every run (the guard checks it).
        conn.batch_execute(
            "DO $$ BEGIN
                 EXECUTE pg_catalog.format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', pg_catalog.current_database());
             END $$;",
        )
        .await?;
        let (inner, outer) = key.pads();
        report.context_key_installed = sql_query(
            "INSERT INTO tenantry_private.context_keys (id, inner_pad, outer_pad)
             VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind::<Text, _>(key.id())
        .bind::<diesel::sql_types::Bytea, _>(&inner)
        .bind::<diesel::sql_types::Bytea, _>(&outer)
        .execute(conn)
        .await?
            > 0;
        // Every context under every installed key (a new key included):
        // the platform's, then each tenant's, read under the platform
        // context just registered (FORCE RLS binds the owner too). Citus
        // checks proofs against the key itself (sql/citus.sql): no registry.
        if !citus {
            conn.batch_execute("SELECT context_register(NULL)").await?;
            sql_query("SELECT set_config('app.platform_proof', $1, true)")
                .bind::<Text, _>(key.platform_proof())
                .execute(conn)
                .await?;
            conn.batch_execute("SELECT count(context_register(t.id)) FROM tenants t")
                .await?;
        }
        if retire_other_keys {
            report.context_keys_retired =
                sql_query("DELETE FROM tenantry_private.context_keys WHERE id <> $1")
                    .bind::<Text, _>(key.id())
                    .execute(conn)
                    .await?;
        }
        Ok(report)
    })
    .await
}

/// Reverts the most recently applied migration (its `down.sql`).
/// Refused on Citus: the down migrations know nothing of shards (`tenantry
/// migrate` distributed the tables after the migrations ran).
pub async fn revert_last(owner_url: &SecretString) -> Result<String, MigrateError> {
    let mut conn = connect_owner(owner_url).await?;
    if is_citus(&mut &conn).await? {
        return Err(MigrateError::RevertOnCitus);
    }
    conn.transaction(async |conn| {
        let applied = lock_and_read(conn).await?;
        let (version, _) = applied
            .last_key_value()
            .ok_or(MigrateError::NothingToRevert)?;
        let migration = MIGRATIONS
            .iter()
            .find(|m| m.version == version.as_str())
            .ok_or_else(|| MigrateError::Unknown(version.clone()))?;
        conn.batch_execute(migration.down)
            .await
            .map_err(|source| MigrateError::Apply {
                version: migration.version.to_owned(),
                source,
            })?;
        sql_query("DELETE FROM tenantry_migrations WHERE version = $1")
            .bind::<Text, _>(migration.version)
            .execute(conn)
            .await?;
        Ok(migration.version.to_owned())
    })
    .await
}

#[derive(QueryableByName)]
struct PresentRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    present: bool,
}

/// Reads the applied versions and their checksums (as the service; it may
/// SELECT the table).
pub(crate) async fn schema_state(
    conn: &mut AsyncPgConnection,
) -> Result<SchemaState, diesel::result::Error> {
    let table: PresentRow =
        sql_query("SELECT to_regclass('tenantry_migrations') IS NOT NULL AS present")
            .get_result(conn)
            .await?;
    if !table.present {
        return Ok(SchemaState::default());
    }
    let rows: Vec<AppliedRow> =
        sql_query("SELECT version, checksum FROM tenantry_migrations ORDER BY version")
            .load(conn)
            .await?;
    Ok(SchemaState {
        applied: rows.into_iter().map(|r| (r.version, r.checksum)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_into_statements_where_a_semicolon_is_code() {
        let sql = "-- a; comment\nCREATE TABLE t (x text DEFAULT ';');\n/* a; /* nested; */ b; */ SELECT 1;\n\
                   CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$;\n\
                   DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$;\nSELECT $1::text AS \"a;b\";\n  ";
        let pieces = statements(sql);
        assert_eq!(pieces.concat().trim_end(), sql.trim_end());
        assert_eq!(pieces.len(), 5, "{pieces:#?}");
        assert!(pieces[2].contains("PERFORM 1; END $$;"));
        assert!(pieces[3].contains("'x;y'"));
        for migration in MIGRATIONS {
            assert_eq!(
                statements(migration.up).concat().trim_end(),
                migration.up.trim_end()
            );
        }
    }

    #[test]
    fn every_policy_file_has_a_citus_form_without_subqueries() {
        for policy in POLICIES {
            let citus = citus_policy(policy.sql);
            let code: String = citus
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                !code
                    .to_ascii_uppercase()
                    .replace("( ", "(")
                    .contains("(SELECT"),
                "{}: a subquery is left for Citus to refuse:\n{code}",
                policy.file
            );
            assert!(
                code.contains("context_tenant_verified()")
                    || code.contains("context_platform_verified()"),
                "{}: no proven context at all",
                policy.file
            );
        }
    }

    #[test]
    fn migrations_are_embedded_in_order_with_up_and_down() {
        assert!(!MIGRATIONS.is_empty());
        let versions = embedded_versions();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        assert_eq!(versions, sorted);
        for m in MIGRATIONS {
            assert!(!m.up.trim().is_empty(), "{} has an empty up.sql", m.version);
            assert!(
                !m.down.trim().is_empty(),
                "{} has an empty down.sql",
                m.version
            );
        }
    }

    #[test]
    fn every_policy_file_enables_and_forces_rls() {
        assert!(!POLICIES.is_empty());
        for p in POLICIES {
            let table = p.file.trim_end_matches(".sql");
            assert!(
                p.sql
                    .contains(&format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")),
                "{}",
                p.file
            );
            assert!(
                p.sql
                    .contains(&format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY")),
                "{}",
                p.file
            );
        }
    }

    fn applied(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(v, c)| ((*v).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn a_schema_is_current_only_with_exactly_the_embedded_migrations() {
        let all: BTreeMap<String, String> = MIGRATIONS
            .iter()
            .map(|m| (m.version.to_owned(), checksum(m.up)))
            .collect();
        let state = SchemaState {
            applied: all.clone(),
        };
        assert!(state.is_current());
        assert_eq!(state.compatibility(), Compatibility::Current);
        let mut newer = all.clone();
        newer.insert("9999_future".into(), "whatever".into());
        let newer = SchemaState { applied: newer };
        assert!(!newer.is_current());
        assert_eq!(
            newer.compatibility(),
            Compatibility::Newer {
                unknown: vec!["9999_future".into()]
            }
        );
        assert!(newer.compatibility().is_servable());
        assert!(!SchemaState::default().compatibility().is_servable());
    }

    #[test]
    fn newer_versions_are_servable_but_a_missing_or_edited_known_one_is_not() {
        let known = [("0001_a", "aa".to_owned()), ("0002_b", "bb".to_owned())];
        let judged = |pairs: &[(&str, &str)]| judge(&known, &applied(pairs));
        assert_eq!(
            judged(&[("0001_a", "aa"), ("0002_b", "bb")]),
            Compatibility::Current
        );
        assert_eq!(
            judged(&[
                ("0001_a", "aa"),
                ("0002_b", "bb"),
                ("0003_c", "cc"),
                ("0004_d", "dd")
            ]),
            Compatibility::Newer {
                unknown: vec!["0003_c".into(), "0004_d".into()]
            }
        );
        // A later release's migrations do not make up for one of ours.
        assert_eq!(
            judged(&[("0001_a", "aa"), ("0003_c", "cc")]),
            Compatibility::Behind {
                missing: vec!["0002_b".into()]
            }
        );
        assert_eq!(
            judged(&[]),
            Compatibility::Behind {
                missing: vec!["0001_a".into(), "0002_b".into()]
            }
        );
        // Edited outweighs everything else: this is not our schema at all.
        assert_eq!(
            judged(&[("0001_a", "zz"), ("0003_c", "cc")]),
            Compatibility::Edited {
                versions: vec!["0001_a".into()]
            }
        );
        for state in [
            judged(&[("0001_a", "aa")]),
            judged(&[("0001_a", "aa"), ("0002_b", "b!"), ("0003_c", "cc")]),
        ] {
            assert!(!state.is_servable(), "{state:?}");
        }
    }
}
