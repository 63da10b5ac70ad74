//! Import: an export file (NDJSON, `GET /v1/admin/tenants/{id}/export`)
//! into a tenant, all or nothing, trusting nothing in the file. The CLI
//! (`tenantry tenants import`, into a NEW tenant) and the API
//! (`POST /v1/admin/tenants/{id}/import`, into an existing EMPTY tenant)
//! both run [`run`].
//!
//! - The file must end with the export's `{"end": true, "rows": N}` trailer
//!   and hold exactly N rows, so a truncated export is refused.
//! - Sections first (`queries::export::EXPORTED_SECTIONS`): the tenant's
//!   limits (`tenant_quotas`) and its settings document
//!   (`tenant_settings`), each at most once and before any row. Limits
//!   are restored only when the importer asks for it
//!   ([`Options::restore_limits`]): otherwise a file could raise its own
//!   quota; without it the line is checked and skipped (the target keeps
//!   its limits). The settings document is checked against the operator's
//!   schema, like any write, and keeps its version.
//! - `tenant_plan` (once): the plan by NAME and the overrides. Restored with
//!   the limits only: the target goes on the plan of that name in THIS
//!   deployment (`ops::plans::named`, locked shared before the tenant's
//!   row, as `assign` does; unknown: refused, naming the line), the file's
//!   overrides keep the file's values and the other limits are the plan's
//!   (`ops::plans::put_on`). Without `restore_limits`: checked, skipped.
//! - `domains` (a line each, no token: a secret): always registered again,
//!   as PENDING claims with fresh tokens, through `ops::domains::create`.
//!   The old proof was the old tenant's; the new one proves control anew,
//!   and a file cannot hand a tenant a name that routes. A name another
//!   tenant (the source, too) holds refuses the line (409) and the import.
//! - Every row is parsed with the API's own parsers (`Name`, `Email`,
//!   `Region`, the instance size bounds) before it is written; a row of
//!   an unknown table, an unknown field or a bad value is refused with its
//!   line, table and field.
//! - Tenant ids: every row is written into the target, whatever its
//!   `tenant_id` says. When the file names its source tenant (the
//!   `tenant_quotas` section an export writes first), a row naming another
//!   tenant is refused: an export holds one tenant's rows, and a file
//!   mixing tenants was not made by one. Files without that header (made
//!   by hand, or by an export before the sections existed) are not checked.
//! - Rows are written through the API's own queries with NEW ids (old ids
//!   are mapped, so an instance lands in the imported copy of its cluster),
//!   and each is charged through `quotas::consume` exactly as the API
//!   charges it: an import over the target's limits fails as a whole, with
//!   the API's `quota_exceeded`.
//! - `api_keys` rows are skipped and counted: a key is a credential, and a
//!   credential is never imported. Mint new keys for the new tenant.
//! - Imported history says so: each event becomes `event.imported` by
//!   `import:<importer>` at the time of the import, with the original id,
//!   kind, actor, subject, time, tenant and data kept under `data.original`.
//!
//! It all runs in one transaction (`PlatformScope::provision`), and the file
//! is streamed through it: a line is read, checked and written before the
//! next is read (events, [`EVENT_FLIGHT`] at a time), so memory
//! holds one line (at most [`MAX_LINE_BYTES`]), one batch of events and
//! the ids seen so far, never the file. A refusal on any line, or a missing
//! trailer at the end, rolls the whole import back; the error names the
//! line ([`Error::AtLine`]). Rows refer only to rows before them, as in an
//! export (users, api_keys, clusters, instances, events): an instance's
//! cluster must come earlier in the file.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use tenantry_db::Conn;

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::result::DatabaseErrorKind;
use serde_json::{Map, Value, json};
use tenantry_core::input::{self, readable};
use tenantry_core::{
    Amounts, ClusterId, Email, Hostname, Name, Region, Resource, Slug, TenantId, TenantStatus,
};
use tenantry_db::models::{Limits, QuotaOrigin};
use tenantry_db::queries::instances::Size;
use tenantry_db::{ScopedFutureExt, queries};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::on_constraint;
use crate::quotas::LimitsPatch;
use crate::settings::SettingsRules;
use crate::tenants::resolve;
use crate::views::{ImportView, LimitsView, TenantView};
use crate::{Actor, Error, Operations, TenantActor};

/// The sections an export writes before the rows
/// (`queries::export::EXPORTED_SECTIONS`).
const SECTIONS: [&str; 4] = ["tenant_quotas", "tenant_settings", "tenant_plan", "domains"];

/// The kind every imported event gets; the original kind is provenance.
const IMPORTED_EVENT: &str = "event.imported";
/// The largest `data` of one imported event, serialized.
const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
/// How deep an imported event's `data` may nest.
const MAX_EVENT_DATA_DEPTH: usize = 32;
/// The longest line read: far above any row an export writes (an event's
/// data is at most [`MAX_EVENT_DATA_BYTES`], a settings document at most
/// `tenancy.settings_max_bytes`), and a bound on what one line of a hostile
/// file can make the import hold.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Where the file's bytes come from: chunks, in order, as they arrive;
/// an `Err` says why the rest cannot be read. Closing the sender ends it.
pub type InputSender = mpsc::Sender<Result<Vec<u8>, String>>;

/// The file as it arrives, a chunk at a time (from a reader thread for the
/// CLI, from the request body for the API).
#[derive(Debug)]
pub struct Input {
    chunks: mpsc::Receiver<Result<Vec<u8>, String>>,
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    start: usize,
    ended: bool,
}

/// A channel for the file: send chunks into the first, import the second.
/// At most `capacity` chunks wait unread (backpressure on the source).
#[must_use]
pub fn input(capacity: usize) -> (InputSender, Input) {
    let (tx, chunks) = mpsc::channel(capacity.max(1));
    (
        tx,
        Input {
            chunks,
            buffer: Vec::new(),
            start: 0,
            ended: false,
        },
    )
}

