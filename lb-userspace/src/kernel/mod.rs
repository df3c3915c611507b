//! The kernel layer: everything that talks to the kernel's BPF side. It loads
//! (or adopts) the pinned datapath (the XDP programs) on an interface,
//! attaches it, and applies the planner's [`MapOp`]s to its maps.
//!
//! - [`adopt`]: the pure decision whether pins are adopted (unit-tested),
//!   on facts read by [`layout`] and `open`;
//! - `open`: load, adopt or start fresh, attach; `writer`: the map writer
//!   (all-or-nothing applies, journalled in `undo`); `inner_table`: Maglev
//!   tables filled through `mmap`;
//! - [`sys`]: every raw `bpf(2)` call (aya covers the rest); [`pinned`]:
//!   pinned maps opened read-only by other processes (`lb stats`);
//! - [`pins`], [`bpffs`], [`iface`]: pin directories, the bpffs mount, the
//!   interface's facts.
//!
//! Pins live under `<pin_root>/ns<netns inode>/<ifname>/` (see [`crate::netns`]:
//! same-named interfaces of two network namespaces never share pins): one file
//! per map (named like the map) and `link`, the XDP link, so that the datapath
//! keeps forwarding with no agent. Every directory there is private to root
//! ([`crate::private_dir`]).
//! A restart adopts them (aya reuses a pinned map of the same name) when the
//! state file, the pins and the interface all agree; otherwise the leftovers are
//! detached and removed and the datapath starts empty.

pub mod adopt;
pub mod bpffs;
pub mod decap;
mod error;
pub mod iface;
mod inner_table;
pub mod layout;
mod live;
mod open;
pub mod pinned;
pub mod pins;
mod shares;
pub mod sys;
mod undo;
mod vip_filter;
mod writer;

use std::path::{Path, PathBuf};

use aya::Ebpf;
use aya::programs::links::PinnedLink;

pub use error::KernelError;
pub use iface::Interface;
pub use pins::{
    LINK_PIN, check_pin_dir, decap_pin_dir, detach_and_remove, netns_dir, pin_dir,
    retire_legacy_pins,
};

use crate::netns::NetnsId;
#[cfg(doc)]
use crate::plan::MapOp;
pub use crate::plan::NextHop;

/// Every map of the object that is pinned (all but the VIP filter, which
/// each program has of its own: [`lb_common::MAP_VIP_FILTER`]).
pub const MAP_NAMES: [&str; 12] = [
    lb_common::MAP_VIPS,
    lb_common::MAP_MAGLEV_TABLES,
    lb_common::MAP_BACKENDS,
    lb_common::MAP_CONNTRACK,
    lb_common::MAP_SETTINGS,
    lb_common::MAP_BACKEND_STATS,
    lb_common::MAP_SERVICE_STATS,
    lb_common::MAP_GLOBAL_STATS,
    lb_common::MAP_DECAP_ADDRS,
    lb_common::MAP_DECAP_STATS,
    lb_common::MAP_FLOW_TABLE_CONFIG,
    lb_common::MAP_FLOW_INSERTS,
];

/// Requested XDP attach mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Native, falling back to generic (skb) with a log line.
    Auto,
    /// Native (driver) only.
    Native,
    /// Generic (skb) only.
    Skb,
}

/// How to open the datapath on an interface.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// bpffs pin root (per-interface directories below it).
    pub pin_root: PathBuf,
    /// Interface name.
    pub ifname: String,
    /// The network namespace the interface lives in (keys the pin directory).
    pub netns: NetnsId,
    /// Connection-table capacity (used when the table is created).
    pub conntrack_entries: u32,
    /// Connection-table inserts per second per CPU (0 = no limit).
    pub conntrack_insert_budget: u32,
    /// Attach mode.
    pub mode: ModeChoice,
    /// Start from scratch even when pins could be adopted.
    pub fresh: bool,
}

/// The loaded, attached datapath of one interface.
pub struct Datapath {
    ebpf: Ebpf,
    iface: Interface,
    pin_dir: PathBuf,
    mode: &'static str,
    adopted: bool,
    _link: Option<PinnedLink>,
    nr_cpus: usize,
    tables_fd: std::os::fd::OwnedFd,
}

impl Datapath {
    /// The interface.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The pin directory.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Live XDP mode: "native" or "skb".
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// True when pins were adopted rather than created.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, KernelError> {
        self.ebpf
            .map_mut(name)
            .ok_or(KernelError::MissingMap { map: name })
    }
}

/// The one-entry array `name` of `ebpf` (the program's globals and the
/// single-entry maps), with value type `V`.
fn one_entry<'a, V: aya::Pod>(
    ebpf: &'a mut aya::Ebpf,
    name: &'static str,
) -> Result<aya::maps::Array<&'a mut aya::maps::MapData, V>, KernelError> {
    let map = ebpf
        .map_mut(name)
        .ok_or(KernelError::MissingMap { map: name })?;
    Ok(aya::maps::Array::try_from(map)?)
}

/// `values` (one per CPU) as a per-CPU write of map `map`.
fn per_cpu<T: aya::Pod>(
    map: &'static str,
    values: Vec<T>,
) -> Result<aya::maps::PerCpuValues<T>, KernelError> {
    aya::maps::PerCpuValues::try_from(values)
        .map_err(|source| KernelError::PerCpuValues { map, source })
}
