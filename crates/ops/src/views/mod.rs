//! What every front door shows: the API's JSON bodies (each a named schema
//! in `/openapi.json`), the CLI's output, the console's pages. Built from
//! database rows here, so rows never reach a response as they are.

mod accounts;
mod api_keys;
mod clusters;
mod domains;
mod events;
mod health;
mod instances;
mod members;
mod overview;
mod placement;
mod plans;
mod quotas;
mod retention;
mod settings;
mod tenants;
mod usage;
mod users;
mod webhooks;

pub use accounts::{AccountLimitsView, AccountTransitionView, AccountUsageView, AccountView};
pub use api_keys::{ApiKeyView, CreatedApiKey};
pub use clusters::ClusterView;
pub use domains::{
    DNS_PREFIX, DnsChallengeView, DomainView, HTTP_PATH, HttpChallengeView, VerificationView,
};
pub use events::{AuditEntryView, EventView};
pub use health::{SchemaView, ServiceHealthView};
pub use instances::InstanceView;
pub use members::MemberView;
pub use overview::{OverQuotaView, OverviewView, StatusCountView};
pub use placement::{PlacementChange, PlacementView, ShardView};
pub use plans::{OverLimitView, PlanChangeView, PlanView, TenantPlanView};
pub use quotas::{
    LimitSource, LimitSourceKind, LimitSourcesView, LimitsView, QuotasView, UsageView,
};
pub use retention::{
    BackoffsView, InterruptedView, PacingView, RetentionRunView, SweepReportView, WouldPurgeView,
};
pub use settings::SettingsView;
pub use tenants::{DataHealthView, ImportView, OwnTenantView, TenantView};
pub use usage::{Granularity, UsageAmountsView, UsagePeriodView, UsageReportView, csv_record};
pub use users::UserView;
pub use webhooks::{AttemptView, DeliveryView, OutboxView, WebhookSecretView, WebhookView};

use serde::Serialize;

/// A page of a list: `{"items": [...], "next_cursor": ...}`. The cursor
/// encodes the last item's id; absent on the last page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    pub fn new(items: Vec<T>, more: bool, id: impl Fn(&T) -> uuid::Uuid) -> Self {
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|last| tenantry_core::Cursor::after(id(last)).encode())
            })
            .flatten();
        Self { items, next_cursor }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> List<U> {
        List {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// `?dry_run=true` on a create: what would be created and the usage it
/// would leave; nothing was written.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rehearsal<T> {
    /// Always `true`.
    pub dry_run: bool,
    pub would_create: T,
    pub usage_after: Option<UsageView>,
}
