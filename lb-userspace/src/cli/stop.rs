//! `lb stop`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lb::agent::lock::held_by;
use lb::datapath::{check_pin_dir, detach_and_remove, pin_dir};
use lb::netns::NetnsId;
use lb::private_dir;
use lb::state::{DEFAULT_PIN_ROOT, default_state_dir, lock_path, netns_state_dir, state_path};

/// Arguments of `lb stop`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to detach from.
    #[arg(long)]
    iface: String,
    /// bpffs root of the per-interface pin directories.
    #[arg(long, default_value = DEFAULT_PIN_ROOT)]
    pin_root: PathBuf,
    /// Directory of the per-interface state files.
    #[arg(long)]
    /// Default: the pin root's sibling `state` directory.
    state_dir: Option<PathBuf>,
}

/// Runs `lb stop`: detaches the XDP link, removes the pins and the state file
/// of the interface in this network namespace. Refused while `lb run` runs
/// for it (the agent would re-create them).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let netns = NetnsId::current().context("which network namespace this is")?;
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| default_state_dir(&args.pin_root));
    let ns_state = netns_state_dir(&state_dir, netns);
    let state_dir_exists = private_dir::check(&state_dir)? && private_dir::check(&ns_state)?;
    if state_dir_exists && let Some(pid) = held_by(&lock_path(&state_dir, netns, &args.iface)) {
        anyhow::bail!(
            "lb run runs for {} as pid {pid}; stop it first (kill -TERM {pid}), then `lb stop`",
            args.iface
        );
    }
    let root = lb::datapath::bpffs::secure_root(&args.pin_root)?;
    let dir = pin_dir(&root, netns, &args.iface);
    let existed = check_pin_dir(&dir, false)?;
    let detached = detach_and_remove(&dir)?;
    let state = state_path(&state_dir, netns, &args.iface);
    let had_state = state_dir_exists && std::fs::remove_file(&state).is_ok();
    if state_dir_exists {
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
