//! `/console/retention`: purge receipts, deleted tenants with their purge
//! date, and "sweep now" — a dry-run preview first, then the real sweep
//! after a confirmation (the same `tenantry_ops::retention::sweep` as
//! `POST /v1/admin/retention/sweep`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::TenantId;
use tenantry_ops::retention;
use tenantry_ops::views::{RetentionRunView, SweepReportView, TenantView};

use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::routes::PageQuery;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/retention", web::get().to(page))
        .route("/retention/sweep", web::post().to(sweep));
}

#[derive(Debug, Deserialize)]
pub struct RetentionQuery {
    /// Receipts' cursor.
    cursor: Option<String>,
    /// Deleted tenants' cursor.
    deleted_cursor: Option<String>,
}

/// A period as people read it: `90 days`, `1 h 30 min`, `2 s`.
#[must_use]
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{} ms", d.subsec_millis());
    }
    let (days, hours, mins, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    match days {
        0 => {}
        1 => parts.push("1 day".to_owned()),
        n => parts.push(format!("{n} days")),
    }
    for (n, unit) in [(hours, "h"), (mins, "min"), (s, "s")] {
        if n > 0 {
            parts.push(format!("{n} {unit}"));
        }
    }
    parts.join(" ")
}

/// The sweeper's schedule in a sentence.
pub fn schedule(state: &AppState) -> Markup {
    let r = &state.ops.tenancy.retention;
    html! {
        @if r.enabled {
            "Runs every " (format_duration(r.sweep_interval)) " (± 10 %) in each running service"
            @if r.dry_run { ", as dry runs (retention.dry_run = true): nothing is removed" }
            "."
        } @else {
            "Off (retention.enabled = false): sweep from the Retention page or with "
            code { "tenantry sweep" } "."
        }
    }
}

fn rows_removed(rows: &serde_json::Value) -> Markup {
    let tables: Vec<(&String, i64)> = rows
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(t, n)| (t, n.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    rows_per_table(tables.iter().map(|(t, n)| (t.as_str(), *n)))
}

fn rows_per_table<'a>(tables: impl Iterator<Item = (&'a str, i64)>) -> Markup {
    let tables: Vec<(&str, i64)> = tables.filter(|(_, n)| *n > 0).collect();
    let total: i64 = tables.iter().map(|(_, n)| n).sum();
    html! {
        @if tables.is_empty() {
            "none"
        } @else {
            (layout::number(total)) " in all: "
            ul.rows {
                @for (table, n) in &tables {
                    li { code { (table) } " " (layout::number(*n)) }
                }
            }
        }
    }
}

