//! `tenantry tenants import`: an export file into a NEW tenant, all or
//! nothing, trusting nothing in the file. The rules are
//! `tenantry_ops::import`'s, the same the API's
//! `POST /v1/admin/tenants/{id}/import` runs; this front door only reads
//! the file (or standard input) and shows progress and the result.
//!
//! The file is streamed: a thread reads it in chunks into a bounded
//! channel, the import reads a line at a time from it, so memory holds a
//! few chunks and one line, never the file. Progress goes to stderr
//! (`crate::progress`): rows per table as they are written, a status line
//! at a terminal, plain lines elsewhere.

use std::io::{Read, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use tenantry_core::{Name, Slug};
use tenantry_ops::Actor;
use tenantry_ops::import::{self, InputSender, Options, Target};

use crate::cli::ImportArgs;
use crate::progress::{Progress, RowCounter};
use crate::settings::Settings;

/// Bytes read from the file at a time.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks read ahead of the import at most.
const CHUNKS_AHEAD: usize = 4;

/// The file, or standard input for "-".
fn open(file: &str) -> anyhow::Result<Box<dyn Read + Send>> {
    Ok(if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?)
    })
}

/// Reads `source` into `tx` a chunk at a time, until the end, a read
/// error (sent on), or the import stops listening.
fn feed(mut source: Box<dyn Read + Send>, tx: &InputSender) {
    let mut buffer = vec![0; CHUNK_BYTES];
    loop {
        let sent = match source.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => tx.blocking_send(Ok(buffer[..n].to_vec())),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.to_string()));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

pub async fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let slug = Slug::parse(&args.slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    let name = Name::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let source = open(&args.file)?;
    let ops = super::super::operations(settings)?;
    let (tx, input) = import::input(CHUNKS_AHEAD);
    std::thread::spawn(move || feed(source, &tx));
    let mut progress = RowCounter::new(Progress::stderr(), "imported", args.progress_every);
    let mut on_row = |table: &'static str| progress.row(table);
    let written = import::run(
        &ops,
        &Actor::cli(),
        "import:cli",
        Target::New { slug, name },
        input,
        Options {
            restore_limits: args.restore_limits,
            base_domain: tenantry_core::host::base_domain(&settings.server.tenant_base_domain)
                .ok()
                .flatten(),
        },
        &mut on_row,
    )
    .await
    .context("refused; nothing was imported")?;
    progress.finish();
    progress.line(&format!(
        "committed: {} rows into tenant {}",
        progress.total(),
        written.tenant.slug
    ));
    let skipped = written.skipped.get("api_keys").copied().unwrap_or(0);
    if skipped > 0 {
        eprintln!(
            "tenantry: skipped {skipped} api_keys row(s): API keys are credentials and are \
             never imported; mint new keys for the new tenant"
        );
    }
    if written.sections.get("tenant_quotas").map(String::as_str) == Some("skipped") {
        eprintln!(
            "tenantry: the file's limits (tenant_quotas) were checked, not applied: the new \
             tenant has [quotas.default]; --restore-limits applies them"
        );
    }
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&json!(written))?
    )?;
    Ok(ExitCode::SUCCESS)
}
