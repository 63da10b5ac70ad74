//! `tenantry tenants import`: an export file into a NEW tenant, all or
//! nothing, trusting nothing in the file.
//!
//! - The file must end with the export's `{"end": true, "rows": N}` trailer
//!   and hold exactly N rows, so a truncated export is refused.
//! - Every row is parsed with the API's own parsers (`Name`, `Email`,
//!   `Region`, the instance size bounds) before anything is written; a row of
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
//! It all runs in one transaction (`PlatformScope::provision`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tenantry_core::input::{self, readable};
use tenantry_core::{Amounts, ClusterId, Email, Name, Region, Resource, Slug, TenantId};
use tenantry_db::queries::instances::Size;
use tenantry_db::{AsyncPgConnection, Db, DbError, ScopedFutureExt, queries};
use uuid::Uuid;

use crate::settings::Settings;

/// Who imported history is attributed to: `import:cli`.
const IMPORTER: &str = "import:cli";
/// The kind every imported event gets; the original kind is provenance.
const IMPORTED_EVENT: &str = "event.imported";
/// The largest `data` of one imported event, serialized.
const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// How deep an imported event's `data` may nest.
const MAX_EVENT_DATA_DEPTH: usize = 32;

/// One `{"table": ..., "row": ...}` line of the file.
struct Line {
    number: usize,
    table: String,
    row: Value,
}

