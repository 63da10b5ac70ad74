//! `/console/tenants/{id}`: one tenant (by id or slug, as the admin API's
//! key): its status and the lifecycle actions allowed from it, legal hold,
//! quotas beside usage, health counts, recent events and audit entries,
//! and its export.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::{Action, transition};
use tenantry_ops::tenants::{self, TenantChange};
use tenantry_ops::views::{AuditEntryView, DataHealthView, EventView, QuotasView, TenantView};
use tenantry_ops::{Error as OpError, Page};

use super::tenants::status_badge;
use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}", web::get().to(detail))
        .route("/tenants/{id}/lifecycle", web::post().to(lifecycle))
        .route("/tenants/{id}/legal-hold", web::post().to(legal_hold))
        .route("/tenants/{id}/export", web::get().to(export));
}

/// Audit entries shown on the page (the audit log has them all).
const RECENT_AUDIT: usize = 20;
/// Events shown on the page.
const RECENT_EVENTS: i64 = 20;

#[derive(Debug, Default, Deserialize)]
struct DetailQuery {
    notice: Option<String>,
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "created" => "Tenant created.",
        "suspend" => "Tenant suspended.",
        "activate" => "Tenant activated.",
        "archive" => "Tenant archived.",
        "delete" => {
            "Tenant deleted. Its data is purged after the retention period unless it is restored first."
        }
        "restore" => "Tenant restored; it is archived now.",
        "hold_on" => "Legal hold placed: the tenant is never purged while it holds.",
        "hold_off" => "Legal hold lifted.",
        "quotas" | "quotas_saved" => "Quotas updated.",
        _ => return None,
    })
}

/// Which form a refused post came from, with what was typed.
#[derive(Debug)]
enum Failed {
    Lifecycle {
        action: Option<Action>,
        reason: String,
        confirm: String,
    },
    LegalHold {
        reason: String,
    },
}

#[derive(Debug)]
struct Failure {
    form: Failed,
    problem: Problem,
}

/// The lifecycle actions allowed from where the tenant stands (the
/// lifecycle's own rule; none once its data is purged).
fn allowed(tenant: &TenantView) -> Vec<Action> {
    if tenant.purged_at.is_some() {
        return Vec::new();
    }
    Action::ALL
        .into_iter()
        .filter(|a| transition(tenant.status, *a).is_ok())
        .collect()
}

const fn destructive(action: Action) -> bool {
    matches!(action, Action::Archive | Action::Delete)
}

fn describe(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Suspend => (
            "Suspend",
            "Its API refuses every request until it is activated again; nothing is deleted.",
        ),
        Action::Activate => ("Activate", "Its API answers again."),
        Action::Archive => (
            "Archive",
            "Read-only for good: it can then only be deleted.",
        ),
        Action::Delete => (
            "Delete",
            "Its data is purged after the retention period (never while on legal hold); until then it can be restored.",
        ),
        Action::Restore => ("Restore", "Back to archived, if its purge has not started."),
    }
}

/// Everything the page shows about the tenant.
struct Detail {
    tenant: TenantView,
    quotas: Option<QuotasView>,
    health: Option<DataHealthView>,
    audit: Vec<AuditEntryView>,
    events: Vec<EventView>,
}

/// Not found as the console's 404 page; anything else as it is.
fn missing(e: OpError) -> ConsoleError {
    match e {
        OpError::NotFound => ConsoleError::NotFound,
        other => other.into(),
    }
}

/// A part of the page a purged tenant no longer has.
fn gone<T>(r: Result<T, OpError>) -> Result<Option<T>, ConsoleError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(OpError::NotFound | OpError::TenantPurged) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn load(state: &AppState, key: &str) -> Result<Detail, ConsoleError> {
    let ops = &state.ops;
    let tenant = tenants::get(ops, key).await.map_err(missing)?;
    let id = tenant.id.to_string();
    let quotas = gone(tenantry_ops::quotas::get(ops, &id).await)?;
    let health = gone(tenants::health(ops, &id).await)?;
    // Its latest audit entries, newest first.
    let page = Page {
        limit: i64::try_from(RECENT_AUDIT).unwrap_or(20),
        after: None,
    };
    let filter = tenantry_ops::audit::AuditFilter {
        newest_first: true,
        ..tenantry_ops::audit::AuditFilter::tenant(id.clone())
    };
    let audit = tenantry_ops::audit::list(ops, &filter, page).await?.items;
    let events = gone(tenants::latest_events(ops, &id, RECENT_EVENTS).await)?.unwrap_or_default();
    Ok(Detail {
        tenant,
        quotas,
        health,
        audit,
        events,
    })
}

