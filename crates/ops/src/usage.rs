//! Usage history for billing (issue #17): the sampler that closes each
//! period for every tenant, the retention that prunes it, and the reports —
//! a tenant's own (`GET /v1/usage`), one tenant's for an admin, and the
//! finance export across tenants. The counters are written by the quota
//! charge itself (`queries::quotas::consume`), in its transaction.
//!
//! A period is `[usage] interval` long, aligned to UTC boundaries; its
//! sample is the usage at its end, exact however late it is taken (see
//! `tenantry_db::queries::usage`). The sampler runs a short grace after
//! each boundary so that a charge that began just before it has committed.

use std::time::Duration;
use tenantry_db::Conn;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tenantry_core::TenantId;
use tenantry_db::queries::usage::{self as history, ORIGIN_UNIX, Range};
use tenantry_db::{ScopedFutureExt, queries};

use crate::tenants::resolve;
use crate::views::{Granularity, UsagePeriodView, UsageReportView};
use crate::{Error, Operations, Page};

/// `[usage]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    /// Whether `serve` samples (every replica may: a period is written once).
    pub enabled: bool,
    /// The period: how often the usage is sampled, aligned to UTC; it must
    /// divide a day (1h, 15m, 1d, …).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long the history is kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(3600),
            retention: Duration::from_secs(400 * 86_400),
        }
    }
}

impl UsageSettings {
    /// Refused unless the interval is whole seconds dividing a day, and the
    /// retention at least one interval.
    pub fn validate(&self) -> Result<(), String> {
        let secs = self.interval.as_secs();
        if self.interval.subsec_nanos() != 0 || secs == 0 || 86_400 % secs != 0 {
            return Err(format!(
                "usage.interval {} must be whole seconds that divide a day (e.g. 1h, 15m, 1d)",
                humantime::format_duration(self.interval)
            ));
        }
        if self.retention < self.interval {
            return Err("usage.retention must be at least usage.interval".to_owned());
        }
        Ok(())
    }

    /// The interval in seconds (at least 1).
    #[must_use]
    pub fn interval_secs(&self) -> i64 {
        i64::try_from(self.interval.as_secs())
            .unwrap_or(86_400)
            .max(1)
    }

    /// How long after a boundary the sampler runs: a tenth of the
    /// interval, at most 5 s.
    #[must_use]
    pub fn grace(&self) -> Duration {
        (self.interval / 10).min(Duration::from_secs(5))
    }

    /// The start of the period `at` is in.
    #[must_use]
    pub fn period_of(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let secs = self.interval_secs();
        let since = at.timestamp() - ORIGIN_UNIX;
        from_unix(ORIGIN_UNIX + since - since.rem_euclid(secs))
    }

    /// When the sampler should next run after `now`: the next boundary
    /// plus the grace.
    #[must_use]
    pub fn next_run(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let next = self.period_of(now) + chrono::Duration::seconds(self.interval_secs());
        let grace = chrono::Duration::from_std(self.grace()).unwrap_or_default();
        if self.period_of(now) + grace > now {
            self.period_of(now) + grace
        } else {
            next + grace
        }
    }
}

fn from_unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The most buckets one tenant's report holds.
pub const MAX_BUCKETS: i64 = 1000;
/// How far back a report reaches by default.
const DEFAULT_SPAN: chrono::Duration = chrono::Duration::hours(24);

/// A parsed `?from=&to=&granularity=`: the periods starting in
/// `[from, to)`, aggregated to `granularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    bucket_secs: i64,
}

