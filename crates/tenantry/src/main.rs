//! `tenantry`: the one binary. It parses the command line (`cli`), loads
//! the settings, sets up logging and hands over to one module per command
//! (`commands::*`).

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod progress;
mod signals;

use tenantry::settings::{self, Settings};

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
    // Traces are the server's: the other commands only log.
    let traces = matches!(cli.command, cli::Command::Serve).then_some(&settings.traces);
    let telemetry = match tenantry::telemetry::init(&settings.log, traces) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("tenantry: {err:#}");
            return ExitCode::from(2);
        }
    };
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
    let code = report(runtime.block_on(commands::run(cli.command, settings)));
    // The exporter's last batch is sent from its own thread, after the
    // runtime is gone.
    drop(runtime);
    telemetry.shutdown();
    code
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
