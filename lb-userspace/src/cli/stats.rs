//! `lb stats`: per-service and per-backend counters of one interface, read from
//! the pinned maps (works with or without a running agent).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lb::netns::NetnsId;
use lb::state::{DEFAULT_PIN_ROOT, default_state_dir};
use lb::stats::{Rates, Snapshot, Target, render_text, report_json, resolve_target};

/// Which interface to read, and where its pins and state live (shared by
/// `lb stats` and `lb watch`).
#[derive(clap::Args, Clone, Debug)]
pub struct Source {
    /// Interface to show; may be omitted when exactly one is attached.
    #[arg(long, short = 'i', value_name = "IF")]
    pub iface: Option<String>,
    /// Root of the per-interface bpffs pin directories.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PIN_ROOT)]
    pub pin_root: PathBuf,
    /// Directory of the agent's per-interface state files.
    #[arg(long, value_name = "DIR")]
    /// Default: the pin root's sibling `state` directory.
    pub state_dir: Option<PathBuf>,
}

impl Source {
    /// The interface to read (errors say clearly when nothing is attached).
    pub fn target(&self) -> anyhow::Result<Target> {
        Ok(resolve_target(
            &self.pin_root,
            &self
                .state_dir
                .clone()
                .unwrap_or_else(|| default_state_dir(&self.pin_root)),
            NetnsId::current().context("which network namespace this is")?,
            self.iface.as_deref(),
        )?)
    }
}

/// Arguments of `lb stats`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// Print JSON (shape documented in README.md, section "lb stats") instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds between the two samples the per-second rates come from;
    /// 0 prints the counters at once, without rates.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
}

/// Takes a snapshot of `target`, warning once when there is no state file.
pub fn snapshot(target: &Target) -> anyhow::Result<Snapshot> {
    let snap = target.snapshot()?;
    if snap.applied_at_unix_ms.is_none() {
        tracing::warn!(
            "no agent state at {}: services and backends unknown, global counters only",
            target.state_path.display()
        );
    }
    Ok(snap)
}

/// Runs `lb stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.interval.is_finite() && args.interval >= 0.0,
        "--interval must be a number of seconds >= 0"
    );
    let target = args.source.target()?;
    let mut snap = snapshot(&target)?;
    let mut rates = None;
    if args.interval > 0.0 {
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(args.interval));
        let next = target.snapshot()?;
        rates = Some(Rates::between(&snap, &next, start.elapsed()));
        snap = next;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report_json(&snap, rates.as_ref()))
            .context("encoding JSON")?;
        println!("{text}");
    } else {
        print!("{}", render_text(&snap, rates.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}
