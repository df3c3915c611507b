//! Where pins live: `<pin_root>/ns<netns inode>/<ifname>/` for the load
//! balancer, `<pin_root>/ns<netns inode>/decap-<ifname>/` for the
//! decapsulator, every directory private to root; and their removal.

use std::path::{Path, PathBuf};

use super::{DatapathError, bpffs, sys};
use crate::netns::NetnsId;
use crate::private_dir;

/// File name of the pinned XDP link inside a pin directory.
pub const LINK_PIN: &str = "link";

/// The directory of network namespace `netns`'s pin directories: `<pin_root>/ns<inode>`.
pub fn netns_dir(pin_root: &Path, netns: NetnsId) -> PathBuf {
    pin_root.join(netns.dir_name())
}

/// The load balancer's pin directory of `ifname` in `netns`:
/// `<pin_root>/ns<inode>/<ifname>`.
pub fn pin_dir(pin_root: &Path, netns: NetnsId, ifname: &str) -> PathBuf {
    netns_dir(pin_root, netns).join(ifname)
}

/// The decapsulator's pin directory of `ifname` in `netns`:
/// `<pin_root>/ns<inode>/decap-<ifname>`.
pub fn decap_pin_dir(pin_root: &Path, netns: NetnsId, ifname: &str) -> PathBuf {
    netns_dir(pin_root, netns).join(format!("decap-{ifname}"))
}

/// Checks the private directories leading to `dir` (a pin directory made by
/// [`pin_dir`] or [`decap_pin_dir`] under the secured root), creating the
/// namespace's directory when `create`. True when `dir` exists.
pub fn check_pin_dir(dir: &Path, create: bool) -> Result<bool, DatapathError> {
    if let Some(ns) = dir.parent() {
        if create {
            private_dir::ensure(ns)?;
        } else if !private_dir::check(ns)? {
            return Ok(false);
        }
    }
    Ok(private_dir::check(dir)?)
}

/// Warns about the pin directory an earlier release (pins not keyed by network
/// namespace) left for `ifname`: not adopted, and its program, if still
/// attached here, keeps this release's from attaching.
pub fn warn_legacy_pins(root: &Path, ifname: &str) {
    let legacy = root.join(ifname);
    if std::fs::symlink_metadata(legacy.join(LINK_PIN)).is_ok() {
        tracing::warn!(
            "{} holds pins of an earlier lb release (not keyed by network namespace); \
             they are not adopted: stop that release's agent and run its \
             `lb stop --iface {ifname}` in the namespace it ran in, or remove the directory",
            legacy.display()
        );
    }
}

/// Detaches the pinned link in `dir` (if any) and removes every pin there;
/// `dir` and its namespace's directory must be private to root (checked,
/// never followed).
pub fn detach_and_remove(dir: &Path) -> Result<bool, DatapathError> {
    if !check_pin_dir(dir, false)? {
        return Ok(false);
    }
    let link = dir.join(LINK_PIN);
    let mut detached = false;
    if let Ok(fd) = sys::obj_get(&link)
        && sys::xdp_link_ifindex(&fd).unwrap_or(0) != 0
    {
        sys::link_detach(&fd).map_err(|e| DatapathError::io(&link, e))?;
        detached = true;
    }
    bpffs::remove_pin_dir(dir)?;
    Ok(detached)
}
