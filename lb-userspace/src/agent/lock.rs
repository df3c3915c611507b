//! One agent per (network namespace, interface): `lb run` holds an exclusive
//! POSIX record lock (`fcntl(F_SETLK)`) on `<state_dir>/ns<inode>/<ifname>.lock`
//! (which also holds its pid) for as long as it runs. The kernel drops the
//! lock when the process exits, however it exits, so a stale file never
//! blocks a restart. A record lock belongs to the process, not to the open
//! file: a child the agent forks (to run `ip`) never holds it, so the lock
//! is free the moment the agent is gone.

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

/// A whole-file record lock request of type `kind` (`F_WRLCK`, `F_UNLCK`, ...).
fn whole_file(kind: i32) -> libc::flock {
    // SAFETY: an all-zero flock is valid; the fields set below make it whole-file.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

/// The pid of the process holding a write lock on `file`, if one does
/// (`F_GETLK`; the pid is 0 when the holder is in another pid namespace).
fn lock_holder(file: &std::fs::File) -> Option<i32> {
    let mut l = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and flock struct.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut l) };
    (r == 0 && l.l_type != libc::F_UNLCK as libc::c_short).then_some(l.l_pid)
}

/// The pid of a lock's holder: as the kernel reports it, else as written in
/// the file, else `?`.
fn holder(file: &mut std::fs::File, pid: Option<i32>) -> String {
    if let Some(pid) = pid.filter(|&p| p > 0) {
        return pid.to_string();
    }
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
    let pid = lock_holder(&file)?;
    Some(holder(&mut file, Some(pid)))
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
        let lock = whole_file(libc::F_WRLCK);
        // SAFETY: a valid descriptor and flock struct.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } != 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) {
                let pid = lock_holder(&file);
                return Err(LockError::Held {
                    ifname: ifname.into(),
                    pid: holder(&mut file, pid),
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
    fn the_lock_records_its_pid_and_is_free_once_dropped() {
        let dir = std::env::temp_dir().join(format!("lb-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eth1.lock");
        assert_eq!(held_by(&path), None);
        let first = AgentLock::acquire(&path, "eth1").unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), pid);
        // (Record locks never conflict within one process: the privileged
        // test `a_second_agent_on_one_interface_is_refused_with_the_first_ones_pid`
        // runs two agents.)
        drop(first);
        assert_eq!(held_by(&path), None);
        let _again = AgentLock::acquire(&path, "eth1").unwrap();
        let e = LockError::Held {
            ifname: "eth1".into(),
            pid: "42".into(),
            path: path.clone(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "lb run already runs for eth1 as pid 42 (lock {})",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
