//! `/console/tenants/{id}/quotas`: a tenant's limits beside its usage, and
//! their change: the first submit (`preview=1`) rehearses it
//! (`ops::quotas::preview`, the same unit of work as the change, rolled
//! back) and lists every resource that would be at or over its new limit;
//! "Apply" sends the same values to `ops::quotas::set`, as `PUT
//! /v1/admin/tenants/{id}/quotas` does.
//!
//! The limit helpers here (parsing a form's limits, a limit's label, a
//! usage bar) are the plans page's too.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::Resource;
use tenantry_db::models::Limits;
use tenantry_ops::quotas::{self, QuotaChange, QuotaPreview};
use tenantry_ops::views::{
    LimitSourceKind, LimitSourcesView, LimitsView, QuotasView, TenantView, UsageView,
};

use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::ratelimit::Rate;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/quotas", web::get().to(edit))
        .route("/tenants/{id}/quotas", web::post().to(change));
}

/// Every limit by name, with its label and the resource whose usage it
/// bounds (none for the rate limits).
pub(super) const LIMITS: [(&str, &str, Option<Resource>); 9] = [
    ("max_users", "Users", Some(Resource::Users)),
    ("max_api_keys", "API keys", Some(Resource::ApiKeys)),
    ("max_clusters", "Clusters", Some(Resource::Clusters)),
    ("max_instances", "Instances", Some(Resource::Instances)),
    ("max_cpu_cores", "CPU cores", Some(Resource::CpuCores)),
    ("max_memory_gb", "Memory (GB)", Some(Resource::MemoryGb)),
    ("max_storage_gb", "Storage (GB)", Some(Resource::StorageGb)),
    ("requests_per_second", "Requests per second", None),
    ("burst", "Burst (requests at once)", None),
];

/// The label of the limit named `name` (`max_clusters`, ...), as the
/// admin API names it; an unknown name as it is.
pub(super) fn limit_label(name: &str) -> &str {
    LIMITS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(name, |(_, label, _)| label)
}

/// The label of the limit on `resource`.
pub(super) fn resource_label(resource: Resource) -> &'static str {
    LIMITS
        .iter()
        .find(|(_, _, r)| *r == Some(resource))
        .map_or(resource.as_str(), |(_, label, _)| label)
}

/// The label of the usage name `name` (`clusters`, ...).
pub(super) fn usage_label(name: &str) -> &str {
    let known: Option<&'static str> = Resource::ALL
        .into_iter()
        .find(|r| r.as_str() == name)
        .map(resource_label);
    known.unwrap_or(name)
}

/// The limit called `name`.
pub(super) fn limit_of(limits: &LimitsView, name: &str) -> i64 {
    i64::from(Limits::from(limits).get(name).unwrap_or_default())
}

pub(super) fn usage_of(usage: &UsageView, resource: Resource) -> i64 {
    i64::from(match resource {
        Resource::Users => usage.users,
        Resource::ApiKeys => usage.api_keys,
        Resource::Clusters => usage.clusters,
        Resource::Instances => usage.instances,
        Resource::CpuCores => usage.cpu_cores,
        Resource::MemoryGb => usage.memory_gb,
        Resource::StorageGb => usage.storage_gb,
    })
}

/// The form's values of every limit, as typed (or as the limits are).
pub(super) type Values = HashMap<String, String>;

pub(super) fn values_of(limits: &LimitsView) -> Values {
    LIMITS
        .iter()
        .map(|(name, _, _)| ((*name).to_owned(), limit_of(limits, name).to_string()))
        .collect()
}

/// Every limit from the form: a whole number each (that it is 0 or more is
/// the operation's rule, checked there).
pub(super) fn parse_limits(values: &Values) -> Result<LimitsView, Problem> {
    let mut limits = Limits::from(&LimitsView {
        max_users: 0,
        max_api_keys: 0,
        max_clusters: 0,
        max_instances: 0,
        max_cpu_cores: 0,
        max_memory_gb: 0,
        max_storage_gb: 0,
        requests_per_second: 0,
        burst: 0,
    });
    for (name, _, _) in LIMITS {
        let typed = values.get(name).map_or("", |v| v.trim());
        let value: i32 = typed.parse().map_err(|_| {
            Problem::invalid(
                name,
                if typed.is_empty() {
                    "required: a whole number, 0 or more".to_owned()
                } else {
                    format!("must be a whole number up to {}", i32::MAX)
                },
            )
        })?;
        limits = limits.with(name, value);
    }
    Ok(limits.into())
}

