//! `lb check`.

use std::process::ExitCode;

/// Arguments of `lb check`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb check`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb check is not implemented yet")
}
