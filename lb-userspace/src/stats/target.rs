//! Which interface to read: its pin directory and state file.

use std::path::{Path, PathBuf};

use super::{Snapshot, StatsError};
use crate::state::{AppliedState, state_path};

/// The pins and state file of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Interface name.
    pub iface: String,
    /// `<pin_root>/<iface>`.
    pub pin_dir: PathBuf,
    /// `<state_dir>/<iface>.json`.
    pub state_path: PathBuf,
}

impl Target {
    /// The target of `iface` under `pin_root` and `state_dir` (not checked).
    pub fn new(pin_root: &Path, state_dir: &Path, iface: &str) -> Self {
        Self {
            iface: iface.to_string(),
            pin_dir: pin_root.join(iface),
            state_path: state_path(state_dir, iface),
        }
    }

    /// Reads the state file (if any) and the pinned maps.
    pub fn snapshot(&self) -> Result<Snapshot, StatsError> {
        if !self.pin_dir.join(lb_common::MAP_GLOBAL_STATS).exists() {
            return Err(StatsError::NotAttached {
                iface: self.iface.clone(),
                pin_dir: self.pin_dir.clone(),
            });
        }
        let state = AppliedState::read(&self.state_path)?;
        let mut snap = Snapshot::read(&self.pin_dir, state.as_ref())?;
        snap.iface.clone_from(&self.iface);
        Ok(snap)
    }
}

/// Interfaces with pinned maps under `pin_root`, sorted (none when it does
/// not exist).
pub fn pinned_interfaces(pin_root: &Path) -> Result<Vec<String>, StatsError> {
    let entries = match std::fs::read_dir(pin_root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StatsError::Io {
                path: pin_root.into(),
                source,
            });
        }
    };
    let mut ifaces: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(lb_common::MAP_GLOBAL_STATS).exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ifaces.sort();
    Ok(ifaces)
}

/// The interface to show: `iface` when given, else the only pinned one.
pub fn resolve_target(
    pin_root: &Path,
    state_dir: &Path,
    iface: Option<&str>,
) -> Result<Target, StatsError> {
    if let Some(iface) = iface {
        return Ok(Target::new(pin_root, state_dir, iface));
    }
    let mut ifaces = pinned_interfaces(pin_root)?;
    match ifaces.len() {
        0 => Err(StatsError::NothingPinned {
            pin_root: pin_root.into(),
        }),
        1 => Ok(Target::new(pin_root, state_dir, &ifaces.remove(0))),
        _ => Err(StatsError::Ambiguous { ifaces }),
    }
}
