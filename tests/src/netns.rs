//! A network namespace pair joined by a veth, for privileged tests: unique
//! names (with the pid), removed on drop, leftovers of a killed run tolerated.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip ARGS`, ignoring failures (cleanup).
pub fn ip_quiet(args: &[&str]) {
    let _ignored = Command::new("ip").args(args).output();
}

/// Two namespaces: `lb` (the load balancer, with veth `lb_if`) and `peer`
/// (the next hop, with veth `peer_if`), on 198.18.200.0/24 (`.1` LB, `.2` peer);
/// the LB routes 198.18.0.0/16 via the peer.
pub struct NetNsPair {
    /// The load balancer's namespace.
    pub lb: String,
    /// The peer's namespace.
    pub peer: String,
    /// The LB's interface (in `lb`).
    pub lb_if: String,
    /// The peer's interface (in `peer`).
    pub peer_if: String,
}

impl NetNsPair {
    /// Creates the pair; `tag` keeps names of different tests apart.
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let lb = format!("lbt-{tag}-{pid}-{n}-lb");
        let peer = format!("lbt-{tag}-{pid}-{n}-peer");
        // Interface names: at most 15 characters.
        let short = format!("{:x}{n}", pid % 0xfffff);
        let lb_if = format!("lbA{short}");
        let peer_if = format!("lbB{short}");
        sweep_orphans();
        for ns in [&lb, &peer] {
            ip_quiet(&["netns", "del", ns]);
            ip(&["netns", "add", ns]);
        }
        ip(&[
            "-n", &lb, "link", "add", &lb_if, "type", "veth", "peer", "name", &peer_if, "netns",
            &peer,
        ]);
        ip(&["-n", &lb, "addr", "add", "198.18.200.1/24", "dev", &lb_if]);
        ip(&[
            "-n",
            &peer,
            "addr",
            "add",
            "198.18.200.2/24",
            "dev",
            &peer_if,
        ]);
        ip(&["-n", &lb, "link", "set", "lo", "up"]);
        ip(&["-n", &peer, "link", "set", "lo", "up"]);
        ip(&["-n", &lb, "link", "set", &lb_if, "up"]);
        ip(&["-n", &peer, "link", "set", &peer_if, "up"]);
        ip(&[
            "-n",
            &lb,
            "route",
            "add",
            "198.18.0.0/16",
            "via",
            "198.18.200.2",
        ]);
        Self {
            lb,
            peer,
            lb_if,
            peer_if,
        }
    }

    /// The LB namespace's identity (what keys its pins and state files).
    pub fn lb_netns(&self) -> lb::netns::NetnsId {
        netns_id(&self.lb)
    }

    /// A command run inside the LB namespace (`ip netns exec`).
    pub fn exec_in_lb(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.lb, program]);
        c
    }
}

impl Drop for NetNsPair {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.lb]);
        ip_quiet(&["netns", "del", &self.peer]);
    }
}

/// A bpffs mounted (in the test's own mount namespace, so it outlives any
/// `ip netns exec` child) at `/run/lb-test-<pid>/bpffs`; unmounted on drop.
pub struct TestBpffs {
    /// `/run/lb-test-<pid>`.
    pub base: std::path::PathBuf,
    /// The bpffs mount point.
    pub root: std::path::PathBuf,
}

impl TestBpffs {
    /// Mounts it (an earlier run's leftover is unmounted first).
    pub fn new(tag: &str) -> Self {
        sweep_orphans();
        let base = std::path::PathBuf::from(format!("/run/lb-test-{tag}-{}", std::process::id()));
        let root = base.join("bpffs");
        let _ignored = Command::new("umount").arg(&root).output();
        std::fs::create_dir_all(&root).expect("mkdir pin root");
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&root)
            .status()
            .expect("mount");
        assert!(st.success(), "mount bpffs at {}", root.display());
        Self { base, root }
    }
}

impl TestBpffs {
    /// Only the directories: nothing mounted (whoever mounts the bpffs at
    /// `root` later, it is unmounted on drop).
    pub fn unmounted(tag: &str) -> Self {
        let base = std::path::PathBuf::from(format!("/run/lb-test-{tag}-{}", std::process::id()));
        let root = base.join("bpffs");
        let _ignored = Command::new("umount").arg(&root).output();
        std::fs::create_dir_all(&base).expect("mkdir test base");
        Self { base, root }
    }
}

impl Drop for TestBpffs {
    fn drop(&mut self) {
        let _ignored = Command::new("umount").arg("-l").arg(&self.root).output();
        let _ignored = std::fs::remove_dir_all(&self.base);
    }
}

/// The identity of the named network namespace `ns` (`/run/netns/<ns>`):
/// what keys the pins and state files of an `lb` run inside it.
pub fn netns_id(ns: &str) -> lb::netns::NetnsId {
    let path = std::path::Path::new("/run/netns").join(ns);
    lb::netns::NetnsId::of(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on a thread inside network namespace `ns` (processes it spawns
/// inherit the namespace); returns its result (a panic propagates).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The pid in a test namespace's name `lbt-<tag>-<pid>-<n>-<role>`.
fn namespace_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("lbt-")?;
    let mut parts = rest.rsplitn(4, '-');
    let (_role, _n, pid) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    pid.parse().ok()
}

/// The pid in a test bpffs directory's name `lb-test-<tag>-<pid>`.
fn bpffs_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("lb-test-")?;
    rest.rsplit_once('-')?.1.parse().ok()
}

/// Whether process `pid` is gone.
fn dead(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes what killed test processes left behind: their namespaces
/// (`lbt-*`, with the veths and XDP links in them) and their bpffs mounts
/// (`/run/lb-test-*`). Only objects whose owner pid no longer runs.
pub fn sweep_orphans() {
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            if namespace_owner(name).is_some_and(dead) {
                ip_quiet(&["netns", "del", name]);
            }
        }
    }
    let Ok(entries) = std::fs::read_dir("/run") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if bpffs_owner(&name).is_some_and(dead) {
            crate::lab::netns::remove_pin_base(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bpffs_owner, namespace_owner};

    #[test]
    fn owners_are_read_from_test_names() {
        assert_eq!(namespace_owner("lbt-health-22615-0-lb"), Some(22615));
        assert_eq!(namespace_owner("lbt-agent-22615-3-peer"), Some(22615));
        assert_eq!(namespace_owner("lbt-two-part-7-1-lb"), Some(7));
        assert_eq!(namespace_owner("lbt-22615-0-lb"), None);
        assert_eq!(namespace_owner("lblab22615-0-cl"), None);
        assert_eq!(namespace_owner("lbt-x-abc-0-lb"), None);
        assert_eq!(bpffs_owner("lb-test-agent-22615"), Some(22615));
        assert_eq!(bpffs_owner("lb-test-agent"), None);
        assert_eq!(bpffs_owner("lblab"), None);
    }
}
