//! `tenantry tenants import`: an export file into a NEW tenant, all or
//! nothing, trusting nothing in the file.
//!
//! - The file must end with the export's `{"end": true, "rows": N}` trailer
//!   and hold exactly N rows, so a truncated export is refused.
//! - Every row is parsed with the API's own parsers (`Name`, `Email`,
//!   `Region`, the instance size bounds) before it is written; a row of
//!   an unknown table, an unknown field or a bad value is refused with its
//!   line, table and field.
//! - Rows are written through the API's own queries with NEW ids (old ids
//!   are mapped, so an instance lands in the imported copy of its cluster),
//!   and each is charged through `quotas::consume` exactly as the API
//!   charges it: an import over the new tenant's limits fails as a whole.
//! - `api_keys` rows are skipped and counted: a key is a credential, and a
//!   credential is never imported. Mint new keys for the new tenant.
//! - Imported history says so: each event becomes `event.imported` by
//!   `import:cli` at the time of the import, with the original id, kind,
//!   actor, subject, time, tenant and data kept under `data.original`.
//!
//! It all runs in one transaction (`PlatformScope::provision`), and the file
//! is streamed through it: a line is read, checked and written before the
//! next is read, so memory holds one line (at most [`MAX_LINE_BYTES`]) and
//! the ids seen so far, never the file. A refusal on any line, or a missing
//! trailer at the end, rolls the whole import back. Rows refer only to rows
//! before them, as in an export (members, users, api_keys, clusters,
//! instances, events): an instance's cluster must come earlier in the file.
//!
//! Progress goes to stderr (`crate::progress`): rows per table as they are
//! written, a status line at a terminal, plain lines elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tenantry_core::input::{self, readable};
use tenantry_core::{Amounts, ClusterId, Email, Name, Region, Resource, Slug, TenantId};
use tenantry_db::queries::instances::Size;
use tenantry_db::{AsyncPgConnection, Db, DbError, ScopedFutureExt, queries};
use uuid::Uuid;

use crate::cli::ImportArgs;
use crate::progress::{Progress, RowCounter};
use crate::settings::Settings;

/// Who imported history is attributed to: `import:cli`.
const IMPORTER: &str = "import:cli";
/// The kind every imported event gets; the original kind is provenance.
const IMPORTED_EVENT: &str = "event.imported";
/// The largest `data` of one imported event, serialized.
const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// How deep an imported event's `data` may nest.
const MAX_EVENT_DATA_DEPTH: usize = 32;
/// The longest line read: far above any row an export writes (an event's
/// data is at most [`MAX_EVENT_DATA_BYTES`]), and a bound on what one line
/// of a hostile file can make the import hold.
const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// One `{"table": ..., "row": ...}` line of the file.
struct Line {
    number: usize,
    table: String,
    row: Value,
}

/// The file, a line at a time: `{"table", "row"}` lines, then the trailer
/// that counts them. Only blank lines may follow the trailer.
struct Reader<R> {
    input: R,
    /// The number of the last line read.
    number: usize,
    rows: u64,
}

impl<R: BufRead> Reader<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            number: 0,
            rows: 0,
        }
    }

    /// The next line, without its line ending; `None` at the end.
    fn line(&mut self) -> Result<Option<String>, String> {
        let mut bytes = Vec::new();
        let number = self.number + 1;
        let read = (&mut self.input)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| format!("line {number}: cannot read: {e}"))?;
        if read == 0 {
            return Ok(None);
        }
        self.number = number;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        } else if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_LINE_BYTES {
            return Err(format!(
                "line {number}: longer than {MAX_LINE_BYTES} bytes; no export row is"
            ));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("line {number}: cannot read: not UTF-8"))
    }

    /// The next row; `None` once the trailer has been read, nothing but
    /// blank lines follow it, and it counts the rows read.
    fn next(&mut self) -> Result<Option<Line>, String> {
        while let Some(line) = self.line()? {
            let number = self.number;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(&line).map_err(|e| format!("line {number}: not JSON: {e}"))?;
            if let Some(end) = value.get("end") {
                if end != &Value::Bool(true) {
                    return Err(format!("line {number}: the export says it is incomplete"));
                }
                let trailer = value
                    .get("rows")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| "trailer without rows".to_owned())?;
                self.after_trailer()?;
                if trailer != self.rows {
                    return Err(format!(
                        "the trailer says {trailer} rows, the file has {}",
                        self.rows
                    ));
                }
                return Ok(None);
            }
            let table = value
                .get("table")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("line {number}: no table"))?
                .to_owned();
            let row = value
                .get("row")
                .cloned()
                .ok_or_else(|| format!("line {number}: no row"))?;
            self.rows += 1;
            return Ok(Some(Line { number, table, row }));
        }
        Err("no end trailer: the export is truncated".to_owned())
    }

    fn after_trailer(&mut self) -> Result<(), String> {
        while let Some(line) = self.line()? {
            if !line.trim().is_empty() {
                return Err(format!("line {}: data after the end trailer", self.number));
            }
        }
        Ok(())
    }
}

