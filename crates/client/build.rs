//! Generates the client from `openapi.json`, the committed snapshot of the
//! served `/openapi.json` (kept current by the tests in
//! crates/api/src/openapi.rs and tests/tests/it/contract.rs;
//! `UPDATE_OPENAPI=1 cargo test -p tenantry-api openapi` rewrites it).
//!
//! progenitor reads OpenAPI 3.0 only and the service serves 3.1 (utoipa), so
//! the document is first lowered, in memory, to the 3.0 form of the same
//! contract. The file itself is never edited. Each step, and why progenitor
//! needs it, is on the function that does it.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value, json};

fn main() -> Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let path = manifest.join("openapi.json");
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rerun-if-changed=build.rs");

    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut document: Value =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    lower_to_3_0(&mut document)?;
    let spec: openapiv3::OpenAPI = serde_path_to_error::deserialize(document)
        .context("the lowered document is not OpenAPI 3.0 as openapiv3 reads it")?;

    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_derive("PartialEq");
    let tokens = progenitor::Generator::new(&settings)
        .generate_tokens(&spec)
        .context("progenitor refused the document")?;
    let file: syn::File = syn::parse2(tokens).context("progenitor's output does not parse")?;

    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("tenantry_client.rs");
    std::fs::write(&out, prettyplease::unparse(&file))
        .with_context(|| format!("write {}", out.display()))?;
    Ok(())
}

/// The 3.1 document as the 3.0 one progenitor accepts.
fn lower_to_3_0(document: &mut Value) -> Result<()> {
    // progenitor refuses any version but 3.0.x ("invalid version: 3.1.0").
    document["openapi"] = json!("3.0.3");
    lower_schemas(document);

    let mut named = Map::new();
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            // Path-level keys that are not operations (parameters, summary)
            // are left alone.
            for (method, operation) in item
                .iter_mut()
                .filter(|(k, _)| METHODS.contains(&k.as_str()))
            {
                let id = operation_id(operation, method, path)?;
                describe_responses(operation);
                problems_as_json(operation);
                streamed_bodies_as_bytes(operation);
                one_type_per_outcome(operation, &id, &mut named)?;
            }
        }
    }
    if !named.is_empty() {
        let schemas = document
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
            .context("the document has no components.schemas")?;
        if let Some(taken) = named.keys().find(|name| schemas.contains_key(*name)) {
            bail!("the document already has a schema named {taken}, the name of a union here");
        }
        schemas.extend(named);
    }
    Ok(())
}

/// progenitor knows no `application/x-ndjson` request body (an import):
/// it is sent as the bytes it is, `application/octet-stream`.
fn streamed_bodies_as_bytes(operation: &mut Value) {
    let Some(content) = operation
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if content.remove("application/x-ndjson").is_some() {
        content.insert(
            "application/octet-stream".to_owned(),
            json!({"schema": {"type": "string", "format": "binary"}}),
        );
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// progenitor names each method after its operation id (and panics without
/// one): an operation without one is refused here, by name.
fn operation_id(operation: &Value, method: &str, path: &str) -> Result<String> {
    match operation.get("operationId").and_then(Value::as_str) {
        Some(id) => Ok(id.to_owned()),
        None => bail!("{} {path} has no operationId", method.to_uppercase()),
    }
}

/// 3.1 spells "nullable" with the null type; 3.0 (and openapiv3) has
/// `nullable: true` and no null type:
/// - `type: [T, "null"]` becomes `type: T, nullable: true`;
/// - `oneOf`/`anyOf` with a `{type: null}` branch loses the branch and gets
///   `nullable: true`; a single remaining branch becomes `allOf: [it]`
///   (how 3.0 writes a nullable `$ref`), which progenitor makes an `Option`.
fn lower_schemas(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get("type") {
                let named: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                let nullable = named.len() < types.len();
                match named.as_slice() {
                    [one] => {
                        object.insert("type".to_owned(), one.clone());
                    }
                    many => {
                        object.remove("type");
                        let branches = many.iter().map(|t| json!({ "type": t })).collect();
                        object.insert("anyOf".to_owned(), Value::Array(branches));
                    }
                }
                if nullable {
                    object.insert("nullable".to_owned(), json!(true));
                }
            }
            for key in ["oneOf", "anyOf"] {
                let Some(Value::Array(branches)) = object.get_mut(key) else {
                    continue;
                };
                let before = branches.len();
                branches.retain(|b| b != &json!({ "type": "null" }));
                if branches.len() == before {
                    continue;
                }
                if let [only] = branches.as_mut_slice() {
                    let only = only.take();
                    object.remove(key);
                    object.insert("allOf".to_owned(), json!([only]));
                }
                object.insert("nullable".to_owned(), json!(true));
            }
            object.values_mut().for_each(lower_schemas);
        }
        Value::Array(items) => items.iter_mut().for_each(lower_schemas),
        _ => {}
    }
}

/// A response must have a `description` (3.0 and 3.1 alike; openapiv3
/// refuses the document without one); utoipa leaves it out where the route
/// declares none. An empty one is what such a response says.
fn describe_responses(operation: &mut Value) {
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for response in responses.values_mut() {
        if let Some(response) = response.as_object_mut() {
            response.entry("description").or_insert_with(|| json!(""));
        }
    }
}

