//! `cargo xtask bench`: the benchmarks (release build, pinned to one CPU),
//! printed as one table and written as JSON to `target/bench/latest.json`.

use anyhow::{Context, Result};

use crate::bootstrap;
use crate::cargo::{cargo, run_checked, workspace_root};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Tiny configuration: checks the benchmark code runs (numbers meaningless).
    #[arg(long)]
    pub quick: bool,
    /// Run one section only: per-packet, rate or control-plane (or
    /// established: the lb-against-Katran rows of established flows only).
    #[arg(long, value_name = "SECTION")]
    pub only: Option<String>,
    /// Also measure Katran's XDP balancer against lb in the per-packet
    /// section: DIR holds the objects `bench/katran/build.sh` builds (also
    /// taken from `LB_BENCH_KATRAN`).
    #[arg(long, value_name = "DIR")]
    pub katran: Option<std::path::PathBuf>,
}

/// Builds release and runs `lb-bench`.
pub fn run(args: Args) -> Result<()> {
    bootstrap::ensure_all()?;
    bootstrap::require_root("cargo xtask bench")?;
    let out = workspace_root().join("target/bench/latest.json");
    // The control-plane section runs the real agent: `lb` next to `lb-bench`.
    run_checked(cargo().args(["build", "--release", "-p", "lb-userspace", "--bin", "lb"]))?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "lb-bench", "--", "--out"])
        .arg(&out);
    if args.quick {
        cmd.arg("--quick");
    }
    if let Some(section) = &args.only {
        cmd.args(["--only", section]);
    }
    if let Some(dir) = &args.katran {
        // lb-bench runs from the workspace root: pass the directory as given
        // from here.
        let dir =
            std::path::absolute(dir).with_context(|| format!("--katran {}", dir.display()))?;
        cmd.arg("--katran").arg(dir);
    }
    run_checked(&mut cmd)
}
