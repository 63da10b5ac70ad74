//! The bounded set of tenants that get series of their own.
//!
//! **Which tenants.** The top K tenants by request count since the process
//! started (K = `[metrics] tenant_series`), plus the tenants of
//! `[metrics] tenant_allow_list` (always tracked, never evicted, not counted
//! in K). Every other tenant's numbers go to the `other` series, requests
//! without a tenant principal to `none`. So every per-tenant family holds at
//! most K + |allow list| tenant values plus `other` and `none`, at every
//! moment: the series of a tenant live *inside* its entry of the tracked
//! set, and evicting the entry drops them all at once, under the same lock
//! that every increment holds for reading. Nothing a request does can
//! recreate the series of a tenant that just left.
//!
//! **Counting with bounded memory: Space-Saving** (Metwally, Agrawal,
//! El Abbadi, "Efficient computation of frequent and top-k elements in data
//! streams", ICDT 2005). A table of at most `m` counters; a request of a
//! tenant in the table increments its counter; a tenant not in it, when the
//! table is full, replaces the entry with the smallest count `min` and
//! starts at `min + 1` with error `min`. Memory is `m` entries whatever the
//! number of tenants; every tenant sending more than `N/m` of the `N`
//! requests is in the table, and `count − error` is a lower bound of its
//! true count. Here the table is split into [`STRIPES`] stripes by a hash of
//! the tenant id (each stripe a Space-Saving table over its own, disjoint
//! tenants, behind its own mutex), so that concurrent requests of different
//! tenants rarely wait for each other; `m = max(MIN_COUNTERS,
//! COUNTERS_PER_SERIES × K)`.
//!
//! **Promotion** uses the lower bound, so a tenant that only inherited a
//! large evicted count cannot push out a really busy one: a tenant enters
//! while the set has room, or when its lower bound exceeds the smallest
//! score among the tracked (non-allow-list) tenants — that tenant is
//! evicted. The smallest score is cached in an atomic (`threshold`); a
//! tracked tenant's score moves up with its requests, so the cache can only
//! be too low, which costs a write lock that recomputes it, never a wrong
//! eviction.
//!
//! **Hot path.** Per request: one stripe mutex (a hash-map update), one
//! shared read lock on the set (no writer unless a promotion happens), the
//! series' atomics; the route map of a series takes a write lock only the
//! first time that series sees a route.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use tenantry_core::TenantId;

/// Stripes of the Space-Saving table.
pub const STRIPES: usize = 16;
/// Counters kept per tracked series (K).
pub const COUNTERS_PER_SERIES: usize = 8;
/// Counters kept at least, however small K.
pub const MIN_COUNTERS: usize = 256;

/// Latency buckets of `tenantry_http_request_duration_seconds`.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of requests of untracked tenants.
pub const OTHER: &str = "other";
/// The label of requests without a tenant principal.
pub const NONE: &str = "none";

/// Status classes, by the first digit of the status (1xx..5xx).
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Resources of the usage gauges and quota rejections, in
/// `tenantry_core::Resource::ALL` order, with the GB quotas in bytes.
pub const USAGE_RESOURCES: [&str; 7] = [
    "users",
    "api_keys",
    "clusters",
    "instances",
    "cpu_cores",
    "memory_bytes",
    "storage_bytes",
];

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    count: u64,
    error: u64,
}

/// One stripe: a Space-Saving table of at most `capacity` counters.
#[derive(Debug)]
struct Stripe {
    capacity: usize,
    entries: HashMap<TenantId, Counts>,
}

impl Stripe {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::with_capacity(capacity.max(1)),
        }
    }

    /// Counts one request of `tenant`; its guaranteed count (lower bound).
    fn observe(&mut self, tenant: TenantId) -> u64 {
        if let Some(c) = self.entries.get_mut(&tenant) {
            c.count = c.count.saturating_add(1);
            return c.count - c.error;
        }
        if self.entries.len() >= self.capacity {
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, c)| c.count)
                .map(|(t, c)| (*t, c.count));
            if let Some((victim, min)) = victim {
                self.entries.remove(&victim);
                self.entries.insert(
                    tenant,
                    Counts {
                        count: min.saturating_add(1),
                        error: min,
                    },
                );
                return 1;
            }
        }
        self.entries.insert(tenant, Counts { count: 1, error: 0 });
        1
    }
}