/// Reads the file: JSON lines, then the trailer that counts them.
fn read(reader: impl BufRead) -> anyhow::Result<Vec<Line>> {
    let mut rows = Vec::new();
    let mut trailer = None;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("line {number}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        if trailer.is_some() {
            bail!("line {number}: data after the end trailer");
        }
        let value: Value =
            serde_json::from_str(&line).with_context(|| format!("line {number}: not JSON"))?;
        if let Some(end) = value.get("end") {
            if end != &Value::Bool(true) {
                bail!("line {number}: the export says it is incomplete");
            }
            trailer = Some(
                value
                    .get("rows")
                    .and_then(Value::as_u64)
                    .context("trailer without rows")?,
            );
            continue;
        }
        let table = value
            .get("table")
            .and_then(Value::as_str)
            .with_context(|| format!("line {number}: no table"))?
            .to_owned();
        let row = value
            .get("row")
            .cloned()
            .with_context(|| format!("line {number}: no row"))?;
        rows.push(Line { number, table, row });
    }
    match trailer {
        None => bail!("no end trailer: the export is truncated"),
        Some(n) if usize::try_from(n).ok() != Some(rows.len()) => {
            bail!("the trailer says {n} rows, the file has {}", rows.len())
        }
        Some(_) => Ok(rows),
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
    Row(RowError),
    Db(DbError),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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

struct EventRow {
    old_subject: Option<Uuid>,
    /// The row as it was, kept as provenance under `data.original`.
    original: Value,
}

/// Everything the file asks for, parsed; nothing written yet.
#[derive(Default)]
struct Plan {
    users: Vec<UserRow>,
    clusters: Vec<ClusterRow>,
    instances: Vec<InstanceRow>,
    events: Vec<EventRow>,
    skipped_api_keys: u64,
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

/// Parses every line into the plan, or refuses the first bad one. Writes
/// nothing: a refused file never reaches the database.
fn plan(lines: &[Line]) -> Result<Plan, RowError> {
    let mut plan = Plan::default();
    let mut seen = Seen::default();
    for line in lines {
        match line.table.as_str() {
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
                plan.users.push(UserRow {
                    line: line.number,
                    old_id,
                    email,
                    name,
                });
            }
            "clusters" => {
                let f = Fields::new(line, "clusters", &exported_fields("clusters"))?;
                f.optional_uuid("tenant_id")?;
                let old_id = seen.id(&f)?;
                let name = f.parsed("name", Name::parse(f.text("name")?))?;
                let region = f.parsed("region", Region::parse(f.text("region")?))?;
                seen.once(&f, "cluster name", "name", name.as_str().to_owned())?;
                plan.clusters.push(ClusterRow {
                    line: line.number,
                    old_id,
                    name,
                    region,
                });
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
                plan.instances.push(InstanceRow {
                    line: line.number,
                    old_id,
                    old_cluster,
                    name,
                    size,
                });
            }
            "events" => {
                let f = Fields::new(line, "events", &exported_fields("events"))?;
                plan.events.push(event(&f, &mut seen)?);
            }
            "api_keys" => {
                // A credential: never imported, whatever the row holds.
                let f = Fields::any(line, "api_keys")?;
                seen.id(&f)?;
                plan.skipped_api_keys += 1;
            }
            other => {
                return Err(RowError {
                    line: line.number,
                    table: shown(other),
                    field: None,
                    message: "unknown table (an export holds users, api_keys, clusters, \
                              instances and events)"
                        .to_owned(),
                });
            }
        }
    }
    let clusters: HashSet<Uuid> = plan.clusters.iter().map(|c| c.old_id).collect();
    if let Some(orphan) = plan
        .instances
        .iter()
        .find(|i| !clusters.contains(&i.old_cluster))
    {
        return Err(RowError {
            line: orphan.line,
            table: "instances".to_owned(),
            field: Some("cluster_id".to_owned()),
            message: "no cluster with this id in the file".to_owned(),
        });
    }
    Ok(plan)
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

/// What the import wrote, per table.
struct Written {
    tenant: tenantry_db::models::Tenant,
    rows: BTreeMap<&'static str, u64>,
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

/// Writes the plan into the new tenant `id`, inside the provision
/// transaction: the API's queries, the API's quota charge, new ids.
async fn write(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    slug: &Slug,
    name: &Name,
    limits: &tenantry_db::models::Limits,
    plan: Plan,
) -> Result<Written, ImportError> {
    let tenant = queries::tenants::create(conn, id, slug.as_str(), name.as_str(), limits).await?;
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    // Old id → new id, for instances' clusters and events' subjects.
    let mut new_ids: HashMap<Uuid, Uuid> = HashMap::new();
    for user in plan.users {
        let name = user.name.as_ref().map_or("", Name::as_str);
        let created = queries::users::create(conn, id, user.email.as_str(), name)
            .await
            .map_err(refused(user.line, "users"))?;
        charge(conn, id, one(Resource::Users), user.line, "users").await?;
        new_ids.insert(user.old_id, *created.id.as_uuid());
        *rows.entry("users").or_default() += 1;
    }
    for cluster in plan.clusters {
        let created =
            queries::clusters::create(conn, id, cluster.name.as_str(), cluster.region.as_str())
                .await
                .map_err(refused(cluster.line, "clusters"))?;
        charge(conn, id, one(Resource::Clusters), cluster.line, "clusters").await?;
        new_ids.insert(cluster.old_id, *created.id.as_uuid());
        *rows.entry("clusters").or_default() += 1;
    }
    for instance in plan.instances {
        // `plan` checked that every instance's cluster is in the file.
        let cluster = new_ids
            .get(&instance.old_cluster)
            .copied()
            .map(ClusterId::from_uuid)
            .ok_or_else(|| {
                ImportError::Row(RowError {
                    line: instance.line,
                    table: "instances".to_owned(),
                    field: Some("cluster_id".to_owned()),
                    message: "no cluster with this id in the file".to_owned(),
                })
            })?;
        let created =
            queries::instances::create(conn, id, cluster, instance.name.as_str(), instance.size)
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
        new_ids.insert(instance.old_id, *created.id.as_uuid());
        *rows.entry("instances").or_default() += 1;
    }
    for event in plan.events {
        let subject = event.old_subject.and_then(|old| new_ids.get(&old).copied());
        queries::events::record(
            conn,
            id,
            IMPORTED_EVENT,
            IMPORTER,
            subject,
            json!({ "original": event.original }),
        )
        .await?;
        *rows.entry("events").or_default() += 1;
    }
    queries::audit::record(
        conn,
        Some(id),
        tenantry_ops::Actor::cli().as_str(),
        "tenant.imported",
        None,
        Some(json!({
            "slug": tenant.slug,
            "rows": rows,
            "skipped": { "api_keys": plan.skipped_api_keys },
        })),
        None,
    )
    .await?;
    Ok(Written { tenant, rows })
}

pub async fn run(
    settings: &Settings,
    file: &str,
    slug: &str,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let slug = Slug::parse(slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    let name = Name::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let lines = if file == "-" {
        read(BufReader::new(std::io::stdin().lock()))?
    } else {
        read(BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?,
        ))?
    };
    let plan = plan(&lines).context("refused; nothing was imported")?;
    drop(lines);
    let skipped = plan.skipped_api_keys;
    let limits = tenantry_db::models::Limits::from(&settings.quotas.default);
    let id = TenantId::new();
    let db = Db::new(&settings.database)?;
    let written = db
        .platform()
        .provision(id, |conn| {
            async move { write(conn, id, &slug, &name, &limits, plan).await }.scope_boxed()
        })
        .await
        .context("refused; nothing was imported")?;
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

    fn lines(text: &str) -> Vec<Line> {
        read(text.as_bytes()).unwrap()
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
        match plan(&lines(&file(rows))) {
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
        assert!(read(file.as_bytes()).is_err());
    }

    #[test]
    fn the_trailer_must_count_the_rows() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":2}\n";
        assert!(read(file.as_bytes()).is_err());
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":1}\n";
        assert_eq!(read(file.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn an_export_that_failed_midway_is_refused() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":false,\"error\":\"x\"}\n";
        assert!(read(file.as_bytes()).is_err());
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
            "line 1, secrets: unknown table (an export holds users, api_keys, clusters, \
             instances and events)"
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
        let plan = plan(&lines(&file(&[(
            "api_keys",
            json!({"id": Uuid::now_v7(), "secret_hash": "\\x00", "name": "ci"}),
        )])))
        .unwrap();
        assert_eq!(plan.skipped_api_keys, 1);
    }

    #[test]
    fn events_keep_their_original_as_provenance_with_the_time_normalised() {
        let id = Uuid::now_v7();
        let plan = plan(&lines(&file(&[(
            "events",
            json!({"id": id, "kind": "tenant.suspend", "actor": "platform-admin:x",
                   "subject": null, "at": "2020-01-01T01:00:00+01:00", "data": {"n": 1}}),
        )])))
        .unwrap();
        let original = &plan.events[0].original;
        assert_eq!(original["id"], json!(id));
        assert_eq!(original["at"], "2020-01-01T00:00:00Z");
        assert_eq!(original["kind"], "tenant.suspend");
        assert_eq!(original["data"], json!({"n": 1}));
    }
}
