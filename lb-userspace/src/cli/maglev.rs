//! `lb maglev`.

use std::process::ExitCode;

/// Arguments of `lb maglev`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb maglev`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb maglev is not implemented yet")
}
