//! `cargo xtask run`: build everything, then start the namespace lab (`lb-lab`:
//! client, router, load balancer and backends, live client load, `lb watch`),
//! or run `lb` on a real interface (`-- --iface IF --config FILE`).

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
    /// Lab only: print client status lines instead of running `lb watch`.
    #[arg(long)]
    pub no_watch: bool,
    /// Lab only: stop the client load after this many minutes (default 60).
    #[arg(long)]
    pub minutes: Option<u64>,
    /// Lab only: also run a real Prometheus scraping the agent (with lb's
    /// alerting rules), relayed to http://127.0.0.1:9090/.
    #[arg(long)]
    pub prometheus: bool,
}

/// Builds `lb` (release) and runs it on `--iface`, or builds `lb` and `lb-lab`
/// (release) and starts the lab.
pub fn run(args: Args) -> Result<()> {
    bootstrap::ensure_all()?;
    let config = args
        .config
        .unwrap_or_else(|| workspace_root().join("config/lb.yaml"));
    match args.iface {
        Some(iface) => {
            run_checked(cargo().args(["build", "--release", "-p", "lb-userspace"]))?;
            let lb = target_binary("lb", true);
            run_checked(std::process::Command::new(&lb).arg("check").arg(&config))?;
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
        None => {
            run_checked(cargo().args([
                "build",
                "--release",
                "-p",
                "lb-userspace",
                "-p",
                "lb-tests",
                "--bin",
                "lb",
                "--bin",
                "lb-lab",
            ]))?;
            let lb = target_binary("lb", true);
            run_checked(std::process::Command::new(&lb).arg("check").arg(&config))?;
            bootstrap::require_root("the lab")?;
            let mut lab = std::process::Command::new(target_binary("lb-lab", true));
            lab.arg("--config").arg(&config).env("LB_BIN", &lb);
            if args.no_watch {
                lab.arg("--no-watch");
            }
            if args.prometheus {
                lab.arg("--prometheus");
            }
            if let Some(minutes) = args.minutes {
                lab.arg("--minutes").arg(minutes.to_string());
            }
            run_checked(&mut lab)
        }
    }
}
