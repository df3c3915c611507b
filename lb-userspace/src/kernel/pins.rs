//! Where pins live: `<pin_root>/ns<netns inode>/<ifname>/` for the load
//! balancer, `<pin_root>/ns<netns inode>/decap-<ifname>/` for the
//! decapsulator, every directory private to root; and their removal.

use std::path::{Path, PathBuf};

use super::{KernelError, bpffs, sys};
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
pub fn check_pin_dir(dir: &Path, create: bool) -> Result<bool, KernelError> {
    if let Some(ns) = dir.parent() {
        if create {
            private_dir::ensure(ns)?;
        } else if !private_dir::check(ns)? {
            return Ok(false);
        }
    }
    Ok(private_dir::check(dir)?)
}

/// The ids of the XDP programs attached to `ifname` in this network
/// namespace (`ip -j link show`; none when it cannot tell).
fn attached_xdp_programs(ifname: &str) -> Vec<u32> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-j", "link", "show", "dev", ifname])
        .stdin(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Vec::new();
    };
    let xdp = &v[0]["xdp"];
    let mut progs = vec![&xdp["prog"]];
    if let Some(attached) = xdp["attached"].as_array() {
        progs.extend(attached.iter().map(|a| &a["prog"]));
    }
    progs
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .map(|id| id as u32)
        .collect()
}

/// Handles the pin directory an earlier release (pins not keyed by network
/// namespace) left at `<root>/<ifname>`: when its link is attached to this
/// very interface (same ifindex, and the program on the interface here is
/// the link's) it is this namespace's, and it is detached and removed, so the
/// upgraded agent starts fresh (the earlier layout is not adopted).
/// Otherwise (another namespace's, or stale) it is left alone with a warning.
pub fn retire_legacy_pins(root: &Path, ifname: &str, ifindex: u32) -> Result<(), KernelError> {
    let legacy = root.join(ifname);
    match private_dir::check(&legacy) {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(e) => {
            tracing::warn!("not an earlier release's pins, left alone: {e}");
            return Ok(());
        }
    }
    let link_pin = legacy.join(LINK_PIN);
    let Ok(link) = sys::obj_get(&link_pin) else {
        return Ok(());
    };
    let link_ifindex = sys::xdp_link_ifindex(&link).unwrap_or(0);
    let prog = sys::link_prog_id(&link).unwrap_or(0);
    drop(link);
    if link_ifindex == ifindex && prog != 0 && attached_xdp_programs(ifname).contains(&prog) {
        detach_and_remove(&legacy)?;
        tracing::warn!(
            "{}: an earlier lb release's datapath (pins not keyed by network namespace) was \
             attached to {ifname} here; detached and removed, starting fresh",
            legacy.display()
        );
    } else {
        tracing::warn!(
            "{} holds pins of an earlier lb release for another network namespace's {ifname} \
             (or stale ones); left alone: run that release's `lb stop --iface {ifname}` where \
             it ran, or remove the directory",
            legacy.display()
        );
    }
    Ok(())
}

/// Detaches the pinned link in `dir` (if any) and removes every pin there;
/// `dir` and its namespace's directory must be private to root (checked,
/// never followed).
pub fn detach_and_remove(dir: &Path) -> Result<bool, KernelError> {
    if !check_pin_dir(dir, false)? {
        return Ok(false);
    }
    let link = dir.join(LINK_PIN);
    let mut detached = false;
    if let Ok(fd) = sys::obj_get(&link)
        && sys::xdp_link_ifindex(&fd).unwrap_or(0) != 0
    {
        sys::link_detach(&fd).map_err(|e| KernelError::io(&link, "detaching the XDP link", e))?;
        detached = true;
    }
    bpffs::remove_pin_dir(dir)?;
    Ok(detached)
}