/// The series of one label value (a tracked tenant, `other` or `none`).
#[derive(Debug)]
pub struct Series {
    label: String,
    /// The Space-Saving lower bound of its count, when last seen.
    score: AtomicU64,
    pinned: bool,
    /// Route template → requests by status class.
    requests: RwLock<HashMap<String, [Counter; 5]>>,
    duration: Histogram,
    /// Resource → quota rejections.
    quota_rejections: RwLock<HashMap<&'static str, Counter>>,
    rate_limited: Counter,
    /// `(used, limit)` per [`USAGE_RESOURCES`], set by the refresher (tracked
    /// tenants only).
    usage: Mutex<Option<[(i64, i64); 7]>>,
}

impl Series {
    fn new(label: String, pinned: bool) -> Self {
        Self {
            label,
            score: AtomicU64::new(0),
            pinned,
            requests: RwLock::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            quota_rejections: RwLock::default(),
            rate_limited: Counter::default(),
            usage: Mutex::new(None),
        }
    }

    /// The label value.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// One answered request.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        let counted = self
            .requests
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .map(|c| c[class].inc());
        if counted.is_none() {
            let mut routes = self
                .requests
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            routes.entry(route.to_owned()).or_default()[class].inc();
        }
        self.duration.observe(seconds);
    }

    pub fn quota_rejected(&self, resource: &'static str) {
        let counted = self
            .quota_rejections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource)
            .map(Counter::inc);
        if counted.is_none() {
            self.quota_rejections
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(resource)
                .or_default()
                .inc();
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    fn set_usage(&self, usage: [(i64, i64); 7]) {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
    }
}

#[derive(Debug)]
struct Set {
    tenants: HashMap<TenantId, Series>,
    /// Tracked tenants outside the allow list (at most K).
    ranked: usize,
}

/// The tracked set and its counters. See the module docs.
#[derive(Debug)]
pub struct TenantSeries {
    per_tenant: bool,
    k: usize,
    stripes: Box<[Mutex<Stripe>]>,
    set: RwLock<Set>,
    /// The smallest score among the ranked tenants when K are tracked; 0
    /// while there is room. Never above the true minimum.
    threshold: AtomicU64,
    other: Series,
    none: Series,
}

impl TenantSeries {
    /// `per_tenant = false`: every tenant is `other`.
    #[must_use]
    pub fn new(per_tenant: bool, k: usize, allow: &[TenantId]) -> Self {
        let counters = MIN_COUNTERS.max(COUNTERS_PER_SERIES.saturating_mul(k));
        let per_stripe = counters.div_ceil(STRIPES);
        let tenants = if per_tenant {
            allow
                .iter()
                .map(|t| (*t, Series::new(t.to_string(), true)))
                .collect()
        } else {
            HashMap::new()
        };
        Self {
            per_tenant,
            k,
            stripes: (0..STRIPES)
                .map(|_| Mutex::new(Stripe::new(per_stripe)))
                .collect(),
            set: RwLock::new(Set { tenants, ranked: 0 }),
            threshold: AtomicU64::new(0),
            other: Series::new(OTHER.to_owned(), true),
            none: Series::new(NONE.to_owned(), true),
        }
    }

