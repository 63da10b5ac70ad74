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
//! gets up to N times its rate. Idle state is pruned, and every map is
//! capped, so memory stays bounded however many keys there are.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tenantry_core::TenantId;

/// How long a tenant's requests wait for its first request to learn its
/// limits; past it, they are decided at the default limits.
pub const LEARN_WAIT: Duration = Duration::from_secs(1);

/// Entries a map keeps at most; past it, idle ones are pruned, and if that
/// is not enough the map starts over (every key gets a fresh burst).
const MAX_ENTRIES: usize = 200_000;

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
    last_seen_ms: AtomicU64,
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
            last_seen_ms: AtomicU64::new(now_ms),
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

/// Limiter state per key, pruned when idle.
struct Limiters<K> {
    entries: Mutex<HashMap<K, Arc<Entry>>>,
    started: Instant,
    idle: Duration,
}

impl<K: Hash + Eq + Clone> Limiters<K> {
    fn new(idle: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            started: Instant::now(),
            idle,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Entry>>> {
        match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The key's entry; created at `rate` if there is none (`replace`:
    /// also when its rate is not `rate`).
    fn entry(&self, key: &K, rate: Rate, replace: bool) -> Arc<Entry> {
        let mut entries = self.lock();
        if let Some(e) = entries.get(key)
            && (!replace || e.rate == rate)
        {
            return Arc::clone(e);
        }
        self.insert(&mut entries, key, Entry::new(rate, true, self.now_ms()))
    }

    fn insert(
        &self,
        entries: &mut HashMap<K, Arc<Entry>>,
        key: &K,
        fresh: Arc<Entry>,
    ) -> Arc<Entry> {
        if entries.len() >= MAX_ENTRIES {
            let now = self.now_ms();
            let idle = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
            entries
                .retain(|_, e| now.saturating_sub(e.last_seen_ms.load(Ordering::Relaxed)) < idle);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.clone(), Arc::clone(&fresh));
        fresh
    }

    fn check(&self, entry: &Entry) -> Result<(), Limited> {
        entry.last_seen_ms.store(self.now_ms(), Ordering::Relaxed);
        let Some(limiter) = &entry.limiter else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| Limited {
            limit: entry.rate.per_second,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    fn prune(&self) -> usize {
        let now = self.now_ms();
        let idle = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        let mut entries = self.lock();
        entries.retain(|_, e| now.saturating_sub(e.last_seen_ms.load(Ordering::Relaxed)) < idle);
        entries.len()
    }

    fn len(&self) -> usize {
        self.lock().len()
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
            .field("tenants", &self.len())
            .field("default", &self.default)
            .finish()
    }
}

impl RateLimits {
    /// `idle`: how long a tenant's state is kept after its last request;
    /// `default`: the rate of a tenant not seen yet (the default quotas).
    #[must_use]
    pub fn new(idle: Duration, default: Rate) -> Self {
        Self {
            limiters: Limiters::new(idle),
            default,
        }
    }

    /// One request of `tenant`, decided from the cached limits alone (no
    /// database work). A tenant's first request is admitted to learn its
    /// limits; its requests meanwhile wait for that, at most [`LEARN_WAIT`].
    pub async fn admit(&self, tenant: TenantId) -> Result<(), Limited> {
        let (entry, waiting) = {
            let mut entries = self.limiters.lock();
            let now = self.limiters.now_ms();
            let wait_ms = u64::try_from(LEARN_WAIT.as_millis()).unwrap_or(u64::MAX);
            match entries.get(&tenant) {
                Some(e) if e.learned => (Arc::clone(e), None),
                Some(e) if now.saturating_sub(e.created_ms.load(Ordering::Relaxed)) < wait_ms => {
                    // Registered before the lock is released: `learn`
                    // cannot notify in between unseen.
                    let waiting = Arc::clone(&e.notify).notified_owned();
                    (Arc::clone(e), Some(waiting))
                }
                // Its learner gave up (a slow database, a tenant that is
                // gone): this request learns, on the same default-rate
                // budget — no fresh burst every second.
                Some(e) => {
                    e.created_ms.store(now, Ordering::Relaxed);
                    (Arc::clone(e), None)
                }
                // Not seen: this request learns.
                None => {
                    let fresh = Entry::new(self.default, false, now);
                    let entry = self.limiters.insert(&mut entries, &tenant, fresh);
                    (entry, None)
                }
            }
        };
        let Some(waiting) = waiting else {
            return self.limiters.check(&entry);
        };
        let _ = tokio::time::timeout(LEARN_WAIT, waiting).await;
        let current = self.limiters.lock().get(&tenant).cloned();
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
        let mut entries = self.limiters.lock();
        let previous = entries.get(&tenant).cloned();
        if let Some(e) = &previous
            && e.learned
            && e.rate == rate
        {
            e.stamp.store(stamp, Ordering::Relaxed);
            return;
        }
        let now = self.limiters.now_ms();
        let fresh = Entry::new(rate, true, now);
        fresh.stamp.store(stamp, Ordering::Relaxed);
        self.limiters.insert(&mut entries, &tenant, fresh);
        drop(entries);
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
            .lock()
            .get(&tenant)
            .filter(|e| e.learned)
            .map(|e| e.stamp.load(Ordering::Relaxed))
            .filter(|s| *s != NO_STAMP)
    }

    /// The cached rate of `tenant`, if any.
    #[must_use]
    pub fn cached(&self, tenant: TenantId) -> Option<Rate> {
        self.limiters.lock().get(&tenant).map(|e| e.rate)
    }

    /// Drops the state of tenants idle for longer than `idle`; returns how
    /// many tenants remain.
    pub fn prune(&self) -> usize {
        self.limiters.prune()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.limiters.len()
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

impl<K: Hash + Eq + Clone> KeyedLimits<K> {
    #[must_use]
    pub fn new(idle: Duration, rate: Rate) -> Self {
        Self {
            limiters: Limiters::new(idle),
            rate,
        }
    }

    /// One request for `key`.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let entry = self.limiters.entry(key, self.rate, false);
        self.limiters.check(&entry)
    }

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
    async fn state_for_a_hundred_thousand_idle_tenants_is_pruned() {
        let limits = RateLimits::new(Duration::ZERO, rate(10, 10));
        for _ in 0..100_000 {
            limits.learn(TenantId::new(), Some(rate(10, 10)));
        }
        assert_eq!(limits.len(), 100_000);
        assert_eq!(limits.prune(), 0);
        assert!(limits.is_empty());
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
    fn the_maps_are_capped() {
        let limits = KeyedLimits::new(Duration::from_secs(3600), rate(1, 1));
        for i in 0..(MAX_ENTRIES + 10) {
            let _ = limits.check(&i);
        }
        assert!(limits.limiters.len() <= MAX_ENTRIES);
    }
}
