//! `/console/plans`: the plans with how many tenants are on each, and
//! creating one (`ops::plans::create`); `/console/plans/{id}`: a plan's
//! limits, the tenants on it (`ops::plans::tenants`, paged), and a change
//! of its limits — the first submit (`preview=1`) rehearses it
//! (`ops::plans::update` with `dry_run`, as `PATCH
//! /v1/admin/plans/{id}?dry_run=true`) and lists every tenant that would be
//! over a limit; "Apply" sends the same values to `ops::plans::update`.
//! Putting a tenant on the plan (`ops::plans::assign`, as `PUT
//! /v1/admin/tenants/{id}/plan`) is rehearsed first the same way.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::Slug;
use tenantry_ops::field;
use tenantry_ops::plans::{self, NewPlan, PlanChange};
use tenantry_ops::quotas::LimitsPatch;
use tenantry_ops::views::{List, PlanChangeView, PlanView, TenantPlanView, TenantView};

use super::quotas::{LIMITS, Values, limit_of, parse_limits, usage_label, values_of};
use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::ratelimit::Rate;
use crate::routes::PageQuery;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plans", web::get().to(list_page))
        .route("/plans", web::post().to(create))
        .route("/plans/{id}", web::get().to(detail))
        .route("/plans/{id}", web::post().to(change))
        .route("/plans/{id}/tenants", web::post().to(assign));
}

#[derive(Debug, Deserialize)]
struct PageParams {
    cursor: Option<String>,
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "plan_created" => Some("Plan created."),
        "plan_saved" => Some("Plan changed: every tenant on it has its new limits."),
        "tenant_moved" => Some("Tenant moved onto this plan."),
        _ => None,
    }
}

fn list_markup(
    session: &Session,
    list: &List<PlanView>,
    name: &str,
    problem: Option<&Problem>,
    notice_text: Option<&str>,
) -> Markup {
    let body = html! {
        (layout::notice(notice_text))
        section aria-labelledby="plans-h" {
            h2 id="plans-h" { "Plans" }
            @if list.items.is_empty() {
                p { "No plans yet: every tenant has the service's default limits or its own." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Plans with how many tenants are on each" }
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" class="num" { "Tenants" }
                                th scope="col" class="num" { "Users" }
                                th scope="col" class="num" { "Clusters" }
                                th scope="col" class="num" { "Instances" }
                                th scope="col" class="num" { "Requests per second" }
                                th scope="col" { "Changed" }
                            }
                        }
                        tbody {
                            @for p in &list.items {
                                tr {
                                    td { a href={ "/console/plans/" (p.id) } { (p.name) } }
                                    td.num { (layout::number(p.tenants)) }
                                    td.num { (layout::number(i64::from(p.limits.max_users))) }
                                    td.num { (layout::number(i64::from(p.limits.max_clusters))) }
                                    td.num { (layout::number(i64::from(p.limits.max_instances))) }
                                    td.num { (layout::number(i64::from(p.limits.requests_per_second))) }
                                    td { (layout::time(p.updated_at)) }
                                }
                            }
                        }
                    }
                }
                (layout::pager(list.next_cursor.as_deref(), "/console/plans?"))
            }
        }
        section aria-labelledby="new-h" {
            h2 id="new-h" { "Create a plan" }
            form method="post" action="/console/plans" novalidate {
                (layout::csrf_field(session))
                (form::alert(problem, &["name"]))
                (form::field(Kind::Text, "name", "Name", name,
                    Some("Lowercase letters, digits and hyphens; its limits start as the service's defaults."), problem))
                button type="submit" { "Create plan" }
            }
        }
    };
    layout::page(Some(session), "Plans", Nav::Plans, body)
}

async fn list_page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let page = PageQuery::new(None, query.cursor).page()?;
    let list = plans::list(&state.ops, page).await?;
    Ok(layout::respond(
        StatusCode::OK,
        list_markup(&session, &list, "", None, notice(query.notice.as_deref())),
    ))
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
}