fn overview(d: &Detail) -> Markup {
    let t = &d.tenant;
    html! {
        dl {
            dt { "Status" } dd { (status_badge(t.status)) }
            dt { "Slug" } dd { code { (t.slug) } }
            dt { "Name" } dd { (t.name) }
            dt { "Id" } dd { code { (t.id) } }
            dt { "Account" } dd { a href={ "/console/accounts/" (t.account_id) } { code { (t.account_id) } } }
            dt { "Plan" }
            dd {
                @match d.quotas.as_ref().and_then(|q| q.plan.as_deref()) {
                    Some(plan) => a href={ "/console/plans/" (layout::query_escape(plan)) } { (plan) },
                    None => span.muted { "none (the service's default limits)" },
                }
            }
            dt { "Legal hold" } dd { @if t.legal_hold { "on" } @else { "off" } }
            dt { "Created" } dd { (layout::time(t.created_at)) }
            dt { "Updated" } dd { (layout::time(t.updated_at)) }
            @if let Some(at) = t.deleted_at {
                dt { "Deleted" } dd { (layout::time(at)) }
            }
            @if let Some(at) = t.purge_after {
                dt { "Purge after" } dd { (layout::time(at)) }
            } @else if t.deleted_at.is_some() && t.purged_at.is_none() && t.legal_hold {
                dt { "Purge after" } dd { "never while the legal hold is on" }
            }
            @if let Some(at) = t.purged_at {
                dt { "Purged" } dd { (layout::time(at)) }
            }
        }
    }
}

fn checkbox(id: &str, problem: Option<&Problem>) -> Markup {
    let error = problem.and_then(|p| p.on("confirm_action"));
    let error_id = format!("{id}-error");
    html! {
        div.check {
            input type="checkbox" id=(id) name="confirm_action" value="yes"
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())];
            " "
            label for=(id) { "I understand" }
            @if let Some(e) = error {
                p.field-error id=(error_id) { (e) }
            }
        }
    }
}

fn action_form(
    session: &Session,
    t: &TenantView,
    action: Action,
    failure: Option<&Failure>,
) -> Markup {
    let (reason, confirm, problem) = match failure {
        Some(Failure {
            form:
                Failed::Lifecycle {
                    action: Some(a),
                    reason,
                    confirm,
                },
            problem,
        }) if *a == action => (reason.as_str(), confirm.as_str(), Some(problem)),
        _ => ("", "", None),
    };
    let (title, what) = describe(action);
    let name = action.as_str();
    let heading = format!("{name}-h");
    let confirm_message = format!("{title} tenant {}?", t.slug);
    html! {
        form method="post" action={ "/console/tenants/" (t.id) "/lifecycle" }
            aria-labelledby=(heading)
            data-confirm=[destructive(action).then_some(confirm_message.as_str())] {
            h3 id=(heading) { (title) }
            p.hint { (what) }
            (form::alert(problem, &["reason", "confirm", "confirm_action"]))
            (layout::csrf_field(session))
            input type="hidden" name="action" value=(name);
            (form::field_with_id(Kind::Text, &format!("{name}-reason"), "reason", "Reason",
                reason, Some("Kept in the audit log."), problem))
            @if destructive(action) {
                (form::field_with_id(Kind::Text, &format!("{name}-confirm"), "confirm",
                    &format!("Type the slug ({}) to confirm", t.slug), confirm, None, problem))
            }
            (checkbox(&format!("{name}-confirm_action"), problem))
            button type="submit" class=[destructive(action).then_some("danger")] {
                (title) " tenant"
            }
        }
    }
}

