//! `tenantry doctor`: the configured database checked for this service
//! (`tenantry_ops::doctor`), printed as text or JSON. Exit 0: nothing
//! failed (and, with --strict, nothing warned); 1: something did; 2: the
//! database could not be checked.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use tenantry_db::Db;
use tenantry_ops::doctor::{self, DoctorOptions, Report, Status};

use crate::cli::{DoctorArgs, DoctorFormat};
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let database = &settings.database;
    let options = DoctorOptions {
        app_connections: u32::try_from(database.max_connections).unwrap_or(u32::MAX),
        admin_connections: u32::try_from(database.admin_connections.max(1)).unwrap_or(u32::MAX),
        replicas: args.replicas,
        server_memory_mib: args.server_memory,
        statement_timeout: database.statement_timeout,
        idle_in_transaction_timeout: database.idle_in_transaction_timeout,
        citus_shard_count: database.citus.shard_count,
        ignore: args.ignore.clone(),
    };
    let report = match Db::new(database) {
        Ok(db) => doctor::diagnose(&db, &options).await,
        Err(err) => Err(err),
    };
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("doctor: cannot check the database: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    for name in &args.ignore {
        if !report.findings.iter().any(|f| &f.check == name) {
            eprintln!("doctor: --ignore {name}: no such check in this report");
        }
    }
    let printed = match args.format {
        DoctorFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        DoctorFormat::Text => text(&report),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(printed.as_bytes())?;
    out.flush()?;
    let failed = report.status == Status::Fail || (args.strict && report.status == Status::Warn);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The report for people: ok findings on one line, the others with why
/// and what to set.
fn text(report: &Report) -> String {
    let mut out = String::new();
    let citus = report
        .server
        .citus
        .as_ref()
        .map(|v| format!(", Citus {v}"))
        .unwrap_or_default();
    let _ = writeln!(out, "PostgreSQL {}{citus}", report.server.version);
    let _ = writeln!(out, "memory: {}", report.memory.note);
    for f in &report.findings {
        let status = if f.ignored {
            format!("{} (ignored)", f.status.as_str())
        } else {
            f.status.as_str().to_owned()
        };
        let _ = writeln!(out, "{:<5} {}: {}", status, f.check, f.summary);
        if f.status >= Status::Warn || (f.status == Status::Info && f.fix.is_some()) {
            let _ = writeln!(out, "      why: {}", f.why);
            if let Some(rec) = &f.recommended {
                let _ = writeln!(out, "      use: {rec}");
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "      fix: {fix}");
            }
        }
    }
    let _ = writeln!(
        out,
        "doctor: {}: {} fail, {} warn, {} info, {} ok",
        report.status.as_str(),
        report.count(Status::Fail),
        report.count(Status::Warn),
        report.count(Status::Info),
        report.count(Status::Ok)
    );
    out
}
