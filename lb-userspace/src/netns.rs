//! The network namespace a process runs in, as the key of its pins and state.
//!
//! Interface names are only unique inside one network namespace: two `lb run
//! --iface eth1` in two namespaces of one host are two different interfaces.
//! Pins and state files are therefore keyed by the namespace's inode (the
//! `st_ino` of `/proc/self/ns/net`, the number `ip netns identify` and
//! `lsns -t net` show), as `ns<inode>`.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// Where the calling thread's network namespace is visible.
pub const SELF_NETNS: &str = "/proc/thread-self/ns/net";

/// A network namespace, by the inode of its nsfs file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsId(pub u64);

impl NetnsId {
    /// The network namespace of the calling thread (a thread that entered
    /// another namespace with `setns` sees that one, not the main thread's).
    pub fn current() -> std::io::Result<Self> {
        Self::of(Path::new(SELF_NETNS))
    }

    /// The network namespace a nsfs file names: `/proc/<pid>/ns/net` or a
    /// bind mount such as `/run/netns/<name>`.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        std::fs::metadata(path)
            .map(|m| Self(m.ino()))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The directory name that keys this namespace's pins and state: `ns<inode>`.
    pub fn dir_name(self) -> String {
        format!("ns{}", self.0)
    }
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network namespace {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_namespace_is_the_one_of_proc_self() {
        let here = NetnsId::current().unwrap();
        let pid = std::process::id();
        let by_pid = NetnsId::of(Path::new(&format!("/proc/{pid}/ns/net"))).unwrap();
        assert_eq!(here, by_pid);
        assert_eq!(here.dir_name(), format!("ns{}", here.0));
        let e = NetnsId::of(Path::new("/proc/self/ns/no-such")).unwrap_err();
        assert!(e.to_string().contains("/proc/self/ns/no-such"), "{e}");
    }
}