fn lifecycle_section(session: &Session, d: &Detail, failure: Option<&Failure>) -> Markup {
    let t = &d.tenant;
    let actions = allowed(t);
    // A refusal for an action whose form is not shown (a stale page, an
    // unknown action): at the top of the section.
    let orphan = failure.filter(|f| match &f.form {
        Failed::Lifecycle {
            action: Some(a), ..
        } => !actions.contains(a),
        Failed::Lifecycle { action: None, .. } => true,
        Failed::LegalHold { .. } => false,
    });
    html! {
        section aria-labelledby="lifecycle-h" {
            h2 id="lifecycle-h" { "Lifecycle" }
            @if let Some(f) = orphan {
                div.problem role="alert" { p { (f.problem.detail) } }
            }
            @if actions.is_empty() {
                p { "No lifecycle action is possible from here." }
            } @else {
                div.actions {
                    @for action in actions {
                        (action_form(session, t, action, failure))
                    }
                }
            }
        }
    }
}

fn legal_hold_section(session: &Session, t: &TenantView, failure: Option<&Failure>) -> Markup {
    let (reason, problem) = match failure {
        Some(Failure {
            form: Failed::LegalHold { reason },
            problem,
        }) => (reason.as_str(), Some(problem)),
        _ => ("", None),
    };
    let (hold, label) = if t.legal_hold {
        ("off", "Lift legal hold")
    } else {
        ("on", "Place legal hold")
    };
    html! {
        section aria-labelledby="hold-h" {
            h2 id="hold-h" { "Legal hold" }
            p {
                @if t.legal_hold {
                    "On: the retention sweeper never purges this tenant while it holds."
                } @else {
                    "Off: once deleted, this tenant is purged after the retention period."
                }
            }
            form method="post" action={ "/console/tenants/" (t.id) "/legal-hold" }
                aria-label=(label)
                data-confirm=[t.legal_hold.then_some("Lift the legal hold? The tenant can then be purged.")] {
                (form::alert(problem, &["reason"]))
                (layout::csrf_field(session))
                input type="hidden" name="hold" value=(hold);
                (form::field_with_id(Kind::Text, "hold-reason", "reason", "Reason", reason,
                    Some("Kept in the audit log."), problem))
                button type="submit" { (label) }
            }
        }
    }
}

