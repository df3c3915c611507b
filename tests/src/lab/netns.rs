//! Named network namespaces (`/run/netns/NAME`), entering them from threads, and
//! removing leftovers of earlier runs that were killed before they could clean up.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::cmd;
use super::error::{LabError, Result};

/// Every lab namespace, pin root and scratch directory starts with this word,
/// followed by the owning process id and a dash: `lblab<pid>-`.
pub const NAME_BASE: &str = "lblab";

/// A name no other run or object of this process uses: `lblab<pid>-<tag><n>`
/// (`n` counts up per process). Leftover sweeps recognise it by the pid.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{NAME_BASE}{}-{tag}{n}", std::process::id())
}

/// Where lab bpffs instances are mounted (one per lab, outside `/sys`, so pins
/// survive `ip netns exec`'s private `/sys`).
pub const PIN_BASE: &str = "/run/lblab";
/// The bpffs mount point inside a lab's directory under [`PIN_BASE`].
pub const PIN_DIR: &str = "bpffs";

/// A named network namespace owned by this process; [`NetNs::delete`] removes it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    fd: File,
}

impl NetNs {
    /// Creates `/run/netns/NAME` (`ip netns add`) with `lo` up.
    pub fn create(name: &str) -> Result<Arc<NetNs>> {
        cmd::ip(&["netns", "add", name])?;
        let path = format!("/run/netns/{name}");
        let fd = File::open(&path).map_err(LabError::io(format!("open {path}")))?;
        let ns = NetNs {
            name: name.to_owned(),
            fd,
        };
        cmd::ip_in(name, &["link", "set", "lo", "up"])?;
        Ok(Arc::new(ns))
    }

    /// The namespace's name (for `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into this namespace. Sockets created afterwards
    /// belong to it for their whole life, whichever thread uses them.
    pub fn enter(&self) -> Result<()> {
        // SAFETY: the fd is an open nsfs file; setns only changes this thread's
        // network namespace.
        let rc = unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(LabError::Setns {
                ns: self.name.clone(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Runs `f` on a fresh thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| self.enter().map(|()| f()));
            handle
                .join()
                .map_err(|_| LabError::Thread(format!("in {}", self.name)))?
        })
    }

    /// Starts a named thread inside this namespace.
    pub fn spawn<T: Send + 'static>(
        self: &Arc<Self>,
        thread_name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<Result<T>>> {
        let ns = Arc::clone(self);
        std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || ns.enter().map(|()| f()))
            .map_err(LabError::io(format!("spawn thread {thread_name}")))
    }

    /// Kills every process inside the namespace, then deletes it.
    pub fn delete(&self) -> Result<()> {
        delete_by_name(&self.name)
    }
}

/// Process ids running inside namespace `name` (`ip netns pids`).
fn pids_in(name: &str) -> Vec<i32> {
    cmd::run_args("ip", &["netns", "pids", name])
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process inside namespace `name` (SIGKILL) and deletes it.
pub fn delete_by_name(name: &str) -> Result<()> {
    for pid in pids_in(name) {
        // SAFETY: plain kill(2) on a pid that lives in a namespace we own.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    cmd::ip(&["netns", "del", name])
}

/// The owner pid encoded in a lab name (`lblab<pid>-...`).
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(NAME_BASE)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether a lab name belongs to a process that no longer runs.
fn is_orphan(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// An exclusive lock (flock on `PIN_BASE/.sweep.lock`) held while leftovers are
/// removed, shared by every test process. Anyone creating a lab-named object
/// that may look orphaned (a test faking a killed run's leftover) holds it too,
/// so a parallel sweep cannot delete the object half-made (`ip netns add`
/// creates the file before it bind-mounts onto it).
#[derive(Debug)]
pub struct SweepLock {
    _file: File,
}

impl SweepLock {
    /// Blocks until the lock is free and takes it; released on drop.
    pub fn take() -> Result<SweepLock> {
        std::fs::create_dir_all(PIN_BASE).map_err(LabError::io(format!("create {PIN_BASE}")))?;
        let path = format!("{PIN_BASE}/.sweep.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(LabError::io(format!("open {path}")))?;
        // SAFETY: flock(2) on an fd this function owns; blocking is intended.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(LabError::io(format!("flock {path}"))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(SweepLock { _file: file })
    }
}

/// Removes namespaces, bpffs pin roots and scratch directories left by lab runs
/// whose process is gone (killed before its `Drop` ran). Labs of live processes
/// (other tests running in parallel) are left alone. Holds [`SweepLock`].
pub fn remove_leftovers() {
    let _lock = SweepLock::take();
    if let Ok(out) = cmd::run_args("ip", &["netns", "list"]) {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for name in text.lines().filter_map(|l| l.split_whitespace().next()) {
            if is_orphan(name) {
                let _ = delete_by_name(name);
            }
        }
    }
    for base in [
        PIN_BASE.to_owned(),
        std::env::temp_dir().display().to_string(),
    ] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_orphan(&name) {
                remove_pin_base(&entry.path());
            }
        }
    }
}

/// Unmounts a lab's bpffs (dropping every pin in it) and removes the lab's
/// directory (pin root, agent state, or scratch files).
pub fn remove_pin_base(dir: &Path) {
    let bpffs = dir.join(PIN_DIR);
    if bpffs.exists() {
        let _ = cmd::run_args("umount", &["-l", &bpffs.display().to_string()]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn owner_pid_reads_lab_names() {
        assert_eq!(owner_pid("lblab1234-0-cl"), Some(1234));
        assert_eq!(owner_pid("lblab77-3"), Some(77));
        assert_eq!(owner_pid("lb1234-0-cl"), None);
        assert_eq!(owner_pid("lblabx-0"), None);
        assert_eq!(owner_pid("lblab12"), None);
    }
}
