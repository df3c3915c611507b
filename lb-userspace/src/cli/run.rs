//! `lb run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lb::agent::{AgentOptions, run as run_agent};
use lb::kernel::ModeChoice;
use lb::netns::NetnsId;

/// Arguments of `lb run`.
#[derive(clap::Args)]
pub struct Args {
    /// Backend config (YAML); watched for changes.
    #[arg(long)]
    config: PathBuf,
    /// Interface to attach to.
    #[arg(long)]
    iface: String,
    /// XDP mode: auto tries native, then generic (skb).
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: ModeChoice,
    /// Ignore (and remove) pinned state instead of adopting it.
    #[arg(long)]
    fresh: bool,
    /// Where the pins and the state file are.
    #[command(flatten)]
    pins: super::PinArgs,
    /// Serve Prometheus metrics (/metrics), the status page (/) and its JSON
    /// (/stats.json) on this address (e.g. 127.0.0.1:9100); off by default.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
}

/// Runs `lb run`: attaches, applies, and follows the config until SIGINT/SIGTERM.
/// The datapath stays attached after exit; `lb stop` detaches it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state_dir = args.pins.state_dir();
    let netns = NetnsId::current().context("which network namespace this is")?;
    let metrics = args.metrics.map(|addr| {
        (
            addr,
            lb::kernel::pin_dir(&args.pins.pin_root, netns, &args.iface),
            lb::state::state_path(&state_dir, netns, &args.iface),
        )
    });
    let opts = AgentOptions {
        config_path: args.config,
        ifname: args.iface,
        netns,
        pin_root: args.pins.pin_root,
        state_dir,
        mode: args.xdp_mode,
        fresh: args.fresh,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match lb::metrics::limits::raise_nofile_limit() {
        Ok(limit) => tracing::debug!("descriptor limit (RLIMIT_NOFILE): {limit}"),
        Err(e) => tracing::warn!("cannot raise the descriptor limit (RLIMIT_NOFILE): {e}"),
    }
    rt.block_on(async move {
        if let Some((addr, pin_dir, state_path)) = metrics {
            tokio::spawn(async move {
                if let Err(e) = lb::metrics::serve(addr, pin_dir, state_path).await {
                    tracing::error!("metrics endpoint on {addr}: {e}");
                }
            });
        }
        run_agent(opts).await
    })?;
    Ok(ExitCode::SUCCESS)
}
