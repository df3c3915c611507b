//! One module per subcommand; each has `Args` (clap) and `run`.

pub mod check;
pub mod completions;
pub mod decap;
pub mod drain;
pub mod maglev;
pub mod man;
pub mod run;
pub mod schema;
pub mod stats;
pub mod stop;
pub mod watch;
pub mod watch_nodes;

use std::path::PathBuf;

use lb::state::{DEFAULT_PIN_ROOT, default_state_dir};

/// `--pin-root` and `--state-dir`, shared (flattened) by the subcommands that
/// act on an interface's pins and state file: `lb run`, `lb stop`, `lb drain`.
#[derive(clap::Args)]
pub struct PinArgs {
    /// bpffs root of the per-interface pin directories.
    #[arg(long, default_value = DEFAULT_PIN_ROOT)]
    pub pin_root: PathBuf,
    /// Directory of the per-interface state files.
    #[arg(long)]
    /// Default: the pin root's sibling `state` directory.
    pub state_dir: Option<PathBuf>,
}

impl PinArgs {
    /// The state directory: `--state-dir`, else the pin root's sibling `state`.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(&self.pin_root))
    }
}

/// Logs go to stderr through `tracing`; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
