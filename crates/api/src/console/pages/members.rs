//! `/console/tenants/{id}/members`: a tenant's people and their roles;
//! adding one, changing a role, removing one — through the admin plane's
//! operations (`ops::members::admin_add`, `admin_change_role`,
//! `admin_remove`), as `/v1/admin/tenants/{id}/members` does. A platform
//! admin may name owners; the last owner stays (409 `last_owner`, shown
//! beside the action).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_core::{MemberId, Role};
use tenantry_ops::members;
use tenantry_ops::views::{List, MemberView, TenantView};

use crate::AppState;
use crate::console::ConsoleError;
use crate::console::form::{self, Kind, Problem};
use crate::console::layout::{self, Nav};
use crate::console::session::{Posted, Session};
use crate::routes::PageQuery;
use crate::routes::members::{AddMember, new_member, role};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/members", web::get().to(page))
        .route("/tenants/{id}/members", web::post().to(add))
        .route(
            "/tenants/{id}/members/{member}/role",
            web::post().to(change_role),
        )
        .route(
            "/tenants/{id}/members/{member}/remove",
            web::post().to(remove),
        );
}

#[derive(Debug, Deserialize)]
struct PageParams {
    cursor: Option<String>,
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "member_added" => Some("Member added."),
        "role_changed" => Some("Role changed."),
        "member_removed" => Some("Member removed."),
        _ => None,
    }
}

/// Which form a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Add,
    Role(MemberId),
    Remove(MemberId),
}

/// What the add form held when it was refused.
#[derive(Debug, Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    role: String,
}

fn role_select(id: &str, selected: &str, invalid: Option<&str>) -> Markup {
    html! {
        select id=(id) name="role" aria-invalid=[invalid.map(|_| "true")]
            aria-describedby=[invalid.map(|_| format!("{id}-error"))] {
            @for r in Role::ALL {
                option value=(r.as_str()) selected[r.as_str() == selected] { (r.as_str()) }
            }
        }
    }
}

struct Refusal<'a> {
    action: Action,
    problem: &'a Problem,
}

impl Refusal<'_> {
    fn on(&self, action: Action) -> Option<&Problem> {
        (self.action == action).then_some(self.problem)
    }
}