/// A row refused: where, and why. File text in it is escaped, so the
/// message itself cannot carry an escape sequence to the terminal.
#[derive(Debug)]
struct RowError {
    line: usize,
    table: String,
    field: Option<String>,
    message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, {}", self.line, self.table)?;
        if let Some(field) = &self.field {
            write!(f, ".{field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RowError {}

/// Why an import failed; the transaction has rolled back.
#[derive(Debug)]
enum ImportError {
    /// The file itself: not JSON, truncated, a bad trailer.
    Input(String),
    Row(RowError),
    Db(DbError),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(e) => e.fmt(f),
            Self::Row(e) => e.fmt(f),
            Self::Db(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<DbError> for ImportError {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl From<RowError> for ImportError {
    fn from(e: RowError) -> Self {
        Self::Row(e)
    }
}

/// Text from the file, made safe to print.
fn shown(text: &str) -> String {
    text.escape_debug().to_string()
}

/// The fields of one row, checked against the columns its table exports.
struct Fields<'a> {
    line: usize,
    table: &'static str,
    row: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The row's fields; one not in `allowed` is refused.
    fn new(line: &'a Line, table: &'static str, allowed: &[&str]) -> Result<Self, RowError> {
        let fields = Self::any(line, table)?;
        if let Some(unknown) = fields.row.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(fields.error(&shown(unknown), "unknown field".to_owned()));
        }
        Ok(fields)
    }

    /// The row's fields, whatever they are.
    fn any(line: &'a Line, table: &'static str) -> Result<Self, RowError> {
        Ok(Self {
            line: line.number,
            table,
            row: line.row.as_object().ok_or_else(|| RowError {
                line: line.number,
                table: table.to_owned(),
                field: None,
                message: "the row is not a JSON object".to_owned(),
            })?,
        })
    }

    fn error(&self, field: &str, message: String) -> RowError {
        RowError {
            line: self.line,
            table: self.table.to_owned(),
            field: Some(field.to_owned()),
            message,
        }
    }

    /// `parsed` (a parser's result for `field`) or the parser's message.
    fn parsed<T>(&self, field: &str, parsed: Result<T, String>) -> Result<T, RowError> {
        parsed.map_err(|message| self.error(field, message))
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.row.get(field).filter(|v| !v.is_null())
    }

    fn text(&self, field: &str) -> Result<&'a str, RowError> {
        self.optional_text(field)?
            .ok_or_else(|| self.error(field, "is required".to_owned()))
    }

    fn optional_text(&self, field: &str) -> Result<Option<&'a str>, RowError> {
        self.present(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(field, "must be a string".to_owned()))
            })
            .transpose()
    }

    fn uuid(&self, field: &str) -> Result<Uuid, RowError> {
        self.optional_uuid(field)?
            .ok_or_else(|| self.error(field, "is required".to_owned()))
    }

    fn optional_uuid(&self, field: &str) -> Result<Option<Uuid>, RowError> {
        self.optional_text(field)?
            .map(|t| Uuid::parse_str(t).map_err(|_| self.error(field, "must be a UUID".to_owned())))
            .transpose()
    }

