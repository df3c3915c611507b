//! `lb stop`.

use std::process::ExitCode;

/// Arguments of `lb stop`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb stop`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb stop is not implemented yet")
}
