//! `tenantry sweep [--once] [--dry-run]`: the retention sweeper as its own
//! process. Each sweep's report is one JSON line on stdout; what it is
//! doing goes to stderr as it does it (a status line at a terminal, plain
//! lines elsewhere).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tenantry_db::Db;
use tenantry_sweeper::Progress as Step;

use crate::cli::SweepArgs;
use crate::progress::Progress;
use crate::settings::Settings;
use crate::signals::Signals;

/// Plain lines about batches: at most one per tenant this often (the
/// tenant lines are always printed).
const BATCH_LINE_EVERY: Duration = Duration::from_secs(1);

pub async fn run(settings: &Settings, args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let db = Db::new(&settings.database)?;
    let dry_run = args.dry_run || settings.retention.dry_run;
    // Receipts and the purge's audit entries name who ran it, as an admin's
    // `POST /v1/admin/retention/sweep` does.
    let name = format!(
        "{} (by {})",
        tenantry_sweeper::instance_name(),
        tenantry_ops::Actor::cli()
    );
    // SIGTERM/SIGINT: finish the current batch, report, exit.
    let (raise, mut stop) = tenantry_sweeper::Stop::new();
    let mut signals = Signals::new()?;
    tokio::spawn(async move {
        signals.next().await;
        raise.send_replace(true);
        // Keep the sender alive: dropping it would also read as "stop".
        std::future::pending::<()>().await;
    });
    let mut reporter = Reporter::new(Progress::stderr());
    loop {
        let report = tenantry_sweeper::sweep_reporting(
            &db,
            &settings.retention,
            &name,
            dry_run,
            &stop,
            |step| reporter.step(step),
        )
        .await?;
        reporter.done(report.rows_removed, report.slugs_released, dry_run);
        let report = tenantry_ops::views::SweepReportView::from(report);
        writeln!(std::io::stdout(), "{}", serde_json::to_string(&report)?)?;
        if args.once || stop.is_raised() {
            return Ok(ExitCode::SUCCESS);
        }
        let every = tenantry_sweeper::effective_interval(&settings.retention);
        tokio::select! {
            () = tokio::time::sleep(tenantry_sweeper::jittered(every)) => {}
            () = stop.raised() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Turns the sweeper's steps into lines: one per tenant started and
/// finished, batches as a status line at a terminal and at most one plain
/// line per [`BATCH_LINE_EVERY`] elsewhere.
struct Reporter<W: std::io::Write> {
    progress: Progress<W>,
    /// The tenant being swept: its position, and when a batch line was
    /// last printed for it.
    current: (usize, usize),
    last_batch_line: Option<Instant>,
}

impl<W: std::io::Write> Reporter<W> {
    fn new(progress: Progress<W>) -> Self {
        Self {
            progress,
            current: (0, 0),
            last_batch_line: None,
        }
    }

    fn step(&mut self, step: Step<'_>) {
        let (index, of) = self.current;
        match step {
            Step::Candidates(n) => self
                .progress
                .line(&format!("sweep: {n} tenant(s) past their retention period")),
            Step::Tenant { tenant, index, of } => {
                self.current = (index, of);
                self.last_batch_line = None;
                self.progress
                    .line(&format!("sweep: tenant {index}/{of} {tenant}: sweeping"));
            }
            Step::Busy(tenant) => self.progress.line(&format!(
                "sweep: tenant {index}/{of} {tenant}: busy (another sweeper is purging it)"
            )),
            Step::Skipped(tenant) => self.progress.line(&format!(
                "sweep: tenant {index}/{of} {tenant}: restored or on hold since listed; skipped"
            )),
            Step::Counted { tenant, rows } => self.progress.line(&format!(
                "sweep: tenant {index}/{of} {tenant}: would remove {rows} rows (dry run)"
            )),
            Step::Batch {
                tenant,
                table,
                rows,
                removed,
            } => {
                let text = format!(
                    "sweep: tenant {index}/{of} {tenant}: {removed} rows removed \
                     (last batch: {rows} of {table})"
                );
                if self.progress.is_terminal() {
                    self.progress.status(|| text);
                } else if self
                    .last_batch_line
                    .is_none_or(|last| last.elapsed() >= BATCH_LINE_EVERY)
                {
                    self.last_batch_line = Some(Instant::now());
                    self.progress.line(&text);
                }
            }
            Step::Purged { tenant, rows } => self.progress.line(&format!(
                "sweep: tenant {index}/{of} {tenant}: purged, {rows} rows removed"
            )),
            Step::Interrupted { tenant, reason } => self.progress.line(&format!(
                "sweep: tenant {index}/{of} {tenant}: interrupted ({reason}); the next sweep resumes it"
            )),
        }
    }

    fn done(&mut self, rows: i64, slugs: usize, dry_run: bool) {
        self.progress.line(&if dry_run {
            "sweep: done (dry run; nothing removed)".to_owned()
        } else {
            format!("sweep: done, {rows} rows removed, {slugs} slug(s) released")
        });
    }
}

#[cfg(test)]
mod tests {
    use tenantry_core::TenantId;

    use super::*;

    #[test]
    fn piped_progress_names_each_tenant_and_throttles_batches() {
        let mut out = Vec::new();
        let tenant = TenantId::new();
        {
            let mut reporter = Reporter::new(Progress::new(&mut out, false));
            reporter.step(Step::Candidates(1));
            reporter.step(Step::Tenant {
                tenant,
                index: 1,
                of: 1,
            });
            for removed in [10, 20, 30] {
                reporter.step(Step::Batch {
                    tenant,
                    table: "events",
                    rows: 10,
                    removed,
                });
            }
            reporter.step(Step::Purged { tenant, rows: 30 });
            reporter.done(30, 1, false);
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "sweep: 1 tenant(s) past their retention period\n\
                 sweep: tenant 1/1 {tenant}: sweeping\n\
                 sweep: tenant 1/1 {tenant}: 10 rows removed (last batch: 10 of events)\n\
                 sweep: tenant 1/1 {tenant}: purged, 30 rows removed\n\
                 sweep: done, 30 rows removed, 1 slug(s) released\n"
            )
        );
    }
}
