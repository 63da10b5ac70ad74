//! `/console/tenants`: the registry (status filter, search by slug or
//! name, cursor paging) and creating a tenant with its initial quotas.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::{AccountId, Name, Slug, TenantStatus};
use tenantry_ops::field;
use tenantry_ops::quotas::LimitsPatch;
use tenantry_ops::tenants::{self, NewTenant};
use tenantry_ops::views::{List, TenantView};

use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::routes::PageQuery;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants", web::get().to(list_page))
        .route("/tenants", web::post().to(create))
        .route("/tenants/new", web::get().to(new_page));
}

/// A tenant's status as a badge (`span.status.status-<name>`).
#[must_use]
pub(super) fn status_badge(status: TenantStatus) -> Markup {
    html! {
        span class={ "status status-" (status.as_str()) } { (status.as_str()) }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

/// The page's filters as the start of a query string (`?a=b&` or `?`),
/// for the pager: the next page keeps them.
fn base_url(status: &str, q: &str) -> String {
    let mut base = "/console/tenants?".to_owned();
    if !status.is_empty() && status != "all" {
        base.push_str("status=");
        base.push_str(&layout::query_escape(status));
        base.push('&');
    }
    if !q.trim().is_empty() {
        base.push_str("q=");
        base.push_str(&layout::query_escape(q.trim()));
        base.push('&');
    }
    base
}

fn filters(query: &ListQuery, problem: Option<&Problem>) -> Markup {
    let status_error = problem.and_then(|p| p.on("status"));
    html! {
        form.filters method="get" action="/console/tenants" role="search" aria-label="Filter tenants" {
            div.field {
                label for="status" { "Status" }
                select id="status" name="status"
                    aria-invalid=[status_error.map(|_| "true")]
                    aria-describedby=[status_error.map(|_| "status-error")] {
                    @for (value, label) in [("all", "All"), ("active", "Active"),
                        ("suspended", "Suspended"), ("archived", "Archived"), ("deleted", "Deleted")] {
                        option value=(value)
                            selected[query.status == value || (value == "all" && query.status.is_empty())] {
                            (label)
                        }
                    }
                }
                @if let Some(e) = status_error {
                    p.field-error id="status-error" { (e) }
                }
            }
            (form::field(Kind::Search, "q", "Slug or name contains", &query.q, None, problem))
            div.field {
                button type="submit" { "Filter" }
            }
        }
    }
}

fn table(list: &List<TenantView>, filtered: bool) -> Markup {
    html! {
        @if list.items.is_empty() {
            p { @if filtered { "No tenant matches these filters." } @else { "No tenants yet." } }
        } @else {
            div.table-wrap tabindex="0" {
                table {
                    caption { "Tenants" }
                    thead {
                        tr {
                            th scope="col" { "Slug" }
                            th scope="col" { "Name" }
                            th scope="col" { "Status" }
                            th scope="col" { "Account" }
                            th scope="col" { "Created" }
                        }
                    }
                    tbody {
                        @for t in &list.items {
                            tr {
                                td { a href={ "/console/tenants/" (t.id) } { (t.slug) } }
                                td { (t.name) }
                                td { (status_badge(t.status)) }
                                td { a href={ "/console/accounts/" (t.account_id) } { code { (t.account_id) } } }
                                td { (layout::time(t.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn list_page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let result = async {
        let status = match query.status.as_str() {
            "" | "all" => None,
            s => Some(s.parse::<TenantStatus>().map_err(|_| {
                ApiError::validation(
                    "status",
                    "must be all, active, suspended, archived or deleted",
                )
            })?),
        };
        let page = PageQuery::new(None, Some(query.cursor.clone())).page()?;
        Ok::<_, ApiError>(tenants::search(&state.ops, status, None, Some(&query.q), page).await?)
    }
    .await;
    let (status, list, problem) = match result {
        Ok(list) => (StatusCode::OK, Some(list), None),
        Err(e) => {
            let problem = Problem::from(e);
            (problem.status, None, Some(problem))
        }
    };
    let body = html! {
        p { a.button href="/console/tenants/new" { "New tenant" } }
        (filters(&query, problem.as_ref()))
        (form::alert(problem.as_ref(), &["status", "q"]))
        @if let Some(list) = &list {
            (table(list, !base_url(&query.status, &query.q).ends_with("tenants?")))
            (layout::pager(list.next_cursor.as_deref(), &base_url(&query.status, &query.q)))
        }
    };
    Ok(layout::respond(
        status,
        layout::page(Some(&session), "Tenants", Nav::Tenants, body),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct CreateForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    max_users: String,
    #[serde(default)]
    max_api_keys: String,
    #[serde(default)]
    max_clusters: String,
    #[serde(default)]
    max_instances: String,
    #[serde(default)]
    max_cpu_cores: String,
    #[serde(default)]
    max_memory_gb: String,
    #[serde(default)]
    max_storage_gb: String,
    #[serde(default)]
    requests_per_second: String,
    #[serde(default)]
    burst: String,
}

impl CreateForm {
    fn limit(&self, name: &str) -> &str {
        match name {
            "max_users" => &self.max_users,
            "max_api_keys" => &self.max_api_keys,
            "max_clusters" => &self.max_clusters,
            "max_instances" => &self.max_instances,
            "max_cpu_cores" => &self.max_cpu_cores,
            "max_memory_gb" => &self.max_memory_gb,
            "max_storage_gb" => &self.max_storage_gb,
            "requests_per_second" => &self.requests_per_second,
            _ => &self.burst,
        }
    }

    /// The limits given (empty: the plan's or the default).
    fn limits(&self) -> Result<LimitsPatch, Problem> {
        let parse = |name: &str| -> Result<Option<i32>, Problem> {
            let value = self.limit(name).trim();
            if value.is_empty() {
                return Ok(None);
            }
            value.parse::<i32>().map(Some).map_err(|_| {
                Problem::invalid(name, "must be a whole number (or empty for the default)")
            })
        };
        Ok(LimitsPatch {
            max_users: parse("max_users")?,
            max_api_keys: parse("max_api_keys")?,
            max_clusters: parse("max_clusters")?,
            max_instances: parse("max_instances")?,
            max_cpu_cores: parse("max_cpu_cores")?,
            max_memory_gb: parse("max_memory_gb")?,
            max_storage_gb: parse("max_storage_gb")?,
            requests_per_second: parse("requests_per_second")?,
            burst: parse("burst")?,
        })
    }

    /// What the admin API's create would be given.
    fn new_tenant(&self) -> Result<NewTenant, Problem> {
        let slug = field(
            "slug",
            Slug::parse(self.slug.trim()).map_err(|e| e.to_string()),
        )?;
        let name = field("name", Name::parse(&self.name))?;
        let account = match self.account.trim() {
            "" => None,
            a => Some(
                a.parse::<AccountId>()
                    .map_err(|_| Problem::invalid("account", "is not an account id"))?,
            ),
        };
        let plan = Some(self.plan.trim().to_owned()).filter(|p| !p.is_empty());
        Ok(NewTenant {
            slug,
            name,
            limits: self.limits()?,
            owner: None,
            account,
            plan,
        })
    }
}

fn create_form(session: &Session, form: &CreateForm, problem: Option<&Problem>) -> Markup {
    let fields = [
        "slug",
        "name",
        "account",
        "plan",
        "max_users",
        "max_api_keys",
        "max_clusters",
        "max_instances",
        "max_cpu_cores",
        "max_memory_gb",
        "max_storage_gb",
        "requests_per_second",
        "burst",
    ];
    html! {
        form method="post" action="/console/tenants" {
            (form::alert(problem, &fields))
            (layout::csrf_field(session))
            (form::field(Kind::Text, "slug", "Slug", &form.slug,
                Some("Lowercase letters, digits and hyphens; unique among live tenants."), problem))
            (form::field(Kind::Text, "name", "Name", &form.name, None, problem))
            (form::field(Kind::Text, "account", "Account (optional)", &form.account,
                Some("The id of the account that owns it; empty: the default account."), problem))
            (form::field(Kind::Text, "plan", "Plan (optional)", &form.plan,
                Some("A plan's id or name; empty: the service's default limits."), problem))
            fieldset {
                legend { "Initial quotas" }
                p.hint { "Leave a limit empty for the plan's value (or the service's default)." }
                @for (name, label, _) in super::quotas::LIMITS {
                    (form::field(Kind::Number, name, label, form.limit(name), None, problem))
                }
            }
            button type="submit" { "Create tenant" }
        }
    }
}

async fn new_page(session: Session) -> Result<HttpResponse, ConsoleError> {
    let body = create_form(&session, &CreateForm::default(), None);
    Ok(layout::ok(&session, "New tenant", Nav::Tenants, body))
}

async fn create(
    state: web::Data<AppState>,
    posted: Posted<CreateForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let result = match form.new_tenant() {
        Ok(new) => tenants::create(&state.ops, &session.actor(), new)
            .await
            .map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match result {
        Ok(view) => Ok(layout::see_other(&format!(
            "/console/tenants/{}?notice=created",
            view.id
        ))),
        Err(mut problem) => {
            // A taken slug is about the slug field.
            if problem.code == "conflict" && problem.detail.contains("slug") {
                problem.field = Some("slug".to_owned());
            }
            let body = create_form(&session, &form, Some(&problem));
            Ok(layout::respond(
                problem.status,
                layout::page(Some(&session), "New tenant", Nav::Tenants, body),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn the_pager_keeps_the_filters() {
        assert_eq!(base_url("", ""), "/console/tenants?");
        assert_eq!(base_url("all", "  "), "/console/tenants?");
        assert_eq!(
            base_url("suspended", "a&b"),
            "/console/tenants?status=suspended&q=a%26b&"
        );
    }
}