/// A usage bar with its text: `3 of 10 (30%)`.
pub(super) fn usage_bar(label: &str, used: i64, limit: i64) -> Markup {
    let percent = if limit > 0 {
        used.saturating_mul(100) / limit
    } else if used > 0 {
        100
    } else {
        0
    };
    html! {
        meter min="0" max=(limit.max(1)) value=(used.min(limit.max(1)))
            aria-label={ (label) " used" } {}
        " "
        span.usage { (layout::number(used)) " of " (layout::number(limit)) " (" (percent) "%)" }
    }
}

fn source_text(sources: &LimitSourcesView, name: &str) -> Markup {
    let source = match name {
        "max_users" => &sources.max_users,
        "max_api_keys" => &sources.max_api_keys,
        "max_clusters" => &sources.max_clusters,
        "max_instances" => &sources.max_instances,
        "max_cpu_cores" => &sources.max_cpu_cores,
        "max_memory_gb" => &sources.max_memory_gb,
        "max_storage_gb" => &sources.max_storage_gb,
        "requests_per_second" => &sources.requests_per_second,
        _ => &sources.burst,
    };
    html! {
        @match source.source {
            LimitSourceKind::Override => { strong { "Override" } " (set for this tenant)" },
            LimitSourceKind::Plan => { "Plan " (source.plan.as_deref().unwrap_or("")) },
            LimitSourceKind::Default => { "Service default" },
        }
    }
}

#[derive(Debug, Deserialize)]
struct EditQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "quotas_saved" => Some("Quotas saved."),
        _ => None,
    }
}

fn title(tenant: &TenantView) -> String {
    format!("Quotas of {}", tenant.slug)
}

/// The edit form: every limit (as typed, or as it is), its usage and where
/// it comes from.
fn edit_page(
    session: &Session,
    tenant: &TenantView,
    quotas: &QuotasView,
    values: &Values,
    problem: Option<&Problem>,
    notice_text: Option<&str>,
) -> Markup {
    let action = format!("/console/tenants/{}/quotas", tenant.id);
    let names: Vec<&str> = LIMITS.iter().map(|(n, _, _)| *n).collect();
    let body = html! {
        p { a href={ "/console/tenants/" (tenant.id) } { "Back to " (tenant.slug) } }
        (layout::notice(notice_text))
        section aria-labelledby="plan-h" {
            h2 id="plan-h" { "Plan" }
            p {
                @match &quotas.plan {
                    Some(plan) => { "On plan " strong { (plan) } ". Limits marked “Override” were set for this tenant and stay when the plan changes." },
                    None => "On no plan: limits not set for this tenant are the service's defaults.",
                }
            }
            @if !quotas.over_limit.is_empty() {
                p.problem role="alert" {
                    "Over a limit now: "
                    (quotas.over_limit.iter().map(|r| usage_label(r)).collect::<Vec<_>>().join(", "))
                }
            }
        }
        section aria-labelledby="limits-h" {
            h2 id="limits-h" { "Limits" }
            form method="post" action=(action) novalidate {
                (layout::csrf_field(session))
                (form::alert(problem, &names))
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Limits, usage and where each limit comes from" }
                        thead {
                            tr {
                                th scope="col" { "Limit" }
                                th scope="col" { "Usage" }
                                th scope="col" { "Source" }
                            }
                        }
                        tbody {
                            @for (name, label, resource) in LIMITS {
                                tr {
                                    td {
                                        (form::field(Kind::Number, name, label,
                                            values.get(name).map_or("", String::as_str), None, problem))
                                    }
                                    td {
                                        @if let Some(r) = resource {
                                            (usage_bar(label, usage_of(&quotas.usage, r), limit_of(&quotas.limits, name)))
                                        } @else {
                                            span.muted { "not counted" }
                                        }
                                    }
                                    td { (source_text(&quotas.sources, name)) }
                                }
                            }
                        }
                    }
                }
                input type="hidden" name="preview" value="1";
                button type="submit" { "Preview change" }
            }
        }
    };
    layout::page(Some(session), &title(tenant), Nav::Tenants, body)
}