/// Receipts as a table.
#[must_use]
pub fn receipts(items: &[RetentionRunView], caption: &str) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No purges yet." }
        } @else {
            div.table-wrap tabindex="0" {
                table.receipts {
                    caption { (caption) }
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { "Deleted" }
                            th scope="col" { "Started" }
                            th scope="col" { "Outcome" }
                            th scope="col" { "Rows removed" }
                            th scope="col" { "Sweeper" }
                        }
                    }
                    tbody {
                        @for r in items {
                            tr {
                                td { a href={ "/console/tenants/" (r.tenant_id) } { (r.slug) } }
                                td { (layout::time(r.deleted_at)) }
                                td { (layout::time(r.started_at)) }
                                td {
                                    @if let Some(at) = r.purged_at {
                                        "Purged " (layout::time(at))
                                    } @else {
                                        "Still open (the next sweep resumes it)"
                                    }
                                }
                                td { (rows_removed(&r.rows_removed)) }
                                td { (r.sweeper) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Deleted tenants with their purge dates.
#[must_use]
pub fn deleted(items: &[TenantView], caption: &str) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No deleted tenants are waiting for their purge." }
        } @else {
            div.table-wrap tabindex="0" {
                table.deleted {
                    caption { (caption) }
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { "Deleted" }
                            th scope="col" { "Purge" }
                            th scope="col" { "Legal hold" }
                        }
                    }
                    tbody {
                        @for t in items {
                            tr {
                                td { a href={ "/console/tenants/" (t.id) } { (t.slug) } }
                                td { @if let Some(at) = t.deleted_at { (layout::time(at)) } }
                                td {
                                    @if let Some(at) = t.purge_after {
                                        "From " (layout::time(at))
                                    } @else {
                                        "Not while on legal hold"
                                    }
                                }
                                td { @if t.legal_hold { strong { "On hold" } } @else { "No" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn sweep_form(session: &Session) -> Markup {
    html! {
        form method="post" action="/console/retention/sweep" {
            (layout::csrf_field(session))
            input type="hidden" name="dry_run" value="1";
            p { "See which tenants a sweep would purge now; nothing is removed." }
            button type="submit" { "Sweep now (preview)" }
        }
    }
}

async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<RetentionQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = query.into_inner();
    let runs_page = PageQuery::new(Some(20), q.cursor.clone()).page()?;
    let deleted_page = PageQuery::new(Some(20), q.deleted_cursor.clone()).page()?;
    let runs = retention::receipts(&state.ops, true, runs_page).await?;
    let waiting = retention::deleted(&state.ops, None, deleted_page).await?;
    let period = format_duration(state.ops.tenancy.retention.period);
    let keep = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| format!("{name}={}&", layout::query_escape(v)))
            .unwrap_or_default()
    };
    let body = html! {
        section aria-labelledby="policy-h" {
            h2 id="policy-h" { "Policy" }
            dl {
                dt { "Retention period" } dd { (period) " after deletion" }
                dt { "Sweeper" } dd { (schedule(&state)) }
            }
        }
        section aria-labelledby="sweep-h" {
            h2 id="sweep-h" { "Sweep now" }
            (sweep_form(&session))
        }
        section aria-labelledby="deleted-h" {
            h2 id="deleted-h" { "Deleted tenants" }
            (deleted(&waiting.items, "Deleted tenants awaiting their purge, the first to go first"))
            (layout::pager(waiting.next_cursor.as_deref(), &format!("/console/retention?{}deleted_", keep("cursor", &q.cursor))))
        }
        section aria-labelledby="receipts-h" {
            h2 id="receipts-h" { "Receipts" }
            (receipts(&runs.items, "Purge receipts, newest first"))
            (layout::pager(runs.next_cursor.as_deref(), &format!("/console/retention?{}", keep("deleted_cursor", &q.deleted_cursor))))
        }
    };
    Ok(layout::ok(&session, "Retention", Nav::Retention, body))
}

#[derive(Debug, Deserialize)]
pub struct SweepForm {
    dry_run: Option<String>,
    confirm_action: Option<String>,
}

fn checked(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "on" | "true" | "yes"))
}

/// Slugs of the tenants a report names (the report has ids only).
async fn slugs(state: &AppState, ids: &[TenantId]) -> Vec<(TenantId, String)> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.iter().take(200) {
        let slug = tenantry_ops::tenants::get(&state.ops, &id.to_string())
            .await
            .map_or_else(|_| id.to_string(), |t| t.slug);
        out.push((*id, slug));
    }
    out
}

async fn preview(
    session: &Session,
    state: &AppState,
    report: &SweepReportView,
    problem: Option<&Problem>,
) -> HttpResponse {
    let ids: Vec<TenantId> = report.would_purge.iter().map(|w| w.tenant_id).collect();
    let names = slugs(state, &ids).await;
    let name = |id: TenantId| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map_or_else(|| id.to_string(), |(_, s)| s.clone())
    };
    let error = problem.and_then(|p| p.on("confirm_action"));
    let body = html! {
        p { "A dry run: nothing was removed. Retention period: " (format_duration(state.ops.tenancy.retention.period)) "." }
        @if report.would_purge.is_empty() {
            p.empty { "No tenant is past its retention period: a sweep now would purge nothing." }
        } @else {
            div.table-wrap tabindex="0" {
                table.would-purge {
                    caption { "Tenants a sweep now would purge" }
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { "Rows that would be removed" }
                        }
                    }
                    tbody {
                        @for w in &report.would_purge {
                            tr {
                                td { a href={ "/console/tenants/" (w.tenant_id) } { (name(w.tenant_id)) } }
                                td { (rows_per_table(w.rows.iter().map(|(t, n)| (t.as_str(), *n)))) }
                            }
                        }
                    }
                }
            }
        }
        @if !report.busy.is_empty() {
            p { (report.busy.len()) " tenant(s) are being purged by another sweeper right now." }
        }
        @if !report.would_purge.is_empty() {
            form method="post" action="/console/retention/sweep"
                data-confirm="Purge these tenants' data now? This cannot be undone." {
                (layout::csrf_field(session))
                (form::alert(problem, &["confirm_action"]))
                div.field {
                    input type="checkbox" id="confirm_action" name="confirm_action" value="1"
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "confirm_action-error")];
                    " "
                    label for="confirm_action" { "I understand: these tenants' data is removed for good" }
                    @if let Some(e) = error {
                        p.field-error id="confirm_action-error" { (e) }
                    }
                }
                button.danger type="submit" { "Purge now" }
            }
        }
        p { a href="/console/retention" { "Back to retention" } }
    };
    let status = problem.map_or(StatusCode::OK, |p| p.status);
    layout::respond(
        status,
        layout::page(Some(session), "Sweep preview", Nav::Retention, body),
    )
}

