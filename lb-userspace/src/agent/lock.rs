//! One agent per (network namespace, interface): `lb run` holds an exclusive
//! `flock` on `<state_dir>/ns<inode>/<ifname>.lock` (holding its pid) for as
//! long as it runs. The kernel drops the lock when the process exits, however
//! it exits, so a stale file never blocks a restart.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another agent holds it.
    #[error("lb run already runs for {ifname} as pid {pid} (lock {path})")]
    Held {
        /// The interface.
        ifname: String,
        /// The holder's pid, as it wrote it (`?` when unreadable).
        pid: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("agent lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A held agent lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct AgentLock {
    _file: std::fs::File,
}

/// The pid recorded in a held lock file, or `?`.
fn holder(file: &mut std::fs::File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let pid = text.trim();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        "?".into()
    } else {
        pid.into()
    }
}

/// The pid of the agent holding the lock at `path`, if one holds it.
pub fn held_by(path: &Path) -> Option<String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    // SAFETY: a valid open descriptor.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    (!free).then(|| holder(&mut file))
}

impl AgentLock {
    /// Takes the lock of `ifname` at `path` (its directory must exist and be
    /// private), or says which pid holds it.
    pub fn acquire(path: &Path, ifname: &str) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.into(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(LockError::Held {
                    ifname: ifname.into(),
                    pid: holder(&mut file),
                    path: path.into(),
                });
            }
            return Err(io(e));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("lb-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eth1.lock");
        assert_eq!(held_by(&path), None);
        let first = AgentLock::acquire(&path, "eth1").unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(held_by(&path), Some(pid.clone()));
        // flock locks belong to the open file: a second open conflicts even
        // within one process, as a second `lb run` would.
        let e = AgentLock::acquire(&path, "eth1").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "lb run already runs for eth1 as pid {pid} (lock {})",
                path.display()
            )
        );
        drop(first);
        assert_eq!(held_by(&path), None);
        let _again = AgentLock::acquire(&path, "eth1").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
