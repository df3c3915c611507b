//! `cargo xtask run`: build everything, then run `lb` on a real interface
//! (`-- --iface IF --config FILE`).

use std::path::PathBuf;

use anyhow::Result;

use crate::bootstrap;
use crate::cargo::{cargo, run_checked, target_binary, workspace_root};

/// Arguments of `cargo xtask run`.
#[derive(clap::Args)]
pub struct Args {
    /// Run on this real interface instead of the lab.
    #[arg(long)]
    pub iface: Option<String>,
    /// Config file (default: config/lb.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Builds `lb` (release) and runs it.
pub fn run(args: Args) -> Result<()> {
    bootstrap::ensure_all()?;
    run_checked(cargo().args(["build", "--release", "-p", "lb-userspace"]))?;
    let lb = target_binary("lb", true);
    let config = args
        .config
        .unwrap_or_else(|| workspace_root().join("config/lb.yaml"));
    run_checked(std::process::Command::new(&lb).arg("check").arg(&config))?;
    match args.iface {
        Some(iface) => {
            bootstrap::require_root("lb run")?;
            run_checked(
                std::process::Command::new(&lb)
                    .arg("run")
                    .arg("--config")
                    .arg(&config)
                    .arg("--iface")
                    .arg(iface),
            )
        }
        None => anyhow::bail!("the namespace lab is not built yet: pass -- --iface IF"),
    }
}