impl Input {
    /// The next line's bytes, without the line ending; `None` at the end.
    async fn line(&mut self, number: u64) -> Result<Option<Vec<u8>>, String> {
        loop {
            let unread = &self.buffer[self.start..];
            if let Some(at) = unread.iter().position(|b| *b == b'\n') {
                if at > MAX_LINE_BYTES {
                    return Err(too_long(number));
                }
                let line = unread[..at].to_vec();
                self.start += at + 1;
                return Ok(Some(line));
            }
            if unread.len() > MAX_LINE_BYTES {
                return Err(too_long(number));
            }
            if self.ended {
                if unread.is_empty() {
                    return Ok(None);
                }
                let line = unread.to_vec();
                self.start = self.buffer.len();
                return Ok(Some(line));
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            match self.chunks.recv().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(format!("line {number}: cannot read: {e}")),
                None => self.ended = true,
            }
        }
    }
}

fn too_long(number: u64) -> String {
    format!("line {number}: longer than {MAX_LINE_BYTES} bytes; no export row is")
}

/// One `{"table": ..., "row": ...}` line of the file.
struct Line {
    number: u64,
    table: String,
    row: Value,
}

/// The file, a line at a time: `{"table", "row"}` lines, then the trailer
/// that counts them. Only blank lines may follow the trailer.
struct Reader {
    input: Input,
    /// The number of the last line read.
    number: u64,
    rows: u64,
}

/// The file itself is malformed (not a row's content): where and why.
struct Malformed {
    line: Option<u64>,
    message: String,
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        let inner = Error::validation("body", m.message);
        match m.line {
            Some(line) => Error::AtLine {
                line,
                table: None,
                source: Box::new(inner),
            },
            None => inner,
        }
    }
}

impl Reader {
    fn new(input: Input) -> Self {
        Self {
            input,
            number: 0,
            rows: 0,
        }
    }

    /// The next line as text; `None` at the end.
    async fn text(&mut self) -> Result<Option<String>, Malformed> {
        let number = self.number + 1;
        let read = self.input.line(number).await.map_err(|message| Malformed {
            line: None,
            message,
        })?;
        let Some(mut bytes) = read else {
            return Ok(None);
        };
        self.number = number;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        String::from_utf8(bytes).map(Some).map_err(|_| Malformed {
            line: None,
            message: format!("line {number}: cannot read: not UTF-8"),
        })
    }

    /// The next row; `None` once the trailer has been read, nothing but
    /// blank lines follow it, and it counts the rows read.
    async fn next(&mut self) -> Result<Option<Line>, Malformed> {
        let at = |number: u64, message: String| Malformed {
            line: Some(number),
            message,
        };
        while let Some(line) = self.text().await? {
            let number = self.number;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(&line).map_err(|e| at(number, format!("not JSON: {e}")))?;
            if let Some(end) = value.get("end") {
                if end != &Value::Bool(true) {
                    return Err(at(number, "the export says it is incomplete".to_owned()));
                }
                let trailer = value
                    .get("rows")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| at(number, "trailer without rows".to_owned()))?;
                self.after_trailer().await?;
                if trailer != self.rows {
                    return Err(Malformed {
                        line: None,
                        message: format!(
                            "the trailer says {trailer} rows, the file has {}",
                            self.rows
                        ),
                    });
                }
                return Ok(None);
            }
            let table = value
                .get("table")
                .and_then(Value::as_str)
                .ok_or_else(|| at(number, "no table".to_owned()))?
                .to_owned();
            let row = value
                .get("row")
                .cloned()
                .ok_or_else(|| at(number, "no row".to_owned()))?;
            self.rows += 1;
            return Ok(Some(Line { number, table, row }));
        }
        Err(Malformed {
            line: None,
            message: "no end trailer: the export is truncated".to_owned(),
        })
    }

    async fn after_trailer(&mut self) -> Result<(), Malformed> {
        while let Some(line) = self.text().await? {
            if !line.trim().is_empty() {
                return Err(Malformed {
                    line: Some(self.number),
                    message: "data after the end trailer".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Text from the file, made safe to print.
fn shown(text: &str) -> String {
    text.escape_debug().to_string()
}

/// `source` about `line` (of `table`, when the error does not say).
fn at_line(line: u64, table: Option<&str>, source: Error) -> Error {
    Error::AtLine {
        line,
        table: table.map(str::to_owned),
        source: Box::new(source),
    }
}

/// The fields of one row, checked against the columns its table exports.
struct Fields<'a> {
    line: u64,
    table: &'static str,
    row: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The row's fields; one not in `allowed` is refused.
    fn new(line: &'a Line, table: &'static str, allowed: &[&str]) -> Result<Self, Error> {
        let fields = Self::any(line, table)?;
        if let Some(unknown) = fields.row.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(fields.error(&shown(unknown), "unknown field".to_owned()));
        }
        Ok(fields)
    }

    /// The row's fields, whatever they are.
    fn any(line: &'a Line, table: &'static str) -> Result<Self, Error> {
        Ok(Self {
            line: line.number,
            table,
            row: line.row.as_object().ok_or_else(|| {
                at_line(
                    line.number,
                    None,
                    Error::validation(table, "the row is not a JSON object"),
                )
            })?,
        })
    }

    fn error(&self, field: &str, message: String) -> Error {
        at_line(
            self.line,
            None,
            Error::Validation {
                field: Cow::Owned(format!("{}.{field}", self.table)),
                detail: message,
            },
        )
    }

    /// `parsed` (a parser's result for `field`) or the parser's message.
    fn parsed<T>(&self, field: &str, parsed: Result<T, String>) -> Result<T, Error> {
        parsed.map_err(|message| self.error(field, message))
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.row.get(field).filter(|v| !v.is_null())
    }

    fn text(&self, field: &str) -> Result<&'a str, Error> {
        self.optional_text(field)?
            .ok_or_else(|| self.error(field, "is required".to_owned()))
    }

    fn optional_text(&self, field: &str) -> Result<Option<&'a str>, Error> {
        self.present(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(field, "must be a string".to_owned()))
            })
            .transpose()
    }

    fn uuid(&self, field: &str) -> Result<Uuid, Error> {
        self.optional_uuid(field)?
            .ok_or_else(|| self.error(field, "is required".to_owned()))
    }

    fn optional_uuid(&self, field: &str) -> Result<Option<Uuid>, Error> {
        self.optional_text(field)?
            .map(|t| Uuid::parse_str(t).map_err(|_| self.error(field, "must be a UUID".to_owned())))
            .transpose()
    }

    fn integer(&self, field: &str) -> Result<Option<i64>, Error> {
        self.present(field)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.error(field, "must be an integer".to_owned()))
            })
            .transpose()
    }

    fn required_i32(&self, field: &str) -> Result<i32, Error> {
        let value = self
            .integer(field)?
            .ok_or_else(|| self.error(field, "is required".to_owned()))?;
        i32::try_from(value).map_err(|_| self.error(field, "is out of range".to_owned()))
    }
}

