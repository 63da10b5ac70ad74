//! `tenantry completions SHELL`: a completion script on stdout.

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell as Generator;

use crate::cli::{Cli, Shell};

pub fn run(args: &crate::cli::CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    write(args.shell, &mut out);
    Ok(ExitCode::SUCCESS)
}

/// The script for `shell`, written to `out`.
pub fn write(shell: Shell, out: &mut dyn std::io::Write) {
    let generator = match shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
        Shell::Elvish => Generator::Elvish,
        Shell::Powershell => Generator::PowerShell,
    };
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    clap_complete::generate(generator, &mut command, name, out);
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    /// Every subcommand name in the tree, nested ones included.
    fn names(command: &clap::Command, out: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            out.push(sub.get_name().to_owned());
            names(sub, out);
        }
    }

    #[test]
    fn every_shells_script_names_every_subcommand() {
        let mut all = Vec::new();
        names(&Cli::command(), &mut all);
        for shell in Shell::value_variants() {
            let mut script = Vec::new();
            write(*shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            for name in &all {
                assert!(script.contains(name.as_str()), "{shell:?}: {name} missing");
            }
        }
    }
}
