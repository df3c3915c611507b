//! `lb drain`: takes a node out of its tier (or back in) without breaking
//! anything: every VIP withdrawn while the datapath keeps forwarding, the
//! same as `announce.enabled: false` in the YAML.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lb::announce::drain;
use lb::netns::NetnsId;
use lb::state::{AppliedState, state_path};

/// How long `lb drain` waits for the agent to confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `lb drain`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface whose agent drains.
    #[arg(long)]
    iface: String,
    /// Lift the drain: announce the VIPs again (those that can take new flows).
    #[arg(long)]
    undo: bool,
    /// Where the pins and the state file are.
    #[command(flatten)]
    pins: super::PinArgs,
}

/// True when the agent's state shows the drain asked for: draining, or (for
/// `--undo`) no VIP withdrawn by `lb drain` any more.
fn confirmed(state: &AppliedState, drain: bool) -> bool {
    let a = &state.announce;
    if drain {
        a.draining
    } else {
        !a.draining
            || (!a.vips.is_empty()
                && a.vips
                    .iter()
                    .all(|v| v.reason != lb::announce::REASON_DRAINING_COMMAND))
    }
}

/// Runs `lb drain`: writes the drain marker, then waits (bounded) until the
/// agent's state shows the node draining (or not, with `--undo`).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state_dir = args.pins.state_dir();
    let netns = NetnsId::current().context("which network namespace this is")?;
    let state = state_path(&state_dir, netns, &args.iface);
    let want = !args.undo;
    let token = drain::write(&state, want).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the drain marker {}: {e}",
            drain::marker_path(&state).display()
        )
    })?;
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    loop {
        if let Ok(Some(s)) = AppliedState::read(&state)
            && s.announce.drain_token.as_deref() == Some(token.as_str())
            && confirmed(&s, want)
        {
            let announced: Vec<String> = s.announce.announced().map(|v| v.to_string()).collect();
            if want {
                eprintln!(
                    "{}: draining; every VIP withdrawn, the datapath keeps forwarding",
                    args.iface
                );
            } else if s.announce.draining {
                eprintln!(
                    "{}: still draining (announce.enabled: false in the YAML)",
                    args.iface
                );
            } else {
                eprintln!(
                    "{}: drain lifted; announced: {}",
                    args.iface,
                    if announced.is_empty() {
                        "none".into()
                    } else {
                        announced.join(", ")
                    }
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{}: no agent confirmed within {} s (is `lb run --iface {}` running, with this \
                 --state-dir?); the marker {} stays and the agent applies it when it runs",
                args.iface,
                CONFIRM_TIMEOUT.as_secs(),
                args.iface,
                drain::marker_path(&state).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