struct UserRow {
    line: u64,
    old_id: Uuid,
    email: Email,
    name: Option<Name>,
}

struct ClusterRow {
    line: u64,
    old_id: Uuid,
    name: Name,
    region: Region,
}

struct InstanceRow {
    line: u64,
    old_id: Uuid,
    old_cluster: Uuid,
    name: Name,
    size: Size,
}

struct MemberRow {
    line: u64,
    old_id: Uuid,
    subject: crate::members::Subject,
    role: tenantry_core::Role,
}

/// The `tenant_plan` section: where the limits come from.
struct PlanRow {
    line: u64,
    /// `None`: the source was on no plan.
    plan_name: Option<Slug>,
    /// Limit names, in `Limits::NAMES` order.
    overrides: Vec<String>,
}

struct EventRow {
    old_subject: Option<Uuid>,
    /// The row as it was, kept as provenance under `data.original`.
    original: Value,
}

/// One line of the file, parsed and checked; nothing written yet.
enum Row {
    Limits(u64, LimitsView),
    Settings {
        line: u64,
        version: i32,
        document: Value,
    },
    Plan(PlanRow),
    /// A custom domain of the source, registered again as a pending claim.
    Domain {
        line: u64,
        hostname: Hostname,
    },
    Member(MemberRow),
    User(UserRow),
    Cluster(ClusterRow),
    Instance(InstanceRow),
    Event(EventRow),
    /// A credential: never imported, only counted.
    SkippedApiKey,
    /// A period of the source's usage history: never imported (the new
    /// tenant's history starts with its own charges), only counted.
    SkippedUsage,
}

impl Row {
    fn table(&self) -> &'static str {
        match self {
            Self::Limits(..) => "tenant_quotas",
            Self::Settings { .. } => "tenant_settings",
            Self::Plan(_) => "tenant_plan",
            Self::Domain { .. } => "domains",
            Self::Member(_) => "members",
            Self::User(_) => "users",
            Self::Cluster(_) => "clusters",
            Self::Instance(_) => "instances",
            Self::Event(_) => "events",
            Self::SkippedApiKey => "api_keys",
            Self::SkippedUsage => "usage_history",
        }
    }
}

