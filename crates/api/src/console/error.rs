use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use maud::html;

use super::layout::{self, Nav};
use crate::ApiError;

/// What a console request answers instead of its page: always an HTML
/// page in the console's shell (or a redirect to sign-in), never a raw
/// status or problem+json.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A page asked for without a live session: to the sign-in page, and
    /// back here after it.
    #[error("sign in first")]
    SignIn { next: String },
    /// A form posted without a live session (none, forged, ended, expired).
    #[error("your session has ended; sign in again")]
    SessionEnded,
    /// A form posted with a wrong or missing CSRF token, or from another
    /// site.
    #[error("{0}")]
    Refused(&'static str),
    #[error("no such page")]
    NotFound,
    /// What the operation answered (not found, invalid transition, ...).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<tenantry_ops::Error> for ConsoleError {
    fn from(e: tenantry_ops::Error) -> Self {
        Self::Api(ApiError::from(e))
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::SessionEnded | Self::Refused(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, detail) = match self {
            Self::SignIn { next } => {
                return layout::see_other(&format!(
                    "/console/sign-in?next={}",
                    layout::query_escape(next)
                ));
            }
            Self::SessionEnded => ("Signed out", self.to_string()),
            Self::Refused(_) => ("Request refused", self.to_string()),
            Self::NotFound => ("Not found", self.to_string()),
            Self::Api(e) => {
                if let ApiError::Operation(tenantry_ops::Error::Internal(cause)) = e {
                    tracing::error!(%cause, "internal error");
                }
                ("Something went wrong", e.detail())
            }
        };
        let body = html! {
            div.problem role="alert" {
                p { (detail) }
            }
            @if matches!(self, Self::SessionEnded) {
                p { a href="/console/sign-in" { "Sign in" } }
            } @else {
                p { a href="/console/overview" { "Back to the overview" } }
            }
        };
        layout::respond(
            self.status_code(),
            layout::page(None, title, Nav::None, body),
        )
    }
}
