//! Quotas: what is counted, and the pure "does it fit" rule. The atomic
//! check itself is one conditional UPDATE in the database; this module names
//! the resources and explains a refusal.

use std::fmt;

/// Bytes in one GB of the quotas (`max_memory_gb`, `max_storage_gb`, an
/// instance's `memory_gb`/`storage_gb`): a GB here is a gibibyte, 2^30
/// bytes, as memory sizes are. `/metrics` reports these resources in bytes.
pub const BYTES_PER_GB: i64 = 1 << 30;

/// Something a tenant's limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Users,
    ApiKeys,
    Clusters,
    Instances,
    CpuCores,
    MemoryGb,
    StorageGb,
}

impl Resource {
    pub const ALL: [Self; 7] = [
        Self::Users,
        Self::ApiKeys,
        Self::Clusters,
        Self::Instances,
        Self::CpuCores,
        Self::MemoryGb,
        Self::StorageGb,
    ];

    /// The usage column / `usage` key.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::ApiKeys => "api_keys",
            Self::Clusters => "clusters",
            Self::Instances => "instances",
            Self::CpuCores => "cpu_cores",
            Self::MemoryGb => "memory_gb",
            Self::StorageGb => "storage_gb",
        }
    }

    /// The limit's name (`max_…`).
    #[must_use]
    pub const fn limit_name(self) -> &'static str {
        match self {
            Self::Users => "max_users",
            Self::ApiKeys => "max_api_keys",
            Self::Clusters => "max_clusters",
            Self::Instances => "max_instances",
            Self::CpuCores => "max_cpu_cores",
            Self::MemoryGb => "max_memory_gb",
            Self::StorageGb => "max_storage_gb",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Amounts per resource: what a change asks for (negative gives back), or
/// what is used, or what is allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amounts([i64; 7]);

impl Amounts {
    #[must_use]
    pub fn get(&self, resource: Resource) -> i64 {
        self.0[resource as usize]
    }

    #[must_use]
    pub fn with(mut self, resource: Resource, amount: i64) -> Self {
        self.0[resource as usize] = amount;
        self
    }

    #[must_use]
    pub fn negated(self) -> Self {
        Self(self.0.map(|v| -v))
    }

    #[must_use]
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

/// A refusal: taking `requested` more of `resource` would pass `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: {used} used of {limit}, {requested} more requested")]
pub struct Exceeded {
    pub resource: Resource,
    pub limit: i64,
    pub used: i64,
    pub requested: i64,
}

/// Whether `requested` fits on top of `used` under `limits`; the first
/// resource that does not fit, in [`Resource::ALL`] order. Giving back
/// (negative or zero) always fits, even above a lowered limit.
pub fn fits(limits: &Amounts, used: &Amounts, requested: &Amounts) -> Result<(), Exceeded> {
    for resource in Resource::ALL {
        let (limit, used, requested) = (
            limits.get(resource),
            used.get(resource),
            requested.get(resource),
        );
        if requested > 0 && used.saturating_add(requested) > limit {
            return Err(Exceeded {
                resource,
                limit,
                used,
                requested,
            });
        }
    }
    Ok(())
}

/// Resources whose usage is above their limit (a limit lowered below usage).
#[must_use]
pub fn over_limit(limits: &Amounts, used: &Amounts) -> Vec<Resource> {
    Resource::ALL
        .into_iter()
        .filter(|r| used.get(*r) > limits.get(*r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Amounts {
        Resource::ALL
            .into_iter()
            .fold(Amounts::default(), |a, r| a.with(r, 10))
    }

    #[test]
    fn a_request_that_reaches_the_limit_exactly_fits() {
        let used = Amounts::default().with(Resource::CpuCores, 6);
        let ask = Amounts::default().with(Resource::CpuCores, 4);
        assert_eq!(fits(&limits(), &used, &ask), Ok(()));
    }

    #[test]
    fn one_over_names_the_resource_limit_usage_and_request() {
        let used = Amounts::default().with(Resource::CpuCores, 6);
        let ask = Amounts::default()
            .with(Resource::Instances, 1)
            .with(Resource::CpuCores, 5);
        assert_eq!(
            fits(&limits(), &used, &ask),
            Err(Exceeded {
                resource: Resource::CpuCores,
                limit: 10,
                used: 6,
                requested: 5
            })
        );
    }

    #[test]
    fn giving_back_always_fits_even_above_a_lowered_limit() {
        let used = Amounts::default().with(Resource::Users, 50);
        let ask = Amounts::default().with(Resource::Users, -1);
        assert_eq!(fits(&limits(), &used, &ask), Ok(()));
        assert_eq!(over_limit(&limits(), &used), vec![Resource::Users]);
    }

    #[test]
    fn huge_requests_do_not_overflow() {
        let used = Amounts::default().with(Resource::StorageGb, i64::MAX);
        let ask = Amounts::default().with(Resource::StorageGb, i64::MAX);
        assert!(fits(&limits(), &used, &ask).is_err());
    }

    #[test]
    fn resources_have_distinct_names() {
        let mut names: Vec<_> = Resource::ALL.iter().map(|r| r.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), Resource::ALL.len());
    }
}