/// One limited resource: (label, used, limit).
fn resources(q: &QuotasView) -> [(&'static str, i32, i32); 7] {
    let (u, l) = (&q.usage, &q.limits);
    [
        ("Users", u.users, l.max_users),
        ("API keys", u.api_keys, l.max_api_keys),
        ("Clusters", u.clusters, l.max_clusters),
        ("Instances", u.instances, l.max_instances),
        ("CPU cores", u.cpu_cores, l.max_cpu_cores),
        ("Memory (GB)", u.memory_gb, l.max_memory_gb),
        ("Storage (GB)", u.storage_gb, l.max_storage_gb),
    ]
}

fn quotas_section(t: &TenantView, quotas: Option<&QuotasView>) -> Markup {
    html! {
        section aria-labelledby="quotas-h" {
            h2 id="quotas-h" { "Quotas" }
            @if let Some(q) = quotas {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Limits beside usage" }
                        thead {
                            tr {
                                th scope="col" { "Resource" }
                                th scope="col" class="num" { "Used" }
                                th scope="col" class="num" { "Limit" }
                                th scope="col" { "Usage" }
                                th scope="col" { "State" }
                            }
                        }
                        tbody {
                            @for (label, used, limit) in resources(q) {
                                @let (used, limit) = (i64::from(used), i64::from(limit));
                                tr {
                                    th scope="row" { (label) }
                                    td.num { (layout::number(used)) }
                                    td.num { (layout::number(limit)) }
                                    td {
                                        meter min="0" max=(limit.max(1)) value=(used.min(limit.max(1)))
                                            high=(limit.max(1) * 8 / 10) optimum="0"
                                            aria-label={ (label) ": " (layout::number(used)) " of " (layout::number(limit)) } {
                                            (layout::number(used)) " of " (layout::number(limit))
                                        }
                                        " "
                                        @if limit > 0 {
                                            (used * 100 / limit) "%"
                                        }
                                    }
                                    td {
                                        @if used > limit {
                                            strong { "over limit" }
                                        } @else if used == limit {
                                            strong { "at limit" }
                                        } @else {
                                            "within limit"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                dl {
                    dt { "Requests per second" } dd { (layout::number(i64::from(q.limits.requests_per_second))) }
                    dt { "Burst" } dd { (layout::number(i64::from(q.limits.burst))) }
                }
            } @else {
                p { "This tenant has no quotas any more (its data has been purged)." }
            }
            p {
                a href={ "/console/tenants/" (t.id) "/quotas" } { "Edit quotas" }
                " · "
                a href={ "/console/tenants/" (t.id) "/members" } { "Members" }
            }
        }
    }
}

fn health_section(health: Option<&DataHealthView>) -> Markup {
    html! {
        section aria-labelledby="health-h" {
            h2 id="health-h" { "Health" }
            @if let Some(h) = health {
                dl {
                    dt { "Last activity" }
                    dd {
                        @match h.last_activity_at {
                            Some(at) => (layout::time(at)),
                            None => "none",
                        }
                    }
                    dt { "Approximate size" } dd { (layout::number(h.approx_bytes)) " bytes" }
                }
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Rows per table" }
                        thead { tr { th scope="col" { "Table" } th scope="col" class="num" { "Rows" } } }
                        tbody {
                            @for (table, rows) in &h.counts {
                                tr { td { code { (table) } } td.num { (layout::number(*rows)) } }
                            }
                        }
                    }
                }
            } @else {
                p { "No health counts: this tenant's data has been purged." }
            }
        }
    }
}

fn events_section(events: &[EventView]) -> Markup {
    html! {
        section aria-labelledby="events-h" {
            h2 id="events-h" { "Recent events" }
            @if events.is_empty() {
                p { "No events yet." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "The tenant's latest activity, newest first" }
                        thead {
                            tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Actor" } }
                        }
                        tbody {
                            @for e in events {
                                tr { td { (layout::time(e.at)) } td { code { (e.kind) } } td { (e.actor) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn audit_section(t: &TenantView, audit: &[AuditEntryView]) -> Markup {
    html! {
        section aria-labelledby="audit-h" {
            h2 id="audit-h" { "Recent audit entries" }
            @if audit.is_empty() {
                p { "No audit entries." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "What operators did to this tenant, newest first" }
                        thead {
                            tr {
                                th scope="col" { "When" }
                                th scope="col" { "Action" }
                                th scope="col" { "Actor" }
                                th scope="col" { "Reason" }
                            }
                        }
                        tbody {
                            @for a in audit {
                                tr {
                                    td { (layout::time(a.at)) }
                                    td { code { (a.action) } }
                                    td { (a.actor) }
                                    td { (a.reason.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            p { a href={ "/console/audit?tenant=" (t.id) } { "All audit entries of this tenant" } }
        }
    }
}

fn export_section(t: &TenantView) -> Markup {
    html! {
        section aria-labelledby="export-h" {
            h2 id="export-h" { "Export" }
            @if t.purged_at.is_some() {
                p { "Nothing to export: this tenant's data has been purged." }
            } @else {
                p {
                    a href={ "/console/tenants/" (t.id) "/export" } download {
                        "Download the export (NDJSON)"
                    }
                    " — every row of the tenant, read in one snapshot."
                }
            }
        }
    }
}

fn render(
    session: &Session,
    d: &Detail,
    notice: Option<&str>,
    failure: Option<&Failure>,
) -> HttpResponse {
    let t = &d.tenant;
    let body = html! {
        (layout::notice(notice))
        p { a href="/console/tenants" { "All tenants" } }
        (overview(d))
        (lifecycle_section(session, d, failure))
        (legal_hold_section(session, t, failure))
        (quotas_section(t, d.quotas.as_ref()))
        (health_section(d.health.as_ref()))
        (events_section(&d.events))
        (audit_section(t, &d.audit))
        (export_section(t))
    };
    let status = failure.map_or(actix_web::http::StatusCode::OK, |f| f.problem.status);
    let title = format!("Tenant {}", t.slug);
    layout::respond(
        status,
        layout::page(Some(session), &title, Nav::Tenants, body),
    )
}

async fn detail(
    session: Session,
    state: web::Data<AppState>,
    key: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let d = load(&state, &key).await?;
    let notice = query.notice.as_deref().and_then(notice_text);
    Ok(render(&session, &d, notice, None))
}

#[derive(Debug, Default, Deserialize)]
struct LifecycleForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    confirm_action: String,
}

/// The reason an action asks for: required, kept as typed (trimmed).
fn required_reason(reason: &str) -> Result<String, Problem> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Problem::invalid(
            "reason",
            "say why (it is kept in the audit log)",
        ));
    }
    Ok(reason.to_owned())
}

fn confirmed(confirm_action: &str) -> Result<(), Problem> {
    if confirm_action.is_empty() {
        return Err(Problem::invalid(
            "confirm_action",
            "tick \u{201c}I understand\u{201d} to confirm",
        ));
    }
    Ok(())
}

async fn lifecycle(
    state: web::Data<AppState>,
    key: web::Path<String>,
    posted: Posted<LifecycleForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let tenant = tenants::get(&state.ops, &key).await.map_err(missing)?;
    let action = Action::parse(&form.action);
    let attempt = async {
        let action = action.ok_or_else(|| {
            Problem::invalid(
                "action",
                "the action must be suspend, activate, archive, delete or restore",
            )
        })?;
        let reason = required_reason(&form.reason)?;
        if destructive(action) && form.confirm.trim() != tenant.slug {
            return Err(Problem::invalid(
                "confirm",
                format!("type the tenant's slug, {}, to confirm", tenant.slug),
            ));
        }
        confirmed(&form.confirm_action)?;
        tenants::transition_to(
            &state.ops,
            &session.actor(),
            &tenant.id.to_string(),
            action,
            Some(reason),
        )
        .await
        .map_err(Problem::from)?;
        Ok(action)
    }
    .await;
    match attempt {
        Ok(action) => Ok(layout::see_other(&format!(
            "/console/tenants/{}?notice={action}",
            tenant.id
        ))),
        Err(problem) => {
            let d = load(&state, &tenant.id.to_string()).await?;
            let failure = Failure {
                form: Failed::Lifecycle {
                    action,
                    reason: form.reason,
                    confirm: form.confirm,
                },
                problem,
            };
            Ok(render(&session, &d, None, Some(&failure)))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct LegalHoldForm {
    #[serde(default)]
    hold: String,
    #[serde(default)]
    reason: String,
}

async fn legal_hold(
    state: web::Data<AppState>,
    key: web::Path<String>,
    posted: Posted<LegalHoldForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let tenant = tenants::get(&state.ops, &key).await.map_err(missing)?;
    let attempt = async {
        let hold = match form.hold.as_str() {
            "on" => true,
            "off" => false,
            _ => return Err(Problem::invalid("hold", "must be on or off")),
        };
        let reason = required_reason(&form.reason)?;
        let change = TenantChange {
            name: None,
            legal_hold: Some(hold),
            reason: Some(reason),
        };
        tenants::update(&state.ops, &session.actor(), &tenant.id.to_string(), change)
            .await
            .map_err(Problem::from)?;
        Ok(hold)
    }
    .await;
    match attempt {
        Ok(hold) => Ok(layout::see_other(&format!(
            "/console/tenants/{}?notice={}",
            tenant.id,
            if hold { "hold_on" } else { "hold_off" }
        ))),
        Err(problem) => {
            let d = load(&state, &tenant.id.to_string()).await?;
            let failure = Failure {
                form: Failed::LegalHold {
                    reason: form.reason,
                },
                problem,
            };
            Ok(render(&session, &d, None, Some(&failure)))
        }
    }
}

/// The export as the admin API answers it, offered as a download named
/// after the slug.
async fn export(
    _session: Session,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tenant = tenants::get(&state.ops, &key).await.map_err(missing)?;
    let export = tenants::export(&state.ops, &tenant.id.to_string()).await?;
    let filename = format!("tenant-{}.ndjson", tenant.slug);
    Ok(crate::routes::admin::tenants::export_response(
        export,
        Some(&filename),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_notices_are_shown() {
        assert_eq!(notice_text("suspend"), Some("Tenant suspended."));
        // What the quotas page redirects here with after applying a change.
        assert_eq!(notice_text("quotas_saved"), Some("Quotas updated."));
        assert_eq!(notice_text("<script>"), None);
    }

    #[test]
    fn archive_and_delete_are_the_destructive_actions() {
        let destructive: Vec<_> = Action::ALL
            .into_iter()
            .filter(|a| destructive(*a))
            .collect();
        assert_eq!(destructive, [Action::Archive, Action::Delete]);
    }
}
