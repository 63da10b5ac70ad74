//! `/console/accounts`: the accounts (paged) and creating one
//! (`ops::accounts::create`, as `POST /v1/admin/accounts`);
//! `/console/accounts/{id}`: an account, its limits over the sum of its
//! tenants beside their usage, and its tenants (`ops::accounts::tenants`,
//! paged).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::{Name, Slug};
use tenantry_ops::accounts::{self, NewAccount};
use tenantry_ops::field;
use tenantry_ops::views::{AccountLimitsView, AccountUsageView, AccountView, List, TenantView};

use super::quotas::usage_bar;
use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::routes::PageQuery;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(list_page))
        .route("/accounts", web::post().to(create))
        .route("/accounts/{id}", web::get().to(detail));
}

#[derive(Debug, Deserialize)]
struct PageParams {
    cursor: Option<String>,
    notice: Option<String>,
}

/// An account's limits by name, with their labels.
const LIMITS: [(&str, &str); 8] = [
    ("max_tenants", "Tenants"),
    ("max_users", "Users"),
    ("max_api_keys", "API keys"),
    ("max_clusters", "Clusters"),
    ("max_instances", "Instances"),
    ("max_cpu_cores", "CPU cores"),
    ("max_memory_gb", "Memory (GB)"),
    ("max_storage_gb", "Storage (GB)"),
];

fn limit_of(limits: &AccountLimitsView, name: &str) -> Option<i32> {
    match name {
        "max_tenants" => limits.max_tenants,
        "max_users" => limits.max_users,
        "max_api_keys" => limits.max_api_keys,
        "max_clusters" => limits.max_clusters,
        "max_instances" => limits.max_instances,
        "max_cpu_cores" => limits.max_cpu_cores,
        "max_memory_gb" => limits.max_memory_gb,
        _ => limits.max_storage_gb,
    }
}

fn usage_of(usage: &AccountUsageView, name: &str) -> i32 {
    match name {
        "max_tenants" => usage.tenants,
        "max_users" => usage.users,
        "max_api_keys" => usage.api_keys,
        "max_clusters" => usage.clusters,
        "max_instances" => usage.instances,
        "max_cpu_cores" => usage.cpu_cores,
        "max_memory_gb" => usage.memory_gb,
        _ => usage.storage_gb,
    }
}

type Values = HashMap<String, String>;

/// The create form's limits: empty = unlimited, otherwise a whole number
/// (that it is 0 or more is the operation's rule).
fn parse_limits(values: &Values) -> Result<AccountLimitsView, Problem> {
    let mut parsed = HashMap::new();
    for (name, _) in LIMITS {
        let typed = values.get(name).map_or("", |v| v.trim());
        if typed.is_empty() {
            continue;
        }
        let value: i32 = typed.parse().map_err(|_| {
            Problem::invalid(
                name,
                format!(
                    "must be a whole number up to {}, or empty for unlimited",
                    i32::MAX
                ),
            )
        })?;
        parsed.insert(name, value);
    }
    let get = |name: &str| parsed.get(name).copied();
    Ok(AccountLimitsView {
        max_tenants: get("max_tenants"),
        max_users: get("max_users"),
        max_api_keys: get("max_api_keys"),
        max_clusters: get("max_clusters"),
        max_instances: get("max_instances"),
        max_cpu_cores: get("max_cpu_cores"),
        max_memory_gb: get("max_memory_gb"),
        max_storage_gb: get("max_storage_gb"),
    })
}

fn status(tenant: &TenantView) -> Markup {
    let name = tenant.status.to_string();
    html! { span class={ "status status-" (name) } { (name) } }
}

fn list_markup(
    session: &Session,
    list: &List<AccountView>,
    values: &Values,
    problem: Option<&Problem>,
    notice_text: Option<&str>,
) -> Markup {
    let mut fields = vec!["slug", "name"];
    fields.extend(LIMITS.iter().map(|(n, _)| *n));
    let value = |name: &str| values.get(name).map_or("", String::as_str).to_owned();
    let body = html! {
        (layout::notice(notice_text))
        section aria-labelledby="accounts-h" {
            h2 id="accounts-h" { "Accounts" }
            div.table-wrap tabindex="0" {
                table {
                    caption { "Accounts in creation order" }
                    thead {
                        tr {
                            th scope="col" { "Slug" }
                            th scope="col" { "Name" }
                            th scope="col" class="num" { "Tenants" }
                            th scope="col" { "Created" }
                        }
                    }
                    tbody {
                        @for a in &list.items {
                            tr {
                                td { a href={ "/console/accounts/" (a.id) } { (a.slug) } }
                                td { (a.name) }
                                td.num {
                                    @match (&a.usage, &a.limits) {
                                        (Some(u), Some(l)) => {
                                            (layout::number(i64::from(u.tenants)))
                                            @if let Some(max) = l.max_tenants { " of " (layout::number(i64::from(max))) }
                                        },
                                        _ => span.muted { "unmetered" },
                                    }
                                }
                                td { (layout::time(a.created_at)) }
                            }
                        }
                    }
                }
            }
            (layout::pager(list.next_cursor.as_deref(), "/console/accounts?"))
        }
        section aria-labelledby="new-h" {
            h2 id="new-h" { "Create an account" }
            form method="post" action="/console/accounts" novalidate {
                (layout::csrf_field(session))
                (form::alert(problem, &fields))
                (form::field(Kind::Text, "slug", "Slug", &value("slug"),
                    Some("Lowercase letters, digits and hyphens; unique among accounts."), problem))
                (form::field(Kind::Text, "name", "Name", &value("name"), None, problem))
                fieldset {
                    legend { "Limits over the sum of its tenants (empty: unlimited)" }
                    @for (name, label) in LIMITS {
                        (form::field(Kind::Number, name, label, &value(name), None, problem))
                    }
                }
                button type="submit" { "Create account" }
            }
        }
    };
    layout::page(Some(session), "Accounts", Nav::Accounts, body)
}

