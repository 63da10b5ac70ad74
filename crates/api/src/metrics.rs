//! `/metrics` (Prometheus text), served only on a listener of its own
//! (`[metrics] listen`, loopback by default; see [`crate::metrics_server`]),
//! never on the public port: per-tenant labels (`server.per_tenant_metrics`,
//! tenant ids) and operational counts are for the operator, not for every
//! caller of the API. Per-tenant labels only when switched on: with many
//! tenants they are a cardinality problem for the metrics store.

use actix_web::{HttpResponse, get, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tenantry_core::TenantId;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    quota_rejections: Family<ResourceLabel, Counter>,
    rate_limited: Counter,
    rate_limited_by_tenant: Family<TenantLabel, Counter>,
    per_tenant: bool,
    quota_drift: Gauge,
    quota_drift_found: Counter,
    rate_limiter_tenants: Gauge,
    tenants_purged: Counter,
    rows_purged: Counter,
    sweep_duration_ms: Gauge,
    sweep_last_success: Gauge,
}

impl Metrics {
    #[must_use]
    pub fn new(per_tenant: bool) -> Self {
        let mut registry = Registry::with_prefix("tenantry");
        let quota_rejections = Family::<ResourceLabel, Counter>::default();
        registry.register(
            "quota_rejections",
            "Provisioning requests refused with quota_exceeded, by resource",
            quota_rejections.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests answered 429",
            rate_limited.clone(),
        );
        let rate_limited_by_tenant = Family::<TenantLabel, Counter>::default();
        if per_tenant {
            registry.register(
                "rate_limited_by_tenant",
                "Requests answered 429, by tenant",
                rate_limited_by_tenant.clone(),
            );
        }
        let quota_drift = Gauge::default();
        registry.register(
            "quota_drift",
            "Tenant resources whose recorded usage differed from their rows at the last reconcile",
            quota_drift.clone(),
        );
        let quota_drift_found = Counter::default();
        registry.register(
            "quota_drift_found",
            "Drifting tenant resources found by reconciles since start",
            quota_drift_found.clone(),
        );
        let rate_limiter_tenants = Gauge::default();
        registry.register(
            "rate_limiter_tenants",
            "Tenants with rate-limiter state in this process",
            rate_limiter_tenants.clone(),
        );
        let tenants_purged = Counter::default();
        registry.register(
            "tenants_purged",
            "Tenants whose data the sweeper purged",
            tenants_purged.clone(),
        );
        let rows_purged = Counter::default();
        registry.register(
            "rows_purged",
            "Rows the sweeper removed",
            rows_purged.clone(),
        );
        let sweep_duration_ms = Gauge::default();
        registry.register(
            "sweep_duration_ms",
            "Duration of the last sweep, in milliseconds",
            sweep_duration_ms.clone(),
        );
        let sweep_last_success = Gauge::default();
        registry.register(
            "sweep_last_success_timestamp_seconds",
            "Unix time of the last sweep that completed without interruption (alert when it stops moving)",
            sweep_last_success.clone(),
        );
        Self {
            registry,
            tenants_purged,
            rows_purged,
            sweep_duration_ms,
            sweep_last_success,
            quota_rejections,
            rate_limited,
            rate_limited_by_tenant,
            per_tenant,
            quota_drift,
            quota_drift_found,
            rate_limiter_tenants,
        }
    }

    pub fn quota_rejected(&self, resource: &str) {
        self.quota_rejections
            .get_or_create(&ResourceLabel {
                resource: resource.to_owned(),
            })
            .inc();
    }

    pub fn rate_limited(&self, tenant: TenantId) {
        self.rate_limited.inc();
        if self.per_tenant {
            self.rate_limited_by_tenant
                .get_or_create(&TenantLabel {
                    tenant: tenant.to_string(),
                })
                .inc();
        }
    }

    pub fn reconciled(&self, drifting: usize) {
        let n = i64::try_from(drifting).unwrap_or(i64::MAX);
        self.quota_drift.set(n);
        self.quota_drift_found
            .inc_by(u64::try_from(drifting).unwrap_or(u64::MAX));
    }

    pub fn rate_limiter_tenants(&self, n: usize) {
        self.rate_limiter_tenants
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn swept(&self, report: &tenantry_ops::views::SweepReportView, took: std::time::Duration) {
        self.tenants_purged
            .inc_by(u64::try_from(report.purged.len()).unwrap_or(u64::MAX));
        self.rows_purged
            .inc_by(u64::try_from(report.rows_removed).unwrap_or(0));
        self.sweep_duration_ms
            .set(i64::try_from(took.as_millis()).unwrap_or(i64::MAX));
        if report.interrupted.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            self.sweep_last_success.set(now);
        }
    }

    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// `GET /metrics` on the metrics listener.
#[get("/metrics")]
pub(crate) async fn serve(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.rate_limiter_tenants(state.rate_limits.len());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