impl Window {
    /// From the query's text: RFC 3339 times (default: the 24 hours before
    /// `now`, or the last [`MAX_BUCKETS`] periods when they are shorter),
    /// `period`, `hour` (the default) or `day`. Refused: a time
    /// that does not parse, `from` not before `to`, or a range of more than
    /// [`MAX_BUCKETS`] periods of the granularity.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        settings: &UsageSettings,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let time = |field: &'static str, text: &str| {
            if text.len() > 64 {
                return Err(Error::validation(field, "is not an RFC 3339 time"));
            }
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Error::validation(field, "is not an RFC 3339 time (2026-01-31T00:00:00Z)")
                })
        };
        let to = match to.filter(|t| !t.is_empty()) {
            Some(t) => time("to", t)?,
            None => now,
        };
        let granularity = match granularity.filter(|g| !g.is_empty()) {
            None | Some("hour") => Granularity::Hour,
            Some("day") => Granularity::Day,
            Some("period") => Granularity::Period,
            Some(_) => {
                return Err(Error::validation(
                    "granularity",
                    "must be one of hour, day, period",
                ));
            }
        };
        let bucket_secs = match granularity {
            Granularity::Period => settings.interval_secs(),
            Granularity::Hour => 3600,
            Granularity::Day => 86_400,
        };
        let from = match from.filter(|t| !t.is_empty()) {
            Some(t) => time("from", t)?,
            // The last day, or as many periods as a report holds.
            None => to - DEFAULT_SPAN.min(chrono::Duration::seconds(bucket_secs * MAX_BUCKETS)),
        };
        if from >= to {
            return Err(Error::validation("from", "must be before to"));
        }
        let span = (to - from).num_seconds();
        let buckets = span / bucket_secs + i64::from(span % bucket_secs != 0);
        if buckets > MAX_BUCKETS {
            return Err(Error::validation(
                "to",
                format!(
                    "the range holds {buckets} periods of a {}; at most {MAX_BUCKETS}: narrow it or choose a coarser granularity",
                    granularity.as_str()
                ),
            ));
        }
        Ok(Self {
            from,
            to,
            granularity,
            bucket_secs,
        })
    }

    fn range(&self, limit: i64) -> Range {
        Range {
            from: self.from,
            to: self.to,
            // Whole seconds, exactly representable.
            #[expect(clippy::cast_precision_loss, reason = "at most 86400")]
            bucket_secs: self.bucket_secs as f64,
            limit,
        }
    }

    fn report(
        &self,
        settings: &UsageSettings,
        buckets: Vec<history::Bucket>,
        next_cursor: Option<String>,
    ) -> UsageReportView {
        UsageReportView {
            from: self.from,
            to: self.to,
            granularity: self.granularity,
            interval_seconds: settings.interval_secs(),
            items: buckets
                .into_iter()
                .map(|b| UsagePeriodView::new(b, self.bucket_secs))
                .collect(),
            next_cursor,
        }
    }
}

/// The tenant's own history (tenant plane, in the caller's transaction).
pub async fn own(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    window: &Window,
    settings: &UsageSettings,
) -> Result<UsageReportView, Error> {
    let buckets = history::buckets(conn, &[tenant], window.range(MAX_BUCKETS)).await?;
    Ok(window.report(settings, buckets, None))
}

/// One tenant's history, by id or slug (admin plane).
pub async fn of_tenant(
    ops: &Operations,
    key: &str,
    window: Window,
) -> Result<UsageReportView, Error> {
    let settings = ops.tenancy.usage.clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let tenant = resolve(conn, key).await?.id;
                let buckets = history::buckets(conn, &[tenant], window.range(MAX_BUCKETS)).await?;
                Ok(window.report(&settings, buckets, None))
            }
            .scope_boxed()
        })
        .await
}

/// The finance export: every tenant's history in the window, a page of
/// `page.limit` tenants at a time (by id, after `page.after`; a tenant
/// without history in the window has no items).
pub async fn export(
    ops: &Operations,
    window: Window,
    page: Page,
) -> Result<UsageReportView, Error> {
    let settings = ops.tenancy.usage.clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let mut tenants = history::tenants(conn, page.after, page.limit + 1).await?;
                let more = tenants.len() > usize::try_from(page.limit).unwrap_or(usize::MAX);
                tenants.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
                let next = more
                    .then(|| tenants.last())
                    .flatten()
                    .map(|t| tenantry_core::Cursor::after(*t.as_uuid()).encode());
                let buckets = if tenants.is_empty() {
                    Vec::new()
                } else {
                    let limit = MAX_BUCKETS.saturating_mul(page.limit);
                    history::buckets(conn, &tenants, window.range(limit)).await?
                };
                Ok(window.report(&settings, buckets, next))
            }
            .scope_boxed()
        })
        .await
}

