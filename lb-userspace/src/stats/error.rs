//! Errors of reading counters.

use std::path::PathBuf;

/// Errors reading a [`Snapshot`](super::Snapshot) or finding what to read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// No pinned maps for this interface.
    #[error(
        "nothing attached to {iface}: no pinned maps under {pin_dir} \
         (is lb run running or has it been stopped?)"
    )]
    NotAttached {
        /// Interface asked for.
        iface: String,
        /// Directory where its pins would be.
        pin_dir: PathBuf,
    },
    /// No interface has pinned maps under the pin root.
    #[error(
        "nothing attached: no pinned maps under {pin_root} \
         (is lb run running or has it been stopped?)"
    )]
    NothingPinned {
        /// The pin root searched.
        pin_root: PathBuf,
    },
    /// Several interfaces are pinned and none was chosen.
    #[error("several interfaces are attached ({}); choose one with --iface", .ifaces.join(", "))]
    Ambiguous {
        /// The pinned interfaces.
        ifaces: Vec<String>,
    },
    /// Listing the pin root failed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Opening a pinned map failed.
    #[error("cannot open pinned map {path}: {source}")]
    OpenMap {
        /// The pin.
        path: PathBuf,
        /// aya's error.
        source: aya::maps::MapError,
    },
    /// Reading a map entry failed.
    #[error("cannot read {map}[{index}]: {source}")]
    ReadMap {
        /// Map name.
        map: &'static str,
        /// Index read.
        index: u32,
        /// aya's error.
        source: aya::maps::MapError,
    },
    /// The caller may not read the pins (they are root's alone).
    #[error(
        "{path}: permission denied: lb stats and lb watch need root \
         (pins and state files are root's alone; see lb run --metrics for others)"
    )]
    NeedsRoot {
        /// The directory that could not be read.
        path: PathBuf,
    },
    /// A directory on the way to the pins cannot be trusted.
    #[error(transparent)]
    Dir(#[from] crate::private_dir::PrivateDirError),
    /// The state file could not be read.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}
