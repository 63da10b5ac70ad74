//! Per-tenant settings: one JSON document per tenant (branding, feature
//! flags, module switches), validated against the JSON Schema the operator
//! configures (`tenancy.settings_schema_file`; none = any JSON object),
//! read by the tenant (`tenant:read`), written by its admins
//! (`tenant:admin`) and by platform admins. A write replaces the document,
//! optionally only over the version the writer read (`expected`), bumps the
//! version and records the audit entry `settings.updated` with the document
//! before and after — the audit log is the history, and the tenant reads
//! it in `GET /v1/events` — in one transaction.

use std::sync::Arc;
use tenantry_db::Conn;

use diesel::result::DatabaseErrorKind;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_db::{ScopedFutureExt, queries};

use crate::error::{DocumentError, on_constraint};
use crate::tenants::resolve;
use crate::views::SettingsView;
use crate::{Actor, Error, Operations, TenantActor};

/// At most this many schema failures are reported for one document.
pub const MAX_REPORTED_ERRORS: usize = 20;
/// A reported failure's message is cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 300;
/// The default bound on a document, serialized (`tenancy.settings_max_bytes`).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

/// What a settings document must be: a JSON object, at most `max_bytes`
/// serialized, valid against the operator's schema when one is configured.
#[derive(Clone)]
pub struct SettingsRules {
    schema: Option<Arc<jsonschema::Validator>>,
    max_bytes: usize,
}

