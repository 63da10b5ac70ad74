//! The operator console: the admin plane as server-rendered pages at
//! `/console`, for the people who run the platform.
//!
//! Every page and action calls the same `tenantry_ops` function as the
//! admin API's route for it, with the signed-in admin as the actor; the
//! console holds no rule of its own. Where things are:
//! - `session.rs`: sign-in by a platform-admin token exchanged once for a
//!   server-side session (`console_sessions`), the cookie, CSRF and the
//!   cross-site checks ([`session::Session`], [`session::Posted`]);
//! - `layout.rs`: the page shell (navigation, header), times, numbers,
//!   pagers; `form.rs`: fields with their errors beside them;
//! - `pages/`: one module per page family, each with its `configure`;
//! - `static/`: the stylesheet and the one script, served from the binary.
//!
//! Headers on every answer: a strict Content-Security-Policy (no inline
//! script or style, nothing from another origin, no framing), no referrer,
//! no caching of pages.

mod error;
pub mod form;
pub mod layout;
mod pages;
pub mod session;
mod settings;
mod sign_in;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, web};

pub use error::ConsoleError;
pub use settings::{ConsoleSettings, ConsoleState, SecureCookie};

/// The console's Content-Security-Policy: this origin's own script and
/// stylesheet only, forms posting only here, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

/// Mounts `/console` (when `[console] enabled`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(from_fn(headers))
            // Unreadable paths and queries answer a console page, not the
            // API's problem+json.
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ConsoleError::Api(crate::ApiError::from(e)).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ConsoleError::Api(crate::ApiError::from(e)).into()),
            )
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/static/console.js", web::get().to(script))
            .configure(sign_in::configure)
            .configure(pages::configure)
            .default_service(web::to(not_found)),
    );
}

async fn home(_session: session::Session) -> HttpResponse {
    layout::see_other("/console/overview")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(STYLESHEET)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(SCRIPT)
}

/// Signed in: a 404 page. Not signed in: to sign-in first (no page's
/// existence is told to someone without a session).
async fn not_found(_session: session::Session) -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound)
}

async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
