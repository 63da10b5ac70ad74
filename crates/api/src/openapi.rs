//! The OpenAPI 3.1 document at `/openapi.json`. Paths are collected from the
//! same `service(...)` calls that register the routes (utoipa-actix-web), and
//! that API accepts only handlers annotated with `#[utoipa::path]`: a route
//! cannot be registered without being documented.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, schema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "Multi-tenant platform service: tenants share one PostgreSQL database, isolated by row-level security."
    ),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Fix-ups that need the collected paths (modifiers run before collection):
/// the `/t/{tenant_slug}/v1` mount declares its path parameter and gets
/// operation ids of its own.
pub fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    reference_generic_arguments(openapi);
    for (path, item) in &mut openapi.paths.paths {
        let mut operations = [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ];
        // Every response says what it is (generators and OpenAPI 3.0 require
        // a description).
        for operation in operations.iter_mut().filter_map(|o| o.as_mut()) {
            for (status, response) in &mut operation.responses.responses {
                if let utoipa::openapi::RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = match status.as_str() {
                        "200" => "OK",
                        "201" => "Created",
                        "204" => "No content",
                        _ => "See the body",
                    }
                    .to_owned();
                }
            }
        }
        // The responses every API route shares, declared here once rather
        // than per route: any client error as problem+json, and 503 (every
        // API route reads the database).
        if path.starts_with("/v1/") || path.starts_with("/t/") {
            for operation in operations.iter_mut().filter_map(|o| o.as_mut()) {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("4XX".to_owned())
                    .or_insert_with(client_error);
                responses
                    .entry("503".to_owned())
                    .or_insert_with(database_unavailable);
            }
        }
        if !path.contains("{tenant_slug}") {
            continue;
        }
        for operation in operations.into_iter().flatten() {
            let mut slug = Parameter::new("tenant_slug");
            slug.parameter_in = ParameterIn::Path;
            slug.required = Required::True;
            slug.description =
                Some("The token's tenant's slug; any other answers 403 tenant_mismatch".to_owned());
            slug.schema = Some(
                schema::ObjectBuilder::new()
                    .schema_type(schema::Type::String)
                    .into(),
            );
            // The same handler under two mounts: operation ids must differ.
            if let Some(id) = &operation.operation_id {
                operation.operation_id = Some(format!("{id}_by_slug"));
            }
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .insert(0, utoipa::openapi::RefOr::T(slug));
        }
    }
}

/// `List<T>` and `Rehearsal<T>` refer to `T`'s schema instead of a copy of
/// it, so a generated client has one `UserView`, not one per wrapper.
fn reference_generic_arguments(openapi: &mut utoipa::openapi::OpenApi) {
    let Ok(mut doc) = serde_json::to_value(&*openapi) else {
        return;
    };
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in &names {
        let (pointer, argument) = if let Some(item) = name.strip_prefix("List_") {
            ("/properties/items/items", item)
        } else if let Some(item) = name.strip_prefix("Rehearsal_") {
            ("/properties/would_create", item)
        } else {
            continue;
        };
        if !schemas.contains_key(argument) {
            continue;
        }
        if let Some(slot) = schemas.get_mut(name).and_then(|s| s.pointer_mut(pointer)) {
            *slot = serde_json::json!({ "$ref": format!("#/components/schemas/{argument}") });
        }
    }
    if let Ok(rewritten) = serde_json::from_value(doc) {
        *openapi = rewritten;
    }
}

/// The client errors every API route can answer.
fn client_error() -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    problem(
        "problem+json: unauthorized (401), forbidden, tenant_suspended/archived/deleted, \
         tenant_mismatch, quota_exceeded (403), not_found (404), conflict (409), \
         tenant_purged (410), validation and domain_not_verified (422), rate_limited (429), and bad_request, \
         payload_too_large, unsupported_media_type; `code` is stable, `detail` is for people",
    )
}

fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// The 503 every database-backed route can answer.
fn database_unavailable() -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    problem(
        "problem+json: database_unavailable (down, restarting, or no pooled connection within \
         the wait) or query_timeout (rolled back); retry after Retry-After",
    )
}

/// The document `/openapi.json` serves, built from the same route table
/// without a server (for the committed snapshot and generated clients).
#[must_use]
pub fn document(addressing: &crate::Addressing) -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt as _;
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(|cfg| crate::routes::configure(cfg, addressing))
        .split_for_parts();
    finish(&mut api);
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed snapshot the typed client is generated from
    /// (`crates/client/openapi.json`) is this document, written as the
    /// contract test writes it. Needs no database, and does not need the
    /// client to build: `UPDATE_OPENAPI=1 cargo test -p tenantry-api openapi`
    /// rewrites a stale file. (tests/tests/it/contract.rs checks the same
    /// file against the running server and lists the differences.)
    #[test]
    fn the_committed_openapi_snapshot_is_this_document() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/openapi.json");
        let built = document(&crate::Addressing {
            path_prefix: true,
            base_domain: None,
        });
        let value = serde_json::to_value(&built).unwrap();
        let mut expected = serde_json::to_string_pretty(&value).unwrap();
        expected.push('\n');
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed == expected {
            return;
        }
        if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        panic!(
            "{} is not the current OpenAPI document: regenerate it with \
             `UPDATE_OPENAPI=1 cargo test -p tenantry-api openapi` and commit it with the change",
            path.display()
        );
    }
}
