//! `/console/overview`: the platform at a glance — tenants by status, the
//! tenants most over their quotas, pending purges and the sweeper, the
//! latest audit entries, the service's health.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use tenantry_ops::views::{OverQuotaView, RetentionRunView};

use super::{audit, retention};
use crate::AppState;
use crate::console::ConsoleError;
use crate::console::layout::{self, Nav};
use crate::console::session::Session;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/overview", web::get().to(overview));
}

/// `12 of 10 (120 %)`.
fn usage_label(used: i64, limit: i64) -> String {
    if limit <= 0 {
        format!(
            "{} of {} (no allowance)",
            layout::number(used),
            layout::number(limit)
        )
    } else {
        let pct = used.saturating_mul(100) / limit;
        format!(
            "{} of {} ({pct} %)",
            layout::number(used),
            layout::number(limit)
        )
    }
}

fn over_quota(items: &[OverQuotaView]) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No tenant is at or over a quota." }
        } @else {
            div.table-wrap tabindex="0" {
                table.over-quota {
                    caption { "Tenants at or over a quota, highest usage/limit first" }
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { "Resource" }
                            th scope="col" class="num" { "Usage" }
                            th scope="col" class="num" { "Limit" }
                            th scope="col" { "Usage/limit" }
                        }
                    }
                    tbody {
                        @for o in items {
                            @let id = format!("oq-{}-{}", o.tenant_id, o.resource);
                            tr {
                                td {
                                    a href={ "/console/tenants/" (o.tenant_id) } { (o.slug) }
                                    " " span class={ "status status-" (o.status) } { (o.status) }
                                }
                                td { (super::quotas::limit_label(&o.resource)) }
                                td.num { (layout::number(o.used)) }
                                td.num { (layout::number(o.limit)) }
                                td {
                                    meter id=(id) min="0" max=(o.limit.max(o.used)) high=(o.limit.max(1)) value=(o.used)
                                        aria-label={ (o.slug) " " (super::quotas::limit_label(&o.resource)) } {}
                                    " "
                                    span { (usage_label(o.used, o.limit)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn last_run(run: Option<&RetentionRunView>) -> Markup {
    html! {
        @match run {
            None => p { "The sweeper has purged no tenant yet." },
            Some(r) => dl {
                dt { "Tenant" }
                dd { a href={ "/console/tenants/" (r.tenant_id) } { (r.slug) } }
                dt { "Started" } dd { (layout::time(r.started_at)) }
                dt { "Outcome" }
                dd {
                    @if let Some(at) = r.purged_at {
                        "Purged " (layout::time(at))
                    } @else {
                        "Still open: the next sweep resumes it"
                    }
                }
                dt { "By" } dd { (r.sweeper) }
            },
        }
    }
}

async fn overview(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let view = tenantry_ops::overview::overview(&state.ops).await?;
    let health = tenantry_ops::health::service(&state.ops).await?;
    let body = html! {
        section aria-labelledby="status-h" {
            h2 id="status-h" { "Tenants by status" }
            ul.cards {
                @for c in &view.by_status {
                    li.card {
                        a href={ "/console/tenants?status=" (c.status) } {
                            span.big { (layout::number(c.tenants)) }
                            " "
                            span class={ "status status-" (c.status) } { (c.status) }
                        }
                        @if c.purged > 0 {
                            p.muted { (layout::number(c.purged)) " purged" }
                        }
                    }
                }
            }
        }
        section aria-labelledby="quota-h" {
            h2 id="quota-h" { "At or over quota" }
            (over_quota(&view.over_quota))
        }
        section aria-labelledby="purges-h" {
            h2 id="purges-h" { "Pending purges" }
            p {
                (layout::number(view.pending_purges_total)) " deleted tenant(s) not on legal hold await their purge; "
                "retention period " (retention::format_duration(state.ops.tenancy.retention.period)) ". "
                "Sweeper: " (retention::schedule(&state))
            }
            (retention::deleted(&view.pending_purges, "The next tenants to be purged"))
            p { a href="/console/retention" { "All deleted tenants and receipts" } }
            h3 { "The sweeper's last purge" }
            (last_run(view.last_run.as_ref()))
        }
        section aria-labelledby="audit-h" {
            h2 id="audit-h" { "Latest audit entries" }
            (audit::entries(&view.latest_audit, "The latest audit entries, newest first"))
            p { a href="/console/audit" { "The whole audit log" } }
        }
        section aria-labelledby="schema-h" {
            h2 id="schema-h" { "Service" }
            dl {
                dt { "Status" } dd { (health.status) }
                dt { "Database schema" }
                dd { (health.schema.database_version.as_deref().unwrap_or("none")) " (" (health.schema.compatibility) ")" }
            }
        }
    };
    Ok(layout::ok(&session, "Overview", Nav::Overview, body))
}

#[cfg(test)]
mod tests {
    use super::usage_label;

    #[test]
    fn usage_reads_as_a_share_of_the_limit() {
        assert_eq!(usage_label(12, 10), "12 of 10 (120 %)");
        assert_eq!(usage_label(1500, 1000), "1,500 of 1,000 (150 %)");
        assert_eq!(usage_label(3, 0), "3 of 0 (no allowance)");
    }
}