    fn integer(&self, field: &str) -> Result<Option<i64>, RowError> {
        self.present(field)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.error(field, "must be an integer".to_owned()))
            })
            .transpose()
    }
}

struct UserRow {
    line: usize,
    old_id: Uuid,
    email: Email,
    name: Option<Name>,
}

struct ClusterRow {
    line: usize,
    old_id: Uuid,
    name: Name,
    region: Region,
}

struct InstanceRow {
    line: usize,
    old_id: Uuid,
    old_cluster: Uuid,
    name: Name,
    size: Size,
}

struct MemberRow {
    line: usize,
    old_id: Uuid,
    subject: tenantry_ops::members::Subject,
    role: tenantry_core::Role,
}

struct EventRow {
    old_subject: Option<Uuid>,
    /// The row as it was, kept as provenance under `data.original`.
    original: Value,
}

/// One line of the file, parsed and checked; nothing written yet.
enum Row {
    Member(MemberRow),
    User(UserRow),
    Cluster(ClusterRow),
    Instance(InstanceRow),
    Event(EventRow),
    /// A credential: never imported, only counted.
    SkippedApiKey,
}

impl Row {
    fn table(&self) -> &'static str {
        match self {
            Self::Member(_) => "members",
            Self::User(_) => "users",
            Self::Cluster(_) => "clusters",
            Self::Instance(_) => "instances",
            Self::Event(_) => "events",
            Self::SkippedApiKey => "api_keys",
        }
    }
}

