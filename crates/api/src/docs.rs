//! `/docs`: the interactive API reference — Swagger UI reading
//! `/openapi.json`. Its assets are compiled into the binary from the
//! `utoipa-swagger-ui` crate (vendored), never fetched from a CDN.

use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::{Config, SwaggerUi};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        }),
    )
    .service(
        SwaggerUi::new("/docs/{_:.*}").config(
            Config::new(["/openapi.json"])
                .try_it_out_enabled(true)
                .display_operation_id(true),
        ),
    );
}
