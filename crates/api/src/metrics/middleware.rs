//! The request metrics middleware: one count and one latency observation
//! per answered request, labelled with the route template (actix's
//! `match_pattern()`, `unmatched` when no route matched), the status class
//! and the tenant the tenant-plane extractor verified (a [`TenantId`] in
//! the request's extensions; none: `tenant="none"`), whose request the
//! extractor already ranked (`TenantSeries::rank`, so that rejections in
//! the handler are labelled like the request). Registered inside the
//! root span (`TracingLogger`), so it times what the handler and the inner
//! middleware do.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use tenantry_core::TenantId;

use crate::AppState;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Counts and times every request (errors included: they are responses).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| std::sync::Arc::clone(&state.metrics));
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let seconds = started.elapsed().as_secs_f64();
        // The live-load signal the sweeper inside `serve` paces itself by.
        tenantry_sweeper::RequestLoad::process().record(seconds);
        let (request, status) = match &result {
            Ok(res) => (Some(res.request()), res.status().as_u16()),
            // An error no handler turned into a response: actix answers it
            // as the error's status.
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        let tenant = request.and_then(|r| r.extensions().get::<TenantId>().copied());
        let route = request.and_then(actix_web::HttpRequest::match_pattern);
        let route = route.as_deref().unwrap_or(UNMATCHED);
        metrics
            .tenants()
            .of(tenant, |series| series.request(route, status, seconds));
    }
    result
}
