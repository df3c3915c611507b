//! `lb watch`.

use std::process::ExitCode;

/// Arguments of `lb watch`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb watch`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb watch is not implemented yet")
}