fn report_page(session: &Session, report: &SweepReportView) -> HttpResponse {
    let body = html! {
        div.notice role="status" {
            "Sweep done: " (report.purged.len()) " tenant(s) purged, "
            (layout::number(report.rows_removed)) " rows removed, "
            (report.slugs_released) " slug(s) released."
        }
        (receipts(&report.purged, "Tenants purged by this sweep"))
        @if !report.busy.is_empty() {
            p { (report.busy.len()) " tenant(s) were being purged by another sweeper and were left to it." }
        }
        @if !report.interrupted.is_empty() {
            div.table-wrap tabindex="0" {
                table {
                    caption { "Purges that stopped early (the next sweep resumes them)" }
                    thead { tr { th scope="col" { "Tenant" } th scope="col" { "Why" } } }
                    tbody {
                        @for i in &report.interrupted {
                            tr {
                                td { a href={ "/console/tenants/" (i.tenant_id) } { (i.tenant_id) } }
                                td { (i.reason) }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/console/retention" { "Back to retention" } }
    };
    layout::ok(session, "Sweep report", Nav::Retention, body)
}

async fn sweep(
    posted: Posted<SweepForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let actor = session.actor();
    if checked(form.dry_run.as_deref()) {
        let started = std::time::Instant::now();
        let report = retention::sweep(&state.ops, &actor, true, &state.stop).await?;
        state.metrics.swept(&report, started.elapsed());
        return Ok(preview(&session, &state, &report, None).await);
    }
    if !checked(form.confirm_action.as_deref()) {
        // Not confirmed: the preview again, with why nothing happened.
        let report = retention::sweep(&state.ops, &actor, true, &state.stop).await?;
        let problem = Problem::invalid(
            "confirm_action",
            "tick this box to confirm; nothing was purged",
        );
        return Ok(preview(&session, &state, &report, Some(&problem)).await);
    }
    let started = std::time::Instant::now();
    let report = retention::sweep(&state.ops, &actor, false, &state.stop).await?;
    state.metrics.swept(&report, started.elapsed());
    Ok(report_page(&session, &report))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::format_duration;

    #[test]
    fn periods_read_in_days_hours_minutes_and_seconds() {
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90 days");
        assert_eq!(
            format_duration(Duration::from_secs(86_400 + 5400)),
            "1 day 1 h 30 min"
        );
        assert_eq!(format_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500 ms");
    }
}
