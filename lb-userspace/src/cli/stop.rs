//! `lb stop`.

use std::path::PathBuf;
use std::process::ExitCode;

use lb::datapath::{detach_and_remove, pin_dir};
use lb::state::{DEFAULT_PIN_ROOT, default_state_dir, state_path};

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

/// Runs `lb stop`: detaches the XDP link, removes the pins and the state file.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = lb::datapath::bpffs::resolve_root(&args.pin_root, false)?;
    let dir = pin_dir(&root, &args.iface);
    let existed = dir.exists();
    let detached = detach_and_remove(&dir)?;
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| default_state_dir(&args.pin_root));
    let state = state_path(&state_dir, &args.iface);
    let had_state = std::fs::remove_file(&state).is_ok();
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