/// What one run of the sampler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleReport {
    /// Each period closed in this run (its start) and how many tenants it
    /// sampled (0: already sampled, by this or another replica).
    pub periods: Vec<(DateTime<Utc>, usize)>,
    /// Periods older than the retention removed.
    pub pruned: usize,
}

/// Closes the last `periods` periods that ended at least a grace ago (by
/// the database's clock), oldest first, each in one statement for every
/// tenant, and prunes what is past the retention. Idempotent.
pub async fn sample(ops: &Operations, periods: u32) -> Result<SampleReport, Error> {
    let settings = ops.tenancy.usage.clone();
    ops.db
        .platform()
        .run(|conn| {
            async move {
                let now = queries::usage::clock(conn).await?;
                let grace = chrono::Duration::from_std(settings.grace()).unwrap_or_default();
                let step = chrono::Duration::seconds(settings.interval_secs());
                // The latest period whose end is a grace ago.
                let last_end = settings.period_of(now - grace);
                let mut report = SampleReport::default();
                for back in (1..=i32::try_from(periods.max(1)).unwrap_or(1)).rev() {
                    let end = last_end - step * (back - 1);
                    let start = end - step;
                    let sampled = history::sample(conn, start, end).await?;
                    report.periods.push((start, sampled));
                }
                let keep =
                    chrono::Duration::from_std(settings.retention).unwrap_or(chrono::Duration::MAX);
                report.pruned = history::prune(conn, now - keep).await?;
                Ok(report)
            }
            .scope_boxed()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secs: u64) -> UsageSettings {
        UsageSettings {
            interval: Duration::from_secs(secs),
            ..UsageSettings::default()
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_are_aligned_to_utc_boundaries() {
        let hourly = settings(3600);
        assert_eq!(
            hourly.period_of(at("2026-03-01T10:59:59+02:00")),
            at("2026-03-01T08:00:00Z")
        );
        assert_eq!(
            hourly.next_run(at("2026-03-01T08:30:00Z")),
            at("2026-03-01T09:00:05Z")
        );
        assert_eq!(
            hourly.next_run(at("2026-03-01T09:00:01Z")),
            at("2026-03-01T09:00:05Z")
        );
        assert_eq!(
            settings(86_400).period_of(at("2026-03-01T23:00:00Z")),
            at("2026-03-01T00:00:00Z")
        );
    }

    #[test]
    fn an_interval_must_divide_a_day() {
        assert!(settings(3600).validate().is_ok());
        assert!(settings(2).validate().is_ok());
        assert!(settings(7 * 3600).validate().is_err());
        assert!(settings(0).validate().is_err());
    }

    #[test]
    fn a_window_defaults_to_the_last_day_by_hour_and_refuses_bad_input() {
        let s = settings(3600);
        let now = at("2026-03-02T00:00:00Z");
        let w = Window::parse(None, None, None, &s, now).unwrap();
        assert_eq!((w.from, w.to), (at("2026-03-01T00:00:00Z"), now));
        assert_eq!(w.granularity, Granularity::Hour);
        for (from, to, g, field) in [
            (Some("yesterday"), None, None, "from"),
            (None, Some("2026-13-01T00:00:00Z"), None, "to"),
            (None, None, Some("week"), "granularity"),
            (
                Some("2026-03-02T00:00:00Z"),
                Some("2026-03-01T00:00:00Z"),
                None,
                "from",
            ),
            (Some("2020-01-01T00:00:00Z"), None, Some("hour"), "to"),
        ] {
            match Window::parse(from, to, g, &s, now) {
                Err(Error::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{from:?} {to:?} {g:?}: {other:?}"),
            }
        }
        assert!(Window::parse(Some("2024-01-01T00:00:00Z"), None, Some("day"), &s, now).is_ok());
        // Short periods: the default reaches back as far as a report holds.
        let w = Window::parse(None, None, Some("period"), &settings(4), now).unwrap();
        assert_eq!(w.to - w.from, chrono::Duration::seconds(4000));
    }
}
