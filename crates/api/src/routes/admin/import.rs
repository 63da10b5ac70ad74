//! `POST /v1/admin/tenants/{id_or_slug}/import`: an export (NDJSON, as
//! `GET .../export` wrote it) into an existing tenant that has no rows
//! yet, all or nothing — `tenantry_ops::import`, the same the CLI runs.
//! The body is streamed into the import's one transaction as it arrives
//! (never held whole), up to `tenancy.import_max_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, post, web};
use futures_util::StreamExt as _;
use serde::Deserialize;
use tenantry_ops::import::{self, Options, Target};
use tenantry_ops::views::ImportView;

use crate::auth::PlatformAdmin;
use crate::routes::ok;
use crate::{ApiError, AppState};

/// Body chunks read ahead of the import at most.
const CHUNKS_AHEAD: usize = 8;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Apply the file's limits (its tenant_quotas line) before any row is charged; default: keep the tenant's.
    restore_limits: Option<bool>,
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id_or_slug" = String, Path, description = "Tenant id or slug: a key that parses as a UUID is only ever an id"), ImportQuery), request_body(content = String, content_type = "application/x-ndjson", description = "An export as GET /v1/admin/tenants/{id}/export wrote it: sections, rows, then the {\"end\": true, \"rows\": N} trailer"), responses((status = 200, body = ImportView), (status = 403, description = "quota_exceeded: the rows do not fit the tenant's limits (line names the row); nothing was imported", body = crate::error::Problem, content_type = "application/problem+json"), (status = 409, description = "conflict: the tenant is not empty (or deleted)", body = crate::error::Problem, content_type = "application/problem+json"), (status = 413, description = "payload_too_large: over tenancy.import_max_bytes; nothing was imported", body = crate::error::Problem, content_type = "application/problem+json"), (status = 422, description = "a line refused: line, field and why; nothing was imported", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/tenants/{id_or_slug}/import")]
pub async fn import_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    key: web::Path<String>,
    query: web::Query<ImportQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limit = state.ops.tenancy.import_max_bytes;
    let (tx, input) = import::input(CHUNKS_AHEAD);
    let overflowed = Arc::new(AtomicBool::new(false));
    // The payload lives on this worker's thread: a local task hands its
    // chunks to the import (bounded: the client is read as fast as the
    // import writes), and stops when the import stops listening.
    let flag = Arc::clone(&overflowed);
    actix_web::rt::spawn(async move {
        let mut read: u64 = 0;
        while let Some(chunk) = body.next().await {
            let sent = match chunk {
                Ok(bytes) => {
                    read = read.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
                    if read > limit {
                        flag.store(true, Ordering::SeqCst);
                        let _ = tx
                            .send(Err(format!("the body is larger than {limit} bytes")))
                            .await;
                        return;
                    }
                    tx.send(Ok(bytes.to_vec())).await
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let options = Options {
        restore_limits: query.restore_limits.unwrap_or(false),
        base_domain: state.addressing.base_domain.clone(),
    };
    let result = import::run(
        &state.ops,
        &admin.actor(),
        "import:api",
        Target::Existing {
            key: key.into_inner(),
        },
        input,
        options,
        &mut |_| {},
    )
    .await;
    match result {
        Ok(view) => Ok(ok(&view)),
        Err(_) if overflowed.load(Ordering::SeqCst) => Err(ApiError::PayloadTooLarge(
            usize::try_from(limit).unwrap_or(usize::MAX),
        )),
        Err(e) => Err(e.into()),
    }
}