    /// The counters kept in all (the memory bound).
    #[must_use]
    pub fn counter_capacity(&self) -> usize {
        self.stripes
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).capacity)
            .sum()
    }

    fn stripe(&self, tenant: TenantId) -> &Mutex<Stripe> {
        let bits = tenant.as_uuid().as_u128();
        let folded = (bits ^ (bits >> 64)) % (STRIPES as u128);
        let index = usize::try_from(folded).unwrap_or(0);
        &self.stripes[index]
    }

    /// Counts one request of `tenant` towards the ranking (once per
    /// request, when its tenant is verified), entering it into the tracked
    /// set if it has earned its place.
    pub fn rank(&self, tenant: TenantId) {
        self.counted(Some(tenant), |_| ());
    }

    /// `f` with the series of one request of `tenant` (`None`: no tenant
    /// principal), counting the request towards the ranking.
    pub fn counted<R>(&self, tenant: Option<TenantId>, f: impl FnOnce(&Series) -> R) -> R {
        let Some(tenant) = tenant else {
            return f(&self.none);
        };
        if !self.per_tenant {
            return f(&self.other);
        }
        let score = self
            .stripe(tenant)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(tenant);
        {
            let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = set.tenants.get(&tenant) {
                if !series.pinned {
                    series.score.fetch_max(score, Ordering::Relaxed);
                }
                return f(series);
            }
            let room = set.ranked < self.k;
            if !room && score <= self.threshold.load(Ordering::Relaxed) {
                return f(&self.other);
            }
        }
        self.promote(tenant, score);
        self.of(Some(tenant), f)
    }

    /// `f` with the series `tenant` is counted under now (no counting).
    pub fn of<R>(&self, tenant: Option<TenantId>, f: impl FnOnce(&Series) -> R) -> R {
        let Some(tenant) = tenant else {
            return f(&self.none);
        };
        if !self.per_tenant {
            return f(&self.other);
        }
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        match set.tenants.get(&tenant) {
            Some(series) => f(series),
            None => f(&self.other),
        }
    }

    /// Under the write lock: enter `tenant` if there is room or it beats
    /// the lowest ranked tenant (evicted with all its series).
    fn promote(&self, tenant: TenantId, score: u64) {
        if self.k == 0 {
            return;
        }
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        if set.tenants.contains_key(&tenant) {
            return;
        }
        if set.ranked >= self.k {
            let lowest = set
                .tenants
                .iter()
                .filter(|(_, s)| !s.pinned)
                .min_by_key(|(_, s)| s.score.load(Ordering::Relaxed))
                .map(|(t, s)| (*t, s.score.load(Ordering::Relaxed)));
            let Some((victim, min)) = lowest else {
                return;
            };
            if score <= min {
                self.threshold.store(min, Ordering::Relaxed);
                return;
            }
            set.tenants.remove(&victim);
            set.ranked -= 1;
        }
        let series = Series::new(tenant.to_string(), false);
        series.score.store(score, Ordering::Relaxed);
        set.tenants.insert(tenant, series);
        set.ranked += 1;
        let threshold = if set.ranked >= self.k {
            set.tenants
                .values()
                .filter(|s| !s.pinned)
                .map(|s| s.score.load(Ordering::Relaxed))
                .min()
                .unwrap_or(0)
        } else {
            0
        };
        self.threshold.store(threshold, Ordering::Relaxed);
    }

    /// The tenants tracked now (allow list included).
    #[must_use]
    pub fn tracked(&self) -> Vec<TenantId> {
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        set.tenants.keys().copied().collect()
    }

    /// Usage and limits of tracked tenants (others in `rows` are ignored:
    /// they left the set since the refresher read it).
    pub fn set_usage(&self, rows: impl IntoIterator<Item = (TenantId, [(i64, i64); 7])>) {
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        for (tenant, usage) in rows {
            if let Some(series) = set.tenants.get(&tenant) {
                series.set_usage(usage);
            }
        }
    }

    /// Writes every per-tenant family.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        let all: Vec<&Series> = set
            .tenants
            .values()
            .chain([&self.other, &self.none])
            .collect();
        {
            let mut family = encoder.encode_descriptor(
                "http_requests",
                "Requests answered, by tenant (tracked set, other, none), route template and status class",
                None,
                MetricType::Counter,
            )?;
            for series in &all {
                let routes = series
                    .requests
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                for (route, counters) in routes.iter() {
                    for (class, counter) in CLASSES.iter().zip(counters) {
                        let n = counter.get();
                        if n == 0 {
                            continue;
                        }
                        let labels = RequestLabels {
                            tenant: series.label.clone(),
                            route: route.clone(),
                            status_class: class,
                        };
                        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "http_request_duration_seconds",
                "Request latency, by tenant (tracked set, other, none)",
                None,
                MetricType::Histogram,
            )?;
            for series in &all {
                let labels = TenantLabel {
                    tenant: series.label.clone(),
                };
                series.duration.encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "quota_rejections",
                "Provisioning requests refused with quota_exceeded, by tenant and resource",
                None,
                MetricType::Counter,
            )?;
            for series in &all {
                let rejections = series
                    .quota_rejections
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                for (resource, counter) in rejections.iter() {
                    let labels = ResourceLabels {
                        tenant: series.label.clone(),
                        resource,
                    };
                    ConstCounter::new(counter.get()).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "rate_limited",
                "Requests answered 429 by the tenant rate limit, by tenant",
                None,
                MetricType::Counter,
            )?;
            for series in &all {
                let n = series.rate_limited.get();
                if n == 0 {
                    continue;
                }
                let labels = TenantLabel {
                    tenant: series.label.clone(),
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let usage: Vec<(&str, [(i64, i64); 7])> = set
            .tenants
            .values()
            .filter_map(|s| {
                let usage = *s.usage.lock().unwrap_or_else(PoisonError::into_inner);
                usage.map(|u| (s.label.as_str(), u))
            })
            .collect();
        for (name, help, pick) in [
            (
                "tenant_quota_used",
                "A tracked tenant's usage, by resource (memory and storage in bytes)",
                0usize,
            ),
            (
                "tenant_quota_limit",
                "A tracked tenant's limit, by resource (memory and storage in bytes)",
                1,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (tenant, values) in &usage {
                for (resource, (used, limit)) in USAGE_RESOURCES.iter().zip(values) {
                    let value = if pick == 0 { *used } else { *limit };
                    let labels = ResourceLabels {
                        tenant: (*tenant).to_owned(),
                        resource,
                    };
                    ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: String,
    route: String,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    tenant: String,
    resource: &'static str,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn labels(series: &TenantSeries) -> HashSet<String> {
        let set = series.set.read().unwrap();
        set.tenants.values().map(|s| s.label.clone()).collect()
    }

    fn requests(series: &TenantSeries, tenant: Option<TenantId>) {
        series.counted(tenant, |s| s.request("/v1/users", 200, 0.001));
    }

    fn total(series: &Series) -> u64 {
        series
            .requests
            .read()
            .unwrap()
            .values()
            .flat_map(|c| c.iter().map(Counter::get))
            .sum()
    }

    #[test]
    fn a_stripe_keeps_at_most_its_capacity_and_lower_bounds_hold() {
        let mut stripe = Stripe::new(4);
        let hot = TenantId::new();
        for _ in 0..100 {
            stripe.observe(hot);
        }
        let mut last = 0;
        // 200 requests, 4 counters: any tenant with more than 50 stays.
        for _ in 0..100 {
            last = stripe.observe(TenantId::new());
            assert!(stripe.entries.len() <= 4);
        }
        // A newcomer is guaranteed only its own request.
        assert_eq!(last, 1);
        // The heavy hitter survives a flood of one-off tenants, exactly.
        let c = stripe.entries[&hot];
        assert_eq!(c.count - c.error, 100);
        assert_eq!(stripe.observe(hot), 101);
    }

    #[test]
    fn the_set_is_bounded_with_many_tenants_and_keeps_the_hot_ones() {
        let k = 5;
        let allowed = TenantId::new();
        let series = TenantSeries::new(true, k, &[allowed]);
        let hot: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
        let mut sent = 0u64;
        for round in 0..20_000u64 {
            // 10,000 one-off tenants, interleaved with the hot ones.
            requests(&series, Some(TenantId::new()));
            sent += 1;
            if round % 10 == 0 {
                for t in &hot {
                    requests(&series, Some(*t));
                    sent += 1;
                }
            }
            let set = series.set.read().unwrap();
            assert!(set.tenants.len() <= k + 1, "{}", set.tenants.len());
            assert!(set.ranked <= k);
        }
        requests(&series, Some(allowed));
        requests(&series, None);
        sent += 1;
        let tracked = labels(&series);
        assert!(tracked.contains(&allowed.to_string()));
        for t in &hot {
            assert!(tracked.contains(&t.to_string()), "hot tenant {t} untracked");
        }
        // Nothing lost: every request is in some series.
        let set = series.set.read().unwrap();
        let counted: u64 = set.tenants.values().map(total).sum::<u64>() + total(&series.other);
        assert_eq!(counted, sent);
        assert_eq!(total(&series.none), 1);
        assert!(series.counter_capacity() <= MIN_COUNTERS + STRIPES);
    }

    #[test]
    fn an_evicted_tenant_loses_every_series_and_counts_as_other_afterwards() {
        let series = TenantSeries::new(true, 1, &[]);
        let (a, b) = (TenantId::new(), TenantId::new());
        requests(&series, Some(a));
        series.of(Some(a), |s| {
            s.rate_limited();
            s.quota_rejected("users");
        });
        series.set_usage([(a, [(1, 2); 7])]);
        assert_eq!(labels(&series), HashSet::from([a.to_string()]));
        // b overtakes a (2 guaranteed requests > 1).
        requests(&series, Some(b));
        requests(&series, Some(b));
        assert_eq!(labels(&series), HashSet::from([b.to_string()]));
        // a's later request goes to other; its old series are gone.
        requests(&series, Some(a));
        series.of(Some(a), Series::rate_limited);
        assert_eq!(series.other.rate_limited.get(), 1);
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::with_prefix("tenantry");
        registry.register_collector(Box::new(std::sync::Arc::new(series)));
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains(&a.to_string()), "{text}");
        assert!(text.contains(&format!("tenant=\"{b}\"")), "{text}");
    }

    #[test]
    fn off_every_tenant_is_other_and_nothing_is_tracked() {
        let allowed = TenantId::new();
        let series = TenantSeries::new(false, 10, &[allowed]);
        for _ in 0..10 {
            requests(&series, Some(TenantId::new()));
        }
        requests(&series, Some(allowed));
        assert!(series.tracked().is_empty());
        assert_eq!(total(&series.other), 11);
    }

    #[test]
    fn k_zero_tracks_only_the_allow_list() {
        let allowed = TenantId::new();
        let series = TenantSeries::new(true, 0, &[allowed]);
        for _ in 0..10 {
            requests(&series, Some(TenantId::new()));
        }
        requests(&series, Some(allowed));
        assert_eq!(series.tracked(), vec![allowed]);
        assert_eq!(total(&series.other), 10);
    }

    #[test]
    fn status_classes_and_routes_are_separate_series() {
        let series = TenantSeries::new(true, 1, &[]);
        let t = TenantId::new();
        series.counted(Some(t), |s| s.request("/v1/users/{id}", 404, 0.2));
        series.counted(Some(t), |s| s.request("/v1/users/{id}", 200, 0.2));
        series.counted(Some(t), |s| s.request("/v1/users", 503, 0.2));
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::with_prefix("tenantry");
        registry.register_collector(Box::new(std::sync::Arc::new(series)));
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            format!(
                "tenantry_http_requests_total{{tenant=\"{t}\",route=\"/v1/users/{{id}}\",status_class=\"4xx\"}} 1"
            ),
            format!(
                "tenantry_http_requests_total{{tenant=\"{t}\",route=\"/v1/users/{{id}}\",status_class=\"2xx\"}} 1"
            ),
            format!(
                "tenantry_http_requests_total{{tenant=\"{t}\",route=\"/v1/users\",status_class=\"5xx\"}} 1"
            ),
            format!("tenantry_http_request_duration_seconds_count{{tenant=\"{t}\"}} 3"),
            format!(
                "tenantry_http_request_duration_seconds_bucket{{le=\"0.25\",tenant=\"{t}\"}} 3"
            ),
        ] {
            assert!(text.contains(&line), "{line} missing: {text}");
        }
    }
}
