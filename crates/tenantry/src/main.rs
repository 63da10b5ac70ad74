//! `tenantry`: the one binary. It parses the command line (`cli`), loads
//! the settings, sets up logging and hands over to one module per command
//! (`commands::*`).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

mod cli;
mod commands;
mod progress;
mod signals;

use tenantry::settings::{self, LogFormat, Settings};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Completions and man pages describe the CLI: no settings, no keys, no
    // database.
    if cli.command.is_offline() {
        return report(commands::run_offline(&cli.command));
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("tenantry: {err:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tenantry: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    report(runtime.block_on(commands::run(cli.command, settings)))
}

/// A command's exit code, or its error on stderr and exit 1.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tenantry: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // FmtSpan::CLOSE: one line per finished request span, carrying its
    // request_id, tenant_id, route and status (the access log).
    // Colours only for a person at a terminal: a pipe or a log file gets
    // plain text, like the progress lines beside it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