async fn create(
    posted: Posted<CreateForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let result = match field(
        "name",
        Slug::parse(form.name.trim()).map_err(|e| e.to_string()),
    ) {
        Ok(name) => plans::create(
            &state.ops,
            &session.actor(),
            NewPlan {
                name,
                limits: LimitsPatch::default(),
            },
        )
        .await
        .map_err(Problem::from),
        Err(e) => Err(Problem::from(e)),
    };
    match result {
        Ok(plan) => Ok(layout::see_other(&format!(
            "/console/plans/{}?notice=plan_created",
            plan.id
        ))),
        Err(problem) => {
            let page = PageQuery::new(None, None).page()?;
            let list = plans::list(&state.ops, page).await?;
            Ok(layout::respond(
                problem.status,
                list_markup(&session, &list, &form.name, Some(&problem), None),
            ))
        }
    }
}

fn status(tenant: &TenantView) -> Markup {
    let name = tenant.status.to_string();
    html! { span class={ "status status-" (name) } { (name) } }
}

/// Which form of the plan page a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Limits,
    Move,
}

fn detail_markup(
    session: &Session,
    plan: &PlanView,
    tenants: &List<TenantView>,
    values: &Values,
    moving: &str,
    refusal: Option<(Form, &Problem)>,
    notice_text: Option<&str>,
) -> Markup {
    let problem = refusal.and_then(|(f, p)| (f == Form::Limits).then_some(p));
    let move_problem = refusal.and_then(|(f, p)| (f == Form::Move).then_some(p));
    let action = format!("/console/plans/{}", plan.id);
    let names: Vec<&str> = LIMITS.iter().map(|(n, _, _)| *n).collect();
    let body = html! {
        p { a href="/console/plans" { "All plans" } }
        (layout::notice(notice_text))
        section aria-labelledby="change-h" {
            h2 id="change-h" { "Limits" }
            p {
                "A change reaches every tenant on the plan at once, except the limits a tenant has its own override of. "
                "You see what it would do before it applies."
            }
            form method="post" action=(action) novalidate {
                (layout::csrf_field(session))
                (form::alert(problem, &names))
                @for (name, label, _) in LIMITS {
                    (form::field(Kind::Number, name, label,
                        values.get(name).map_or("", String::as_str), None, problem))
                }
                input type="hidden" name="preview" value="1";
                button type="submit" { "Preview change" }
            }
        }
        section aria-labelledby="tenants-h" {
            h2 id="tenants-h" { "Tenants on this plan (" (layout::number(plan.tenants)) ")" }
            @if tenants.items.is_empty() {
                p { "No tenant is on this plan." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Tenants on " (plan.name) }
                        thead {
                            tr {
                                th scope="col" { "Slug" }
                                th scope="col" { "Name" }
                                th scope="col" { "Status" }
                            }
                        }
                        tbody {
                            @for t in &tenants.items {
                                tr {
                                    td { a href={ "/console/tenants/" (t.id) } { (t.slug) } }
                                    td { (t.name) }
                                    td { (status(t)) }
                                }
                            }
                        }
                    }
                }
                (layout::pager(tenants.next_cursor.as_deref(), &format!("{action}?")))
            }
            h3 { "Put a tenant on this plan" }
            p { "Its limits become the plan's, except those it has its own override of. You see what the move would do first." }
            form method="post" action={ (action) "/tenants" } novalidate {
                (layout::csrf_field(session))
                (form::alert(move_problem, &["tenant"]))
                (form::field(Kind::Text, "tenant", "Tenant (slug or id)", moving, None, move_problem))
                input type="hidden" name="preview" value="1";
                button type="submit" { "Preview move" }
            }
        }
    };
    layout::page(
        Some(session),
        &format!("Plan {}", plan.name),
        Nav::Plans,
        body,
    )
}