fn members_page(
    session: &Session,
    tenant: &TenantView,
    list: &List<MemberView>,
    added: &AddForm,
    refusal: Option<&Refusal<'_>>,
    notice_text: Option<&str>,
) -> Markup {
    let base = format!("/console/tenants/{}/members", tenant.id);
    let add_problem = refusal.and_then(|r| r.on(Action::Add));
    let add_role_error = add_problem.and_then(|p| p.on("role"));
    let body = html! {
        p { a href={ "/console/tenants/" (tenant.id) } { "Back to " (tenant.slug) } }
        (layout::notice(notice_text))
        section aria-labelledby="members-h" {
            h2 id="members-h" { "Members" }
            @if list.items.is_empty() {
                p { "No members yet." }
            } @else {
                div.table-wrap tabindex="0" {
                    table {
                        caption { "Members of " (tenant.slug) " and their roles" }
                        thead {
                            tr {
                                th scope="col" { "Subject" }
                                th scope="col" { "Role" }
                                th scope="col" { "Member since" }
                                th scope="col" { "Change role" }
                                th scope="col" { "Remove" }
                            }
                        }
                        tbody {
                            @for m in &list.items {
                                @let role_problem = refusal.and_then(|r| r.on(Action::Role(m.id)));
                                @let remove_problem = refusal.and_then(|r| r.on(Action::Remove(m.id)));
                                @let select_id = format!("role-{}", m.id);
                                @let confirm_id = format!("confirm-{}", m.id);
                                tr {
                                    td { code { (m.subject) } }
                                    td { (m.role) }
                                    td { (layout::time(m.created_at)) }
                                    td {
                                        form method="post" action={ (base) "/" (m.id) "/role" } {
                                            (layout::csrf_field(session))
                                            (form::alert(role_problem, &[]))
                                            label for=(select_id) { "New role for " (m.subject) }
                                            (role_select(&select_id, &m.role, None))
                                            button type="submit" { "Change role" }
                                        }
                                    }
                                    td {
                                        form method="post" action={ (base) "/" (m.id) "/remove" }
                                            data-confirm={ "Remove " (m.subject) " from " (tenant.slug) "?" } {
                                            (layout::csrf_field(session))
                                            (form::alert(remove_problem, &["confirm"]))
                                            input type="checkbox" id=(confirm_id) name="confirm" value="yes"
                                                aria-invalid=[remove_problem.and_then(|p| p.on("confirm")).map(|_| "true")]
                                                aria-describedby=[remove_problem.and_then(|p| p.on("confirm")).map(|_| format!("{confirm_id}-error"))];
                                            label for=(confirm_id) { "Yes, remove " (m.subject) }
                                            @if let Some(e) = remove_problem.and_then(|p| p.on("confirm")) {
                                                p.field-error id={ (confirm_id) "-error" } { (e) }
                                            }
                                            button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (layout::pager(list.next_cursor.as_deref(), &format!("{base}?")))
            }
        }
        section aria-labelledby="add-h" {
            h2 id="add-h" { "Add a member" }
            form method="post" action=(base) novalidate {
                (layout::csrf_field(session))
                (form::alert(add_problem, &["subject", "role"]))
                (form::field(Kind::Text, "subject", "Subject", &added.subject,
                    Some("The person's identity-provider subject (the sub of their tokens)."), add_problem))
                div.field {
                    label for="role" { "Role" }
                    (role_select("role", if added.role.is_empty() { "member" } else { &added.role }, add_role_error))
                    @if let Some(e) = add_role_error {
                        p.field-error id="role-error" { (e) }
                    }
                }
                button type="submit" { "Add member" }
            }
        }
    };
    layout::page(
        Some(session),
        &format!("Members of {}", tenant.slug),
        Nav::Tenants,
        body,
    )
}

async fn page(
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let page = PageQuery::new(None, query.cursor).page()?;
    let tenant = tenantry_ops::tenants::get(&state.ops, &id).await?;
    let list = members::admin_list(&state.ops, &id, page).await?;
    Ok(layout::respond(
        StatusCode::OK,
        members_page(
            &session,
            &tenant,
            &list,
            &AddForm::default(),
            None,
            notice(query.notice.as_deref()),
        ),
    ))
}

/// The page again, first page of members, with `problem` beside `action`.
async fn refused(
    state: &AppState,
    session: &Session,
    key: &str,
    added: &AddForm,
    action: Action,
    problem: Problem,
) -> Result<HttpResponse, ConsoleError> {
    let tenant = tenantry_ops::tenants::get(&state.ops, key).await?;
    let page = PageQuery::new(None, None).page()?;
    let list = members::admin_list(&state.ops, key, page).await?;
    let refusal = Refusal {
        action,
        problem: &problem,
    };
    Ok(layout::respond(
        problem.status,
        members_page(session, &tenant, &list, added, Some(&refusal), None),
    ))
}

fn done(tenant: &str, notice: &str) -> HttpResponse {
    layout::see_other(&format!(
        "/console/tenants/{}/members?notice={notice}",
        layout::query_escape(tenant)
    ))
}

async fn add(
    posted: Posted<AddForm>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let parsed = new_member(AddMember {
        subject: form.subject.clone(),
        role: form.role.clone(),
    });
    let result = match parsed {
        Ok(new) => members::admin_add(&state.ops, &session.actor(), &id, new)
            .await
            .map_err(Problem::from),
        Err(e) => Err(Problem::from(e)),
    };
    match result {
        Ok(_) => Ok(done(&id, "member_added")),
        Err(problem) => refused(&state, &session, &id, &form, Action::Add, problem).await,
    }
}

#[derive(Debug, Deserialize)]
struct MemberPath {
    id: String,
    member: String,
}

impl MemberPath {
    /// The member's id; not one: no such page.
    fn member(&self) -> Result<MemberId, ConsoleError> {
        self.member.parse().map_err(|_| ConsoleError::NotFound)
    }
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn change_role(
    posted: Posted<RoleForm>,
    state: web::Data<AppState>,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let member = path.member()?;
    let result = match role(&form.role) {
        Ok(to) => members::admin_change_role(&state.ops, &session.actor(), &path.id, member, to)
            .await
            .map_err(Problem::from),
        Err(e) => Err(Problem::from(e)),
    };
    match result {
        Ok(_) => Ok(done(&path.id, "role_changed")),
        Err(problem) => {
            refused(
                &state,
                &session,
                &path.id,
                &AddForm::default(),
                Action::Role(member),
                problem,
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
struct RemoveForm {
    #[serde(default)]
    confirm: String,
}

async fn remove(
    posted: Posted<RemoveForm>,
    state: web::Data<AppState>,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { session, form } = posted;
    let member = path.member()?;
    let result = if form.confirm == "yes" {
        members::admin_remove(&state.ops, &session.actor(), &path.id, member)
            .await
            .map_err(Problem::from)
    } else {
        Err(Problem::invalid(
            "confirm",
            "tick the box to confirm the removal; nothing was changed",
        ))
    };
    match result {
        Ok(()) => Ok(done(&path.id, "member_removed")),
        Err(problem) => {
            refused(
                &state,
                &session,
                &path.id,
                &AddForm::default(),
                Action::Remove(member),
                problem,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_select_marks_the_current_role_and_every_role_is_offered() {
        let html = role_select("role-x", "admin", None).into_string();
        for r in Role::ALL {
            assert!(
                html.contains(&format!(r#"value="{}""#, r.as_str())),
                "{html}"
            );
        }
        assert!(
            html.contains(r#"<option value="admin" selected>"#),
            "{html}"
        );
    }
}
