//! Request rate limits (governor), decided BEFORE any database work: a
//! throttled request never takes a pooled connection.
//!
//! - [`RateLimits`]: per tenant, keyed by the VERIFIED token's tenant —
//!   never by IP or an unverified header — at that tenant's own
//!   `requests_per_second` and `burst`. The limits are cached here with the
//!   stamp of the tenant's registry row; every admitted request's gate reads
//!   that row anyway, and rereads the limits when its stamp moved (a change
//!   of limits moves it: [`RateLimits::learn_stamped`]), so a change reaches
//!   this process with the next admitted request. For a tenant not seen yet, one request goes ahead and
//!   learns the limits while the tenant's other requests wait for it (at
//!   most [`LEARN_WAIT`], holding no connection), so a flood cannot get past
//!   the limit on a cold cache either.
//! - [`KeyedLimits`]: a fixed rate per key, for what comes before a tenant
//!   is known: the API-key exchange (per key id, i.e. per key prefix) and
//!   the unauthenticated routes (per client address).
//!
//! Limiter state is per process: with N replicas behind a balancer a tenant
//! gets up to N times its rate. Every map is a bounded cache (moka,
//! [`MAX_ENTRIES`]) whose entries expire once idle, so memory stays bounded
//! however many keys there are.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tenantry_core::TenantId;

/// How long a tenant's requests wait for its first request to learn its
/// limits; past it, they are decided at the default limits.
pub const LEARN_WAIT: Duration = Duration::from_secs(1);

/// Entries a map keeps at most. Past it the cache evicts (TinyLFU: keys
/// seen often stay, a flood of new keys does not push them out); an
/// evicted key starts over with a fresh burst when it comes back.
pub const MAX_ENTRIES: u64 = 200_000;

/// A rate: requests per second (0 = unlimited) and burst (0 = the rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// From the database's columns; negative values read as 0.
    #[must_use]
    pub fn from_columns(requests_per_second: i32, burst: i32) -> Self {
        Self {
            per_second: u32::try_from(requests_per_second).unwrap_or(0),
            burst: u32::try_from(burst).unwrap_or(0),
        }
    }

    fn limiter(self) -> Option<DefaultDirectRateLimiter> {
        let rps = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst).unwrap_or(rps);
        Some(DefaultDirectRateLimiter::direct(
            Quota::per_second(rps).allow_burst(burst),
        ))
    }
}

struct Entry {
    rate: Rate,
    /// `None`: unlimited.
    limiter: Option<DefaultDirectRateLimiter>,
    /// `false` while the rate is only the default, and one request is
    /// learning the tenant's own (since `created_ms`).
    learned: bool,
    /// When the current learner started (a new one takes over after
    /// [`LEARN_WAIT`], keeping this limiter's budget).
    created_ms: AtomicU64,
    /// Wakes the requests waiting for the rate to be learned.
    notify: Arc<tokio::sync::Notify>,
    /// When the tenant's registry row last changed, as the gate read it
    /// with these limits ([`NO_STAMP`]: not known). A gate that reads
    /// another stamp reads the limits again.
    stamp: AtomicI64,
}

/// No stamp: the next gate reads the limits.
const NO_STAMP: i64 = i64::MIN;

impl Entry {
    fn new(rate: Rate, learned: bool, now_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            rate,
            limiter: rate.limiter(),
            learned,
            created_ms: AtomicU64::new(now_ms),
            notify: Arc::new(tokio::sync::Notify::new()),
            stamp: AtomicI64::new(NO_STAMP),
        })
    }
}

/// Why a request was refused and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: u32,
    pub retry_after: Duration,
}