fn preview_markup(
    session: &Session,
    before: &PlanView,
    rehearsal: &PlanChangeView,
    values: &Values,
) -> Markup {
    let action = format!("/console/plans/{}", before.id);
    let after = &rehearsal.plan;
    let body = html! {
        p { a href=(action) { "Back to the plan" } }
        p {
            "Nothing has been changed yet. The change would give new limits to "
            strong { (layout::number(rehearsal.tenants_changed)) }
            " of the " (layout::number(after.tenants)) " tenant(s) on the plan."
        }
        section aria-labelledby="over-h" {
            h2 id="over-h" { "Tenants over a limit after the change" }
            @if rehearsal.over_limit.is_empty() {
                p { "No tenant would be over a limit." }
            } @else {
                p { "Nothing is deleted: each stays over its limit, and its growth of that resource is refused until usage is below it." }
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Tenants and resources over the new limits" }
                        thead {
                            tr {
                                th scope="col" { "Tenant" }
                                th scope="col" { "Resource" }
                                th scope="col" class="num" { "Usage" }
                                th scope="col" class="num" { "New limit" }
                            }
                        }
                        tbody {
                            @for o in &rehearsal.over_limit {
                                tr {
                                    td { a href={ "/console/tenants/" (o.tenant_id) } { (o.slug) } }
                                    td { (usage_label(&o.resource)) }
                                    td.num { (layout::number(o.usage)) }
                                    td.num { (layout::number(o.limit)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="limits-h" {
            h2 id="limits-h" { "The plan's limits" }
            div.table-wrap tabindex="0" {
                table {
                    caption { "Each limit now and after the change" }
                    thead {
                        tr {
                            th scope="col" { "Limit" }
                            th scope="col" class="num" { "Now" }
                            th scope="col" class="num" { "After" }
                        }
                    }
                    tbody {
                        @for (name, label, _) in LIMITS {
                            tr {
                                td { (label) }
                                td.num { (layout::number(limit_of(&before.limits, name))) }
                                td.num { (layout::number(limit_of(&after.limits, name))) }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(action) {
            (layout::csrf_field(session))
            @for (name, _, _) in LIMITS {
                input type="hidden" name=(name) value=(values.get(name).map_or("", String::as_str));
            }
            button type="submit" { "Apply" }
        }
    };
    layout::page(
        Some(session),
        &format!("Preview: plan {}", before.name),
        Nav::Plans,
        body,
    )
}

async fn detail(
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let page = PageQuery::new(None, query.cursor).page()?;
    let plan = plans::get(&state.ops, &id).await?;
    let tenants = plans::tenants(&state.ops, &id, page).await?;
    let values = values_of(&plan.limits);
    Ok(layout::respond(
        StatusCode::OK,
        detail_markup(
            &session,
            &plan,
            &tenants,
            &values,
            "",
            None,
            notice(query.notice.as_deref()),
        ),
    ))
}

async fn change(
    posted: Posted<Values>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted {
        session,
        form: values,
    } = posted;
    let plan = plans::get(&state.ops, &id).await?;
    let dry_run = values.get("preview").is_some_and(|v| v == "1");
    let result = match parse_limits(&values) {
        Ok(limits) => {
            let change = PlanChange {
                name: None,
                limits: LimitsPatch::from(&limits),
            };
            plans::update(&state.ops, &session.actor(), &id, change, dry_run)
                .await
                .map_err(Problem::from)
        }
        Err(problem) => Err(problem),
    };
    match result {
        Ok(rehearsal) if dry_run => Ok(layout::respond(
            StatusCode::OK,
            preview_markup(&session, &plan, &rehearsal, &values),
        )),
        Ok(done) => Ok(layout::see_other(&format!(
            "/console/plans/{}?notice=plan_saved",
            done.plan.id
        ))),
        Err(problem) => {
            let page = PageQuery::new(None, None).page()?;
            let tenants = plans::tenants(&state.ops, &id, page).await?;
            Ok(layout::respond(
                problem.status,
                detail_markup(
                    &session,
                    &plan,
                    &tenants,
                    &values,
                    "",
                    Some((Form::Limits, &problem)),
                    None,
                ),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
struct MoveForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    preview: Option<String>,
}

fn move_preview_markup(session: &Session, plan: &PlanView, rehearsal: &TenantPlanView) -> Markup {
    let action = format!("/console/plans/{}/tenants", plan.id);
    let q = &rehearsal.quotas;
    let body = html! {
        p { a href={ "/console/plans/" (plan.id) } { "Back to the plan" } }
        p {
            "Nothing has been changed yet. On " strong { (plan.name) } ", "
            a href={ "/console/tenants/" (rehearsal.tenant_id) } { (rehearsal.slug) }
            " would have these limits."
        }
        section aria-labelledby="over-h" {
            h2 id="over-h" { "Over a limit after the move" }
            @if rehearsal.over_limit.is_empty() {
                p { "Nothing would be over a limit." }
            } @else {
                ul {
                    @for o in &rehearsal.over_limit {
                        li { strong { (usage_label(&o.resource)) } ": " (layout::number(o.usage)) " used, limit " (layout::number(o.limit)) }
                    }
                }
            }
        }
        div.table-wrap tabindex="0" {
            table {
                caption { "The tenant's limits after the move" }
                thead { tr { th scope="col" { "Limit" } th scope="col" class="num" { "After" } } }
                tbody {
                    @for (name, label, _) in LIMITS {
                        tr { td { (label) } td.num { (layout::number(limit_of(&q.limits, name))) } }
                    }
                }
            }
        }
        form method="post" action=(action) {
            (layout::csrf_field(session))
            input type="hidden" name="tenant" value=(rehearsal.tenant_id);
            button type="submit" { "Apply" }
        }
    };
    layout::page(
        Some(session),
        &format!("Preview: {} onto plan {}", rehearsal.slug, plan.name),
        Nav::Plans,
        body,
    )
}

/// Puts a tenant on the plan (`ops::plans::assign`, as `PUT
/// /v1/admin/tenants/{id}/plan`): `preview=1` rehearses it first.
async fn assign(
    posted: Posted<MoveForm>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let plan = plans::get(&state.ops, &id).await?;
    let dry_run = form.preview.as_deref() == Some("1");
    let key = form.tenant.trim();
    let result = if key.is_empty() {
        Err(Problem::invalid(
            "tenant",
            "required: the tenant's slug or id",
        ))
    } else {
        plans::assign(
            &state.ops,
            &session.actor(),
            key,
            Some(plan.id.to_string()),
            dry_run,
        )
        .await
        .map_err(|e| match e {
            // The tenant named in the form: its field's problem.
            tenantry_ops::Error::NotFound => Problem::invalid("tenant", "no such tenant"),
            other => Problem::from(other),
        })
    };
    match result {
        Ok(rehearsal) if dry_run => Ok(layout::respond(
            StatusCode::OK,
            move_preview_markup(&session, &plan, &rehearsal),
        )),
        Ok(moved) => {
            // As the admin API's route does: this replica throttles at the
            // new rate at once.
            let limits = &moved.quotas.limits;
            let rate = Rate::from_columns(limits.requests_per_second, limits.burst);
            state.rate_limits.learn(moved.tenant_id, Some(rate));
            Ok(layout::see_other(&format!(
                "/console/plans/{}?notice=tenant_moved",
                plan.id
            )))
        }
        Err(problem) => {
            let page = PageQuery::new(None, None).page()?;
            let tenants = plans::tenants(&state.ops, &id, page).await?;
            Ok(layout::respond(
                problem.status,
                detail_markup(
                    &session,
                    &plan,
                    &tenants,
                    &values_of(&plan.limits),
                    &form.tenant,
                    Some((Form::Move, &problem)),
                    None,
                ),
            ))
        }
    }
}