/// Values that must be unique in the file, by (what, value): old ids
/// across all tables (they are what links rows), emails, cluster and
/// instance names. The database would refuse most duplicates too; this
/// names both lines.
#[derive(Default)]
struct Seen(HashMap<(&'static str, String), usize>);

impl Seen {
    fn once(
        &mut self,
        fields: &Fields<'_>,
        what: &'static str,
        field: &str,
        value: String,
    ) -> Result<(), RowError> {
        match self.0.insert((what, value), fields.line) {
            Some(first) => Err(fields.error(
                field,
                format!("appears twice in the file (also on line {first})"),
            )),
            None => Ok(()),
        }
    }

    fn id(&mut self, fields: &Fields<'_>) -> Result<Uuid, RowError> {
        let id = fields.uuid("id")?;
        self.once(fields, "id", "id", id.to_string())?;
        Ok(id)
    }
}

/// Text that is not a name but is still read by people (an event's kind
/// and actor): 1 to `max` characters, nothing misleading.
fn bounded_text(text: &str, max: usize) -> Result<String, String> {
    let len = text.chars().count();
    if len == 0 || len > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    readable(text)?;
    Ok(text.to_owned())
}

/// Every key and string in an event's `data` is readable text; `path`
/// names where a bad one is (`data.name`, `data.tags[2]`).
fn check_data(value: &Value, path: &str, depth: usize) -> Result<(), (String, String)> {
    if depth > MAX_EVENT_DATA_DEPTH {
        return Err((
            path.to_owned(),
            format!("nests deeper than {MAX_EVENT_DATA_DEPTH} levels"),
        ));
    }
    match value {
        Value::String(text) => readable(text).map_err(|m| (path.to_owned(), m)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_data(v, &format!("{path}[{i}]"), depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            let at = format!("{path}.{}", shown(key));
            readable(key).map_err(|m| (at.clone(), format!("(the key) {m}")))?;
            check_data(v, &at, depth + 1)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// The fields a row of `table` may have: exactly the columns the export
/// writes (`queries::export::EXPORTED_COLUMNS`).
fn exported_fields(table: &str) -> Vec<&'static str> {
    queries::export::EXPORTED_COLUMNS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, columns)| columns.split(", ").collect())
        .unwrap_or_default()
}

/// Checks each line against the rows before it: unique ids, emails and
/// names, and an instance's cluster already seen.
#[derive(Default)]
struct Checker {
    seen: Seen,
    clusters: HashSet<Uuid>,
}

impl Checker {
    /// The line parsed into its row, or the refusal of it.
    fn check(&mut self, line: &Line) -> Result<Row, RowError> {
        let seen = &mut self.seen;
        Ok(match line.table.as_str() {
            "members" => {
                let f = Fields::new(line, "members", &exported_fields("members"))?;
                f.optional_uuid("tenant_id")?;
                let old_id = seen.id(&f)?;
                let subject = f.parsed(
                    "subject",
                    tenantry_ops::members::Subject::parse(f.text("subject")?),
                )?;
                let role = f.parsed(
                    "role",
                    f.text("role")?
                        .parse::<tenantry_core::Role>()
                        .map_err(|e| e.to_string()),
                )?;
                seen.once(&f, "member subject", "subject", subject.as_str().to_owned())?;
                Row::Member(MemberRow {
                    line: line.number,
                    old_id,
                    subject,
                    role,
                })
            }
            "users" => {
                let f = Fields::new(line, "users", &exported_fields("users"))?;
                f.optional_uuid("tenant_id")?;
                let old_id = seen.id(&f)?;
                let email = f.parsed("email", Email::parse(f.text("email")?))?;
                let name = f.parsed(
                    "name",
                    Name::parse_optional(f.optional_text("name")?.unwrap_or_default()),
                )?;
                seen.once(&f, "email", "email", email.as_str().to_lowercase())?;
                Row::User(UserRow {
                    line: line.number,
                    old_id,
                    email,
                    name,
                })
            }
            "clusters" => {
                let f = Fields::new(line, "clusters", &exported_fields("clusters"))?;
                f.optional_uuid("tenant_id")?;
                let old_id = seen.id(&f)?;
                let name = f.parsed("name", Name::parse(f.text("name")?))?;
                let region = f.parsed("region", Region::parse(f.text("region")?))?;
                seen.once(&f, "cluster name", "name", name.as_str().to_owned())?;
                self.clusters.insert(old_id);
                Row::Cluster(ClusterRow {
                    line: line.number,
                    old_id,
                    name,
                    region,
                })
            }
            "instances" => {
                let f = Fields::new(line, "instances", &exported_fields("instances"))?;
                f.optional_uuid("tenant_id")?;
                let old_id = seen.id(&f)?;
                let old_cluster = f.uuid("cluster_id")?;
                let name = f.parsed("name", Name::parse(f.text("name")?))?;
                let required = |field: &str| {
                    f.integer(field)?
                        .ok_or_else(|| f.error(field, "is required".to_owned()))
                };
                let size = Size {
                    cpu_cores: f.parsed("cpu_cores", input::cpu_cores(required("cpu_cores")?))?,
                    memory_gb: f.parsed("memory_gb", input::memory_gb(required("memory_gb")?))?,
                    // Optional, as in POST /v1/instances.
                    storage_gb: f.parsed(
                        "storage_gb",
                        input::storage_gb(f.integer("storage_gb")?.unwrap_or(0)),
                    )?,
                };
                seen.once(&f, "instance name", "name", name.as_str().to_owned())?;
                if !self.clusters.contains(&old_cluster) {
                    return Err(f.error(
                        "cluster_id",
                        "no cluster with this id earlier in the file (an export lists \
                         clusters before instances)"
                            .to_owned(),
                    ));
                }
                Row::Instance(InstanceRow {
                    line: line.number,
                    old_id,
                    old_cluster,
                    name,
                    size,
                })
            }
            "events" => {
                let f = Fields::new(line, "events", &exported_fields("events"))?;
                Row::Event(event(&f, seen)?)
            }
            "api_keys" => {
                // A credential: never imported, whatever the row holds.
                let f = Fields::any(line, "api_keys")?;
                seen.id(&f)?;
                Row::SkippedApiKey
            }
            other => {
                return Err(RowError {
                    line: line.number,
                    table: shown(other),
                    field: None,
                    message: "unknown table (an export holds members, users, api_keys, \
                              clusters, instances and events)"
                        .to_owned(),
                });
            }
        })
    }
}

/// An event row as provenance: every field checked, kept under
/// `data.original` of the imported event.
fn event(f: &Fields<'_>, seen: &mut Seen) -> Result<EventRow, RowError> {
    let source = f.optional_uuid("tenant_id")?;
    let old_id = seen.id(f)?;
    let kind = f.parsed("kind", bounded_text(f.text("kind")?, 100))?;
    let actor = f.parsed("actor", bounded_text(f.text("actor")?, 320))?;
    let old_subject = f.optional_uuid("subject")?;
    let at = DateTime::parse_from_rfc3339(f.text("at")?)
        .map_err(|_| f.error("at", "must be an RFC 3339 time".to_owned()))?
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let data = f.present("data").cloned().unwrap_or_else(|| json!({}));
    if !data.is_object() {
        return Err(f.error("data", "must be a JSON object".to_owned()));
    }
    if data.to_string().len() > MAX_EVENT_DATA_BYTES {
        return Err(f.error(
            "data",
            format!("must be at most {MAX_EVENT_DATA_BYTES} bytes"),
        ));
    }
    check_data(&data, "data", 0).map_err(|(field, message)| f.error(&field, message))?;
    Ok(EventRow {
        old_subject,
        original: json!({
            "id": old_id,
            "kind": kind,
            "actor": actor,
            "subject": old_subject,
            "at": at,
            "tenant_id": source,
            "data": data,
        }),
    })
}

/// What the import wrote, per table, and what it skipped.
struct Written {
    tenant: tenantry_db::models::Tenant,
    rows: BTreeMap<&'static str, u64>,
    skipped_api_keys: u64,
}

/// Takes `delta` from the new tenant's quota, as the API's `charge` does,
/// or refuses the row that asked for it.
async fn charge(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    delta: Amounts,
    line: usize,
    table: &str,
) -> Result<(), ImportError> {
    queries::quotas::consume(conn, tenant, delta)
        .await?
        .map_err(|e| {
            ImportError::Row(RowError {
                line,
                table: table.to_owned(),
                field: None,
                message: format!(
                    "quota exceeded: {} is {} for the new tenant ([quotas.default]); {} used, {} more requested",
                    e.resource.limit_name(),
                    e.limit,
                    e.used,
                    e.requested
                ),
            })
        })
}

/// A statement refused for one row (a constraint the parse did not catch).
fn refused(line: usize, table: &str) -> impl FnOnce(diesel::result::Error) -> ImportError {
    let table = table.to_owned();
    move |e| {
        ImportError::Row(RowError {
            line,
            table,
            field: None,
            message: format!("the database refused the row: {e}"),
        })
    }
}

fn one(resource: Resource) -> Amounts {
    Amounts::default().with(resource, 1)
}

/// The new tenant's rows so far: old id → new id, for instances' clusters
/// and events' subjects.
struct Target<'c> {
    conn: &'c mut AsyncPgConnection,
    id: TenantId,
    new_ids: HashMap<Uuid, Uuid>,
}

impl Target<'_> {
    /// Writes one checked row into the new tenant: the API's query, the
    /// API's quota charge, a new id.
    async fn write(&mut self, row: Row) -> Result<(), ImportError> {
        let (conn, id) = (&mut *self.conn, self.id);
        match row {
            Row::Member(member) => {
                let created = queries::members::create(
                    conn,
                    id,
                    member.subject.as_str(),
                    member.role.as_str(),
                )
                .await
                .map_err(refused(member.line, "members"))?;
                self.new_ids.insert(member.old_id, *created.id.as_uuid());
            }
            Row::User(user) => {
                let name = user.name.as_ref().map_or("", Name::as_str);
                let created = queries::users::create(conn, id, user.email.as_str(), name)
                    .await
                    .map_err(refused(user.line, "users"))?;
                charge(conn, id, one(Resource::Users), user.line, "users").await?;
                self.new_ids.insert(user.old_id, *created.id.as_uuid());
            }
            Row::Cluster(cluster) => {
                let created = queries::clusters::create(
                    conn,
                    id,
                    cluster.name.as_str(),
                    cluster.region.as_str(),
                )
                .await
                .map_err(refused(cluster.line, "clusters"))?;
                charge(conn, id, one(Resource::Clusters), cluster.line, "clusters").await?;
                self.new_ids.insert(cluster.old_id, *created.id.as_uuid());
            }
            Row::Instance(instance) => {
                // `Checker` saw this instance's cluster earlier in the file.
                let cluster = self
                    .new_ids
                    .get(&instance.old_cluster)
                    .copied()
                    .map(ClusterId::from_uuid)
                    .ok_or_else(|| {
                        ImportError::Row(RowError {
                            line: instance.line,
                            table: "instances".to_owned(),
                            field: Some("cluster_id".to_owned()),
                            message: "no cluster with this id earlier in the file".to_owned(),
                        })
                    })?;
                let created = queries::instances::create(
                    conn,
                    id,
                    cluster,
                    instance.name.as_str(),
                    instance.size,
                )
                .await
                .map_err(refused(instance.line, "instances"))?;
                charge(
                    conn,
                    id,
                    instance.size.footprint(),
                    instance.line,
                    "instances",
                )
                .await?;
                self.new_ids.insert(instance.old_id, *created.id.as_uuid());
            }
            Row::Event(event) => {
                let subject = event
                    .old_subject
                    .and_then(|old| self.new_ids.get(&old).copied());
                queries::events::record(
                    conn,
                    id,
                    IMPORTED_EVENT,
                    IMPORTER,
                    subject,
                    json!({ "original": event.original }),
                )
                .await?;
            }
            Row::SkippedApiKey => {}
        }
        Ok(())
    }
}

/// The import inside the provision transaction: the tenant, then each row
/// of `reader` checked and written as it is read, then the audit entry.
/// Any error rolls it all back.
async fn import<R: BufRead>(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    slug: &Slug,
    name: &Name,
    limits: &tenantry_db::models::Limits,
    mut reader: Reader<R>,
    progress: &mut RowCounter<std::io::Stderr>,
) -> Result<Written, ImportError> {
    let tenant = queries::tenants::create(conn, id, slug.as_str(), name.as_str(), limits).await?;
    let mut checker = Checker::default();
    let mut target = Target {
        conn,
        id,
        new_ids: HashMap::new(),
    };
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut skipped_api_keys = 0;
    // Reading blocks this task between rows; the connection's own I/O runs
    // on the runtime's workers.
    while let Some(line) = reader.next().map_err(ImportError::Input)? {
        let row = checker.check(&line)?;
        drop(line);
        let table = row.table();
        target.write(row).await?;
        if table == "api_keys" {
            skipped_api_keys += 1;
        } else {
            *rows.entry(table).or_default() += 1;
            progress.row(table);
        }
    }
    progress.finish();
    queries::audit::record(
        target.conn,
        Some(id),
        tenantry_ops::Actor::cli().as_str(),
        "tenant.imported",
        None,
        Some(json!({
            "slug": tenant.slug,
            "rows": rows,
            "skipped": { "api_keys": skipped_api_keys },
        })),
        None,
    )
    .await?;
    Ok(Written {
        tenant,
        rows,
        skipped_api_keys,
    })
}

/// The file, or standard input for "-", buffered.
fn open(file: &str) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if file == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?,
        ))
    })
}