async fn list_page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let page = PageQuery::new(None, query.cursor).page()?;
    let list = accounts::list(&state.ops, page).await?;
    let notice_text = match query.notice.as_deref() {
        Some("account_created") => Some("Account created."),
        _ => None,
    };
    Ok(layout::respond(
        StatusCode::OK,
        list_markup(&session, &list, &Values::new(), None, notice_text),
    ))
}

async fn create(
    posted: Posted<Values>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted {
        session,
        form: values,
    } = posted;
    let get = |name: &str| values.get(name).map_or("", String::as_str);
    let parsed = (|| -> Result<NewAccount, Problem> {
        Ok(NewAccount {
            slug: field("slug", Slug::parse(get("slug")).map_err(|e| e.to_string()))?,
            name: field("name", Name::parse(get("name")))?,
            limits: parse_limits(&values)?,
        })
    })();
    let result = match parsed {
        Ok(new) => accounts::create(&state.ops, &session.actor(), new)
            .await
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match result {
        Ok(view) => Ok(layout::see_other(&format!(
            "/console/accounts/{}?notice=account_created",
            view.id
        ))),
        Err(problem) => {
            let page = PageQuery::new(None, None).page()?;
            let list = accounts::list(&state.ops, page).await?;
            Ok(layout::respond(
                problem.status,
                list_markup(&session, &list, &values, Some(&problem), None),
            ))
        }
    }
}

async fn detail(
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let page = PageQuery::new(None, query.cursor).page()?;
    let account = accounts::get(&state.ops, &id).await?;
    let tenants = accounts::tenants(&state.ops, &id, None, page).await?;
    let notice_text = match query.notice.as_deref() {
        Some("account_created") => Some("Account created."),
        _ => None,
    };
    let base = format!("/console/accounts/{}?", account.id);
    let body = html! {
        (layout::notice(notice_text))
        dl {
            dt { "Slug" } dd { code { (account.slug) } }
            dt { "Name" } dd { (account.name) }
            dt { "Created" } dd { (layout::time(account.created_at)) }
        }
        section aria-labelledby="limits-h" {
            h2 id="limits-h" { "Limits and usage" }
            @match (&account.limits, &account.usage) {
                (Some(limits), Some(usage)) => {
                    div.table-wrap tabindex="0" {
                        table {
                            caption { "The account's limits over the sum of its tenants, beside their usage" }
                            thead {
                                tr {
                                    th scope="col" { "Resource" }
                                    th scope="col" { "Usage" }
                                }
                            }
                            tbody {
                                @for (name, label) in LIMITS {
                                    @let used = i64::from(usage_of(usage, name));
                                    tr {
                                        td { (label) }
                                        td {
                                            @match limit_of(limits, name) {
                                                Some(limit) => (usage_bar(label, used, i64::from(limit))),
                                                None => { (layout::number(used)) " " span.muted { "(unlimited)" } },
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                },
                _ => p { "The default account is unmetered: it has no limits of its own." },
            }
        }
        section aria-labelledby="tenants-h" {
            h2 id="tenants-h" { "Tenants" }
            @if tenants.items.is_empty() {
                p { "No tenants in this account." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Tenants of " (account.slug) }
                        thead {
                            tr {
                                th scope="col" { "Slug" }
                                th scope="col" { "Name" }
                                th scope="col" { "Status" }
                                th scope="col" { "Created" }
                            }
                        }
                        tbody {
                            @for t in &tenants.items {
                                tr {
                                    td { a href={ "/console/tenants/" (t.id) } { (t.slug) } }
                                    td { (t.name) }
                                    td { (status(t)) }
                                    td { (layout::time(t.created_at)) }
                                }
                            }
                        }
                    }
                }
                (layout::pager(tenants.next_cursor.as_deref(), &base))
            }
        }
    };
    Ok(layout::ok(
        &session,
        &format!("Account {}", account.slug),
        Nav::Accounts,
        body,
    ))
}
