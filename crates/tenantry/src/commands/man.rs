//! `tenantry man`: the man page, from the same clap tree as `--help`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, ManArgs};

pub fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            page(&mut out).context("cannot write the man page")?;
        }
        Some(dir) => {
            let written = write_all(dir)?;
            eprintln!("wrote {written} man pages to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The command tree as man pages see it: no `help` subcommand.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// tenantry.1, naming every subcommand (each has a page of its own).
pub fn page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}

/// tenantry.1 and one page per subcommand (`tenantry-tenants-import.1`)
/// into `dir`; how many.
pub fn write_all(dir: &std::path::Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command(), dir)
        .with_context(|| format!("cannot write man pages to {}", dir.display()))?;
    Ok(count(&command()))
}

fn count(command: &clap::Command) -> usize {
    1 + command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(count)
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_roff_and_names_every_top_level_command() {
        let mut text = Vec::new();
        page(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH tenantry 1"),
            "{text}"
        );
        for sub in command().get_subcommands() {
            assert!(
                text.contains(&format!("tenantry\\-{}(1)", sub.get_name())),
                "{} missing from:\n{text}",
                sub.get_name()
            );
        }
    }
}
