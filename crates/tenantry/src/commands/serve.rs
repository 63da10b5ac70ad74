//! `tenantry serve`: [`Application::build`] (guard, listeners, keys,
//! housekeeping, the scheduled sweeper), then serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use tenantry::settings::Settings;
use tenantry::{Application, BuildError};

use crate::signals::{Signal, Signals};

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    // Listening from the start: a SIGTERM during startup is a graceful stop
    // too, not the default kill.
    let mut signals = Signals::new()?;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(BuildError::Refused(violations)) => {
            for v in &violations {
                tracing::error!(object = %v.object, problem = %v.problem, "isolation guard");
                eprintln!("tenantry: refusing to start: {v}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(BuildError::Other(e)) => return Err(e),
    };
    let drain = app.drain();
    let local = app.address();
    tracing::info!(%local, "listening");
    eprintln!("tenantry: listening on http://{local}");
    if let Some(address) = app.metrics_address() {
        tracing::info!(%address, "serving /metrics");
        eprintln!("tenantry: metrics on http://{address}/metrics");
    }
    // One signal stops everything (`Application::run_until`): SIGTERM
    // after the drain, SIGINT (Ctrl-C) at once; a second signal exits at once.
    let stop = async move {
        let signal = signals.next().await;
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        match signal {
            Signal::Term => drain,
            Signal::Int => std::time::Duration::ZERO,
        }
    };
    app.run_until(stop).await?;
    Ok(ExitCode::SUCCESS)
}
