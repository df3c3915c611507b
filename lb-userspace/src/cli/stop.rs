//! `lb stop`.

use std::process::ExitCode;

use anyhow::Context as _;
use lb::agent::lock::held_by;
use lb::announce::reconcile::withdraw_all;
use lb::kernel::{check_pin_dir, detach_and_remove, pin_dir};
use lb::netns::NetnsId;
use lb::private_dir;
use lb::state::{AppliedState, lock_path, netns_state_dir, state_path};

/// Arguments of `lb stop`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to detach from.
    #[arg(long)]
    iface: String,
    /// Where the pins and the state file are.
    #[command(flatten)]
    pins: super::PinArgs,
}

/// Runs `lb stop`: detaches the XDP link, removes the pins, withdraws the
/// announced VIPs (their host routes) and removes the state file of the
/// interface in this network namespace. Refused while `lb run` runs for it
/// (the agent would re-create them).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let netns = NetnsId::current().context("which network namespace this is")?;
    let state_dir = args.pins.state_dir();
    let ns_state = netns_state_dir(&state_dir, netns);
    let state_dir_exists = private_dir::check(&state_dir)? && private_dir::check(&ns_state)?;
    if state_dir_exists && let Some(pid) = held_by(&lock_path(&state_dir, netns, &args.iface)) {
        anyhow::bail!(
            "lb run runs for {} as pid {pid}; stop it first (kill -TERM {pid}), then `lb stop`",
            args.iface
        );
    }
    let root = lb::kernel::bpffs::secure_root(&args.pins.pin_root)?;
    let dir = pin_dir(&root, netns, &args.iface);
    let existed = check_pin_dir(&dir, false)?;
    let detached = detach_and_remove(&dir)?;
    let state = state_path(&state_dir, netns, &args.iface);
    let mut had_state = false;
    if state_dir_exists {
        lb::announce::drain::remove(&state);
        let mut remove_state = || had_state = std::fs::remove_file(&state).is_ok();
        // Withdraw the announced VIPs (their routes) before the state file
        // that claims them goes away.
        match AppliedState::read(&state) {
            Ok(Some(applied)) => match withdraw_all(&state, &applied, remove_state) {
                Ok(vips) if vips.is_empty() => {}
                Ok(vips) => eprintln!(
                    "{}: withdrew {}",
                    args.iface,
                    vips.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(e) => eprintln!("{}: {e}", args.iface),
            },
            Ok(None) => remove_state(),
            Err(e) => {
                eprintln!("{e}; no route withdrawn");
                remove_state();
            }
        }
        let _ = std::fs::remove_file(lock_path(&state_dir, netns, &args.iface));
    }
    if !existed && !had_state {
        eprintln!(
            "nothing attached to {} (no pins under {})",
            args.iface,
            dir.display()
        );
    } else {
        eprintln!(
            "{}: {}pins removed ({}), state file {}",
            args.iface,
            if detached { "detached, " } else { "" },
            dir.display(),
            if had_state { "removed" } else { "absent" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