/// Limiter state per key: a bounded cache (moka) whose entries expire once
/// idle (no request of the key) for `idle`.
struct Limiters<K> {
    entries: moka::sync::Cache<K, Arc<Entry>>,
    started: Instant,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Limiters<K> {
    fn new(idle: Duration, capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The key's entry (a read: it is not idle any more).
    fn get(&self, key: &K) -> Option<Arc<Entry>> {
        self.entries.get(key)
    }

    /// The key's entry, made by `make` if there is none (`true`: it was).
    fn get_or_insert(&self, key: &K, make: impl FnOnce() -> Arc<Entry>) -> (Arc<Entry>, bool) {
        let entry = self.entries.entry(key.clone()).or_insert_with(make);
        let fresh = entry.is_fresh();
        (entry.into_value(), fresh)
    }

    fn insert(&self, key: &K, entry: Arc<Entry>) {
        self.entries.insert(key.clone(), entry);
    }

    fn check(&self, entry: &Entry) -> Result<(), Limited> {
        let Some(limiter) = &entry.limiter else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| Limited {
            limit: entry.rate.per_second,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Drops idle and evicted entries now; returns how many remain.
    fn prune(&self) -> usize {
        self.entries.run_pending_tasks();
        usize::try_from(self.entries.entry_count()).unwrap_or(usize::MAX)
    }
}

/// Per-tenant limits, from the cached rate of each tenant.
pub struct RateLimits {
    limiters: Limiters<TenantId>,
    /// The rate of a tenant whose own limits this process has not read yet.
    default: Rate,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("tenants", &self.limiters.entries.entry_count())
            .field("default", &self.default)
            .finish()
    }
}

impl RateLimits {
    /// `idle`: how long a tenant's state is kept after its last request;
    /// `default`: the rate of a tenant not seen yet (the default quotas).
    #[must_use]
    pub fn new(idle: Duration, default: Rate) -> Self {
        Self::with_capacity(idle, default, MAX_ENTRIES)
    }

    /// As [`RateLimits::new`], keeping at most `capacity` tenants.
    #[must_use]
    pub fn with_capacity(idle: Duration, default: Rate, capacity: u64) -> Self {
        Self {
            limiters: Limiters::new(idle, capacity),
            default,
        }
    }

    /// One request of `tenant`, decided from the cached limits alone (no
    /// database work, no connection): at the tenant's cached rate, or, for
    /// a tenant not seen yet, at the default rate. A tenant's first request
    /// is admitted to learn its limits (the gate reports them:
    /// [`RateLimits::learn_stamped`]); its requests meanwhile wait for
    /// that, at most [`LEARN_WAIT`], holding no connection.
    pub async fn admit(&self, tenant: TenantId) -> Result<(), Limited> {
        let now = self.limiters.now_ms();
        let (entry, fresh) = self
            .limiters
            .get_or_insert(&tenant, || Entry::new(self.default, false, now));
        // Learned, or not seen before: this request learns.
        if entry.learned || fresh {
            return self.limiters.check(&entry);
        }
        let wait_ms = u64::try_from(LEARN_WAIT.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(entry.created_ms.load(Ordering::Relaxed)) >= wait_ms {
            // Its learner gave up (a slow database, a tenant that is gone):
            // this request learns, on the same default-rate budget — no
            // fresh burst every second.
            entry.created_ms.store(now, Ordering::Relaxed);
            return self.limiters.check(&entry);
        }
        // Registered before looking again: `learn` replaces the entry
        // before it notifies, so either this sees the learned entry or the
        // notification reaches it.
        let waiting = Arc::clone(&entry.notify).notified_owned();
        if let Some(current) = self.limiters.get(&tenant)
            && !Arc::ptr_eq(&current, &entry)
        {
            return self.limiters.check(&current);
        }
        let _ = tokio::time::timeout(LEARN_WAIT, waiting).await;
        let current = self.limiters.get(&tenant);
        self.limiters.check(&current.unwrap_or(entry))
    }

    /// The tenant's limits as its gate just read them (`None`: it has no
    /// quota row, so the default applies): if they differ from the cached
    /// ones (or were only the default so far), the tenant's limiter starts
    /// over at them; requests waiting for them go on.
    pub fn learn(&self, tenant: TenantId, rate: Option<Rate>) {
        self.learn_stamped(tenant, rate, None);
    }

    /// As [`RateLimits::learn`], remembering the registry row's `stamp`
    /// the limits were read with (see [`RateLimits::stamp`]).
    pub fn learn_stamped(&self, tenant: TenantId, rate: Option<Rate>, stamp: Option<i64>) {
        let rate = rate.unwrap_or(self.default);
        let stamp = stamp.unwrap_or(NO_STAMP);
        let previous = self.limiters.get(&tenant);
        if let Some(e) = &previous
            && e.learned
            && e.rate == rate
        {
            e.stamp.store(stamp, Ordering::Relaxed);
            return;
        }
        let fresh = Entry::new(rate, true, self.limiters.now_ms());
        fresh.stamp.store(stamp, Ordering::Relaxed);
        self.limiters.insert(&tenant, fresh);
        if let Some(e) = previous {
            e.notify.notify_waiters();
        }
    }

    /// The stamp the tenant's cached limits were read with, if they were
    /// learned from its gate: while the gate reads the same stamp, the
    /// limits have not changed (an admin's change of them also touches the
    /// registry row) and need not be read again.
    #[must_use]
    pub fn stamp(&self, tenant: TenantId) -> Option<i64> {
        self.limiters
            .get(&tenant)
            .filter(|e| e.learned)
            .map(|e| e.stamp.load(Ordering::Relaxed))
            .filter(|s| *s != NO_STAMP)
    }

    /// The cached rate of `tenant`, if any.
    #[must_use]
    pub fn cached(&self, tenant: TenantId) -> Option<Rate> {
        self.limiters.get(&tenant).map(|e| e.rate)
    }

    /// Drops the state of tenants idle for longer than `idle` (the cache
    /// also does so as it goes); returns how many tenants remain.
    pub fn prune(&self) -> usize {
        self.limiters.prune()
    }

    /// How many tenants have state (after dropping the idle ones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.limiters.prune()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One fixed rate for every key (an API key's id, a client address).
pub struct KeyedLimits<K> {
    limiters: Limiters<K>,
    rate: Rate,
}

impl<K> std::fmt::Debug for KeyedLimits<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimits")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedLimits<K> {
    #[must_use]
    pub fn new(idle: Duration, rate: Rate) -> Self {
        Self::with_capacity(idle, rate, MAX_ENTRIES)
    }

    /// As [`KeyedLimits::new`], keeping at most `capacity` keys.
    #[must_use]
    pub fn with_capacity(idle: Duration, rate: Rate, capacity: u64) -> Self {
        Self {
            limiters: Limiters::new(idle, capacity),
            rate,
        }
    }

    /// One request for `key`.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let now = self.limiters.now_ms();
        let (entry, _) = self
            .limiters
            .get_or_insert(key, || Entry::new(self.rate, true, now));
        self.limiters.check(&entry)
    }

    /// Drops idle state; returns how many keys remain.
    pub fn prune(&self) -> usize {
        self.limiters.prune()
    }
}

/// The key a client address is limited by: an IPv4 address, or an IPv6
/// address's /64 (one host usually holds a whole /64, and would otherwise
/// get a fresh budget per address).
#[must_use]
pub fn client_key(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    #[tokio::test]
    async fn a_tenant_gets_its_burst_then_waits() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(100, 100));
        let tenant = TenantId::new();
        limits.learn(tenant, Some(rate(1, 5)));
        for _ in 0..5 {
            assert!(limits.admit(tenant).await.is_ok());
        }
        let refused = limits.admit(tenant).await.unwrap_err();
        assert_eq!(refused.limit, 1);
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1)
        );
    }

    /// A cold cache: the first request learns; the others wait for it and
    /// are then decided at the tenant's own limits, not the default.
    #[tokio::test]
    async fn requests_of_an_unknown_tenant_wait_for_its_limits_to_be_learned() {
        let limits = Arc::new(RateLimits::new(Duration::from_secs(60), rate(1000, 1000)));
        let tenant = TenantId::new();
        assert!(limits.admit(tenant).await.is_ok(), "the learner goes ahead");
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let limits = Arc::clone(&limits);
                tokio::spawn(async move { limits.admit(tenant).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        limits.learn(tenant, Some(rate(1, 2)));
        let mut admitted = 0;
        for w in waiters {
            admitted += usize::from(w.await.unwrap().is_ok());
        }
        assert_eq!(admitted, 2, "only the learned burst gets through");
    }

    #[tokio::test]
    async fn a_learner_that_never_reports_holds_the_others_up_for_at_most_the_wait() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1000, 1000));
        let tenant = TenantId::new();
        assert!(limits.admit(tenant).await.is_ok());
        let started = std::time::Instant::now();
        assert!(limits.admit(tenant).await.is_ok(), "decided at the default");
        assert!(started.elapsed() < LEARN_WAIT + Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_changed_limit_is_learned_and_the_same_one_keeps_the_budget_spent() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1, 1));
        let tenant = TenantId::new();
        limits.learn(tenant, Some(rate(1, 1)));
        assert!(limits.admit(tenant).await.is_ok());
        limits.learn(tenant, Some(rate(1, 1)));
        assert!(limits.admit(tenant).await.is_err());
        limits.learn(tenant, Some(rate(1000, 1000)));
        assert!(limits.admit(tenant).await.is_ok());
        assert_eq!(limits.cached(tenant), Some(rate(1000, 1000)));
    }

    #[tokio::test]
    async fn tenants_do_not_share_a_budget() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1, 1));
        let (noisy, quiet) = (TenantId::new(), TenantId::new());
        limits.learn(noisy, Some(rate(1, 1)));
        for _ in 0..100 {
            let _ = limits.admit(noisy).await;
        }
        assert!(limits.admit(quiet).await.is_ok());
    }

    #[tokio::test]
    async fn the_stamp_says_whether_the_limits_must_be_read_again() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1, 1));
        let tenant = TenantId::new();
        assert_eq!(limits.stamp(tenant), None);
        limits.learn_stamped(tenant, Some(rate(5, 5)), Some(42));
        assert_eq!(limits.stamp(tenant), Some(42));
        // The same limits under a newer stamp keep the budget spent so far.
        assert!(limits.admit(tenant).await.is_ok());
        limits.learn_stamped(tenant, Some(rate(5, 5)), Some(43));
        assert_eq!(limits.stamp(tenant), Some(43));
        // A change made here (the admin API) forgets the stamp.
        limits.learn(tenant, Some(rate(7, 7)));
        assert_eq!(limits.stamp(tenant), None);
    }

    #[tokio::test]
    async fn a_tenant_without_a_quota_row_runs_at_the_default_not_unlimited() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1, 1));
        let tenant = TenantId::new();
        limits.learn(tenant, None);
        assert!(limits.admit(tenant).await.is_ok());
        assert!(limits.admit(tenant).await.is_err());
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            client_key(mapped),
            "192.0.2.7".parse::<std::net::IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let limits = RateLimits::new(Duration::from_secs(60), rate(1, 1));
        let tenant = TenantId::new();
        limits.learn(tenant, Some(rate(0, 0)));
        for _ in 0..1000 {
            assert!(limits.admit(tenant).await.is_ok());
        }
    }

    #[tokio::test]
    async fn idle_tenants_are_dropped_and_active_ones_kept() {
        let limits = RateLimits::new(Duration::from_millis(300), rate(10, 10));
        let idle: Vec<TenantId> = (0..1000).map(|_| TenantId::new()).collect();
        for t in &idle {
            limits.learn(*t, Some(rate(10, 10)));
        }
        let active = TenantId::new();
        limits.learn(active, Some(rate(1, 1)));
        assert!(limits.admit(active).await.is_ok());
        assert_eq!(limits.len(), 1001);
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Each request keeps the active tenant's state (and its spent
            // budget) from going idle.
            assert!(limits.admit(active).await.is_err());
        }
        assert_eq!(limits.prune(), 1, "only the active tenant remains");
        assert_eq!(limits.cached(active), Some(rate(1, 1)));
        assert_eq!(limits.cached(idle[0]), None);
    }

    #[tokio::test]
    async fn the_tenant_map_holds_its_bound_however_many_tenants_come() {
        let limits = RateLimits::with_capacity(Duration::from_secs(3600), rate(10, 10), 100);
        for _ in 0..5000 {
            let tenant = TenantId::new();
            limits.learn(tenant, Some(rate(10, 10)));
            assert!(limits.admit(tenant).await.is_ok());
        }
        let len = limits.len();
        assert!(len <= 100, "{len} tenants kept, over the bound of 100");
    }

    #[test]
    fn a_keyed_limit_holds_per_key_and_zero_turns_it_off() {
        let limits = KeyedLimits::new(Duration::from_secs(60), rate(1, 2));
        assert!(limits.check(&"a").is_ok());
        assert!(limits.check(&"a").is_ok());
        assert!(limits.check(&"a").is_err());
        assert!(limits.check(&"b").is_ok());
        let off = KeyedLimits::new(Duration::from_secs(60), rate(0, 0));
        for _ in 0..100 {
            assert!(off.check(&"a").is_ok());
        }
    }

    #[test]
    fn the_keyed_maps_are_capped() {
        let limits = KeyedLimits::with_capacity(Duration::from_secs(3600), rate(1, 1), 64);
        for i in 0..10_000_u32 {
            let _ = limits.check(&i);
        }
        let len = limits.prune();
        assert!(len <= 64, "{len} keys kept, over the bound of 64");
        assert!(len > 0);
    }
}