/// progenitor types only `application/json` bodies: anything else (our
/// errors are `application/problem+json`) would reach callers as raw bytes.
/// The problem body is JSON; read it as such, so errors arrive as
/// `Error::ErrorResponse(ResponseValue<types::Problem>)`.
fn problems_as_json(operation: &mut Value) {
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for response in responses.values_mut() {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
            continue;
        };
        if content.contains_key("application/json") {
            continue;
        }
        if let Some(problem) = content.remove("application/problem+json") {
            content.insert("application/json".to_owned(), problem);
        }
    }
}

/// progenitor gives each operation one success type and one error type (it
/// asserts so: `extract_responses`, "to deal with multiple response types,
/// we'll need to create an enum"). Where an operation's success (2xx) or
/// error (4xx/5xx) responses carry different JSON schemas, e.g. `POST
/// /v1/users` answering 200 with the `dry_run=true` rehearsal and 201 with
/// the `User`, each of them is pointed at one named `oneOf` of those schemas
/// (`CreateUserSuccess`), an untagged enum with a variant per status named
/// after it (`Created(User)`, `Ok(..)`); typed schemas are tried before
/// free-form objects, which would match any object. A group that mixes
/// bodies with no body, or JSON with another media type, cannot be one
/// type: the build fails naming the operation.
///
/// Also: a code that a range of the same group covers with the same schema
/// (`409` under `4XX`, both `Problem`) is dropped. progenitor matches the
/// range first, so the code's arm would be unreachable (a warning per
/// operation), and dropping it changes no type and no outcome.
fn one_type_per_outcome(
    operation: &mut Value,
    id: &str,
    named: &mut Map<String, Value>,
) -> Result<()> {
    // Each group by the first digits of its codes (`4XX` included).
    let groups = [("success", &['2'][..]), ("error", &['4', '5'][..])];
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    let json_schema = |response: &Value| {
        response
            .pointer("/content/application~1json")
            .map(|media| media.get("schema").cloned().unwrap_or(json!({})))
    };
    for (group, member) in groups {
        let mut codes: Vec<String> = responses
            .keys()
            .filter(|c| c.starts_with(member))
            .cloned()
            .collect();
        codes.retain(|code| {
            let range = format!("{}XX", &code[..1]);
            let covered = code != &range
                && responses
                    .get(&range)
                    .is_some_and(|r| json_schema(r) == json_schema(&responses[code]));
            if covered {
                responses.remove(code);
            }
            !covered
        });

        let mut branches: Vec<(String, Value)> = Vec::new();
        let mut shapes = std::collections::BTreeSet::new();
        for code in &codes {
            let content = responses[code].get("content").and_then(Value::as_object);
            let shape = match (content, json_schema(&responses[code])) {
                (None, _) => "no body",
                (Some(c), _) if c.is_empty() => "no body",
                (Some(_), Some(schema)) => {
                    match branches.iter_mut().find(|(_, s)| s == &schema) {
                        Some((title, _)) => *title = format!("{title}Or{}", reason(code)),
                        None => branches.push((reason(code), schema)),
                    }
                    "JSON"
                }
                (Some(_), None) => "another media type",
            };
            shapes.insert(shape);
        }
        if shapes.len() > 1 {
            bail!(
                "{id}: its {group} responses ({}) mix {}; progenitor needs one body type per \
                 outcome",
                codes.join(", "),
                shapes.into_iter().collect::<Vec<_>>().join(" and ")
            );
        }
        if branches.len() < 2 {
            continue;
        }
        // Free-form objects (no properties, no $ref) match any object.
        branches.sort_by_key(|(_, s)| s.get("$ref").is_none() && s.get("properties").is_none());
        let name = format!("{id}_{group}");
        let one_of: Vec<Value> = branches
            .into_iter()
            .map(|(title, schema)| json!({ "title": title, "allOf": [schema] }))
            .collect();
        named.insert(
            name.clone(),
            json!({
                "description": format!("What `{id}` answers on {group}, by status: {}.", codes.join(", ")),
                "oneOf": one_of,
            }),
        );
        let reference = json!({ "$ref": format!("#/components/schemas/{name}") });
        for code in &codes {
            if let Some(media) = responses
                .get_mut(code)
                .and_then(|r| r.pointer_mut("/content/application~1json"))
            {
                media["schema"] = reference.clone();
            }
        }
    }
    Ok(())
}

/// A variant name for a status code (`201` → `Created`).
fn reason(code: &str) -> String {
    let known = match code {
        "200" => "Ok",
        "201" => "Created",
        "202" => "Accepted",
        "203" => "NonAuthoritative",
        "206" => "PartialContent",
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "NotFound",
        "409" => "Conflict",
        "410" => "Gone",
        "413" => "PayloadTooLarge",
        "415" => "UnsupportedMediaType",
        "422" => "UnprocessableEntity",
        "429" => "TooManyRequests",
        "500" => "InternalServerError",
        "503" => "ServiceUnavailable",
        "2XX" => "Success",
        "4XX" => "ClientError",
        "5XX" => "ServerError",
        _ => "",
    };
    if known.is_empty() {
        format!("Status{code}")
    } else {
        known.to_owned()
    }
}