/// The rehearsal: the new limits against usage, what would be at or over
/// its limit, and the form that applies the same values.
fn preview_page(
    session: &Session,
    tenant: &TenantView,
    preview: &QuotaPreview,
    values: &Values,
) -> Markup {
    let action = format!("/console/tenants/{}/quotas", tenant.id);
    let after = &preview.after;
    let body = html! {
        p { a href={ "/console/tenants/" (tenant.id) } { "Back to " (tenant.slug) } }
        p { "Nothing has been changed yet. This is what the change would do." }
        section aria-labelledby="reached-h" {
            h2 id="reached-h" { "At or over a limit after the change" }
            @if preview.reached.is_empty() {
                p { "No resource would be at or over its limit." }
            } @else {
                ul.reached {
                    @for r in &preview.reached {
                        li {
                            strong { (resource_label(r.resource)) }
                            ": " (layout::number(r.usage)) " used, new limit " (layout::number(r.limit)) " — "
                            @if r.over {
                                "over the limit: nothing is deleted, growth is refused until usage is below it"
                            } @else {
                                "at the limit: no more can be added"
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="compare-h" {
            h2 id="compare-h" { "New limits against usage" }
            div.table-wrap tabindex="0" {
                table {
                    caption { "Each limit now and after the change, beside usage" }
                    thead {
                        tr {
                            th scope="col" { "Limit" }
                            th scope="col" class="num" { "Now" }
                            th scope="col" class="num" { "After" }
                            th scope="col" { "Usage against the new limit" }
                        }
                    }
                    tbody {
                        @for (name, label, resource) in LIMITS {
                            tr {
                                td { (label) }
                                td.num { (layout::number(limit_of(&preview.before, name))) }
                                td.num { (layout::number(limit_of(&after.limits, name))) }
                                td {
                                    @if let Some(r) = resource {
                                        (usage_bar(label, usage_of(&after.usage, r), limit_of(&after.limits, name)))
                                    } @else {
                                        span.muted { "not counted" }
                                    }
                                }
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
        p { a href=(action) { "Cancel and edit again" } }
    };
    layout::page(
        Some(session),
        &format!("Preview: quotas of {}", tenant.slug),
        Nav::Tenants,
        body,
    )
}

async fn edit(
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<EditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let tenant = tenantry_ops::tenants::get(&state.ops, &id).await?;
    let quotas = quotas::get(&state.ops, &id).await?;
    let values = values_of(&quotas.limits);
    Ok(layout::respond(
        StatusCode::OK,
        edit_page(
            &session,
            &tenant,
            &quotas,
            &values,
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
    let tenant = tenantry_ops::tenants::get(&state.ops, &id).await?;
    let refused = |problem: Problem, quotas: &QuotasView| {
        layout::respond(
            problem.status,
            edit_page(&session, &tenant, quotas, &values, Some(&problem), None),
        )
    };
    let limits = match parse_limits(&values) {
        Ok(limits) => limits,
        Err(problem) => {
            let quotas = quotas::get(&state.ops, &id).await?;
            return Ok(refused(problem, &quotas));
        }
    };
    let actor = session.actor();
    let wants_preview = values.get("preview").is_some_and(|v| v == "1");
    if wants_preview {
        return match quotas::preview(&state.ops, &actor, &id, QuotaChange::Replace(limits)).await {
            Ok(preview) => Ok(layout::respond(
                StatusCode::OK,
                preview_page(&session, &tenant, &preview, &values),
            )),
            Err(e) => {
                let quotas = quotas::get(&state.ops, &id).await?;
                Ok(refused(e.into(), &quotas))
            }
        };
    }
    match quotas::set(&state.ops, &actor, &id, QuotaChange::Replace(limits)).await {
        Ok((tenant_id, view)) => {
            // As the admin API's route does: this replica throttles at the
            // new rate at once.
            let rate = Rate::from_columns(view.limits.requests_per_second, view.limits.burst);
            state.rate_limits.learn(tenant_id, Some(rate));
            Ok(layout::see_other(&format!(
                "/console/tenants/{tenant_id}?notice=quotas_saved"
            )))
        }
        Err(e) => {
            let quotas = quotas::get(&state.ops, &id).await?;
            Ok(refused(e.into(), &quotas))
        }
    }
}