pub async fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let slug = Slug::parse(&args.slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    let name = Name::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let reader = Reader::new(open(&args.file)?);
    let limits = tenantry_db::models::Limits::from(&settings.quotas.default);
    let id = TenantId::new();
    let db = Db::new(&settings.database)?;
    let mut progress = RowCounter::new(Progress::stderr(), "imported", args.progress_every);
    let progress_ref = &mut progress;
    let written = db
        .platform()
        .provision(id, |conn| {
            async move { import(conn, id, &slug, &name, &limits, reader, progress_ref).await }
                .scope_boxed()
        })
        .await
        .context("refused; nothing was imported")?;
    progress.line(&format!(
        "committed: {} rows into tenant {}",
        progress.total(),
        written.tenant.slug
    ));
    let skipped = written.skipped_api_keys;
    if skipped > 0 {
        eprintln!(
            "tenantry: skipped {skipped} api_keys row(s): API keys are credentials and are \
             never imported; mint new keys for the new tenant"
        );
    }
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&json!({
            "tenant": tenantry_ops::views::TenantView::new(written.tenant, settings.retention.period),
            "rows": written.rows,
            "skipped": { "api_keys": skipped },
        }))?
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of `text` as the reader yields them, or its refusal.
    fn read(text: &str) -> Result<Vec<Line>, String> {
        let mut reader = Reader::new(text.as_bytes());
        let mut lines = Vec::new();
        while let Some(line) = reader.next()? {
            lines.push(line);
        }
        Ok(lines)
    }

    /// Every row of `text`, read and checked, or the first refusal.
    fn parse(text: &str) -> Result<Vec<Row>, String> {
        let mut checker = Checker::default();
        read(text)?
            .iter()
            .map(|line| checker.check(line).map_err(|e| e.to_string()))
            .collect()
    }

    fn file(rows: &[(&str, Value)]) -> String {
        let mut text: String = rows
            .iter()
            .map(|(t, r)| format!("{}\n", json!({"table": t, "row": r})))
            .collect();
        text.push_str(&format!("{}\n", json!({"end": true, "rows": rows.len()})));
        text
    }

    fn refusal(rows: &[(&str, Value)]) -> String {
        match parse(&file(rows)) {
            Ok(_) => panic!("accepted: {rows:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn cluster(id: Uuid, name: &str) -> Value {
        json!({"id": id, "name": name, "region": "eu"})
    }

    #[test]
    fn a_file_without_its_trailer_is_refused_as_truncated() {
        let file = r#"{"table":"users","row":{"id":"x"}}"#;
        assert_eq!(
            read(file).err().as_deref(),
            Some("no end trailer: the export is truncated")
        );
    }

    #[test]
    fn the_trailer_must_count_the_rows() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":2}\n";
        assert!(read(file).is_err());
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":1}\n";
        assert_eq!(read(file).unwrap().len(), 1);
        // CRLF line endings and blank lines after the trailer are fine; a
        // row after it is not.
        let file = "{\"table\":\"users\",\"row\":{}}\r\n{\"end\":true,\"rows\":1}\r\n\r\n";
        assert_eq!(read(file).unwrap().len(), 1);
        let file = "{\"end\":true,\"rows\":0}\n{\"table\":\"users\",\"row\":{}}\n";
        assert_eq!(
            read(file).err().as_deref(),
            Some("line 2: data after the end trailer")
        );
    }

    /// A source that hands out `text`, then fails: what the reader returned
    /// before the failure, it returned without reading ahead to the end.
    struct ThenFails<'a>(&'a [u8]);

    impl std::io::Read for ThenFails<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("the rest has not arrived"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_reader_streams_rows_as_they_arrive() {
        let first =
            "{\"table\":\"users\",\"row\":{\"n\":1}}\n{\"table\":\"users\",\"row\":{\"n\":2}}\n";
        let mut reader = Reader::new(BufReader::with_capacity(16, ThenFails(first.as_bytes())));
        assert_eq!(reader.next().unwrap().unwrap().row, json!({"n": 1}));
        let second = reader.next().unwrap().unwrap();
        assert_eq!((second.number, second.row), (2, json!({"n": 2})));
        assert_eq!(
            reader.next().err().as_deref(),
            Some("line 3: cannot read: the rest has not arrived")
        );
    }

    #[test]
    fn a_line_longer_than_any_row_is_refused_without_reading_it_whole() {
        // An endless line: the reader stops at its bound instead of
        // growing until memory runs out.
        let mut reader = Reader::new(BufReader::new(std::io::repeat(b'x')));
        assert_eq!(
            reader.next().err().as_deref(),
            Some("line 1: longer than 1048576 bytes; no export row is")
        );
    }

    #[test]
    fn an_export_that_failed_midway_is_refused() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":false,\"error\":\"x\"}\n";
        assert!(read(file).is_err());
    }

    #[test]
    fn refusals_name_the_line_the_table_and_the_field() {
        let id = Uuid::now_v7();
        assert_eq!(
            refusal(&[
                ("clusters", cluster(id, "main")),
                ("clusters", cluster(Uuid::now_v7(), "a\u{1b}[31mb")),
            ]),
            "line 2, clusters.name: must not contain control characters (U+001B at character 2)"
        );
        assert_eq!(
            refusal(&[("secrets", json!({}))]),
            "line 1, secrets: unknown table (an export holds members, users, api_keys, \
             clusters, instances and events)"
        );
        assert_eq!(
            refusal(&[(
                "clusters",
                json!({"id": id, "name": "x", "region": "eu", "tenant_quota\u{1b}": 1})
            )]),
            "line 1, clusters.tenant_quota\\u{1b}: unknown field",
            "file text in a message is escaped"
        );
        assert!(
            refusal(&[(
                "instances",
                json!({"id": id, "cluster_id": id, "name": "vm", "cpu_cores": 1, "memory_gb": 1})
            )])
            .starts_with("line 1, instances.cluster_id: no cluster")
        );
        // Rows refer only to rows before them, as an export writes them.
        assert!(
            refusal(&[
                (
                    "instances",
                    json!({"id": Uuid::now_v7(), "cluster_id": id, "name": "vm", "cpu_cores": 1, "memory_gb": 1})
                ),
                ("clusters", cluster(id, "main")),
            ])
            .starts_with("line 1, instances.cluster_id: no cluster with this id earlier in the file")
        );
        assert!(
            refusal(&[
                ("clusters", cluster(id, "a")),
                ("users", json!({"id": id, "email": "a@b.c"}))
            ])
            .starts_with("line 2, users.id: appears twice in the file (also on line 1)")
        );
        assert!(
            refusal(&[
                ("users", json!({"id": id, "email": "A@b.c"})),
                ("users", json!({"id": Uuid::now_v7(), "email": "a@B.c"}))
            ])
            .starts_with("line 2, users.email: appears twice")
        );
        assert!(
            refusal(&[(
                "instances",
                json!({"id": id, "cluster_id": id, "name": "vm", "cpu_cores": 1.5, "memory_gb": 1})
            )])
            .starts_with("line 1, instances.cpu_cores: must be an integer")
        );
        assert!(
            refusal(&[(
                "events",
                json!({"id": id, "kind": "k", "actor": "a", "at": "yesterday", "data": {}})
            )])
            .starts_with("line 1, events.at: must be an RFC 3339 time")
        );
        assert!(
            refusal(&[("events", json!({"id": id, "kind": "k", "actor": "a", "at": "2024-01-01T00:00:00Z", "data": {"tags": ["ok", "b\u{200b}ad"]}}))])
                .starts_with("line 1, events.data.tags[1]: must not contain invisible")
        );
    }

    #[test]
    fn every_imported_table_takes_the_columns_the_export_writes() {
        for table in ["users", "clusters", "instances", "events"] {
            let fields = exported_fields(table);
            assert!(
                fields.starts_with(&["tenant_id", "id"]),
                "{table}: {fields:?}"
            );
        }
        assert!(exported_fields("tenant_quotas").is_empty());
    }

    #[test]
    fn api_keys_are_skipped_and_counted_whatever_they_hold() {
        let rows = parse(&file(&[(
            "api_keys",
            json!({"id": Uuid::now_v7(), "secret_hash": "\\x00", "name": "ci"}),
        )]))
        .unwrap();
        assert!(matches!(rows[..], [Row::SkippedApiKey]));
    }

    #[test]
    fn events_keep_their_original_as_provenance_with_the_time_normalised() {
        let id = Uuid::now_v7();
        let rows = parse(&file(&[(
            "events",
            json!({"id": id, "kind": "tenant.suspend", "actor": "platform-admin:x",
                   "subject": null, "at": "2020-01-01T01:00:00+01:00", "data": {"n": 1}}),
        )]))
        .unwrap();
        let [Row::Event(event)] = &rows[..] else {
            panic!("not one event")
        };
        let original = &event.original;
        assert_eq!(original["id"], json!(id));
        assert_eq!(original["at"], "2020-01-01T00:00:00Z");
        assert_eq!(original["kind"], "tenant.suspend");
        assert_eq!(original["data"], json!({"n": 1}));
    }
}
