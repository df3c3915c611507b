//! `lb decap`.

use std::process::ExitCode;

/// Arguments of `lb decap`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `lb decap`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lb decap is not implemented yet")
}