/// Values that must be unique in the file, by (what, value): old ids
/// across all tables (they are what links rows), emails, cluster and
/// instance names. The database would refuse most duplicates too; this
/// names both lines.
#[derive(Default)]
struct Seen(HashMap<(&'static str, String), u64>);

impl Seen {
    fn once(
        &mut self,
        fields: &Fields<'_>,
        what: &'static str,
        field: &str,
        value: String,
    ) -> Result<(), Error> {
        match self.0.insert((what, value), fields.line) {
            Some(first) => Err(fields.error(
                field,
                format!("appears twice in the file (also on line {first})"),
            )),
            None => Ok(()),
        }
    }

    fn id(&mut self, fields: &Fields<'_>) -> Result<Uuid, Error> {
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
/// writes (`queries::export::EXPORTED_COLUMNS` and `EXPORTED_SECTIONS`).
fn exported_fields(table: &str) -> Vec<&'static str> {
    queries::export::EXPORTED_COLUMNS
        .iter()
        .copied()
        .chain(
            queries::export::EXPORTED_SECTIONS
                .iter()
                .map(|(t, _, columns)| (*t, *columns)),
        )
        .find(|(t, _)| *t == table)
        .map(|(_, columns)| columns.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// Checks each line against the rows before it: sections first and once,
/// one source tenant, unique ids, emails and names, and an instance's
/// cluster already seen.
struct Checker<'r> {
    settings: &'r SettingsRules,
    /// The service's base domain: no custom domain lies under it.
    base_domain: Option<&'r str>,
    seen: Seen,
    clusters: HashSet<Uuid>,
    /// The tenant the file says it is an export of, and where it said so.
    source: Option<(Uuid, u64)>,
    /// Sections read so far; none may come after the first row.
    sections: HashSet<&'static str>,
    rows_begun: bool,
}

impl<'r> Checker<'r> {
    fn new(settings: &'r SettingsRules, base_domain: Option<&'r str>) -> Self {
        Self {
            settings,
            base_domain,
            seen: Seen::default(),
            clusters: HashSet::new(),
            source: None,
            sections: HashSet::new(),
            rows_begun: false,
        }
    }

    /// A row's `tenant_id`: any UUID, and the file's source tenant once the
    /// file has named one.
    fn tenant(&self, f: &Fields<'_>) -> Result<Option<Uuid>, Error> {
        let tenant = f.optional_uuid("tenant_id")?;
        if let (Some(tenant), Some((source, line))) = (tenant, self.source)
            && tenant != source
        {
            return Err(f.error(
                "tenant_id",
                format!(
                    "names another tenant than the file's own (line {line}): an export holds \
                     one tenant's rows"
                ),
            ));
        }
        Ok(tenant)
    }

    fn section(&mut self, f: &Fields<'_>) -> Result<(), Error> {
        if self.rows_begun {
            return Err(at_line(
                f.line,
                None,
                Error::validation(
                    f.table,
                    "comes after the rows; an export writes the tenant's sections first",
                ),
            ));
        }
        // A domain is a line each; the other sections come once.
        if !self.sections.insert(f.table) && f.table != "domains" {
            return Err(at_line(
                f.line,
                None,
                Error::validation(f.table, "appears twice in the file"),
            ));
        }
        Ok(())
    }

    /// The line parsed into its row, or the refusal of it.
    fn check(&mut self, line: &Line) -> Result<Row, Error> {
        let table = line.table.as_str();
        if !SECTIONS.contains(&table) {
            self.rows_begun = true;
        }
        Ok(match table {
            "tenant_quotas" => {
                let f = Fields::new(line, "tenant_quotas", &exported_fields(table))?;
                self.section(&f)?;
                // The header: its tenant is the file's source.
                if let Some(source) = self.tenant(&f)? {
                    self.source = Some((source, line.number));
                }
                let patch = LimitsPatch {
                    max_users: Some(f.required_i32("max_users")?),
                    max_api_keys: Some(f.required_i32("max_api_keys")?),
                    max_clusters: Some(f.required_i32("max_clusters")?),
                    max_instances: Some(f.required_i32("max_instances")?),
                    max_cpu_cores: Some(f.required_i32("max_cpu_cores")?),
                    max_memory_gb: Some(f.required_i32("max_memory_gb")?),
                    max_storage_gb: Some(f.required_i32("max_storage_gb")?),
                    requests_per_second: Some(f.required_i32("requests_per_second")?),
                    burst: Some(f.required_i32("burst")?),
                };
                // Every limit is given: the base is never read.
                let base = LimitsView {
                    max_users: 0,
                    max_api_keys: 0,
                    max_clusters: 0,
                    max_instances: 0,
                    max_cpu_cores: 0,
                    max_memory_gb: 0,
                    max_storage_gb: 0,
                    requests_per_second: 0,
                    burst: 0,
                };
                let limits = patch.apply(&base).map_err(|e| match e {
                    Error::Validation { field, detail } => f.error(&field, detail),
                    other => at_line(line.number, Some("tenant_quotas"), other),
                })?;
                Row::Limits(line.number, limits)
            }
            "tenant_settings" => {
                let f = Fields::new(line, "tenant_settings", &exported_fields(table))?;
                self.section(&f)?;
                self.tenant(&f)?;
                let version = f.required_i32("version")?;
                if version < 1 {
                    return Err(f.error("version", "must be 1 or more".to_owned()));
                }
                let document = f
                    .present("document")
                    .cloned()
                    .ok_or_else(|| f.error("document", "is required".to_owned()))?;
                self.settings
                    .check(&document)
                    .map_err(|e| at_line(line.number, Some("tenant_settings.document"), e))?;
                Row::Settings {
                    line: line.number,
                    version,
                    document,
                }
            }
            "tenant_plan" => {
                let f = Fields::new(line, "tenant_plan", &exported_fields(table))?;
                self.section(&f)?;
                self.tenant(&f)?;
                let plan_name = f
                    .optional_text("plan_name")?
                    .map(|name| f.parsed("plan_name", Slug::parse(name).map_err(|e| e.to_string())))
                    .transpose()?;
                let overrides = match f.present("overrides") {
                    None => Vec::new(),
                    Some(Value::Array(items)) => {
                        let mut names = Vec::new();
                        for item in items {
                            let name = item
                                .as_str()
                                .and_then(|n| Limits::NAMES.iter().find(|l| **l == n))
                                .ok_or_else(|| {
                                    f.error(
                                        "overrides",
                                        format!("must name limits: {}", Limits::NAMES.join(", ")),
                                    )
                                })?;
                            if names.contains(name) {
                                return Err(f.error("overrides", format!("names {name} twice")));
                            }
                            names.push(*name);
                        }
                        names.sort_by_key(|o| Limits::NAMES.iter().position(|n| n == o));
                        names.into_iter().map(str::to_owned).collect()
                    }
                    Some(_) => {
                        return Err(f.error("overrides", "must be an array".to_owned()));
                    }
                };
                Row::Plan(PlanRow {
                    line: line.number,
                    plan_name,
                    overrides,
                })
            }
            "domains" => {
                let f = Fields::new(line, "domains", &exported_fields(table))?;
                self.section(&f)?;
                self.tenant(&f)?;
                let hostname = f.parsed(
                    "hostname",
                    Hostname::parse(f.text("hostname")?, self.base_domain)
                        .map_err(|e| e.to_string()),
                )?;
                // Checked, not kept: the claim starts over (pending, now).
                for field in ["verified_at", "created_at"] {
                    if let Some(at) = f.optional_text(field)? {
                        DateTime::parse_from_rfc3339(at)
                            .map_err(|_| f.error(field, "must be an RFC 3339 time".to_owned()))?;
                    }
                }
                self.seen
                    .once(&f, "hostname", "hostname", hostname.as_str().to_owned())?;
                Row::Domain {
                    line: line.number,
                    hostname,
                }
            }
            "members" => {
                let f = Fields::new(line, "members", &exported_fields(table))?;
                self.tenant(&f)?;
                let seen = &mut self.seen;
                let old_id = seen.id(&f)?;
                let subject = f.parsed(
                    "subject",
                    crate::members::Subject::parse(f.text("subject")?),
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
                let f = Fields::new(line, "users", &exported_fields(table))?;
                self.tenant(&f)?;
                let seen = &mut self.seen;
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
                let f = Fields::new(line, "clusters", &exported_fields(table))?;
                self.tenant(&f)?;
                let seen = &mut self.seen;
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
                let f = Fields::new(line, "instances", &exported_fields(table))?;
                self.tenant(&f)?;
                let seen = &mut self.seen;
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
                let f = Fields::new(line, "events", &exported_fields(table))?;
                let source = self.tenant(&f)?;
                Row::Event(event(&f, source, &mut self.seen)?)
            }
            "api_keys" => {
                // A credential: never imported, whatever the row holds.
                let f = Fields::any(line, "api_keys")?;
                self.tenant(&f)?;
                self.seen.id(&f)?;
                Row::SkippedApiKey
            }
            "usage_history" => {
                let f = Fields::any(line, "usage_history")?;
                self.tenant(&f)?;
                Row::SkippedUsage
            }
            other => {
                return Err(at_line(
                    line.number,
                    None,
                    Error::Validation {
                        field: Cow::Owned(shown(other)),
                        detail: "unknown table (an export holds tenant_quotas, tenant_settings, \
                                 tenant_plan, domains, members, users, api_keys, clusters, \
                                 instances, events and usage_history)"
                            .to_owned(),
                    },
                ));
            }
        })
    }
}

/// An event row as provenance: every field checked, kept under
/// `data.original` of the imported event.
fn event(f: &Fields<'_>, source: Option<Uuid>, seen: &mut Seen) -> Result<EventRow, Error> {
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

/// Where an import goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A new tenant, created in the import's transaction with
    /// `[quotas.default]` (the CLI).
    New { slug: Slug, name: Name },
    /// An existing tenant (id or slug) with no rows yet (the API).
    Existing { key: String },
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Take the file's `tenant_quotas` line as the target's limits (before
    /// any row is charged), and its `tenant_plan` line as where they come
    /// from: the target goes on the plan of that name (which must exist
    /// here) with the same overrides. Off: the target keeps its limits and
    /// plan; both lines are only checked, then skipped.
    pub restore_limits: bool,
    /// The service's base domain (`server.tenant_base_domain`, normalised):
    /// a custom domain in the file may not lie under it, as in the API.
    pub base_domain: Option<String>,
}

/// Takes `delta` from the target's quota, as the API's `charge` does, or
/// refuses the row that asked for it.
async fn charge(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    delta: Amounts,
    line: u64,
    table: &str,
) -> Result<(), Error> {
    crate::quotas::charge(conn, tenant, delta)
        .await
        .map_err(|e| at_line(line, Some(table), e))
}

/// A statement refused for one row (a constraint the parse did not catch):
/// the API's mapping of it, on its line.
fn refused(line: u64, table: &str) -> impl FnOnce(diesel::result::Error) -> Error {
    let table = table.to_owned();
    move |e| at_line(line, Some(&table), e.into())
}

/// The target's rows so far: old id → new id, for instances' clusters
/// and events' subjects.
struct Writer<'c> {
    conn: Conn<'c>,
    id: TenantId,
    importer: &'c str,
    /// Who imports: the target's domains are registered in its name.
    actor: &'c Actor,
    restore_limits: bool,
    /// `[quotas.default]`: the limits of a tenant on no plan.
    defaults: Limits,
    /// The file's limits, to restore: written when the plan line has
    /// locked its plan (the plan's row before the tenant's, the lock order
    /// of `ops::plans`), or before the first row.
    pending_limits: Option<(u64, LimitsView)>,
    new_ids: HashMap<Uuid, Uuid>,
    /// What the sections did: restored, or checked and skipped.
    sections: BTreeMap<String, String>,
    /// Checked events not yet written (subject already mapped, data
    /// built): written [`EVENT_FLIGHT`] at a time, in file order.
    pending_events: Vec<(Option<Uuid>, Value)>,
}

/// How many imported events are written together
/// (`queries::events::record_many`: three statements for all of them).
/// An event is its insert and its webhook outbox rows; written one by
/// one, a history of thousands costs seconds on Citus, where every
/// statement is planned for and sent to a worker. Bounds what the import
/// holds: this many events of at most [`MAX_EVENT_DATA_BYTES`] each.
const EVENT_FLIGHT: usize = 256;

impl Writer<'_> {
    /// Writes the events that wait, in order, in one flight.
    async fn flush_events(&mut self) -> Result<(), Error> {
        let events = std::mem::take(&mut self.pending_events);
        queries::events::record_many(
            &mut self.conn,
            self.id,
            IMPORTED_EVENT,
            self.importer,
            events,
        )
        .await?;
        Ok(())
    }

    /// Writes the file's limits, if they wait to be.
    async fn flush_limits(&mut self) -> Result<(), Error> {
        if let Some((line, limits)) = self.pending_limits.take() {
            queries::tenants::set_limits(&mut self.conn, self.id, &(&limits).into())
                .await
                .map_err(|e| at_line(line, Some("tenant_quotas"), e.into()))?;
        }
        Ok(())
    }

    /// Writes one checked row into the target: the API's query, the API's
    /// quota charge, a new id.
    async fn write(&mut self, row: Row) -> Result<(), Error> {
        if !matches!(row, Row::Limits(..) | Row::Settings { .. } | Row::Plan(_)) {
            self.flush_limits().await?;
        }
        if !matches!(row, Row::Event(_)) {
            self.flush_events().await?;
        }
        let (conn, id) = (&mut self.conn, self.id);
        match row {
            Row::Limits(line, limits) => {
                let outcome = if self.restore_limits {
                    self.pending_limits = Some((line, limits));
                    "restored"
                } else {
                    "skipped"
                };
                self.sections
                    .insert("tenant_quotas".to_owned(), outcome.to_owned());
            }
            Row::Plan(plan) => {
                if !self.restore_limits {
                    self.sections
                        .insert("tenant_plan".to_owned(), "skipped".to_owned());
                    return Ok(());
                }
                let line = plan.line;
                // The plan's row first, shared, as `ops::plans::assign`
                // takes it: a plan deleted or changed meanwhile waits.
                let on = match &plan.plan_name {
                    Some(name) => Some(crate::plans::named(conn, name.as_str()).await.map_err(
                        |e| match e {
                            Error::Validation { .. } => at_line(
                                line,
                                None,
                                Error::validation(
                                    "tenant_plan.plan_name",
                                    format!(
                                        "no plan named {name} in this deployment (plans are \
                                         per deployment: create it, or import without \
                                         restore_limits)"
                                    ),
                                ),
                            ),
                            other => at_line(line, Some("tenant_plan"), other),
                        },
                    )?),
                    None => None,
                };
                self.flush_limits().await?;
                let conn = &mut self.conn;
                crate::quotas::lock(conn, id)
                    .await
                    .map_err(|e| at_line(line, Some("tenant_plan"), e))?;
                let origin = QuotaOrigin {
                    overrides: plan.overrides,
                    plan_name: on.as_ref().map(|p| p.name.clone()),
                };
                queries::plans::set_origin(conn, id, &origin)
                    .await
                    .map_err(refused(line, "tenant_plan"))?;
                match &on {
                    // The limits not overridden are the plan's HERE (a plan
                    // of the same name may differ between deployments); the
                    // overridden ones keep the file's values.
                    Some(_) => crate::plans::put_on(conn, id, on.as_ref(), &self.defaults)
                        .await
                        .map_err(|e| at_line(line, Some("tenant_plan"), e))?,
                    // On no plan, a tenant's limits are its own (copied from
                    // `[quotas.default]` when it was made, not following them
                    // since): the file's stay as they are.
                    None => {
                        queries::plans::set_plan(conn, id, None)
                            .await
                            .map_err(refused(line, "tenant_plan"))?;
                    }
                }
                self.sections
                    .insert("tenant_plan".to_owned(), "restored".to_owned());
            }
            Row::Domain { line, hostname } => {
                // A pending claim with a fresh token, through the API's own
                // `domains::create`: the new tenant proves ownership again.
                let who = TenantActor {
                    tenant: id,
                    actor: self.actor.clone(),
                };
                crate::domains::create(conn, &who, &hostname)
                    .await
                    .map_err(|e| at_line(line, Some("domains.hostname"), e))?;
            }
            Row::Settings {
                line,
                version,
                document,
            } => {
                queries::settings::insert(conn, id, version, &document, self.importer)
                    .await
                    .map_err(refused(line, "tenant_settings"))?;
                self.sections
                    .insert("tenant_settings".to_owned(), "restored".to_owned());
            }
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
                        at_line(
                            instance.line,
                            None,
                            Error::validation(
                                "instances.cluster_id",
                                "no cluster with this id earlier in the file",
                            ),
                        )
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
                self.pending_events
                    .push((subject, json!({ "original": event.original })));
                if self.pending_events.len() >= EVENT_FLIGHT {
                    self.flush_events().await?;
                }
            }
            Row::SkippedApiKey | Row::SkippedUsage => {}
        }
        Ok(())
    }
}

fn one(resource: Resource) -> Amounts {
    Amounts::default().with(resource, 1)
}

/// The target inside the provision transaction: created (new), or
/// locked and found empty (existing).
async fn open_target(
    conn: &mut Conn<'_>,
    id: TenantId,
    target: &Target,
    default_limits: &LimitsView,
) -> Result<tenantry_db::models::Tenant, Error> {
    match target {
        Target::New { slug, name } => queries::tenants::create(
            conn,
            id,
            slug.as_str(),
            name.as_str(),
            &default_limits.into(),
        )
        .await
        .map_err(|e| {
            on_constraint(
                e,
                DatabaseErrorKind::UniqueViolation,
                "tenants_slug_unique",
                || Error::conflict("this slug is taken"),
            )
        }),
        Target::Existing { .. } => {
            // No write of the tenant's may run beside the import.
            queries::tenants::lock_lifecycle(conn, id).await?;
            let tenant = queries::tenants::get(conn, id).await?;
            if tenant.purged_at.is_some() {
                return Err(Error::TenantPurged);
            }
            if tenant.status == TenantStatus::Deleted {
                return Err(Error::conflict(
                    "the tenant is deleted; restore it before importing into it",
                ));
            }
            if !queries::export::is_empty(conn, id).await? {
                return Err(Error::conflict(
                    "the tenant is not empty: an import goes into a tenant with no rows yet",
                ));
            }
            Ok(tenant)
        }
    }
}

/// Imports the file arriving on `input` into `target`, in one transaction,
/// audited as `tenant.imported` (rows per table, what was skipped, by
/// `actor`). Imported history is attributed to `importer` (`import:cli`,
/// `import:api`). `progress` is told each row's table as it is written.
/// Any refusal rolls it all back and names the line.
pub async fn run(
    ops: &Operations,
    actor: &Actor,
    importer: &'static str,
    target: Target,
    input: Input,
    options: Options,
    progress: &mut (dyn FnMut(&'static str) + Send),
) -> Result<ImportView, Error> {
    let id = match &target {
        Target::New { .. } => TenantId::new(),
        Target::Existing { key } => {
            let key = key.as_str();
            ops.db
                .platform()
                .run(|conn| async move { resolve(conn, key).await }.scope_boxed())
                .await?
                .id
        }
    };
    let (defaults, rules) = (&ops.tenancy.default_limits, &ops.tenancy.settings);
    let base_domain = options.base_domain.clone();
    let retention = ops.tenancy.retention.period;
    ops.db
        .platform()
        .provision(id, |conn| {
            async move {
                let tenant = open_target(conn, id, &target, defaults).await?;
                let mut reader = Reader::new(input);
                let mut checker = Checker::new(rules, base_domain.as_deref());
                let mut writer = Writer {
                    conn,
                    id,
                    importer,
                    actor,
                    restore_limits: options.restore_limits,
                    defaults: Limits::from(defaults),
                    pending_limits: None,
                    new_ids: HashMap::new(),
                    sections: BTreeMap::new(),
                    pending_events: Vec::new(),
                };
                let mut rows: BTreeMap<String, u64> = BTreeMap::new();
                let mut skipped: BTreeMap<String, u64> =
                    BTreeMap::from([("api_keys".to_owned(), 0)]);
                while let Some(line) = reader.next().await? {
                    let row = checker.check(&line)?;
                    drop(line);
                    let table = row.table();
                    writer.write(row).await?;
                    match table {
                        "api_keys" | "usage_history" => {
                            *skipped.entry(table.to_owned()).or_default() += 1;
                        }
                        "tenant_quotas" | "tenant_settings" | "tenant_plan" => {}
                        _ => {
                            *rows.entry(table.to_owned()).or_default() += 1;
                            progress(table);
                        }
                    }
                }
                writer.flush_limits().await?;
                writer.flush_events().await?;
                let sections = writer.sections;
                let conn = &mut writer.conn;
                queries::audit::record(
                    conn,
                    Some(id),
                    actor.as_str(),
                    "tenant.imported",
                    None,
                    Some(json!({
                        "slug": tenant.slug,
                        "rows": rows,
                        "skipped": skipped,
                        "sections": sections,
                    })),
                    None,
                )
                .await?;
                // The view shows the tenant as the import leaves it.
                let tenant = queries::tenants::get(conn, id).await?;
                Ok(ImportView {
                    tenant: TenantView::new(tenant, retention),
                    rows,
                    skipped,
                    sections,
                })
            }
            .scope_boxed()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as an input, in chunks of `size` bytes.
    fn chunked(text: &str, size: usize) -> Input {
        let (tx, input) = input(text.len() / size.max(1) + 2);
        for chunk in text.as_bytes().chunks(size.max(1)) {
            tx.try_send(Ok(chunk.to_vec())).unwrap();
        }
        input
    }

    /// The rows of `text` as the reader yields them, or its refusal.
    async fn read(text: &str) -> Result<Vec<Line>, String> {
        let mut reader = Reader::new(chunked(text, 7));
        let mut lines = Vec::new();
        while let Some(line) = reader
            .next()
            .await
            .map_err(|m| Error::from(m).to_string())?
        {
            lines.push(line);
        }
        Ok(lines)
    }

    /// Every row of `text`, read and checked, or the first refusal.
    async fn parse(text: &str) -> Result<Vec<Row>, String> {
        let rules = SettingsRules::default();
        let mut checker = Checker::new(&rules, Some("tenantry.test"));
        read(text)
            .await?
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

    async fn refusal(rows: &[(&str, Value)]) -> String {
        match parse(&file(rows)).await {
            Ok(_) => panic!("accepted: {}", rows.len()),
            Err(e) => e,
        }
    }

    fn cluster(id: Uuid, name: &str) -> Value {
        json!({"id": id, "name": name, "region": "eu"})
    }

    fn limits(tenant: Uuid) -> Value {
        json!({"tenant_id": tenant, "max_users": 1, "max_api_keys": 1, "max_clusters": 1,
               "max_instances": 1, "max_cpu_cores": 1, "max_memory_gb": 1, "max_storage_gb": 1,
               "requests_per_second": 1, "burst": 1})
    }

    #[tokio::test]
    async fn a_file_without_its_trailer_is_refused_as_truncated() {
        let file = r#"{"table":"users","row":{"id":"x"}}"#;
        assert_eq!(
            read(file).await.err().as_deref(),
            Some("body: no end trailer: the export is truncated")
        );
    }

    #[tokio::test]
    async fn the_trailer_must_count_the_rows() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":2}\n";
        assert!(read(file).await.is_err());
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":1}\n";
        assert_eq!(read(file).await.unwrap().len(), 1);
        // CRLF line endings and blank lines after the trailer are fine; a
        // row after it is not.
        let file = "{\"table\":\"users\",\"row\":{}}\r\n{\"end\":true,\"rows\":1}\r\n\r\n";
        assert_eq!(read(file).await.unwrap().len(), 1);
        let file = "{\"end\":true,\"rows\":0}\n{\"table\":\"users\",\"row\":{}}\n";
        assert_eq!(
            read(file).await.err().as_deref(),
            Some("line 2: data after the end trailer")
        );
    }

    #[tokio::test]
    async fn the_reader_streams_rows_as_they_arrive() {
        let (tx, input) = input(4);
        let mut reader = Reader::new(input);
        tx.send(Ok(
            b"{\"table\":\"users\",\"row\":{\"n\":1}}\n{\"tab".to_vec()
        ))
        .await
        .unwrap();
        // The first row is there before the rest of the file is.
        assert_eq!(
            reader.next().await.ok().unwrap().unwrap().row,
            json!({"n": 1})
        );
        tx.send(Ok(b"le\":\"users\",\"row\":{\"n\":2}}\n".to_vec()))
            .await
            .unwrap();
        let second = reader.next().await.ok().unwrap().unwrap();
        assert_eq!((second.number, second.row), (2, json!({"n": 2})));
        tx.send(Err("the rest has not arrived".to_owned()))
            .await
            .unwrap();
        let refused = reader
            .next()
            .await
            .err()
            .map(|m| Error::from(m).to_string());
        assert_eq!(
            refused.as_deref(),
            Some("body: line 3: cannot read: the rest has not arrived")
        );
    }

    #[tokio::test]
    async fn a_line_longer_than_any_row_is_refused_without_reading_it_whole() {
        let (tx, input) = input(2);
        let feeder = tokio::spawn(async move {
            // An endless line: the reader stops at its bound instead of
            // growing until memory runs out.
            for _ in 0..10_000 {
                if tx.send(Ok(vec![b'x'; 64 * 1024])).await.is_err() {
                    return true;
                }
            }
            false
        });
        let mut reader = Reader::new(input);
        let refused = reader
            .next()
            .await
            .err()
            .map(|m| Error::from(m).to_string());
        assert_eq!(
            refused.as_deref(),
            Some("body: line 1: longer than 1048576 bytes; no export row is")
        );
        drop(reader);
        assert!(feeder.await.unwrap(), "the reader stopped reading");
    }

    #[tokio::test]
    async fn an_export_that_failed_midway_is_refused() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":false,\"error\":\"x\"}\n";
        assert!(read(file).await.is_err());
    }

    #[tokio::test]
    async fn refusals_name_the_line_the_table_and_the_field() {
        let id = Uuid::now_v7();
        assert_eq!(
            refusal(&[
                ("clusters", cluster(id, "main")),
                ("clusters", cluster(Uuid::now_v7(), "a\u{1b}[31mb")),
            ])
            .await,
            "line 2, clusters.name: must not contain control characters (U+001B at character 2)"
        );
        assert!(
            refusal(&[("secrets", json!({}))])
                .await
                .starts_with("line 1, secrets: unknown table")
        );
        assert_eq!(
            refusal(&[(
                "clusters",
                json!({"id": id, "name": "x", "region": "eu", "tenant_quota\u{1b}": 1})
            )])
            .await,
            "line 1, clusters.tenant_quota\\u{1b}: unknown field",
            "file text in a message is escaped"
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
            .await
            .starts_with("line 1, instances.cluster_id: no cluster with this id earlier in the file")
        );
        assert!(
            refusal(&[
                ("clusters", cluster(id, "a")),
                ("users", json!({"id": id, "email": "a@b.c"}))
            ])
            .await
            .starts_with("line 2, users.id: appears twice in the file (also on line 1)")
        );
        assert!(
            refusal(&[(
                "instances",
                json!({"id": id, "cluster_id": id, "name": "vm", "cpu_cores": 1.5, "memory_gb": 1})
            )])
            .await
            .starts_with("line 1, instances.cpu_cores: must be an integer")
        );
        assert!(
            refusal(&[("events", json!({"id": id, "kind": "k", "actor": "a", "at": "2024-01-01T00:00:00Z", "data": {"tags": ["ok", "b\u{200b}ad"]}}))])
                .await
                .starts_with("line 1, events.data.tags[1]: must not contain invisible")
        );
    }

    #[tokio::test]
    async fn sections_come_first_once_and_name_the_source_tenant() {
        let source = Uuid::now_v7();
        let rows = parse(&file(&[
            ("tenant_quotas", limits(source)),
            (
                "tenant_settings",
                json!({"tenant_id": source, "version": 3, "document": {"a": 1}}),
            ),
            ("clusters", cluster(Uuid::now_v7(), "main")),
        ]))
        .await
        .unwrap();
        assert!(matches!(
            rows[..],
            [
                Row::Limits(..),
                Row::Settings { version: 3, .. },
                Row::Cluster(_)
            ]
        ));
        let mut other = cluster(Uuid::now_v7(), "main");
        other["tenant_id"] = json!(Uuid::now_v7());
        assert!(
            refusal(&[
                ("tenant_quotas", limits(source)),
                ("clusters", other.clone())
            ])
            .await
            .starts_with(
                "line 2, clusters.tenant_id: names another tenant than the file's own (line 1)"
            )
        );
        // Without the header, tenant ids are only rewritten.
        assert!(parse(&file(&[("clusters", other)])).await.is_ok());
        assert!(
            refusal(&[
                ("clusters", cluster(Uuid::now_v7(), "main")),
                ("tenant_quotas", limits(source)),
            ])
            .await
            .starts_with("line 2, tenant_quotas: comes after the rows")
        );
        let mut negative = limits(source);
        negative["max_users"] = json!(-1);
        assert!(
            refusal(&[("tenant_quotas", negative)])
                .await
                .starts_with("line 1, tenant_quotas.max_users: must be 0 or more")
        );
        assert!(
            refusal(&[("tenant_settings", json!({"version": 1, "document": [1]}))])
                .await
                .contains("line 1, tenant_settings.document: the settings document is invalid")
        );
    }

    #[tokio::test]
    async fn the_plan_and_the_domains_are_checked_like_any_section() {
        let source = Uuid::now_v7();
        let rows = parse(&file(&[
            ("tenant_quotas", limits(source)),
            (
                "tenant_plan",
                json!({"tenant_id": source, "plan_name": "team", "overrides": ["burst", "max_users"]}),
            ),
            ("domains", json!({"tenant_id": source, "hostname": "Shop.Example.COM."})),
            ("domains", json!({"tenant_id": source, "hostname": "b.example.com", "verified_at": "2024-01-01T00:00:00Z"})),
            ("clusters", cluster(Uuid::now_v7(), "main")),
        ]))
        .await
        .unwrap();
        let [
            Row::Limits(..),
            Row::Plan(plan),
            Row::Domain { hostname, .. },
            Row::Domain { .. },
            Row::Cluster(_),
        ] = &rows[..]
        else {
            panic!("not the sections, then a row")
        };
        assert_eq!(plan.plan_name.as_ref().map(Slug::as_str), Some("team"));
        assert_eq!(plan.overrides, ["max_users", "burst"], "in limit order");
        assert_eq!(hostname.as_str(), "shop.example.com", "normalised");
        for (row, refused) in [
            (
                json!({"plan_name": "team", "overrides": ["max_secrets"]}),
                "line 1, tenant_plan.overrides: must name limits",
            ),
            (
                json!({"plan_name": "team", "overrides": ["burst", "burst"]}),
                "line 1, tenant_plan.overrides: names burst twice",
            ),
            (
                json!({"plan_name": "Not A Slug", "overrides": []}),
                "line 1, tenant_plan.plan_name:",
            ),
            (
                json!({"plan_name": null, "token": "x"}),
                "line 1, tenant_plan.token: unknown field",
            ),
        ] {
            let got = refusal(&[("tenant_plan", row)]).await;
            assert!(got.starts_with(refused), "{got}");
        }
        for (row, refused) in [
            (
                json!({"hostname": "10.0.0.1"}),
                "line 1, domains.hostname: an IP address",
            ),
            (
                json!({"hostname": "x.tenantry.test"}),
                "line 1, domains.hostname: a name under the service's own base domain",
            ),
            (
                json!({"hostname": "a.example.com", "token": "0123456789abcdef0123456789abcdef"}),
                "line 1, domains.token: unknown field",
            ),
            (
                json!({"hostname": "a.example.com", "verified_at": "yesterday"}),
                "line 1, domains.verified_at: must be an RFC 3339 time",
            ),
        ] {
            let got = refusal(&[("domains", row)]).await;
            assert!(got.starts_with(refused), "{got}");
        }
        let twice = refusal(&[
            ("domains", json!({"hostname": "a.example.com"})),
            ("domains", json!({"hostname": "A.example.com"})),
        ])
        .await;
        assert!(
            twice.starts_with(
                "line 2, domains.hostname: appears twice in the file (also on line 1)"
            ),
            "{twice}"
        );
        let late = refusal(&[
            ("clusters", cluster(Uuid::now_v7(), "main")),
            ("domains", json!({"hostname": "a.example.com"})),
        ])
        .await;
        assert!(
            late.starts_with("line 2, domains: comes after the rows"),
            "{late}"
        );
    }

    #[test]
    fn the_sections_are_the_ones_the_export_writes() {
        let written: Vec<&str> = queries::export::EXPORTED_SECTIONS
            .iter()
            .map(|(t, _, _)| *t)
            .collect();
        assert_eq!(written, SECTIONS);
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
        assert!(exported_fields("tenant_quotas").contains(&"max_users"));
        assert!(exported_fields("tenant_usage").is_empty());
    }

    #[tokio::test]
    async fn api_keys_are_skipped_and_counted_whatever_they_hold() {
        let rows = parse(&file(&[(
            "api_keys",
            json!({"id": Uuid::now_v7(), "secret_hash": "\\x00", "name": "ci"}),
        )]))
        .await
        .unwrap();
        assert!(matches!(rows[..], [Row::SkippedApiKey]));
    }

    #[tokio::test]
    async fn events_keep_their_original_as_provenance_with_the_time_normalised() {
        let id = Uuid::now_v7();
        let rows = parse(&file(&[(
            "events",
            json!({"id": id, "kind": "tenant.suspend", "actor": "platform-admin:x",
                   "subject": null, "at": "2020-01-01T01:00:00+01:00", "data": {"n": 1}}),
        )]))
        .await
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
