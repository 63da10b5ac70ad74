//! Per-tenant request rate limits (governor), keyed by the VERIFIED token's
//! tenant — never by IP or an unverified header — at that tenant's own
//! `requests_per_second` and `burst`. Limiter state is per process: with N
//! replicas behind a balancer a tenant gets up to N times its rate. Idle
//! tenants' state is pruned, so memory stays bounded however many tenants
//! there are.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tenantry_core::TenantId;

struct Entry {
    rate: (u32, u32),
    limiter: DefaultDirectRateLimiter,
    last_seen_ms: AtomicU64,
}

/// Why a request was refused and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: u32,
    pub retry_after: Duration,
}

pub struct RateLimits {
    entries: Mutex<HashMap<TenantId, Arc<Entry>>>,
    started: Instant,
    idle: Duration,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("tenants", &self.len())
            .finish()
    }
}

impl RateLimits {
    /// `idle`: how long a tenant's state is kept after its last request.
    #[must_use]
    pub fn new(idle: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            started: Instant::now(),
            idle,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One request of `tenant` at `requests_per_second` (0 = unlimited) with
    /// `burst`.
    pub fn check(
        &self,
        tenant: TenantId,
        requests_per_second: i32,
        burst: i32,
    ) -> Result<(), Limited> {
        let Some(rps) = u32::try_from(requests_per_second)
            .ok()
            .and_then(NonZeroU32::new)
        else {
            return Ok(());
        };
        let burst = u32::try_from(burst)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(rps);
        let rate = (rps.get(), burst.get());
        let entry = {
            let mut entries = match self.entries.lock() {
                Ok(entries) => entries,
                Err(poisoned) => poisoned.into_inner(),
            };
            let current = entries.get(&tenant).filter(|e| e.rate == rate).cloned();
            current.unwrap_or_else(|| {
                // New tenant, or its limits changed: start a fresh limiter.
                let fresh = Arc::new(Entry {
                    rate,
                    limiter: DefaultDirectRateLimiter::direct(
                        Quota::per_second(rps).allow_burst(burst),
                    ),
                    last_seen_ms: AtomicU64::new(0),
                });
                entries.insert(tenant, Arc::clone(&fresh));
                fresh
            })
        };
        entry.last_seen_ms.store(self.now_ms(), Ordering::Relaxed);
        entry.limiter.check().map_err(|not_until| Limited {
            limit: rps.get(),
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Drops the state of tenants idle for longer than `idle`; returns how
    /// many tenants remain.
    pub fn prune(&self) -> usize {
        let now = self.now_ms();
        let idle = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.retain(|_, e| now.saturating_sub(e.last_seen_ms.load(Ordering::Relaxed)) < idle);
        entries.len()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_its_burst_then_waits() {
        let limits = RateLimits::new(Duration::from_secs(60));
        let tenant = TenantId::new();
        for _ in 0..5 {
            assert!(limits.check(tenant, 1, 5).is_ok());
        }
        let refused = limits.check(tenant, 1, 5).unwrap_err();
        assert_eq!(refused.limit, 1);
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1)
        );
    }

    #[test]
    fn tenants_do_not_share_a_budget() {
        let limits = RateLimits::new(Duration::from_secs(60));
        let (noisy, quiet) = (TenantId::new(), TenantId::new());
        for _ in 0..100 {
            let _ = limits.check(noisy, 1, 1);
        }
        assert!(limits.check(quiet, 1, 1).is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_keeps_no_state() {
        let limits = RateLimits::new(Duration::from_secs(60));
        let tenant = TenantId::new();
        for _ in 0..1000 {
            assert!(limits.check(tenant, 0, 0).is_ok());
        }
        assert!(limits.is_empty());
    }

    #[test]
    fn a_changed_limit_takes_effect_at_once() {
        let limits = RateLimits::new(Duration::from_secs(60));
        let tenant = TenantId::new();
        assert!(limits.check(tenant, 1, 1).is_ok());
        assert!(limits.check(tenant, 1, 1).is_err());
        assert!(limits.check(tenant, 1000, 1000).is_ok());
    }

    #[test]
    fn state_for_a_hundred_thousand_idle_tenants_is_pruned() {
        let limits = RateLimits::new(Duration::ZERO);
        for _ in 0..100_000 {
            assert!(limits.check(TenantId::new(), 10, 10).is_ok());
        }
        assert_eq!(limits.len(), 100_000);
        assert_eq!(limits.prune(), 0);
        assert!(limits.is_empty());
    }
}
