//! `/console/audit`: the audit log, newest first, filtered by tenant,
//! actor, action and time (the same filters as `GET /v1/admin/audit`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_ops::audit::{self, AuditFilter};
use tenantry_ops::views::AuditEntryView;

use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::Session;
use crate::routes::PageQuery;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(page));
}

/// The page's query: the filters as typed, and the cursor.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
}

const FIELDS: &[&str] = &["tenant", "actor", "action", "from", "to"];

/// A `datetime-local` value (`2026-01-31T12:00`, seconds optional) read
/// as UTC, or an RFC 3339 time.
fn parse_time(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(Problem::invalid(
        field,
        "must be a date and time, such as 2026-01-31T12:00 (UTC)",
    ))
}

fn filter(q: &AuditQuery) -> Result<AuditFilter, Problem> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(AuditFilter {
        tenant: opt(&q.tenant),
        actor: opt(&q.actor),
        action: opt(&q.action),
        from: parse_time("from", &q.from)?,
        to: parse_time("to", &q.to)?,
        newest_first: true,
    })
}

/// `/console/audit?tenant=..&..&` (the filters, ready for a cursor).
fn base(q: &AuditQuery) -> String {
    let mut url = "/console/audit?".to_owned();
    for (name, value) in [
        ("tenant", &q.tenant),
        ("actor", &q.actor),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !value.is_empty() {
            url.push_str(name);
            url.push('=');
            url.push_str(&layout::query_escape(value));
            url.push('&');
        }
    }
    url
}

async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = query.into_inner();
    let found = match filter(&q) {
        Err(problem) => Err(problem),
        Ok(filter) => match PageQuery::new(Some(50), q.cursor.clone()).page() {
            Err(e) => Err(Problem::from(e)),
            Ok(page) => audit::list(&state.ops, &filter, page)
                .await
                .map_err(Problem::from),
        },
    };
    let (status, results) = match &found {
        Ok(list) => (
            StatusCode::OK,
            html! {
                (entries(&list.items, "Audit entries, newest first"))
                (layout::pager(list.next_cursor.as_deref(), &base(&q)))
            },
        ),
        Err(problem) => (problem.status, html! {}),
    };
    let problem = found.as_ref().err();
    if let Some(p) = problem
        && p.status == StatusCode::INTERNAL_SERVER_ERROR
    {
        return Err(ConsoleError::Api(crate::ApiError::internal(
            p.detail.clone(),
        )));
    }
    let body = html! {
        form.filters method="get" action="/console/audit" role="search" aria-label="Filter the audit log" {
            (form::alert(problem, FIELDS))
            (form::field(Kind::Text, "tenant", "Tenant", &q.tenant, Some("Id or slug"), problem))
            (form::field(Kind::Text, "actor", "Actor", &q.actor, Some("Exactly, e.g. alice@example.com"), problem))
            (form::field(Kind::Text, "action", "Action", &q.action, Some("Exactly, or a prefix ending in . such as tenant."), problem))
            (form::field(Kind::DateTime, "from", "From (UTC)", &q.from, None, problem))
            (form::field(Kind::DateTime, "to", "To (UTC)", &q.to, None, problem))
            div.actions {
                button type="submit" { "Filter" }
                " "
                a href="/console/audit" { "Clear filters" }
            }
        }
        (results)
    };
    Ok(layout::respond(
        status,
        layout::page(Some(&session), "Audit log", Nav::Audit, body),
    ))
}

fn pretty(value: Option<&serde_json::Value>) -> String {
    value
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_default()
}

/// Audit entries as a table: time, actor, action, tenant, reason, and the
/// state before and after (folded).
#[must_use]
pub fn entries(items: &[AuditEntryView], caption: &str) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No audit entries." }
        } @else {
            div.table-wrap tabindex="0" {
                table.audit {
                    caption { (caption) }
                    thead {
                        tr {
                            th scope="col" { "Time" }
                            th scope="col" { "Actor" }
                            th scope="col" { "Action" }
                            th scope="col" { "Tenant" }
                            th scope="col" { "Reason" }
                            th scope="col" { "Change" }
                        }
                    }
                    tbody {
                        @for e in items {
                            tr {
                                td { (layout::time(e.at)) }
                                td { (e.actor) }
                                td { code { (e.action) } }
                                td {
                                    @if let Some(t) = e.tenant_id {
                                        a href={ "/console/tenants/" (t) } { (t) }
                                    } @else {
                                        "—"
                                    }
                                }
                                td { (e.reason.as_deref().unwrap_or("")) }
                                td {
                                    @if e.before.is_some() || e.after.is_some() {
                                        details {
                                            summary { "Before and after" }
                                            @if e.before.is_some() {
                                                p { strong { "Before" } }
                                                pre { (pretty(e.before.as_ref())) }
                                            }
                                            @if e.after.is_some() {
                                                p { strong { "After" } }
                                                pre { (pretty(e.after.as_ref())) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        let t = parse_time("from", "2026-01-31T12:30").unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T12:30:00+00:00");
        assert!(parse_time("from", "2026-01-31T12:30:15").unwrap().is_some());
        assert!(
            parse_time("from", "2026-01-31T12:30:00Z")
                .unwrap()
                .is_some()
        );
        assert!(parse_time("from", "").unwrap().is_none());
        let bad = parse_time("from", "yesterday").unwrap_err();
        assert!(bad.on("from").is_some());
    }

    #[test]
    fn the_pager_keeps_the_filters() {
        let q = AuditQuery {
            action: "tenant.".into(),
            actor: "a b".into(),
            ..AuditQuery::default()
        };
        assert_eq!(base(&q), "/console/audit?actor=a%20b&action=tenant.&");
    }
}
