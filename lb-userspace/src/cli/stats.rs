//! `lb stats`.

use std::process::ExitCode;

/// Arguments of `lb stats`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb stats`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb stats is not implemented yet")
}
