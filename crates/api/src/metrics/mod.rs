//! `/metrics` (Prometheus text), served only on a listener of its own
//! (`[metrics] listen`, loopback by default; see [`crate::metrics_server`]),
//! never on the public port: tenant ids and operational counts are for the
//! operator, not for every caller of the API.
//!
//! Per-tenant families carry a `tenant` label whose values are bounded by
//! design: the tenants of the tracked set (the top `[metrics]
//! tenant_series` tenants by requests, plus `tenant_allow_list`), `other`
//! and `none` — see [`tracked`] for the structure and why the bound holds
//! at every moment. The request middleware is [`middleware::record`]; the
//! database gauges are set by a background refresher
//! ([`Metrics::refreshed`], every `[metrics] refresh_interval`), never per
//! scrape; the pool gauges are read from the pools when scraped (no query).

pub mod middleware;
pub mod tracked;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix_web::{HttpResponse, get, web};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tenantry_core::TenantId;
use tenantry_db::Db;
use tenantry_ops::webhooks::DeliveryStats;

use crate::{AppState, MetricsSettings};
pub use tracked::TenantSeries;

/// A GB of the quotas (`max_memory_gb`, `max_storage_gb`, an instance's
/// `memory_gb`) in bytes: the usage gauges report base units.
pub const BYTES_PER_GB: i64 = tenantry_core::quota::BYTES_PER_GB;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// The pacer's signal behind a backoff (`tenantry_sweep_backoffs_total`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

/// The `signal` values of `tenantry_sweep_backoffs_total`, in the order of
/// the sweep report's `pacing.backoffs`.
const BACKOFF_SIGNALS: [&str; 3] = ["batch_latency", "backend_writes", "request_latency"];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    tenants: Arc<TenantSeries>,
    quota_drift: Gauge,
    quota_drift_found: Counter,
    rate_limiter_tenants: Gauge,
    tenants_purged: Counter,
    rows_purged: Counter,
    sweep_duration: SecondsGauge,
    sweep_batches: Counter,
    sweep_paused: Counter<f64, AtomicU64>,
    sweep_backoffs: Family<SignalLabel, Counter>,
    sweep_batch_rows: Gauge,
    sweep_last_success: Gauge,
    tenants_by_status: Family<StatusLabel, Gauge>,
    awaiting_purge: Gauge,
    on_legal_hold: Gauge,
    oldest_pending_purge_age: SecondsGauge,
    purge_overdue: Gauge,
    quota_over_limit: Gauge,
    webhook_outbox_pending: Gauge,
    webhook_outbox_failed: Gauge,
}

/// Configuration the alerts read, so they need no constants.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configured {
    pub retention_period: std::time::Duration,
    pub sweep_interval: std::time::Duration,
    pub sweeper_enabled: bool,
}

impl Metrics {
    /// Without a database (no pool gauges), as `[metrics]` says.
    #[must_use]
    pub fn new(settings: &MetricsSettings) -> Self {
        Self::build(settings, None, Configured::default())
    }

    /// With the pool gauges of `db`.
    #[must_use]
    pub fn with_db(
        settings: &MetricsSettings,
        db: &Db,
        configured: Configured,
        webhooks: Arc<DeliveryStats>,
    ) -> Self {
        let mut metrics = Self::build(settings, Some(db), configured);
        metrics
            .registry
            .register_collector(Box::new(WebhookTotals { stats: webhooks }));
        metrics
    }

