//! `cargo xtask fuzz`: the long datapath fuzz run (the short one is part of
//! `cargo xtask test`): generated and mutated frames through
//! BPF_PROG_TEST_RUN against the real program, every outcome checked.

use anyhow::Result;

use crate::bootstrap;
use crate::cargo::{cargo, run_checked};

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Frames to run.
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Seed of the frame generator (the same seed replays the same frames).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Bootstraps, then runs `lb-fuzz` (fails when any frame broke a rule).
pub fn run(args: Args) -> Result<()> {
    bootstrap::ensure_all()?;
    bootstrap::require_root("cargo xtask fuzz")?;
    run_checked(
        cargo()
            .args(["run", "--quiet", "-p", "lb-tests", "--bin", "lb-fuzz", "--"])
            .args(["--frames", &args.frames.to_string()])
            .args(["--seed", &args.seed.to_string()]),
    )
}
