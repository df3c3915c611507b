//! `lb completions`.

use std::process::ExitCode;

use clap_complete::Shell;

/// Arguments of `lb completions`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `lb completions`: prints the completion script of `command` for the
/// shell on stdout (the package installs them; `source <(lb completions bash)`
/// works too).
pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "lb", &mut stdout);
    Ok(ExitCode::SUCCESS)
}