    fn build(settings: &MetricsSettings, db: Option<&Db>, configured: Configured) -> Self {
        let mut registry = Registry::with_prefix("tenantry");
        let webhook_outbox_pending = Gauge::default();
        registry.register(
            "webhook_outbox_pending",
            "Webhook deliveries waiting to be sent (every tenant's and the platform's)",
            webhook_outbox_pending.clone(),
        );
        let webhook_outbox_failed = Gauge::default();
        registry.register(
            "webhook_outbox_failed",
            "Webhook deliveries that used up their attempts (replay sends them again)",
            webhook_outbox_failed.clone(),
        );
        let tenants = Arc::new(TenantSeries::new(
            settings.per_tenant,
            settings.tenant_series,
            &settings.tenant_allow_list,
        ));
        registry.register_collector(Box::new(Arc::clone(&tenants)));
        if let Some(db) = db {
            registry.register_collector(Box::new(Pools { db: db.clone() }));
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
        let sweep_duration = SecondsGauge::default();
        registry.register(
            "sweep_duration_seconds",
            "Duration of the last sweep",
            sweep_duration.clone(),
        );
        // How the pacer ran the sweeps: what an operator looks at when a
        // purge goes slower than its rows would take at full speed.
        let sweep_batches = Counter::default();
        registry.register(
            "sweep_batches",
            "Purge batches that removed rows",
            sweep_batches.clone(),
        );
        let sweep_paused = Counter::<f64, AtomicU64>::default();
        registry.register(
            "sweep_paused_seconds",
            "Time the sweeper paused between purge batches",
            sweep_paused.clone(),
        );
        let sweep_backoffs = Family::<SignalLabel, Counter>::default();
        for signal in BACKOFF_SIGNALS {
            sweep_backoffs
                .get_or_create(&SignalLabel { signal })
                .inc_by(0);
        }
        registry.register(
            "sweep_backoffs",
            "Times the pacer halved its batch and doubled its pause, by the signal that made it",
            sweep_backoffs.clone(),
        );
        let sweep_batch_rows = Gauge::default();
        registry.register(
            "sweep_batch_rows",
            "Rows the last purge batch of the last sweep asked for (0: it ran none)",
            sweep_batch_rows.clone(),
        );
        let sweep_last_success = Gauge::default();
        registry.register(
            "sweep_last_success_timestamp_seconds",
            "Unix time of the last sweep that completed without interruption (0 until one did)",
            sweep_last_success.clone(),
        );
        let tenants_by_status = Family::<StatusLabel, Gauge>::default();
        for status in tenantry_core::TenantStatus::ALL {
            tenants_by_status
                .get_or_create(&StatusLabel {
                    status: status.as_str(),
                })
                .set(0);
        }
        registry.register(
            "tenants",
            "Tenants not purged, by status (at the last refresh)",
            tenants_by_status.clone(),
        );
        let awaiting_purge = Gauge::default();
        registry.register(
            "tenants_awaiting_purge",
            "Deleted tenants not yet purged, legal hold included",
            awaiting_purge.clone(),
        );
        let on_legal_hold = Gauge::default();
        registry.register(
            "tenants_on_legal_hold",
            "Tenants (not purged) on legal hold",
            on_legal_hold.clone(),
        );
        let oldest_pending_purge_age = SecondsGauge::default();
        registry.register(
            "oldest_pending_purge_age_seconds",
            "Age of the oldest deletion not on legal hold still awaiting its purge; 0 when none",
            oldest_pending_purge_age.clone(),
        );
        let purge_overdue = Gauge::default();
        registry.register(
            "purge_overdue_tenants",
            "Deleted tenants not on hold past deleted_at + the retention period, not purged",
            purge_overdue.clone(),
        );
        let quota_over_limit = Gauge::default();
        registry.register(
            "quota_over_limit",
            "Tenant/resource pairs at or over their limit (usage above 0), all tenants",
            quota_over_limit.clone(),
        );
        let seconds = |d: std::time::Duration| ConstGauge::new(d.as_secs_f64());
        registry.register(
            "retention_period_seconds",
            "[retention] period: how long a deleted tenant waits for its purge",
            seconds(configured.retention_period),
        );
        registry.register(
            "sweep_interval_seconds",
            "[retention] sweep_interval",
            seconds(configured.sweep_interval),
        );
        registry.register(
            "sweeper_enabled",
            "1 when this process runs the scheduled sweeper",
            ConstGauge::new(i64::from(configured.sweeper_enabled)),
        );
        registry.register(
            "start_time_seconds",
            "Unix time this process started",
            ConstGauge::new(unix_now()),
        );
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running build (always 1)", build_info);
        Self {
            registry,
            tenants,
            quota_drift,
            quota_drift_found,
            rate_limiter_tenants,
            tenants_purged,
            rows_purged,
            sweep_duration,
            sweep_batches,
            sweep_paused,
            sweep_backoffs,
            sweep_batch_rows,
            sweep_last_success,
            tenants_by_status,
            awaiting_purge,
            on_legal_hold,
            oldest_pending_purge_age,
            purge_overdue,
            quota_over_limit,
            webhook_outbox_pending,
            webhook_outbox_failed,
        }
    }

    /// The per-tenant series and the tracked set.
    #[must_use]
    pub fn tenants(&self) -> &TenantSeries {
        &self.tenants
    }

    /// A refusal with `quota_exceeded`; `resource` as the refusal names it
    /// (`users`, …, `memory_gb`, `storage_gb`: a name, not an amount).
    pub fn quota_rejected(&self, tenant: TenantId, resource: tenantry_core::quota::Resource) {
        self.tenants.of(Some(tenant), |series| {
            series.quota_rejected(resource.as_str())
        });
    }

    pub fn rate_limited(&self, tenant: TenantId) {
        self.tenants.of(Some(tenant), tracked::Series::rate_limited);
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
        self.sweep_duration.set(took.as_secs_f64());
        let pacing = &report.pacing;
        self.sweep_batches.inc_by(pacing.batches);
        self.sweep_paused.inc_by(pacing.paused_seconds);
        let b = &pacing.backoffs;
        for (signal, n) in
            BACKOFF_SIGNALS
                .into_iter()
                .zip([b.batch_latency, b.backend_writes, b.request_latency])
        {
            self.sweep_backoffs
                .get_or_create(&SignalLabel { signal })
                .inc_by(n);
        }
        self.sweep_batch_rows.set(pacing.last_batch);
        if report.interrupted.is_empty() {
            self.sweep_last_success.set(unix_now());
        }
    }

    /// What the refresher read (`tenantry_ops::metrics::snapshot`).
    pub fn refreshed(&self, snapshot: &tenantry_ops::metrics::MetricsSnapshot) {
        let g = &snapshot.globals;
        for (status, n) in [
            ("active", g.active),
            ("suspended", g.suspended),
            ("archived", g.archived),
            ("deleted", g.deleted),
        ] {
            self.tenants_by_status
                .get_or_create(&StatusLabel { status })
                .set(n);
        }
        self.awaiting_purge.set(g.awaiting_purge);
        self.on_legal_hold.set(g.on_legal_hold);
        self.oldest_pending_purge_age
            .set(g.oldest_pending_purge_age_seconds.max(0.0));
        self.purge_overdue.set(g.purge_overdue);
        self.quota_over_limit.set(g.quota_over_limit);
        let outbox = &snapshot.outbox;
        self.webhook_outbox_pending.set(
            outbox
                .tenant_pending
                .saturating_add(outbox.platform_pending),
        );
        self.webhook_outbox_failed
            .set(outbox.tenant_failed.saturating_add(outbox.platform_failed));
        self.tenants.set_usage(snapshot.usage.iter().map(|u| {
            let gb = |n: i32| i64::from(n).saturating_mul(BYTES_PER_GB);
            (
                u.tenant_id,
                [
                    (i64::from(u.users), i64::from(u.max_users)),
                    (i64::from(u.api_keys), i64::from(u.max_api_keys)),
                    (i64::from(u.clusters), i64::from(u.max_clusters)),
                    (i64::from(u.instances), i64::from(u.max_instances)),
                    (i64::from(u.cpu_cores), i64::from(u.max_cpu_cores)),
                    (gb(u.memory_gb), gb(u.max_memory_gb)),
                    (gb(u.storage_gb), gb(u.max_storage_gb)),
                ],
            )
        }));
    }

    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Collector for TenantSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        TenantSeries::encode(self, &mut encoder)
    }
}

