//! Which interface to read: its pin directory and state file.

use std::path::{Path, PathBuf};

use super::{Snapshot, StatsError};
use crate::netns::NetnsId;
use crate::private_dir;
use crate::state::{AppliedState, state_path};

/// The pins and state file of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Interface name.
    pub iface: String,
    /// `<pin_root>/ns<inode>/<iface>`.
    pub pin_dir: PathBuf,
    /// `<state_dir>/ns<inode>/<iface>.json`.
    pub state_path: PathBuf,
}

impl Target {
    /// The target of `iface` of network namespace `netns` under `pin_root`
    /// and `state_dir` (not checked).
    pub fn new(pin_root: &Path, state_dir: &Path, netns: NetnsId, iface: &str) -> Self {
        Self {
            iface: iface.to_string(),
            pin_dir: crate::kernel::pin_dir(pin_root, netns, iface),
            state_path: state_path(state_dir, netns, iface),
        }
    }

    /// Reads the state file (if any) and the pinned maps. The directories on
    /// the way must be private to root (a symbolic link is refused).
    pub fn snapshot(&self) -> Result<Snapshot, StatsError> {
        let ns_dir = self.pin_dir.parent().unwrap_or(Path::new("/"));
        if !(private(ns_dir)?
            && private(&self.pin_dir)?
            && self.pin_dir.join(lb_common::MAP_GLOBAL_STATS).exists())
        {
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

/// Checks a directory on the way to the pins (see [`private_dir::check`]);
/// permission denied means the caller is not root.
fn private(dir: &Path) -> Result<bool, StatsError> {
    private_dir::check(dir).map_err(|e| match e {
        private_dir::PrivateDirError::Io { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            StatsError::NeedsRoot { path }
        }
        e => e.into(),
    })
}

/// Interfaces of network namespace `netns` with pinned maps under `pin_root`,
/// sorted (none when there is no such directory).
pub fn pinned_interfaces(pin_root: &Path, netns: NetnsId) -> Result<Vec<String>, StatsError> {
    let dir = crate::kernel::netns_dir(pin_root, netns);
    if !private(&dir)? {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StatsError::Io { path: dir, source });
        }
    };
    let mut ifaces: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with("decap-"))
        .filter(|e| e.path().join(lb_common::MAP_GLOBAL_STATS).exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ifaces.sort();
    Ok(ifaces)
}

/// The interface of network namespace `netns` to show: `iface` when given,
/// else the only pinned one.
pub fn resolve_target(
    pin_root: &Path,
    state_dir: &Path,
    netns: NetnsId,
    iface: Option<&str>,
) -> Result<Target, StatsError> {
    if let Some(iface) = iface {
        return Ok(Target::new(pin_root, state_dir, netns, iface));
    }
    let mut ifaces = pinned_interfaces(pin_root, netns)?;
    match ifaces.len() {
        0 => Err(StatsError::NothingPinned {
            pin_root: crate::kernel::netns_dir(pin_root, netns),
        }),
        1 => Ok(Target::new(pin_root, state_dir, netns, &ifaces.remove(0))),
        _ => Err(StatsError::Ambiguous { ifaces }),
    }
}
