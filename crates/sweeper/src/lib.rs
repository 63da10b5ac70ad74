//! The retention sweeper: when a deleted tenant's retention period has
//! passed (and it is not under legal hold), its data is removed in bounded
//! batches, children before parents, each batch in its own short
//! transaction under THAT tenant's context (so RLS confines it), with
//! progress recorded so a crash resumes; one sweeper per tenant across
//! replicas; a receipt per purge. Runs inside `serve` on a schedule, as
//! `tenantry sweep --once`, and from `POST /v1/admin/retention/sweep`.
//! The batches are paced by [`pace::Pacer`]: as fast as `batch_size` and
//! `batch_pause` allow while nothing else needs the database, backing off
//! when live traffic does.

pub mod pace;

use std::time::{Duration, Instant};

pub use pace::{Pacing, RequestLoad};

use serde::Deserialize;
use tenantry_core::TenantId;
use tenantry_db::models::RetentionRun;
use tenantry_db::purge::Batch;
use tenantry_db::schema::TENANT_TABLES;
use tenantry_db::{Db, DbError};

/// `[retention]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// How long a deleted tenant's data is kept (`90d`; tests use `2s`).
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// How often `serve` sweeps (±10 % jitter so replicas spread out).
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// The largest batch (each batch is one short transaction); with
    /// `adaptive = false`, every batch's size.
    pub batch_size: i64,
    /// Sweep inside `serve` at all.
    pub enabled: bool,
    /// Report what would be purged; remove nothing.
    pub dry_run: bool,
    /// How long a purged tenant's slug stays reserved.
    #[serde(with = "humantime_serde")]
    pub slug_cooling_off: Duration,
    /// How long a batch waits for row locks before yielding to live traffic.
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// The shortest pause after a batch (`0s`: none when nothing else needs
    /// the database), a cap on speed; with `adaptive = false`, the pause
    /// after every batch. See bench/NOTES.md.
    #[serde(with = "humantime_serde", default)]
    pub batch_pause: Duration,
    /// Pace the purge by the database's load (see [`pace`]); `false`:
    /// fixed `batch_size` batches with `batch_pause` between them.
    #[serde(default = "default_adaptive")]
    pub adaptive: bool,
    /// The longest pause the pacer backs off to.
    #[serde(with = "humantime_serde", default = "default_max_batch_pause")]
    pub max_batch_pause: Duration,
    /// A batch slower than this is pressure: the pacer backs off.
    #[serde(with = "humantime_serde", default = "default_target_batch_latency")]
    pub target_batch_latency: Duration,
}

fn default_adaptive() -> bool {
    true
}

fn default_max_batch_pause() -> Duration {
    Duration::from_millis(250)
}

fn default_target_batch_latency() -> Duration {
    Duration::from_millis(50)
}

impl RetentionSettings {
    /// What the pacer works within.
    #[must_use]
    pub fn limits(&self) -> pace::Limits {
        pace::Limits {
            adaptive: self.adaptive,
            cap: self.batch_size.clamp(1, 100_000),
            min_pause: self.batch_pause,
            max_pause: self.max_batch_pause,
            target_latency: self.target_batch_latency,
        }
    }
}

/// What a dry run found for one tenant.
#[derive(Debug, Clone)]
pub struct WouldPurge {
    pub tenant_id: TenantId,
    pub rows: std::collections::BTreeMap<&'static str, i64>,
}

/// What one sweep did.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    pub dry_run: bool,
    /// Receipts of the tenants purged by this sweep.
    pub purged: Vec<RetentionRun>,
    /// Dry run: what would go.
    pub would_purge: Vec<WouldPurge>,
    /// Tenants another sweeper is purging right now.
    pub busy: Vec<TenantId>,
    /// Tenants whose purge stopped early (e.g. a lock timeout while yielding
    /// to live traffic); the next sweep resumes them.
    pub interrupted: Vec<Interrupted>,
    pub rows_removed: i64,
    pub slugs_released: usize,
    /// How the batches were paced.
    pub pacing: Pacing,
}

#[derive(Debug, Clone)]
pub struct Interrupted {
    pub tenant_id: TenantId,
    pub reason: String,
}