/// This process's webhook delivery totals (the worker counts them),
/// read when scraped.
#[derive(Debug)]
struct WebhookTotals {
    stats: Arc<DeliveryStats>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl Collector for WebhookTotals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (delivered, failed_attempts, gave_up) = self.stats.totals();
        let mut family = encoder.encode_descriptor(
            "webhook_deliveries",
            "Webhook delivery attempts by this process, by outcome (gave_up: the last attempt failed)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in [
            ("delivered", delivered),
            ("failed_attempt", failed_attempts),
            ("gave_up", gave_up),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&OutcomeLabel { outcome })?)?;
        }
        Ok(())
    }
}

/// Both pools' state, read from deadpool when scraped.
#[derive(Debug)]
struct Pools {
    db: Db,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabel {
    pool: &'static str,
    state: &'static str,
}

impl Collector for Pools {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let pools = [
            ("tenant", self.db.status()),
            ("admin", self.db.admin_status()),
        ];
        let (main_timeouts, admin_timeouts) = self.db.pool_timeouts();
        {
            let mut family = encoder.encode_descriptor(
                "db_pool_connections",
                "Open connections of a pool, in use or idle",
                None,
                MetricType::Gauge,
            )?;
            for (pool, status) in pools {
                let idle = status.available.min(status.size);
                for (state, n) in [("in_use", status.size - idle), ("idle", idle)] {
                    ConstGauge::new(count(n))
                        .encode(family.encode_family(&PoolStateLabel { pool, state })?)?;
                }
            }
        }
        for (name, help, pick) in [
            (
                "db_pool_max_connections",
                "The most connections a pool opens",
                0usize,
            ),
            (
                "db_pool_waiting",
                "Tasks waiting for a connection of a pool",
                1,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (pool, status) in pools {
                let n = if pick == 0 {
                    status.max_size
                } else {
                    status.waiting
                };
                ConstGauge::new(count(n)).encode(family.encode_family(&PoolLabel { pool })?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "db_pool_timeouts",
            "Checkouts that waited past database.acquire_timeout (answered 503)",
            None,
            MetricType::Counter,
        )?;
        for (pool, n) in [("tenant", main_timeouts), ("admin", admin_timeouts)] {
            ConstCounter::new(n).encode(family.encode_family(&PoolLabel { pool })?)?;
        }
        Ok(())
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
