//! `tenantry usage sample | export`: the usage history from the command
//! line, through the same operations as `serve`'s sampler and the admin
//! API's reports.

use std::io::Write as _;
use std::process::ExitCode;

use tenantry_ops::Page;
use tenantry_ops::usage::{self, Window};
use tenantry_ops::views::{UsagePeriodView, csv_record};

use crate::cli::UsageCommand;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: UsageCommand) -> anyhow::Result<ExitCode> {
    settings.usage.validate().map_err(anyhow::Error::msg)?;
    let ops = super::operations(settings)?;
    match command {
        UsageCommand::Sample { periods } => {
            let report = usage::sample(&ops, periods).await?;
            let mut out = std::io::stdout();
            for (start, tenants) in &report.periods {
                writeln!(out, "{} sampled {tenants} tenant(s)", start.to_rfc3339())?;
            }
            writeln!(out, "pruned {} period(s)", report.pruned)?;
        }
        UsageCommand::Export {
            from,
            to,
            granularity,
            tenant,
        } => {
            let window = Window::parse(
                from.as_deref(),
                to.as_deref(),
                granularity.as_deref(),
                &settings.usage,
                chrono::Utc::now(),
            )?;
            let mut out = std::io::stdout().lock();
            out.write_all(csv_record(UsagePeriodView::CSV_HEADER.iter().copied()).as_bytes())?;
            if let Some(key) = tenant {
                let report = usage::of_tenant(&ops, &key, window).await?;
                for item in &report.items {
                    out.write_all(item.csv_row().as_bytes())?;
                }
            } else {
                let mut after = None;
                // Every page of tenants, bounded by the tenants there are.
                loop {
                    let report = usage::export(&ops, window, Page { limit: 100, after }).await?;
                    for item in &report.items {
                        out.write_all(item.csv_row().as_bytes())?;
                    }
                    match report
                        .next_cursor
                        .as_deref()
                        .and_then(tenantry_core::Cursor::parse)
                    {
                        Some(next) => after = Some(next.id()),
                        None => break,
                    }
                }
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