/// `host:pid`, recorded on receipts.
#[must_use]
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Asks a running sweep to stop at its next batch boundary (graceful
/// shutdown). Every batch is its own transaction, so a stopped purge leaves
/// whole batches only, and the next sweep resumes it.
#[derive(Debug, Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// A signal and the handle that raises it.
    #[must_use]
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    /// Raised, or nothing can raise it any more (its sender is gone: the
    /// process is going down).
    #[must_use]
    pub fn is_raised(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once raised (or once nothing can raise it any more: the
    /// process is going down).
    pub async fn raised(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Why a purge stopped early when shutdown was asked for.
pub const STOPPED_FOR_SHUTDOWN: &str = "stopped between batches for shutdown";

/// What a sweep is doing, as it does it, for a caller that shows progress
/// (`tenantry sweep`). The report is still the record of what was done.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The tenants past their retention period, before the first is swept.
    Candidates(usize),
    /// Starting on the `index`-th (from 1) of `of` tenants.
    Tenant {
        tenant: TenantId,
        index: usize,
        of: usize,
    },
    /// Another sweeper is purging it; skipped.
    Busy(TenantId),
    /// Restored or put on hold since it was listed; nothing to do.
    Skipped(TenantId),
    /// Dry run: it would lose `rows` rows.
    Counted { tenant: TenantId, rows: i64 },
    /// One batch removed `rows` rows of `table`; `removed` rows of this
    /// tenant by this sweep so far.
    Batch {
        tenant: TenantId,
        table: &'a str,
        rows: i64,
        removed: i64,
    },
    /// Purged, with a receipt; `rows` removed by this sweep.
    Purged { tenant: TenantId, rows: i64 },
    /// Stopped early; the next sweep resumes it.
    Interrupted { tenant: TenantId, reason: &'a str },
}

/// One sweep over every eligible tenant. Checks `stop` before every batch.
pub async fn sweep(
    db: &Db,
    settings: &RetentionSettings,
    sweeper: &str,
    dry_run: bool,
    stop: &Stop,
) -> Result<SweepReport, DbError> {
    sweep_paced(db, settings, sweeper, dry_run, stop, None, |_| {}).await
}

/// [`sweep`], telling `progress` what it does as it does it.
pub async fn sweep_reporting(
    db: &Db,
    settings: &RetentionSettings,
    sweeper: &str,
    dry_run: bool,
    stop: &Stop,
    progress: impl FnMut(Progress<'_>) + Send,
) -> Result<SweepReport, DbError> {
    sweep_paced(db, settings, sweeper, dry_run, stop, None, progress).await
}

/// [`sweep_reporting`], with the service's own request latency as one more
/// signal for the pacer (`serve` passes [`RequestLoad::process`]; a sweep
/// outside `serve` has none).
pub async fn sweep_paced(
    db: &Db,
    settings: &RetentionSettings,
    sweeper: &str,
    dry_run: bool,
    stop: &Stop,
    requests: Option<&RequestLoad>,
    mut progress: impl FnMut(Progress<'_>) + Send,
) -> Result<SweepReport, DbError> {
    let mut report = SweepReport {
        dry_run,
        ..SweepReport::default()
    };
    let mut pacer = pace::Pacer::new(settings.limits());
    // The load is sampled only when it steers something; a sample that
    // fails (a view this server lacks) turns sampling off for the sweep.
    let mut sampling = settings.adaptive;
    let _purging = requests.filter(|_| !dry_run).map(RequestLoad::purging);
    let candidates = db.purge_candidates(settings.period, 10_000).await?;
    let of = candidates.len();
    progress(Progress::Candidates(of));
    for (index, tenant) in candidates.into_iter().enumerate() {
        if stop.is_raised() {
            break;
        }
        progress(Progress::Tenant {
            tenant,
            index: index + 1,
            of,
        });
        let Some(mut session) = db.purge_session(tenant).await? else {
            progress(Progress::Busy(tenant));
            report.busy.push(tenant);
            continue;
        };
        if dry_run {
            let mut rows = std::collections::BTreeMap::new();
            for table in TENANT_TABLES {
                rows.insert(*table, session.count(table).await?);
            }
            progress(Progress::Counted {
                tenant,
                rows: rows.values().sum(),
            });
            report.would_purge.push(WouldPurge {
                tenant_id: tenant,
                rows,
            });
            continue;
        }
        // Restored (or put on hold) since it was listed: nothing to do.
        let Some(run) = session.claim(settings.period, sweeper).await? else {
            progress(Progress::Skipped(tenant));
            continue;
        };
        let mut stopped = None;
        let mut removed = 0;
        'tables: for table in TENANT_TABLES {
            // Each batch goes on after the last id the one before deleted;
            // the table is done when a batch from its start finds nothing
            // (so a row that arrived below that id is not left behind).
            let mut after = None;
            loop {
                if stop.is_raised() {
                    stopped = Some(STOPPED_FOR_SHUTDOWN.to_owned());
                    break 'tables;
                }
                let started = Instant::now();
                match session
                    .delete_batch(run.id, table, pacer.batch(), settings.lock_timeout, after)
                    .await
                {
                    Ok(Batch { rows: 0, .. }) if after.is_none() => break,
                    Ok(Batch { rows: 0, .. }) => after = None,
                    Ok(Batch { rows: n, last }) => {
                        after = last;
                        let latency = started.elapsed();
                        report.rows_removed += n;
                        removed += n;
                        progress(Progress::Batch {
                            tenant,
                            table,
                            rows: n,
                            removed,
                        });
                        let load = if sampling {
                            match session.load().await {
                                Ok(load) => Some(load),
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot sample the database's load; pacing by batch latency alone");
                                    sampling = false;
                                    None
                                }
                            }
                        } else {
                            None
                        };
                        pacer.observe(
                            n,
                            &pace::Observation {
                                at: Instant::now(),
                                latency,
                                other_active: load
                                    .map(|l| u32::try_from(l.other_active).unwrap_or(u32::MAX)),
                                backend_writes: load
                                    .map(|l| u64::try_from(l.backend_writes).unwrap_or(0)),
                                requests_slowed: requests.is_some_and(RequestLoad::slowed),
                            },
                        );
                        let pause = pacer.pause();
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                            pacer.paused(pause);
                        }
                    }
                    Err(e) => {
                        stopped = Some(e.to_string());
                        break 'tables;
                    }
                }
            }
        }
        if let Some(reason) = stopped {
            tracing::warn!(%tenant, %reason, "purge interrupted; the next sweep resumes it");
            progress(Progress::Interrupted {
                tenant,
                reason: &reason,
            });
            report.interrupted.push(Interrupted {
                tenant_id: tenant,
                reason,
            });
            continue;
        }
        let receipt = session
            .finish(run.id, &format!("sweeper:{sweeper}"))
            .await?;
        let pacing = pacer.pacing();
        tracing::info!(
            %tenant, slug = %receipt.slug, rows = %receipt.rows_removed,
            batch = pacing.last_batch, min_batch = pacing.min_batch,
            paused_ms = pacing.paused.as_millis(), backoffs = pacing.backoffs(),
            "tenant purged"
        );
        progress(Progress::Purged {
            tenant,
            rows: removed,
        });
        report.purged.push(receipt);
    }
    if !dry_run && !stop.is_raised() {
        report.slugs_released = db.release_slugs(settings.slug_cooling_off).await?;
    }
    report.pacing = pacer.pacing();
    Ok(report)
}

/// How often to sweep: `sweep_interval`, but at least every half retention
/// period (a 10 s period in a demo is swept within seconds, not the hour).
#[must_use]
pub fn effective_interval(settings: &RetentionSettings) -> Duration {
    settings
        .sweep_interval
        .min((settings.period / 2).max(Duration::from_secs(1)))
}

/// The interval with ±10 % jitter.
#[must_use]
pub fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_millis() / 5; // the full ±10 % range
    if spread == 0 {
        return interval;
    }
    let offset = uuid::Uuid::new_v4().as_u128() % spread;
    let base = interval.as_millis().saturating_sub(spread / 2);
    Duration::from_millis(u64::try_from(base + offset).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let hour = Duration::from_secs(3600);
        for _ in 0..1000 {
            let d = jittered(hour);
            assert!(
                d >= Duration::from_secs(3240) && d <= Duration::from_secs(3960),
                "{d:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn short_periods_are_swept_within_half_a_period() {
        let mut settings = RetentionSettings {
            period: Duration::from_secs(90 * 24 * 3600),
            sweep_interval: Duration::from_secs(3600),
            batch_size: 1000,
            enabled: true,
            dry_run: false,
            slug_cooling_off: Duration::ZERO,
            lock_timeout: Duration::from_secs(2),
            batch_pause: Duration::ZERO,
            adaptive: true,
            max_batch_pause: Duration::from_millis(250),
            target_batch_latency: Duration::from_millis(50),
        };
        assert_eq!(effective_interval(&settings), Duration::from_secs(3600));
        settings.period = Duration::from_secs(10);
        assert_eq!(effective_interval(&settings), Duration::from_secs(5));
        settings.period = Duration::ZERO;
        assert_eq!(effective_interval(&settings), Duration::from_secs(1));
    }

    #[test]
    fn an_instance_name_names_the_process() {
        assert!(instance_name().ends_with(&format!(":{}", std::process::id())));
    }
}
