//! Sign-in and sign-out.
//!
//! An operator signs in by pasting a platform-admin token — the same
//! credential the admin API takes (`tenantry token --admin`, or one from
//! the identity provider) — once; it is verified like a bearer token and
//! exchanged for a session. The sign-in form carries its own CSRF token
//! (double submit: a short-lived cookie and a hidden field), is refused
//! from other sites, and attempts are rate-limited per client address.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::Scope;

use super::ConsoleError;
use super::form::{self, Kind, Problem};
use super::layout::{self, Nav};
use super::session::{self, Posted};
use crate::AppState;

const SIGN_IN_COOKIE: &str = "tenantry_console_sign_in";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-in", web::get().to(sign_in_page))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out));
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// `next` when it is a console page (never another site: no open
/// redirect).
fn next_page(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.starts_with("/console/sign-")
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/console/overview",
    }
}

fn sign_in_form(csrf: &str, next: &str, problem: Option<&Problem>, notice: Option<&str>) -> Markup {
    html! {
        (layout::notice(notice))
        p {
            "Sign in with a platform-admin token: the credential the admin API takes. "
            "On a development server, " code { "tenantry token --admin --sub you@example.com" }
            " prints one (see the README)."
        }
        form.sign-in method="post" action="/console/sign-in" {
            (form::alert(problem, &["credential"]))
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            (form::field(Kind::TextArea, "credential", "Platform-admin token", "",
                Some("Used once to start a session; it is not stored."), problem))
            button type="submit" { "Sign in" }
        }
    }
}

fn sign_in_response(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    next: &str,
    problem: Option<&Problem>,
    notice: Option<&str>,
) -> Result<HttpResponse, ConsoleError> {
    let csrf = session::new_token()?;
    let mut cookie = Cookie::build(SIGN_IN_COOKIE, csrf.clone())
        .path("/console/sign-in")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.set_max_age(actix_web::cookie::time::Duration::minutes(30));
    cookie.set_secure(session::secure(req, state));
    let page = layout::page(
        None,
        "Sign in",
        Nav::None,
        sign_in_form(&csrf, next, problem, notice),
    );
    let mut res = layout::respond(status, page);
    res.add_cookie(&cookie)
        .map_err(|e| ConsoleError::Api(crate::ApiError::internal(e.to_string())))?;
    Ok(res)
}

async fn sign_in_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let notice = query.signed_out.as_ref().map(|_| "You are signed out.");
    let next = next_page(query.next.as_deref());
    sign_in_response(&req, &state, StatusCode::OK, next, None, notice)
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    credential: String,
    next: Option<String>,
}

async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    session::same_origin(&req)?;
    let form: SignInForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ConsoleError::Refused("the sign-in form could not be read"))?;
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    if expected
        .as_deref()
        .is_none_or(|e| e.is_empty() || e != form.csrf)
    {
        return Err(ConsoleError::Refused(
            "the sign-in form's security token is missing or stale; reload the page and try again",
        ));
    }
    let next = next_page(form.next.as_deref()).to_owned();
    let refuse = |status, problem: Problem| {
        sign_in_response(&req, &state, status, &next, Some(&problem), None)
    };
    if let Some(peer) = req.peer_addr()
        && !state.console.allow_sign_in(peer.ip())
    {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            Problem {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                detail: "too many sign-in attempts from this address; wait a minute and try again"
                    .to_owned(),
                field: None,
            },
        );
    }
    let credential = form.credential.trim();
    if credential.is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            Problem::invalid("credential", "paste a platform-admin token"),
        );
    }
    let verified = state.auth.verify_with_expiry(credential).await;
    let (principal, exp) = match verified {
        Ok((p, exp)) if p.scopes.contains(Scope::PlatformAdmin) => (p, exp),
        Ok(_) => {
            return refuse(
                StatusCode::FORBIDDEN,
                Problem {
                    status: StatusCode::FORBIDDEN,
                    code: "forbidden",
                    detail: "this token is not a platform-admin token".to_owned(),
                    field: Some("credential".to_owned()),
                },
            );
        }
        Err(reason) => {
            tracing::info!(%reason, "console sign-in refused");
            return refuse(
                StatusCode::UNAUTHORIZED,
                Problem {
                    status: StatusCode::UNAUTHORIZED,
                    code: "unauthorized",
                    detail: "this token is not valid here (expired, or not signed by a key this \
                             service trusts)"
                        .to_owned(),
                    field: Some("credential".to_owned()),
                },
            );
        }
    };
    let settings = &state.console.settings;
    let now = Utc::now();
    let absolute = now
        + chrono::Duration::from_std(settings.absolute_timeout)
            .unwrap_or(chrono::Duration::hours(12));
    let credential_expiry = i64::try_from(exp)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .unwrap_or(absolute);
    let expires_at = absolute.min(credential_expiry);
    let token = session::new_token()?;
    let actor = tenantry_ops::Actor::subject(principal.sub);
    tenantry_ops::console::sign_in(&state.ops, &actor, session::token_hash(&token), expires_at)
        .await?;
    let max_age = (expires_at - now).to_std().unwrap_or_default();
    let mut res = layout::see_other(&next);
    res.add_cookie(&session::cookie(&req, &state, token, max_age))
        .map_err(|e| ConsoleError::Api(crate::ApiError::internal(e.to_string())))?;
    let mut gone = Cookie::build(SIGN_IN_COOKIE, "")
        .path("/console/sign-in")
        .finish();
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| ConsoleError::Api(crate::ApiError::internal(e.to_string())))?;
    Ok(res)
}

#[derive(Debug, Deserialize)]
struct Nothing {}

async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<Nothing>,
) -> Result<HttpResponse, ConsoleError> {
    if let Some(token) = req.cookie(session::COOKIE) {
        tenantry_ops::console::sign_out(
            &state.ops,
            &posted.session.actor(),
            session::token_hash(token.value()),
        )
        .await?;
    }
    let mut res = layout::see_other("/console/sign-in?signed_out=1");
    res.add_cookie(&session::removal(&req, &state))
        .map_err(|e| ConsoleError::Api(crate::ApiError::internal(e.to_string())))?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn sign_in_returns_only_to_console_pages() {
        assert_eq!(
            next_page(Some("/console/tenants?status=active")),
            "/console/tenants?status=active"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/v1/admin/tenants",
            "/console/sign-out",
            "/console/\\evil",
            "/console/a b",
        ] {
            assert_eq!(next_page(Some(bad)), "/console/overview", "{bad}");
        }
        assert_eq!(next_page(None), "/console/overview");
    }
}
