//! Agents sharing a network namespace: their routes of one protocol live in
//! one table, so a reconciliation removes a route of its protocol only when no
//! other agent claims it. An agent's claim is the announced VIPs in its state
//! file (in the same state directory), counted while that file names this
//! network namespace and an interface that still exists with the same index.
//! An exclusive `flock` on `<state_dir>/routes.lock` serialises every
//! "write the state file + change the routes" step, so two agents never act
//! on each other's half-written view.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use crate::state::AppliedState;

/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "routes.lock";

/// Errors taking the routes lock.
#[derive(Debug, thiserror::Error)]
#[error("routes lock {path}: {source}")]
pub struct LockError {
    /// The lock file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// The held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct RoutesLock {
    _file: File,
}

/// Takes the exclusive routes lock of `state_dir` (waits for it).
pub fn lock(state_dir: &Path) -> Result<RoutesLock, LockError> {
    let path = state_dir.join(LOCK_FILE);
    let err = |source| LockError {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(err)?;
    loop {
        // SAFETY: flock on a file descriptor this function owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(RoutesLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(err(e));
        }
    }
}

/// Identity (inode) of the calling thread's network namespace.
pub fn netns_id() -> Option<u64> {
    crate::netns::NetnsId::current().ok().map(|n| n.0)
}

/// True when `state` is a claim in network namespace `netns` for `protocol`:
/// same namespace and protocol, and its interface still exists here with the
/// same index (an interface deleted with its namespace claims nothing).
pub fn is_live_claim(state: &AppliedState, netns: u64, protocol: u8) -> bool {
    state.announce.netns == Some(netns)
        && state.announce.protocol == protocol
        && crate::kernel::iface::ifindex(&state.ifname) == Some(state.ifindex)
}

/// VIPs announced by other agents of this namespace with `protocol`: every
/// state file in `state_dir` but `own` that is a live claim.
pub fn claimed_by_others(
    state_dir: &Path,
    own: &Path,
    netns: Option<u64>,
    protocol: u8,
) -> BTreeSet<IpAddr> {
    let mut claimed = BTreeSet::new();
    let Some(netns) = netns else {
        return claimed;
    };
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return claimed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == own || path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        if let Ok(Some(state)) = AppliedState::read(&path)
            && is_live_claim(&state, netns, protocol)
        {
            claimed.extend(state.announce.announced());
        }
    }
    claimed
}
