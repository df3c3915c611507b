//! `lb run`.

use std::process::ExitCode;

/// Arguments of `lb run`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb run`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb run is not implemented yet")
}