impl std::fmt::Debug for SettingsRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsRules")
            .field("schema", &self.schema.is_some())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Default for SettingsRules {
    fn default() -> Self {
        Self {
            schema: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl SettingsRules {
    /// Compiles `schema` (any draft it names in `$schema`, 2020-12 when it
    /// names none). Refused, with the reason, when it is not a valid
    /// schema or refers to another document (`$ref` to a URL or a file:
    /// nothing is fetched).
    pub fn new(schema: Option<&Value>, max_bytes: usize) -> Result<Self, String> {
        if max_bytes == 0 {
            return Err("settings_max_bytes must be more than 0".to_owned());
        }
        let schema = schema
            .map(|s| {
                if !s.is_object() && !s.is_boolean() {
                    return Err("a JSON Schema is an object (or true/false)".to_owned());
                }
                jsonschema::validator_for(s)
                    .map(Arc::new)
                    .map_err(|e| format!("not a usable JSON Schema: {e}"))
            })
            .transpose()?;
        Ok(Self { schema, max_bytes })
    }

    /// Whether an operator's schema is configured.
    #[must_use]
    pub fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    /// `document` as a valid settings document, or every reason it is not
    /// (at most [`MAX_REPORTED_ERRORS`]).
    pub fn check(&self, document: &Value) -> Result<(), Error> {
        let refused = |message: String| {
            Error::InvalidDocument(vec![DocumentError {
                pointer: String::new(),
                message,
            }])
        };
        if !document.is_object() {
            return Err(refused("must be a JSON object".to_owned()));
        }
        if let Some(pointer) = nul_at(document, &mut String::new()) {
            return Err(Error::InvalidDocument(vec![DocumentError {
                pointer,
                message: "contains U+0000, which a settings document cannot hold".to_owned(),
            }]));
        }
        let size = serde_json::to_vec(document).map_or(usize::MAX, |b| b.len());
        if size > self.max_bytes {
            return Err(refused(format!(
                "is {size} bytes; at most {} bytes",
                self.max_bytes
            )));
        }
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        let errors: Vec<DocumentError> = schema
            .iter_errors(document)
            .take(MAX_REPORTED_ERRORS)
            .map(|e| DocumentError {
                pointer: e.instance_path().as_str().to_owned(),
                message: e.to_string().chars().take(MAX_MESSAGE_CHARS).collect(),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidDocument(errors))
        }
    }
}

/// A write: the whole new document, and the version it must replace
/// (`None`: whatever is there; `Some(0)`: only if never written).
#[derive(Debug, Clone)]
pub struct SettingsChange {
    pub document: Value,
    pub expected: Option<i32>,
}

/// The tenant's settings (tenant plane, in the caller's transaction).
pub async fn get(conn: &mut Conn<'_>, tenant: TenantId) -> Result<SettingsView, Error> {
    Ok(queries::settings::get(conn, tenant).await?.into())
}

/// Replaces the tenant's settings (tenant plane, in the caller's writing
/// transaction): validated, versioned, audited.
pub async fn put(
    conn: &mut Conn<'_>,
    rules: &SettingsRules,
    who: &TenantActor,
    change: SettingsChange,
) -> Result<SettingsView, Error> {
    write(conn, rules, who.tenant, &who.actor, change).await
}

async fn write(
    conn: &mut Conn<'_>,
    rules: &SettingsRules,
    tenant: TenantId,
    actor: &Actor,
    change: SettingsChange,
) -> Result<SettingsView, Error> {
    rules.check(&change.document)?;
    let before = queries::settings::get_for_update(conn, tenant).await?;
    let current = before.as_ref().map_or(0, |s| s.version);
    if change.expected.is_some_and(|v| v != current) {
        return Err(Error::StaleVersion { current });
    }
    let next = current
        .checked_add(1)
        .ok_or_else(|| Error::conflict("the settings have been written too many times"))?;
    let row = queries::settings::put(conn, tenant, next, &change.document, actor.as_str())
        .await
        .map_err(|e| {
            // Two first writes at once: the other one won.
            on_constraint(
                e,
                DatabaseErrorKind::UniqueViolation,
                "tenant_settings_one_per_tenant",
                || Error::StaleVersion { current: 1 },
            )
        })?;
    queries::audit::record(
        conn,
        Some(tenant),
        actor.as_str(),
        "settings.updated",
        before.map(|b| json!({ "version": b.version, "document": b.document })),
        Some(json!({ "version": next, "document": row.document })),
        None,
    )
    .await?;
    Ok(Some(row).into())
}

/// A tenant's settings (admin plane). A purged tenant has none left.
pub async fn get_admin(ops: &Operations, key: &str) -> Result<SettingsView, Error> {
    let tenant = live(ops, key).await?;
    ops.db
        .tenant(tenant)
        .run(|conn| async move { get(conn, tenant).await }.scope_boxed())
        .await
}

/// Replaces a tenant's settings (admin plane), whatever its status short
/// of purged: in the tenant's own scope (RLS: only its row), holding its
/// lifecycle lock shared, audited as the tenant plane's writes are.
pub async fn put_admin(
    ops: &Operations,
    actor: &Actor,
    key: &str,
    change: SettingsChange,
) -> Result<SettingsView, Error> {
    // Validate before any database work.
    ops.tenancy.settings.check(&change.document)?;
    let tenant = live(ops, key).await?;
    let rules = &ops.tenancy.settings;
    ops.db
        .tenant(tenant)
        .writing()
        .run(|conn| async move { write(conn, rules, tenant, actor, change).await }.scope_boxed())
        .await
}

async fn live(ops: &Operations, key: &str) -> Result<TenantId, Error> {
    let tenant = ops
        .db
        .platform()
        .run(|conn| async move { resolve(conn, key).await }.scope_boxed())
        .await?;
    if tenant.purged_at.is_some() {
        return Err(Error::TenantPurged);
    }
    Ok(tenant.id)
}

/// The JSON pointer of the first string or key in `value` holding U+0000
/// (PostgreSQL's `jsonb` refuses it), if any. `at` is the pointer so far.
fn nul_at(value: &Value, at: &mut String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            at.push('/');
            at.push_str(&i.to_string());
            let found = nul_at(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let len = at.len();
            at.push('/');
            at.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let found = if key.contains('\0') {
                Some(at.clone())
            } else {
                nul_at(item, at)
            };
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(rules: &SettingsRules, document: &Value) -> Vec<(String, String)> {
        match rules.check(document) {
            Ok(()) => Vec::new(),
            Err(Error::InvalidDocument(errors)) => {
                errors.into_iter().map(|e| (e.pointer, e.message)).collect()
            }
            Err(other) => vec![("?".to_owned(), other.to_string())],
        }
    }

    #[test]
    fn a_nul_anywhere_is_refused_with_its_pointer() {
        let rules = SettingsRules::new(None, 4096).unwrap();
        let cases = [
            (serde_json::json!({"a": "x\u{0}y"}), "/a"),
            (serde_json::json!({"a": [1, {"b/c": "\u{0}"}]}), "/a/1/b~1c"),
            (serde_json::json!({"k\u{0}": 1}), "/k\u{0}"),
        ];
        for (document, pointer) in cases {
            let found = problems(&rules, &document);
            assert_eq!(found.len(), 1, "{document}");
            assert_eq!(found[0].0, pointer, "{document}");
            assert!(found[0].1.contains("U+0000"), "{found:?}");
        }
        assert!(problems(&rules, &serde_json::json!({"a": "x\u{1}"})).is_empty());
    }

    #[test]
    fn without_a_schema_any_object_within_the_bound_passes() {
        let rules = SettingsRules::new(None, 64).unwrap();
        assert!(problems(&rules, &json!({"a": 1})).is_empty());
        assert_eq!(problems(&rules, &json!([1]))[0].1, "must be a JSON object");
        let big = json!({"a": "x".repeat(100)});
        assert!(problems(&rules, &big)[0].1.contains("at most 64 bytes"));
    }

    #[test]
    fn a_schema_reports_each_failure_with_its_pointer() {
        let schema = json!({
            "type": "object",
            "properties": {
                "branding": {"type": "object", "properties": {"color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}}},
                "features": {"type": "object", "additionalProperties": {"type": "boolean"}}
            },
            "additionalProperties": false
        });
        let rules = SettingsRules::new(Some(&schema), DEFAULT_MAX_BYTES).unwrap();
        assert!(rules.has_schema());
        assert!(problems(&rules, &json!({"branding": {"color": "#00ff00"}})).is_empty());
        let found = problems(
            &rules,
            &json!({"branding": {"color": "green"}, "features": {"beta": "yes"}}),
        );
        let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert!(pointers.contains(&"/branding/color"), "{found:?}");
        assert!(pointers.contains(&"/features/beta"), "{found:?}");
        let many: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("k{i}"), json!(1))).collect();
        assert_eq!(
            problems(&rules, &Value::Object(many)).len(),
            1,
            "additionalProperties: one failure naming them all"
        );
    }

    #[test]
    fn an_invalid_schema_or_a_remote_reference_is_refused() {
        assert!(SettingsRules::new(Some(&json!({"type": "no-such-type"})), 10).is_err());
        assert!(SettingsRules::new(Some(&json!([1])), 10).is_err());
        assert!(
            SettingsRules::new(
                Some(&json!({"$ref": "https://example.com/schema.json"})),
                10
            )
            .is_err()
        );
        assert!(SettingsRules::new(None, 0).is_err());
    }
}
